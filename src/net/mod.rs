//! The IO edge: listeners, connection tasks, shutdown.

pub mod alarms;
pub mod flood;
pub mod http;
pub mod limits;
mod listeners;
pub use listeners::{Wanted, bind, wanted};
mod reload;
pub use reload::Reloads;
pub mod tls;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use bavard_core::ConnId;
use bavard_core::irc::IrcSession;
use bavard_core::line::LineSession;
use bavard_core::store::SoleRegistry;

use crate::config::Config;
use crate::delivery::Peer;
use crate::driver::transport::{Duplex, Stream, Transport};
use crate::effects::{Effects, Stores};
use crate::hub::Hub;
use crate::metrics::Via;
use crate::outbox::{Drains, Outbox};

pub use bavard_sockets::{bind_listener, raise_fd_limit};

/// The protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Line,
    Irc,
    /// HTTP: IRC over WebSocket, metrics, health ([`http`]).
    Http,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Line => "line",
            Kind::Irc => "irc",
            Kind::Http => "http",
        })
    }
}

/// A bound listening socket, its dialect, and whether it speaks TLS.
pub struct Listener {
    pub kind: Kind,
    pub tls: bool,
    pub socket: TcpListener,
    /// The address it was bound for, as configured (port 0 stays 0): what
    /// a reload compares with the file's.
    pub asked: SocketAddr,
}

/// Binds a plain listener for `kind` on `addr` (call inside a tokio runtime).
pub fn listen(kind: Kind, addr: SocketAddr) -> std::io::Result<Listener> {
    listen_with(kind, false, addr)
}

/// Binds a listener for `kind`, TLS or not, on `addr`.
pub fn listen_with(kind: Kind, tls: bool, addr: SocketAddr) -> std::io::Result<Listener> {
    let std = bind_listener(addr, 4096)?;
    std.set_nonblocking(true)?;
    let socket = TcpListener::from_std(std)?;
    Ok(Listener {
        kind,
        tls,
        socket,
        asked: addr,
    })
}

/// What every connection task shares.
struct Shared {
    /// The configuration and flood limits, swapped on reload.
    live: reload::Live,
    hub: Arc<Hub>,
    /// This node's number (0 alone), and its connection serials, in order.
    node: u16,
    next_id: std::sync::atomic::AtomicU64,
    admission: Mutex<limits::Admission>,
    tls: Option<Arc<tls::Tls>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    alarms: alarms::Alarms,
    /// Where every connection's queue tells that it drained (backpressure).
    drains: Arc<Drains>,
    /// The listeners running, which a reload adds to and removes from.
    listeners: listeners::Running,
}

/// Runs the server on `listeners` with `stores` until `shutdown` is
/// cancelled, then tells every client and returns once every connection
/// has ended. TLS listeners need `tls`.
pub async fn run(
    cfg: Arc<Config>,
    listeners: Vec<Listener>,
    tls: Option<Arc<tls::Tls>>,
    stores: Stores,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    run_with(cfg, listeners, tls, stores, shutdown, None).await
}

