//! The HTTP listener (`listeners.http`): IRC over WebSocket per the IRCv3
//! WebSocket specification, `/metrics` in the Prometheus text format, and
//! `/healthz`. docs/web.md describes all three.
//!
//! hyper serves the HTTP/1.1 requests; a WebSocket upgrade on `/` or `/ws`
//! hands the connection over to a task of its own, the same connection
//! driver as TCP's over [`WebSocket`] frames, on the same hub. The HTTP
//! connection was admitted like any other (total, per address, rate); its
//! slot passes to the WebSocket connection, whose cleanup frees it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Kind, Secure, Shared, limits, release_if, serve_with, spawn_connection};
use crate::driver::websocket::{Frames, WebSocket};
use crate::metrics::{Refused, Via};

/// The IRCv3 WebSocket subprotocols.
const TEXT: &str = "text.ircv3.net";
const BINARY: &str = "binary.ircv3.net";

/// How long a client may take to send a request's headers (hyper closes
/// the connection past it, idle keep-alive connections included).
const HEADER_TIME: Duration = Duration::from_secs(30);

/// Serves one admitted (or refused) HTTP connection until it closes or is
/// upgraded to a WebSocket.
pub(super) async fn serve<I>(
    io: I,
    addr: SocketAddr,
    secure: Option<Secure>,
    admitted: Result<(), limits::Refusal>,
    shared: Arc<Shared>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Err(refusal) = admitted {
        super::refuse(tokio::io::split(io), addr, Kind::Http, refusal).await;
        return;
    }
    let upgraded = Arc::new(AtomicBool::new(false));
    let service = {
        let conn = Conn {
            addr,
            secure,
            shared: shared.clone(),
            upgraded: upgraded.clone(),
        };
        hyper::service::service_fn(move |req| {
            std::future::ready(Ok::<_, Infallible>(conn.respond(req)))
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIME)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::select! {
        r = conn => if let Err(e) = r {
            tracing::debug!(error = %e, "HTTP connection failed");
        },
        _ = shared.shutdown.cancelled() => {}
    }
    // Once upgraded, the slot is the WebSocket connection's.
    if !upgraded.load(Ordering::Relaxed) {
        release_if(&shared, addr.ip(), &Ok(()));
    }
}

/// What a refused HTTP client is told, before the connection closes.
pub(super) fn refusal(text: &str) -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{text}\n",
        text.len() + 1
    )
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A file of the built-in web client, with headers that keep the page to
/// its own scripts, styles and the same host's WebSocket.
fn page(asset: &crate::web::Asset) -> Response<Full<Bytes>> {
    let mut r = plain(StatusCode::OK, Bytes::from_static(asset.body));
    let hs = r.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    hs.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::web::CSP),
    );
    hs.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    hs.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// One HTTP connection, as its requests see it.
struct Conn {
    addr: SocketAddr,
    /// Over TLS: what the handshake told (a client certificate's
    /// fingerprint, for SASL EXTERNAL over a WebSocket too).
    secure: Option<Secure>,
    shared: Arc<Shared>,
    /// Set once a request was upgraded: the admission slot is then the
    /// WebSocket connection's.
    upgraded: Arc<AtomicBool>,
}

impl Conn {
    fn respond(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let shared = &self.shared;
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        match req.uri().path() {
            "/" | "/ws" if upgrade => self.websocket(req),
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            "/metrics" => {
                let hub = &shared.hub;
                let mut r = plain(StatusCode::OK, hub.metrics().render(hub.figures()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            path => match crate::web::asset(path) {
                Some(asset) => page(asset),
                None => plain(StatusCode::NOT_FOUND, "not found\n"),
            },
        }
    }

    /// Accepts a WebSocket upgrade (RFC 6455, 4.2.2) and starts its IRC
    /// connection once hyper has handed the stream over.
    fn websocket(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (addr, secure, shared) = (self.addr, self.secure.clone(), &self.shared);
        let h = req.headers();
        let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
            return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
        };
        if req.method() != Method::GET {
            return plain(StatusCode::BAD_REQUEST, "a WebSocket upgrade is a GET\n");
        }
        if h.get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v != "13")
        {
            let mut r = plain(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
            r.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return r;
        }
        if let Some(origin) = h.get(header::ORIGIN)
            && !origin_allowed(origin.as_bytes(), &shared.live.cfg().http.allowed_origins)
        {
            shared.hub.metrics().refused(Refused::Origin);
            tracing::info!(peer = %addr, origin = ?origin, "WebSocket origin refused");
            return plain(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
        let chosen = subprotocol(h);
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut r = plain(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
        let hs = r.headers_mut();
        hs.remove(header::CONTENT_TYPE);
        hs.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        hs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            hs.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        if let Some(p) = chosen {
            hs.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
        }
        let frames = if chosen == Some(BINARY) {
            Frames::Binary
        } else {
            Frames::Text
        };
        self.upgraded.store(true, Ordering::Relaxed);
        let on = hyper::upgrade::on(req);
        let shared = shared.clone();
        // A task of its own while hyper finishes the handshake: the
        // connection's task is then the driver alone.
        shared.tracker.clone().spawn(async move {
        match on.await {
            Ok(up) => {
                let io = WebSocket::new(TokioIo::new(up), frames);
                let via = (Via::WebSocket, secure);
                let task = serve_with(io, addr.ip(), Kind::Irc, via, shared.clone());
                let span =
                    tracing::debug_span!("conn", peer = %addr, dialect = "irc", websocket = true);
                spawn_connection(&shared.tracker, task, span);
            }
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                release_if(&shared, addr.ip(), &Ok(()));
            }
        }
    });
        r
    }
}

/// Whether a page from `origin` may open a WebSocket: any when `allowed`
/// is empty or holds `*`; else one of them, compared without case.
fn origin_allowed(origin: &[u8], allowed: &[String]) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| {
            a == "*"
                || a.trim_end_matches('/')
                    .as_bytes()
                    .eq_ignore_ascii_case(origin)
        })
}

/// The first IRCv3 subprotocol the client offers, in its order.
fn subprotocol(h: &HeaderMap) -> Option<&'static str> {
    h.get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| match p.trim() {
            TEXT => Some(TEXT),
            BINARY => Some(BINARY),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprotocols_follow_the_clients_order() {
        let pick = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(
                    header::SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            subprotocol(&h)
        };
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&["chat, binary.ircv3.net"]), Some(BINARY));
        assert_eq!(pick(&["text.ircv3.net,binary.ircv3.net"]), Some(TEXT));
        assert_eq!(
            pick(&["x", "binary.ircv3.net", "text.ircv3.net"]),
            Some(BINARY)
        );
    }

    #[test]
    fn origins() {
        let list = vec!["https://chat.example.org/".to_string()];
        assert!(origin_allowed(b"https://chat.example.org", &list));
        assert!(origin_allowed(b"HTTPS://Chat.Example.org", &list));
        assert!(!origin_allowed(b"https://evil.example", &list));
        assert!(origin_allowed(b"https://evil.example", &[]));
        assert!(origin_allowed(b"https://evil.example", &["*".to_string()]));
    }
}
