//! A real server inside the test's runtime, on 127.0.0.1 port 0, with a
//! listener for each dialect and a database of its own in a temporary
//! directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bavard::config::Config;
use bavard::effects::Stores;
use bavard::net::{self, Kind};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A running server; dropping it shuts the server down.
pub struct Server {
    /// Where the irc dialect listens.
    pub irc: SocketAddr,
    /// Where the line dialect listens.
    pub line: SocketAddr,
    /// Where the HTTP listener (WebSocket, metrics) listens.
    pub http: SocketAddr,
    /// Cancelling it shuts the server down.
    pub token: CancellationToken,
    /// The server's task: ends when `net::run` returns, after a shutdown.
    pub handle: JoinHandle<std::io::Result<()>>,
    /// The server's database file (`storage.path`).
    pub db: PathBuf,
    /// Cancels `token` when the server is dropped: a field rather than a
    /// `Drop` impl, so that a test can still move `handle` out to await it.
    _shut_down_on_drop: DropGuard,
    /// Holds the database's directory, removed with it.
    _db_dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with `cfg` and a new database in a temporary
    /// directory, removed when the server is dropped.
    pub async fn start(mut cfg: Config) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        cfg.storage.path = dir.path().join("bavard.db");
        let mut server = Server::start_with_db(cfg).await;
        server._db_dir = Some(dir);
        server
    }

    /// Starts a server on the database `cfg.storage.path` names, which the
    /// test keeps (to restart a server on it, or open it beside the server).
    pub async fn start_with_db(cfg: Config) -> Server {
        let db = cfg.storage.path.clone();
        let stores = Stores::open(&cfg.storage).expect("open the database");
        let addr = "127.0.0.1:0".parse().expect("addr");
        let irc = net::listen(Kind::Irc, addr).expect("bind irc");
        let line = net::listen(Kind::Line, addr).expect("bind line");
        let http = net::listen(Kind::Http, addr).expect("bind http");
        let irc_addr = irc.socket.local_addr().expect("local addr");
        let line_addr = line.socket.local_addr().expect("local addr");
        let http_addr = http.socket.local_addr().expect("local addr");
        let token = CancellationToken::new();
        let run = net::run(
            Arc::new(cfg),
            vec![irc, line, http],
            None,
            stores,
            token.clone(),
        );
        let handle = tokio::spawn(async move {
            let r = run.await;
            // Said here too: a test that never stops the server would not
            // see it otherwise.
            if let Err(e) = &r {
                eprintln!("net::run failed: {e}");
            }
            r
        });
        Server {
            irc: irc_addr,
            line: line_addr,
            http: http_addr,
            _shut_down_on_drop: token.clone().drop_guard(),
            token,
            handle,
            db,
            _db_dir: None,
        }
    }

    /// Starts a server with the default configuration.
    pub async fn start_default() -> Server {
        Server::start(Config::default()).await
    }

    /// Cancels the token and waits (bounded) for `run` to return.
    pub async fn stop(self) {
        self.token.cancel();
        let r = tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("run did not return after shutdown");
        r.expect("run panicked").expect("run failed");
    }
}

/// The default configuration, history kept (as by default): named for
/// the tests that rely on it, so they hold if the default changes.
pub fn with_history() -> Config {
    let mut cfg = Config::default();
    cfg.history.enabled = true;
    cfg
}