/// [`run`], reading the configuration again when `reloads` asks (SIGHUP)
/// or an operator sends REHASH.
pub async fn run_with(
    cfg: Arc<Config>,
    listeners: Vec<Listener>,
    tls: Option<Arc<tls::Tls>>,
    stores: Stores,
    shutdown: CancellationToken,
    reloads: Option<Reloads>,
) -> std::io::Result<()> {
    crate::hashing::start(cfg.accounts.password_threads);
    let max_age = Duration::from_secs(cfg.history.max_age);
    let retention = (cfg.history.enabled && !max_age.is_zero())
        .then(|| tokio::spawn(crate::retention::run(stores.history.clone(), max_age)));
    // The accounts' read markers are read once; the network answers from
    // memory afterwards and writes each move back.
    let markers = match stores.markers.all().get().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "read markers not loaded: the accounts start without them");
            Vec::new()
        }
    };
    // Clustered, the node's number goes into every id it makes, and
    // serials start past those of its earlier runs.
    let bus = match &cfg.cluster {
        Some(c) => Some(
            crate::cluster::connect(c)
                .await
                .map_err(std::io::Error::other)?,
        ),
        None => None,
    };
    // A cluster's accounts are shared by its nodes, in JetStream.
    let mut stores = stores;
    let mut core = cfg.core();
    if let Some(b) = &bus {
        stores.accounts = b.accounts();
    }
    // And every node keeps the same history (when it keeps any).
    let history = bus.as_ref().filter(|_| core.limits.history > 0).map(|_| {
        let store = Arc::new(crate::cluster::history::Synced::new(stores.history.clone()));
        stores.history = store.clone();
        crate::cluster::History {
            store,
            keep: core.limits.history,
        }
    });
    let registry: Arc<dyn bavard_core::store::NameRegistry> = match &bus {
        Some(b) => {
            core.node = b.number();
            b.registry()
        }
        None => Arc::new(SoleRegistry),
    };
    let (node, first_serial) = match &bus {
        Some(b) => (
            b.number(),
            bavard_core::ids::time_serial(crate::hub::now_millis()),
        ),
        None => (0, 1),
    };
    let effects = Effects::new(registry, stores, cfg.secrets());
    let hub = Arc::new(Hub::new(Arc::new(core), effects, cfg.send_limits()));
    hub.load_read_markers(markers);
    let fence = CancellationToken::new();
    let joined = match bus {
        Some(bus) => Some(
            crate::cluster::join(bus, hub.clone(), first_serial, fence.clone(), history)
                .await
                .map_err(std::io::Error::other)?,
        ),
        None => None,
    };
    let admission = Mutex::new(limits::Admission::new(reload::conn_limits(&cfg)));
    let tracker = TaskTracker::new();
    let shared = Arc::new(Shared {
        live: reload::Live::new(cfg.clone()),
        hub: hub.clone(),
        node,
        next_id: std::sync::atomic::AtomicU64::new(first_serial),
        admission,
        tls,
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
        alarms: alarms::Alarms::default(),
        drains: Arc::default(),
        listeners: listeners::Running::default(),
    });
    // Outside the tracker: it runs until the last connection has ended.
    let sweeper = tokio::spawn({
        let shared = shared.clone();
        async move { shared.alarms.run().await }
    });
    if let Some(reloads) = reloads {
        reload::start(&shared, reloads);
    }
    if listeners.iter().any(|l| l.tls) && shared.tls.is_none() {
        return Err(std::io::Error::other("a TLS listener needs a certificate"));
    }
    for l in listeners {
        shared.listeners.start(&shared, l);
    }
    let fenced = tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = fence.cancelled() => true,
    };
    if fenced {
        // Whatever waited for the log is shown as it is; nothing more is
        // logged, and every client is told to go elsewhere.
        hub.unlink();
        hub.shutdown("This server lost the network: reconnect to another server");
        shutdown.cancel();
    } else {
        tracing::info!("shutting down");
        hub.shutdown("Server is shutting down");
    }
    tracker.close();
    tracker.wait().await;
    if let Some(j) = joined {
        // The quits of its users reach the log before the lease goes.
        j.close(&hub).await;
    }
    sweeper.abort();
    if let Some(r) = retention {
        r.abort();
    }
    tracing::info!("all connections closed");
    if fenced {
        return Err(std::io::Error::other(
            "this node lost the cluster and fenced itself",
        ));
    }
    Ok(())
}

/// Accepts connections on `l` until `stop` (a reload removed it, or the
/// server shuts down); the connections it accepted go on.
async fn accept_loop(l: Listener, shared: Arc<Shared>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
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
        let _ = stream.set_nodelay(true);
        let admitted = shared
            .admission
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(addr.ip(), std::time::Instant::now());
        if let Err(r) = admitted {
            shared.hub.metrics().refused(r.into());
        }
        // A debug span: an enabled span costs memory per connection in the
        // subscriber; the info-level events carry the connection id and host.
        let span = tracing::debug_span!("conn", peer = %addr, dialect = %l.kind, tls = l.tls);
        let kind = l.kind;
        // Each path is spawned as its own task type rather than one enum of
        // both: the task of a plain connection is then its serving future
        // and nothing more.
        match (&shared.tls, l.tls) {
            // Boxed: the handshake state is large and only TLS connections need it.
            (Some(t), true) => {
                let task = serve_tls(t.acceptor(), stream, addr, kind, admitted, shared.clone());
                spawn_connection(&shared.tracker, Box::pin(task), span);
            }
            // The HTTP connection's task is short (a request, or an
            // upgrade that hands over to a connection task of its own):
            // boxed, it does not matter.
            _ if kind == Kind::Http => {
                let task = http::serve(stream, addr, None, admitted, shared.clone());
                spawn_connection(&shared.tracker, Box::pin(task), span);
            }
            _ => {
                let task = serve_admitted(stream, addr, kind, None, admitted, shared.clone());
                spawn_connection(&shared.tracker, task, span);
            }
        }
    }
}

/// Spawns a connection's task, inside `span` only when it is enabled: a
/// disabled span still takes 40 bytes in every connection's task.
fn spawn_connection<F>(tracker: &TaskTracker, task: F, span: tracing::Span)
where
    F: Future<Output = ()> + Send + 'static,
{
    if span.is_disabled() {
        tracker.spawn(task);
    } else {
        tracker.spawn(tracing::Instrument::instrument(task, span));
    }
}

