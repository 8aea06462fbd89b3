//! A real server inside the test's runtime, on 127.0.0.1 port 0, with a
//! listener for each dialect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bavard::config::Config;
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
    /// Cancels `token` when the server is dropped: a field rather than a
    /// `Drop` impl, so that a test can still move `handle` out to await it.
    _shut_down_on_drop: DropGuard,
}

impl Server {
    /// Starts a server with `cfg`.
    pub async fn start(cfg: Config) -> Server {
        let addr = "127.0.0.1:0".parse().expect("addr");
        let irc = net::listen(Kind::Irc, addr).expect("bind irc");
        let line = net::listen(Kind::Line, addr).expect("bind line");
        let http = net::listen(Kind::Http, addr).expect("bind http");
        let irc_addr = irc.socket.local_addr().expect("local addr");
        let line_addr = line.socket.local_addr().expect("local addr");
        let http_addr = http.socket.local_addr().expect("local addr");
        let token = CancellationToken::new();
        let run = net::run(Arc::new(cfg), vec![irc, line, http], None, token.clone());
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
