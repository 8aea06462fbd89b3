//! `bavard echo`: the lab's first part, a TCP echo server in two concurrency models.
//!
//! The lab (TP 04, part 1) has a thread-per-connection Python server (1.1) and a
//! `select` one (1.2) whose bug is answering on the wrong socket (`sclient`, the
//! last accepted connection, instead of `soc`, the one that was readable). Both
//! models here answer on the connection that sent the bytes, handle half-close,
//! resets and accept errors, and stop on SIGINT/SIGTERM.
//!
//! * [`serve_threads`]: blocking `std::net`, one OS thread (64 KiB stack) per
//!   connection.
//! * [`serve_async`]: tokio tasks; [`run`] drives it on a multi-threaded runtime
//!   (default worker count = CPUs, `--workers N` to change it).
//!
//! [`bind_listener`] (from `bavard-sockets`) is the dual-stack bind shared with the server.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use bavard_sockets::bind_listener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Listen backlog used by [`bind`]. Large so that a burst of thousands of
/// connects is queued by the kernel rather than refused (the kernel still caps it
/// at `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 4096;

/// Stack size of a connection thread in the threads model. The echo loop needs a
/// few KiB; the 2 MiB default would reserve 20 GiB of address space at 10,000
/// connections.
pub const THREAD_STACK_SIZE: usize = 64 * 1024;

/// Per-connection buffer size, both models. Small on purpose: memory per idle
/// connection matters more than throughput of a single one.
pub const BUF_SIZE: usize = 4 * 1024;

/// Pause after an accept error that is not about one connection (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM): retrying at once would spin, since the pending connection
/// keeps the listener readable.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How often the threads-model acceptor wakes up to look at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// How long a stopping server waits for its connections to finish closing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Which concurrency model serves the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// One OS thread per connection (the lab's 1.1).
    Threads,
    /// Tokio tasks multiplexed over a few event-loop threads (the lab's 1.2, done right).
    Async,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Async => "async",
        }
    }
}

/// Command-line arguments of `bavard echo`.
#[derive(Clone, Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on. An IPv6 unspecified address (`[::]`) also accepts IPv4.
    #[arg(long, default_value = "[::]:7777")]
    pub listen: SocketAddr,
    /// Concurrency model.
    #[arg(long, value_enum, default_value = "async")]
    pub model: Model,
    /// Worker threads of the tokio runtime (async model only; default: number of CPUs).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Listen backlog.
    #[arg(long, default_value_t = DEFAULT_BACKLOG)]
    pub backlog: i32,
}

/// Runs the echo server until SIGINT/SIGTERM.
///
/// Prints `echo listening on ADDR (model M)` on stdout once bound, so scripts
/// and tests started with port 0 can learn the port. Does not install a tracing
/// subscriber; the caller does.
pub fn run(args: EchoArgs) -> anyhow::Result<()> {
    // Thousands of connections (the docs measure 10,000) need as many files.
    if bavard_sockets::raise_fd_limit().is_none() {
        warn!("could not raise the open-file limit");
    }
    let listener = bind_listener(args.listen, args.backlog)?;
    let local = listener.local_addr()?;
    info!(addr = %local, model = args.model.name(), "echo listening");
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "echo listening on {local} (model {})",
            args.model.name()
        )?;
        out.flush()?;
    }

    match args.model {
        Model::Threads => run_threads(listener),
        Model::Async => run_async(listener, args.workers),
    }
}

/// Threads model under the CLI. The connections never touch tokio: a
/// current-thread runtime on the main thread only waits for the signals (tokio's
/// handler is safe, unlike doing work in a raw signal handler) and then raises the
/// stop flag; the blocking acceptor notices it within [`STOP_POLL`].
fn run_threads(listener: TcpListener) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let flag = Arc::clone(&stop);
        let mut server = tokio::task::spawn_blocking(move || serve_threads(listener, flag));
        tokio::select! {
            res = &mut server => res??,
            () = shutdown_signal() => {
                stop.store(true, Ordering::SeqCst);
                server.await??;
            }
        }
        info!("echo stopped");
        Ok(())
    })
}

/// Async model under the CLI: multi-threaded runtime so that several cores echo
/// at once; the listener is registered inside the runtime.
fn run_async(listener: TcpListener, workers: Option<u16>) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("bavard-echo");
    if let Some(n) = workers {
        builder.worker_threads(usize::from(n));
    }
    let rt = builder.build()?;
    rt.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        serve_async(listener, shutdown_signal()).await?;
        info!("echo stopped");
        Ok(())
    })
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
///
/// If a handler cannot be installed the failure is logged and only the other
/// signal stops the server (rather than stopping it at once).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received, shutting down"),
        () = term => info!("SIGTERM received, shutting down"),
    }
}

/// Binds `addr` with [`DEFAULT_BACKLOG`]; see [`bind_listener`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_listener(addr, DEFAULT_BACKLOG)
}

/// Whether an accept error concerns only the connection being accepted (the
/// peer gave up before we got to it), so accepting again at once is right.
fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

// ---------------------------------------------------------------------------
// Threads model
// ---------------------------------------------------------------------------

/// Open connections of the threads model, so that stopping can unblock their
/// threads (a thread blocked in `read` only returns when its socket is shut
/// down). Sharing the stream through an `Arc` avoids a `dup` per connection.
type Registry = Arc<Mutex<HashMap<u64, Arc<TcpStream>>>>;

fn lock(reg: &Registry) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<TcpStream>>> {
    // A panicking connection thread cannot leave the map inconsistent (each
    // operation is a single insert/remove), so a poisoned lock is still usable.
    reg.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes the connection from the registry when its thread ends, even by panic.
struct Deregister {
    reg: Registry,
    id: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        lock(&self.reg).remove(&self.id);
    }
}

