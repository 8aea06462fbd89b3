//! The IO edge: listeners, connection tasks, shutdown.

pub mod conn;
pub mod flood;
pub mod framing;
pub mod irc_session;
pub mod limits;
pub mod line_session;
pub mod timers;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::{Hub, Peer, now_millis};
use conn::lock;

/// The protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Line,
    Irc,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Line => "line",
            Kind::Irc => "irc",
        })
    }
}

/// A bound listening socket and its dialect.
pub struct Listener {
    pub kind: Kind,
    pub socket: TcpListener,
}

/// Creates a listening TCP socket on `addr` with the given `backlog`.
///
/// * `SO_REUSEADDR` is set so a restarted server can rebind while old
///   connections sit in `TIME_WAIT`.
/// * When `addr` is the IPv6 unspecified address (`[::]`), `IPV6_V6ONLY` is
///   cleared so IPv4 clients are accepted too (as `::ffff:a.b.c.d`), whatever
///   the system default (`net.ipv6.bindv6only`) is. If the host has no IPv6 at
///   all, it falls back to `0.0.0.0` on the same port, with a warning.
/// * Any other address is bound as given (an IPv4 address is IPv4 only, a
///   specific IPv6 address IPv6 only).
///
/// The returned listener is in blocking mode; call `set_nonblocking(true)`
/// before handing it to tokio.
pub fn bind_listener(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let dual = matches!(addr.ip(), std::net::IpAddr::V6(ip) if ip.is_unspecified());
    let socket = match socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    ) {
        Ok(s) => s,
        Err(e) if dual && e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            let v4 = SocketAddr::new(
                std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                addr.port(),
            );
            tracing::warn!(requested = %addr, fallback = %v4, "IPv6 unavailable, listening on IPv4 only");
            return bind_listener(v4, backlog);
        }
        Err(e) => return Err(e),
    };
    if dual {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&socket2::SockAddr::from(addr))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Binds a listener for `kind` on `addr` (call inside a tokio runtime).
pub fn listen(kind: Kind, addr: SocketAddr) -> std::io::Result<Listener> {
    let std = bind_listener(addr, 4096)?;
    std.set_nonblocking(true)?;
    let socket = TcpListener::from_std(std)?;
    Ok(Listener { kind, socket })
}

/// Runs the server on `listeners` until `shutdown` is cancelled, then tells
/// every client and returns once every connection has ended.
pub async fn run(
    cfg: Arc<Config>,
    listeners: Vec<Listener>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let hub = Arc::new(Mutex::new(Hub::new(cfg.clone(), now_millis())));
    let l = &cfg.limits;
    let admission = Arc::new(Mutex::new(limits::Admission::new(limits::ConnLimits {
        max_connections: l.max_connections,
        per_address: l.connections_per_ip,
        rate: l.connection_rate,
        burst: l.connection_burst,
    })));
    let tracker = TaskTracker::new();
    for l in listeners {
        let addr = l.socket.local_addr()?;
        tracing::info!(dialect = %l.kind, %addr, "listening");
        tracker.spawn(accept_loop(
            l,
            cfg.clone(),
            hub.clone(),
            admission.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
    }
    shutdown.cancelled().await;
    tracing::info!("shutting down");
    lock(&hub).shutdown("Server is shutting down");
    tracker.close();
    tracker.wait().await;
    tracing::info!("all connections closed");
    Ok(())
}

async fn accept_loop(
    l: Listener,
    cfg: Arc<Config>,
    hub: Arc<Mutex<Hub>>,
    admission: Arc<Mutex<limits::Admission>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = l.socket.accept() => r,
        };
        let (stream, addr) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(e) => {
                // EMFILE and friends: wait and retry rather than spin or die.
                tracing::warn!(error = %e, "accept failed, retrying in {:?}", backoff);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let admitted = admission
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(addr.ip(), std::time::Instant::now());
        if let Err(refusal) = admitted {
            tracing::info!(peer = %addr, reason = refusal.text(), "connection refused");
            let line = match l.kind {
                Kind::Line => format!("[server] {}\n", refusal.text()),
                Kind::Irc => format!(
                    "ERROR :Closing Link: {} ({})\r\n",
                    addr.ip(),
                    refusal.text()
                ),
            };
            // Best effort: a fresh socket's send buffer is empty, so this
            // does not block; the client then sees the reason and EOF.
            let _ = stream.try_write(line.as_bytes());
            tracker.spawn(conn::linger(stream));
            continue;
        }
        let dialect: &'static dyn crate::hub::Dialect = match l.kind {
            Kind::Line => &crate::line::LINE,
            Kind::Irc => &crate::irc::render::IRC,
        };
        let peer = {
            let mut h = lock(&hub);
            let id = h.next_conn_id();
            let peer = Arc::new(Peer::new(id, dialect, cfg.limits.send_queue));
            h.connect(peer.clone(), addr.ip(), now_millis());
            peer
        };
        let id = peer.id;
        let span = tracing::info_span!("conn", id, peer = %addr, dialect = %l.kind);
        let fut = match l.kind {
            Kind::Line => {
                let session = line_session::LineSession::new(id, cfg.clone());
                futures_util::future::Either::Left(conn::serve(
                    stream,
                    addr,
                    hub.clone(),
                    peer,
                    session,
                    shutdown.clone(),
                ))
            }
            Kind::Irc => {
                let session = irc_session::IrcSession::new(peer.clone(), cfg.clone());
                futures_util::future::Either::Right(conn::serve(
                    stream,
                    addr,
                    hub.clone(),
                    peer,
                    session,
                    shutdown.clone(),
                ))
            }
        };
        let admission = admission.clone();
        let ip = addr.ip();
        tracker.spawn(tracing::Instrument::instrument(
            async move {
                fut.await;
                admission
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .release(ip);
            },
            span,
        ));
    }
}