async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    kind: Kind,
    admitted: Result<(), limits::Refusal>,
    shared: Arc<Shared>,
) {
    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
        Ok(Ok(s)) => {
            let certfp = tls::client_fingerprint(s.get_ref().1);
            let tls = Some(Secure { certfp });
            if kind == Kind::Http {
                http::serve(s, addr, tls, admitted, shared).await
            } else {
                serve_admitted(tokio::io::split(s), addr, kind, tls, admitted, shared).await
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            release_if(&shared, addr.ip(), &admitted);
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            release_if(&shared, addr.ip(), &admitted);
        }
    }
}

fn release_if(shared: &Shared, ip: IpAddr, admitted: &Result<(), limits::Refusal>) {
    if admitted.is_ok() {
        shared
            .admission
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(ip);
    }
}

/// Tells a refused client why, then closes.
async fn refuse(mut io: impl Duplex, addr: SocketAddr, kind: Kind, refusal: limits::Refusal) {
    use tokio::io::AsyncWriteExt;
    let (rd, mut wr) = io.halves();
    tracing::info!(reason = refusal.text(), "connection refused");
    let line = match kind {
        Kind::Line => format!("[server] {}\n", refusal.text()),
        Kind::Irc => format!(
            "ERROR :Closing Link: {} ({})\r\n",
            addr.ip(),
            refusal.text()
        ),
        Kind::Http => http::refusal(refusal.text()),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), wr.write_all(line.as_bytes())).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), wr.flush()).await;
    crate::driver::linger(rd, wr).await;
}

/// What a TLS connection tells about itself.
#[derive(Clone, Debug)]
pub(crate) struct Secure {
    /// The SHA-256 fingerprint of the client's certificate, if it showed one.
    certfp: Option<String>,
}

