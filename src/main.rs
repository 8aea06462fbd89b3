use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use bavard::config::Config;
use bavard::effects::Stores;
use bavard::net;

// jemalloc keeps size classes without a header per block and serves tokio's
// 128-byte-aligned task and socket records without padding, so an idle
// connection costs less than with glibc's malloc (docs/performance.md,
// "jemalloc").
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "bavard",
    version,
    about = "A chat server for nc and every IRC client"
)]
struct Cli {
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the chat server.
    Serve(ServeArgs),
    /// Run an echo server (the lab's first part).
    Echo(bavard_echo::EchoArgs),
    /// Read a password on stdin, print its salted argon2 hash for the config.
    Mkpasswd,
    /// Manage the accounts in the server's database.
    Account(bavard::account_cli::AccountArgs),
    /// Load generator for chat servers.
    Bench(bavard_bench::BenchArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file (TOML); defaults apply without one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the line-dialect listener, or "off" (overrides the config).
    #[arg(long, value_parser = listener_arg)]
    line: Option<Listen>,
    /// Address of the irc-dialect listener, or "off" (overrides the config).
    #[arg(long, value_parser = listener_arg)]
    irc: Option<Listen>,
    /// Address of the HTTP listener (WebSocket, /metrics, /healthz), or "off".
    #[arg(long, value_parser = listener_arg)]
    http: Option<Listen>,
}

/// A listener given on the command line.
#[derive(Clone, Copy, Debug)]
enum Listen {
    Off,
    At(SocketAddr),
}

impl Listen {
    fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }
}

fn listener_arg(s: &str) -> Result<Listen, String> {
    match s {
        "off" => Ok(Listen::Off),
        a => a
            .parse()
            .map(Listen::At)
            .map_err(|e| format!("{e} (expected HOST:PORT, e.g. [::]:7777, or \"off\")")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .with_context(|| format!("invalid --log-level {:?}", cli.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // A panic is a bug; tokio confines it to its task, and this puts it in the log.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(%info, "panicked");
    }));
    match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Echo(a) => bavard_echo::run(a),
        Cmd::Bench(a) => bavard_bench::run(a),
        Cmd::Account(a) => bavard::account_cli::run(a),
        Cmd::Mkpasswd => {
            let mut pw = String::new();
            std::io::stdin().read_to_string(&mut pw)?;
            // `echo secret | bavard mkpasswd` adds a newline the user did not mean.
            let pw = pw.strip_suffix('\n').unwrap_or(&pw);
            let pw = pw.strip_suffix('\r').unwrap_or(pw);
            anyhow::ensure!(!pw.is_empty(), "empty password on stdin");
            let h = bavard::passwd::hash(pw).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            println!("{h}");
            Ok(())
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = a.line {
        cfg.listeners.line = l.addr();
    }
    if let Some(i) = a.irc {
        cfg.listeners.irc = i.addr();
    }
    if let Some(h) = a.http {
        cfg.listeners.http = h.addr();
    }
    let cfg = Arc::new(cfg);
    // Before anything listens: a database the server cannot use stops it here.
    let stores = Stores::open(&cfg.storage)?;
    tracing::info!(path = %cfg.storage.path.display(), "database open");
    if net::raise_fd_limit().is_none() {
        tracing::warn!("could not raise the open-file limit");
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    let workers = worker_count(cfg.workers);
    rt.worker_threads(workers);
    // A busy worker polls for I/O every `event_interval` tasks and only then
    // wakes the writers that deferred their turn (driver::output): tokio's
    // 61 cuts the batches short under load (docs/performance.md, "Batched
    // writes and deferred wake-ups"). An idle worker polls at once anyway.
    rt.event_interval(1024);
    let rt = rt.enable_all().build()?;
    tracing::info!(workers, "runtime started");
    let tls = match &cfg.tls {
        Some(t) => Some(Arc::new(
            net::tls::Tls::new(t.cert.clone(), t.key.clone()).context("TLS configuration")?,
        )),
        None => None,
    };
    rt.block_on(async move {
        // The same set a reload compares the file's with (net::wanted).
        let listeners = net::wanted(&cfg, tls.is_some())
            .into_iter()
            .map(net::bind)
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(!listeners.is_empty(), "no listener configured");
        let shutdown = CancellationToken::new();
        let (hup, requests) = tokio::sync::mpsc::channel(1);
        let reloads = a.config.clone().map(|path| {
            let reload = Reload {
                path,
                overrides: (a.line, a.irc, a.http),
            };
            net::Reloads {
                load: Arc::new(move || reload.load()),
                requests,
            }
        });
        tokio::spawn(signals(shutdown.clone(), hup));
        net::run_with(cfg, listeners, tls, stores, shutdown, reloads).await?;
        Ok(())
    })
}

/// What SIGHUP and REHASH read again.
struct Reload {
    path: PathBuf,
    /// The listeners given on the command line, which keep winning.
    overrides: (Option<Listen>, Option<Listen>, Option<Listen>),
}

impl Reload {
    /// Reads the file again, with the command line's listeners.
    fn load(&self) -> Result<Config, String> {
        let mut cfg = Config::load(&self.path).map_err(|e| e.to_string())?;
        let (line, irc, http) = &self.overrides;
        if let Some(l) = line {
            cfg.listeners.line = l.addr();
        }
        if let Some(i) = irc {
            cfg.listeners.irc = i.addr();
        }
        if let Some(h) = http {
            cfg.listeners.http = h.addr();
        }
        Ok(cfg)
    }
}

/// Cancels `token` on SIGINT or SIGTERM; reads the configuration file and
/// the TLS certificate again on SIGHUP.
async fn signals(token: CancellationToken, reload: tokio::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    use tokio::sync::mpsc::error::TrySendError;
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = hup.recv() => {
                // Without --config (and so without [tls]), nobody listens:
                // nothing to read again.
                // Full: a reload is already on its way.
                if let Err(TrySendError::Closed(())) = reload.try_send(()) {
                    tracing::info!("SIGHUP: no --config file to read again");
                }
            }
        }
    }
    token.cancel();
}

/// Worker threads for `workers` (0 = automatic): one per CPU but one. Most of
/// a delivery's cost is the kernel's TCP work, done inside the worker's own
/// `writev`, and the clients, the kernel's network processing and the rest of
/// the machine need a core too: on 2 CPUs one worker delivers more per
/// CPU-second than two, with equal or better throughput and latency
/// (docs/performance.md, "Workers").
fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::worker_count;

    #[test]
    fn workers_default_to_one_per_cpu_but_one() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(worker_count(0), cpus.saturating_sub(1).max(1));
        assert!(worker_count(0) >= 1);
        assert_eq!(worker_count(1), 1);
        assert_eq!(worker_count(7), 7);
    }
}