/// Serves echo connections with one blocking thread each until `stop` is set.
///
/// The listener is switched to non-blocking mode and polled every 100 ms so the
/// flag is noticed without a signal having to interrupt `accept`. Once `stop` is
/// seen, the listener is closed, every open connection is shut down (which
/// unblocks its thread) and the function waits, up to 5 s, for the connection
/// threads to finish. Accept errors are logged and retried; only a failure of
/// the listener itself (`poll`, `fcntl`) is returned.
pub fn serve_threads(listener: TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let registry: Registry = Arc::default();
    let mut next_id: u64 = 0;

    while !stop.load(Ordering::SeqCst) {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_readable(&listener, STOP_POLL)?;
                continue;
            }
            Err(e) if is_per_connection_error(&e) => {
                debug!(error = %e, "accept: connection lost before accept");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "accept failed, backing off");
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        // BSDs let accepted sockets inherit O_NONBLOCK from the listener; the
        // connection threads rely on blocking I/O.
        if let Err(e) = stream.set_nonblocking(false) {
            warn!(%peer, error = %e, "cannot make connection blocking, dropping it");
            continue;
        }
        // Echo replies are small writes answering reads: Nagle would hold them
        // back waiting for the peer's (delayed) ACK.
        let _ = stream.set_nodelay(true);

        let stream = Arc::new(stream);
        let id = next_id;
        next_id += 1;
        // Registered before the thread exists so a stop racing with the spawn
        // still sees (and shuts down) this connection.
        lock(&registry).insert(id, Arc::clone(&stream));
        let guard = Deregister {
            reg: Arc::clone(&registry),
            id,
        };
        let spawned = std::thread::Builder::new()
            .name("echo-conn".into())
            .stack_size(THREAD_STACK_SIZE)
            .spawn(move || {
                let _guard = guard;
                debug!(%peer, "connected");
                match echo_blocking(&stream) {
                    Ok(n) => debug!(%peer, bytes = n, "disconnected"),
                    Err(e) => debug!(%peer, error = %e, "connection error"),
                }
            });
        // On failure the closure, and with it the guard and the stream, is
        // dropped: the connection is deregistered and closed.
        if let Err(e) = spawned {
            warn!(%peer, error = %e, "cannot spawn connection thread, dropping connection");
        }
    }

    drop(listener);
    let open: Vec<Arc<TcpStream>> = lock(&registry).values().cloned().collect();
    info!(
        open = open.len(),
        "echo (threads) stopping, closing connections"
    );
    for s in &open {
        // Errors mean the peer already went away, which is what we want anyway.
        let _ = s.shutdown(Shutdown::Both);
    }
    drop(open);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !lock(&registry).is_empty() {
        if Instant::now() >= deadline {
            warn!(
                left = lock(&registry).len(),
                "connection threads still running after drain timeout"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Waits until `listener` has a connection to accept, or `timeout` elapses.
#[cfg(unix)]
fn wait_readable(listener: &TcpListener, timeout: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is a valid, exclusively borrowed pollfd and the count is 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        // A signal landing on this thread is not a failure; the caller loops.
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Portable fallback: without `poll`, sleep briefly and let the caller retry.
#[cfg(not(unix))]
fn wait_readable(_listener: &TcpListener, timeout: Duration) -> io::Result<()> {
    std::thread::sleep(timeout.min(Duration::from_millis(5)));
    Ok(())
}

/// Echoes until EOF, then shuts down our write side (everything read has been
/// written by then, which is what half-close needs). Returns the byte count.
fn echo_blocking(stream: &TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; BUF_SIZE];
    let mut total = 0u64;
    // `Read`/`Write` are implemented for `&TcpStream`, so the Arc shared with the
    // registry is enough.
    let mut s = stream;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.write_all(&buf[..n])?;
        total += n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    Ok(total)
}

// ---------------------------------------------------------------------------
// Async model
// ---------------------------------------------------------------------------

/// Serves echo connections as tokio tasks until `shutdown` resolves.
///
/// Works on any runtime flavour (the CLI uses a multi-threaded one). Once
/// `shutdown` resolves, the listener is closed, every connection task is
/// cancelled (its socket closed) and the function waits, up to 5 s, for them to
/// end. Accept errors are logged and retried, never returned; the `Result` is
/// kept for API symmetry with [`serve_threads`] and future fatal cases.
pub async fn serve_async(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            // Checked first so a stop request wins over a flood of connects.
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) if is_per_connection_error(&e) => {
                debug!(error = %e, "accept: connection lost before accept");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "accept failed, backing off");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // See serve_threads: no Nagle delay on echo replies.
        let _ = stream.set_nodelay(true);
        let cancel = cancel.clone();
        tracker.spawn(async move {
            debug!(%peer, "connected");
            tokio::select! {
                r = echo_async(stream) => match r {
                    Ok(n) => debug!(%peer, bytes = n, "disconnected"),
                    Err(e) => debug!(%peer, error = %e, "connection error"),
                },
                // Dropping the echo future drops the stream, closing the socket.
                () = cancel.cancelled() => debug!(%peer, "closed by shutdown"),
            }
        });
    }

    drop(listener);
    info!(
        open = tracker.len(),
        "echo (async) stopping, closing connections"
    );
    tracker.close();
    cancel.cancel();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            left = tracker.len(),
            "connection tasks still running after drain timeout"
        );
    }
    Ok(())
}

/// Async twin of [`echo_blocking`].
async fn echo_async(mut stream: tokio::net::TcpStream) -> io::Result<u64> {
    // Lives inside the task's (heap-allocated) future: BUF_SIZE per connection.
    let mut buf = [0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    stream.shutdown().await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_errors_are_retried_at_once() {
        assert!(is_per_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(!is_per_connection_error(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
    }
}
