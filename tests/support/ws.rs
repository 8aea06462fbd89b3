//! A client of IRC over WebSocket (the HTTP listener), and plain HTTP
//! requests to it.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TIMEOUT;
use super::irc::Msg;

/// An IRC client over WebSocket.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// Send binary frames (else text).
    pub binary: bool,
}

/// Why an upgrade failed: the HTTP status the server answered.
pub async fn try_connect(
    addr: SocketAddr,
    path: &str,
    protocols: &[&str],
    origin: Option<&str>,
) -> Result<WsClient, u16> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if !protocols.is_empty() {
        let v = HeaderValue::from_str(&protocols.join(", ")).unwrap();
        req.headers_mut().insert("sec-websocket-protocol", v);
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            let protocol = resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string());
            let binary = protocol.as_deref() == Some("binary.ircv3.net");
            Ok(WsClient {
                ws,
                protocol,
                binary,
            })
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("WebSocket connect failed: {e}"),
    }
}

impl WsClient {
    /// Connects on `/` offering `protocols`.
    pub async fn connect(addr: SocketAddr, protocols: &[&str]) -> WsClient {
        try_connect(addr, "/", protocols, None).await.unwrap()
    }

    /// Connects with `text.ircv3.net` and registers as `nick`.
    pub async fn registered(addr: SocketAddr, nick: &str) -> WsClient {
        let mut c = WsClient::connect(addr, &["text.ircv3.net"]).await;
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {nick} 0 * :Web {nick}")).await;
        c.expect("001").await;
        c.until(|m| m.command == "376" || m.command == "422").await;
        c
    }

    /// Sends one line as one message (text or binary frame).
    pub async fn send(&mut self, line: &str) {
        self.send_bytes(line.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, b: &[u8]) {
        let m = if self.binary {
            Message::Binary(Bytes::copy_from_slice(b))
        } else {
            Message::Text(String::from_utf8_lossy(b).into_owned().into())
        };
        self.ws.send(m).await.unwrap();
    }

    /// The next data message, as it came (`None` once the server closed).
    pub async fn frame(&mut self) -> Option<Message> {
        loop {
            let m = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match m {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Some(m),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next line; panics once the server closed.
    pub async fn line(&mut self) -> String {
        match self.frame().await.expect("unexpected close") {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => unreachable!(),
        }
    }

    pub async fn msg(&mut self) -> Msg {
        let l = self.line().await;
        assert!(!l.ends_with('\n'), "a frame ends with a newline: {l:?}");
        l.parse::<Msg>()
            .unwrap_or_else(|e| panic!("unparsable {l:?}: {e}"))
    }

    pub async fn until(&mut self, pred: impl Fn(&Msg) -> bool) -> Msg {
        loop {
            let m = self.msg().await;
            if pred(&m) {
                return m;
            }
        }
    }

    pub async fn expect(&mut self, command: &str) -> Msg {
        self.until(|m| m.command.eq_ignore_ascii_case(command))
            .await
    }
}

/// A plain HTTP/1.1 GET; returns the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let text = get_raw(addr, path).await;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// The whole response to `GET path`, status line and headers included.
pub async fn get_raw(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut buf))
        .await
        .expect("timed out reading an HTTP response")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// The value of the sample `name` (with its labels, as written) in a
/// metrics page.
pub fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{page}"))
}
