//! A client of the line dialect over a real socket, and a way to connect
//! several under names of their own.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::TIMEOUT;
use super::server::Server;

/// A `line` client over a real socket.
pub struct LineClient {
    pub nick: String,
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl LineClient {
    /// Connects and consumes the two greeting lines, learning the guest nick.
    pub async fn connect(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect(addr).await.expect("connect");
        let mut c = LineClient::from_stream(s);
        c.expect("[server] Welcome to Chat Server !").await;
        c.learn_nick().await;
        c
    }

    /// Connects with a 4 KiB receive buffer (see
    /// [`small_buffer_stream`](super::small_buffer_stream)) and consumes the
    /// greeting: in #lobby, nick known.
    pub async fn small_buffer(addr: SocketAddr) -> LineClient {
        let mut c = LineClient::from_stream(super::small_buffer_stream(addr));
        c.expect("[server] Welcome to Chat Server !").await;
        c.learn_nick().await;
        c
    }

    /// Reads the second greeting line and learns the guest nick from it.
    async fn learn_nick(&mut self) {
        let l = self.line().await;
        let nick = l
            .strip_prefix("[server] You are ")
            .and_then(|r| r.strip_suffix(", in #lobby. Type HELP for the commands."))
            .unwrap_or_else(|| panic!("unexpected greeting {l:?}"));
        self.nick = nick.to_string();
    }

    /// Wraps a connected stream without reading anything.
    pub fn from_stream(s: TcpStream) -> LineClient {
        let (r, w) = s.into_split();
        LineClient {
            nick: String::new(),
            r: BufReader::new(r),
            w,
        }
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, b: &[u8]) {
        self.w.write_all(b).await.expect("write");
    }

    /// Writes `s` followed by `\n`.
    pub async fn send(&mut self, s: &str) {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(b'\n');
        self.send_bytes(&b).await;
    }

    /// Reads the next line (without `\n`); panics on timeout, EOF or bad UTF-8.
    pub async fn line(&mut self) -> String {
        self.line_within(TIMEOUT).await
    }

    /// [`LineClient::line`] with another timeout (for slow server work: argon2
    /// in debug builds).
    pub async fn line_within(&mut self, timeout: Duration) -> String {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(timeout, self.r.read_until(b'\n', &mut buf))
            .await
            .unwrap_or_else(|_| panic!("{}: no line within {timeout:?}", self.nick))
            .unwrap_or_else(|e| panic!("{}: read error {e}", self.nick));
        assert!(n > 0, "{}: unexpected EOF", self.nick);
        assert_eq!(
            buf.pop(),
            Some(b'\n'),
            "{}: line without newline before EOF: {:?}",
            self.nick,
            String::from_utf8_lossy(&buf)
        );
        String::from_utf8(buf).expect("server sent invalid UTF-8")
    }

    /// Reads lines until one is exactly `want`; returns the ones before it.
    pub async fn until(&mut self, want: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let l = self.line().await;
            if l == want {
                return before;
            }
            before.push(l);
        }
    }

    /// Reads the next line and checks it is exactly `want`.
    pub async fn expect(&mut self, want: &str) {
        let got = self.line().await;
        assert_eq!(got, want, "{} got an unexpected line", self.nick);
    }

    /// Reads lines and checks they are exactly `want`, in order.
    pub async fn expect_all(&mut self, want: &[&str]) {
        for w in want {
            self.expect(w).await;
        }
    }

    /// Checks the server closes the connection with nothing more to read.
    pub async fn expect_eof(&mut self) {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(TIMEOUT, self.r.read_to_end(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{}: no EOF within {TIMEOUT:?}", self.nick));
        r.unwrap_or_else(|e| panic!("{}: read error instead of EOF: {e}", self.nick));
        assert!(
            buf.is_empty(),
            "{}: data before EOF: {:?}",
            self.nick,
            String::from_utf8_lossy(&buf)
        );
    }

    /// Sends `WHO` and checks the very next line is its answer (a member list
    /// holding this client's nick): proves nothing else was queued before.
    pub async fn expect_quiet(&mut self) {
        self.send("WHO").await;
        let l = self.line().await;
        let list = l
            .strip_prefix("[server] ")
            .unwrap_or_else(|| panic!("{}: expected WHO reply, got {l:?}", self.nick));
        assert!(
            list.split(' ').any(|n| n == self.nick),
            "{}: expected WHO reply, got {l:?}",
            self.nick
        );
    }

    /// Sets this client's nick (and reads the confirmation).
    pub async fn nick(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.expect(&format!("[server] You are now known as {nick}"))
            .await;
        self.nick = nick.to_string();
    }

    /// The buffered read half, for raw reads.
    pub fn reader(&mut self) -> &mut BufReader<OwnedReadHalf> {
        &mut self.r
    }

    /// Gives back the write half and read half, e.g. to move them into tasks.
    pub fn split(self) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        (self.r, self.w)
    }
}

/// Connects `n` clients named `prefix0..`, each seeing the later ones arrive:
/// when this returns, every client's queue is empty.
pub async fn named(server: &Server, names: &[&str]) -> Vec<LineClient> {
    let mut out: Vec<LineClient> = Vec::new();
    for name in names {
        let mut c = LineClient::connect(server.line).await;
        let guest = c.nick.clone();
        for o in out.iter_mut() {
            o.expect(&format!("[server] {guest} is connected")).await;
        }
        c.nick(name).await;
        for o in out.iter_mut() {
            o.expect(&format!("[server] {guest} is now known as {name}"))
                .await;
        }
        out.push(c);
    }
    out
}