/// Everything an admitted or refused connection goes through: joining the
/// hub, serving, leaving.
///
/// A plain function that joins the hub at once and returns the serving
/// future itself, rather than an `async` block awaiting it: an enclosing
/// future would keep its own copy of every value moved into the inner one
/// (the stream halves, the addresses) for the connection's whole life.
fn serve_admitted(
    io: impl Duplex + 'static,
    addr: SocketAddr,
    kind: Kind,
    secure: Option<Secure>,
    admitted: Result<(), limits::Refusal>,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send {
    use futures_util::future::Either;
    if let Err(refusal) = admitted {
        // Boxed, as a rare path, to keep every connection's state small.
        return Either::Left(Box::pin(refuse(io, addr, kind, refusal)));
    }
    let via = if secure.is_some() { Via::Tls } else { Via::Tcp };
    Either::Right(serve_with(
        Stream::new(io),
        addr.ip(),
        kind,
        (via, secure),
        shared,
    ))
}

/// Joins the hub and serves an admitted connection over `io`, in the
/// dialect `kind` (a WebSocket speaks IRC), reached `via` a transport,
/// over TLS or not.
fn serve_with<T: Transport + 'static>(
    io: T,
    ip: IpAddr,
    kind: Kind,
    via: (Via, Option<Secure>),
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send {
    use futures_util::future::Either;
    let flood = shared.live.flood();
    // Sessions are boxed: the connection's future lives as long as the
    // connection, and a pointer costs 8 bytes there instead of the whole
    // session.
    match kind {
        Kind::Line => {
            let (cleanup, peer, session) =
                join_hub(shared, ip, &bavard_core::line::LINE, via, |id, cfg| {
                    LineSession::new(id, cfg, rand::random())
                });
            Either::Left(crate::driver::serve(io, cleanup, peer, session, flood))
        }
        Kind::Irc | Kind::Http => {
            let (cleanup, peer, session) = join_hub(
                shared,
                ip,
                &bavard_core::irc::render::IRC,
                via,
                |id, cfg| IrcSession::new(id, cfg, ip, std::time::Instant::now()),
            );
            Either::Right(crate::driver::serve(io, cleanup, peer, session, flood))
        }
    }
}

/// Adds a connection from `ip` to the hub, with no nick yet, and to the
/// alarm sweep; makes its session, and the guard that undoes all of it (the
/// serving future's handle on the hub, dropped when the connection ends
/// however it ends, a panic unwinding through it included).
fn join_hub<S>(
    shared: Arc<Shared>,
    ip: IpAddr,
    dialect: &'static bavard_core::dialect::DialectRef,
    (via, secure): (Via, Option<Secure>),
    session: impl FnOnce(ConnId, Arc<bavard_core::CoreConfig>) -> S,
) -> (Cleanup, Arc<Peer>, Box<S>) {
    let serial = shared
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = ConnId::new(shared.node, serial);
    let out = Outbox::watched(shared.live.cfg().limits.send_queue, shared.drains.clone());
    let peer = Arc::new(Peer::new(id, dialect, out));
    let core = shared.hub.read(|net| net.config().clone());
    let session = Box::new(session(id, core));
    let tls = secure.is_some();
    shared
        .hub
        .connect(&peer, ip, tls, secure.and_then(|s| s.certfp));
    let irc = !std::ptr::eq(dialect, &bavard_core::line::LINE);
    shared.hub.metrics().connection(irc, via, 1);
    tracing::debug!(%id, "connected");
    let cleanup = Cleanup {
        slot: shared.alarms.add(peer.clone()),
        id,
        ip,
        irc,
        via,
        shared,
    };
    (cleanup, peer, session)
}

/// Leaves the hub and frees the admission slot when a connection task ends,
/// however it ends: a user must not stay behind as a ghost when a panic
/// unwinds through the task, nor its slot stay taken.
struct Cleanup {
    shared: Arc<Shared>,
    ip: IpAddr,
    id: ConnId,
    /// Its place in the alarm sweep.
    slot: u32,
    /// Its connection gauge.
    irc: bool,
    via: Via,
}

impl AsRef<Hub> for Cleanup {
    fn as_ref(&self) -> &Hub {
        &self.shared.hub
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let id = self.id;
        if std::thread::panicking() {
            tracing::error!(%id, "connection task panicked; dropping only this client");
        }
        self.shared.hub.remove(id, "Connection closed");
        self.shared.alarms.remove(self.slot);
        self.shared.hub.metrics().connection(self.irc, self.via, -1);
        release_if(&self.shared, self.ip, &Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task holds its future for its whole life: its size
    /// is most of an idle connection's memory, so it is watched here. Tokio
    /// allocates a task as 104 bytes around the future (here the tracker's
    /// 8 bytes around this one), rounded up to 128: at most 272 bytes
    /// makes a 384-byte task, 8 more a 512-byte one.
    #[tokio::test]
    async fn connection_future_stays_small() {
        let l = listen(Kind::Irc, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.socket.local_addr().unwrap();
        let cfg = Arc::new(Config::default());
        let effects = Effects::new(Arc::new(SoleRegistry), Stores::memory(), cfg.secrets());
        let shared = Arc::new(Shared {
            live: reload::Live::new(cfg.clone()),
            hub: Arc::new(Hub::new(Arc::new(cfg.core()), effects, cfg.send_limits())),
            node: 0,
            next_id: std::sync::atomic::AtomicU64::new(1),
            admission: Mutex::new(limits::Admission::new(limits::ConnLimits {
                max_connections: 10,
                per_address: 10,
                rate: 10.0,
                burst: 10.0,
                exempt: Vec::new(),
            })),
            tls: None,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            alarms: alarms::Alarms::default(),
            drains: Arc::default(),
            listeners: listeners::Running::default(),
        });
        let (stream, peer_addr) = {
            let c2 = tokio::net::TcpStream::connect(addr).await.unwrap();
            let r = l.socket.accept().await.unwrap();
            drop(c2);
            r
        };
        let fut = serve_admitted(stream, peer_addr, Kind::Irc, None, Ok(()), shared);
        let size = std::mem::size_of_val(&fut);
        eprintln!("connection future: {size} bytes");
        eprintln!(
            "irc session {} line session {} framer {} pending writes {} peer {} user {}",
            std::mem::size_of::<IrcSession>(),
            std::mem::size_of::<LineSession>(),
            std::mem::size_of::<crate::driver::framing::Framer>(),
            std::mem::size_of::<crate::outbox::Pending>(),
            std::mem::size_of::<Peer>(),
            std::mem::size_of::<bavard_core::state::User>(),
        );
        drop(fut);
        // Tokio allocates a task as the future plus 104 bytes, rounded up to
        // a multiple of 128: up to 152 bytes of future, a task is 256 bytes.
        assert!(size <= 152, "connection future grew to {size} bytes");
        // Each is one allocation per connection: past these sizes it moves up
        // an allocator size class (jemalloc: 80, 96, 112, 128, 160, 192).
        let irc = std::mem::size_of::<IrcSession>();
        assert!(irc <= 112, "IrcSession grew to {irc} bytes");
        let arc_peer = std::mem::size_of::<Peer>() + 16;
        assert!(arc_peer <= 128, "Arc<Peer> grew to {arc_peer} bytes");
        let user = std::mem::size_of::<bavard_core::state::User>();
        assert!(user <= 96, "the network's User grew to {user} bytes");
        // With flood control on (the default), each connection also holds
        // its buckets.
        let flood = std::mem::size_of::<flood::Flood>();
        assert!(flood <= 48, "Flood grew to {flood} bytes");
    }
}
