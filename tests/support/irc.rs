//! A client of the irc dialect over a real socket, reading parsed messages.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::TIMEOUT;

/// A parsed line as received: tags, source, command, params.
pub type Msg = bavard_proto::message::Message<'static>;

/// A client of the irc dialect over a real socket.
pub struct IrcClient {
    pub nick: String,
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl IrcClient {
    /// Connects, without registering.
    pub async fn connect(addr: SocketAddr) -> IrcClient {
        IrcClient::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Wraps a connected stream without reading or writing anything.
    pub fn from_stream(s: TcpStream) -> IrcClient {
        let (r, w) = s.into_split();
        IrcClient {
            nick: String::new(),
            r: BufReader::new(r),
            w,
        }
    }

    /// Registers as `nick` on a connected stream, reading up to the end of
    /// the MOTD.
    pub async fn register(mut self, nick: &str) -> IrcClient {
        self.nick = nick.to_string();
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :Real {nick}")).await;
        self.expect("001").await;
        self.until(|m| m.command == "376" || m.command == "422")
            .await;
        self
    }

    /// Connects and registers as `nick`, reading up to the end of the MOTD.
    pub async fn registered(addr: SocketAddr, nick: &str) -> IrcClient {
        Self::registered_with_caps(addr, nick, &[]).await
    }

    /// Connects, requests `caps` (all must be ACKed), registers as `nick`.
    pub async fn registered_with_caps(addr: SocketAddr, nick: &str, caps: &[&str]) -> IrcClient {
        let mut c = IrcClient::connect(addr).await;
        c.nick = nick.to_string();
        if !caps.is_empty() {
            c.send("CAP LS 302").await;
            c.expect("CAP").await;
            c.send(&format!("CAP REQ :{}", caps.join(" "))).await;
            let ack = c.expect("CAP").await;
            assert_eq!(ack.params[1], "ACK", "{ack:?}");
        }
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {nick} 0 * :Real {nick}")).await;
        if !caps.is_empty() {
            c.send("CAP END").await;
        }
        c.expect("001").await;
        c.until(|m| m.command == "376" || m.command == "422").await;
        c
    }

    /// Connects as `nick`, logged in to `account` (password
    /// `pw-<account>`) with SASL PLAIN, with draft/read-marker.
    pub async fn logged_in(addr: SocketAddr, nick: &str, account: &str) -> IrcClient {
        use base64::Engine;
        let mut c = IrcClient::connect(addr).await;
        c.send("CAP REQ :sasl draft/read-marker").await;
        c.expect("CAP").await;
        c.send("AUTHENTICATE PLAIN").await;
        c.expect("AUTHENTICATE").await;
        let plain =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{account}\0pw-{account}"));
        c.send(&format!("AUTHENTICATE {plain}")).await;
        c.expect("903").await;
        c.send("CAP END").await;
        c.register(nick).await
    }

    pub async fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).await.unwrap();
        self.w.write_all(b"\r\n").await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
    }

    /// Next raw line (without CRLF); panics after [`TIMEOUT`]. None at EOF.
    pub async fn line(&mut self) -> Option<String> {
        self.line_within(TIMEOUT).await
    }

    /// Next raw line, waiting up to `timeout` (a test that expects a
    /// pause longer than [`TIMEOUT`]).
    pub async fn line_within(&mut self, timeout: std::time::Duration) -> Option<String> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(timeout, self.r.read_until(b'\n', &mut buf))
            .await
            .expect("timed out waiting for a line")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        let s = String::from_utf8_lossy(&buf).into_owned();
        Some(s.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Next parsed message; panics at EOF.
    pub async fn msg(&mut self) -> Msg {
        let l = self.line().await.expect("unexpected EOF");
        l.parse::<Msg>()
            .unwrap_or_else(|e| panic!("unparsable {l:?}: {e}"))
    }

    /// Skips messages until one with `command`; returns it.
    pub async fn expect(&mut self, command: &str) -> Msg {
        self.until(|m| m.command.eq_ignore_ascii_case(command))
            .await
    }

    /// Skips messages until `pred` holds; returns that message.
    pub async fn until(&mut self, pred: impl Fn(&Msg) -> bool) -> Msg {
        loop {
            let m = self.msg().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Reads every message up to and including one with `command`.
    pub async fn collect_until(&mut self, command: &str) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            let m = self.msg().await;
            let stop = m.command.eq_ignore_ascii_case(command);
            out.push(m);
            if stop {
                return out;
            }
        }
    }

    /// Sends a PING and returns everything received before its PONG: proves
    /// that nothing else is pending without sleeping.
    pub async fn sync(&mut self) -> Vec<Msg> {
        self.send("PING :sync").await;
        let mut out = Vec::new();
        loop {
            let m = self.msg().await;
            if m.command == "PONG" && m.params.last().is_some_and(|p| p == "sync") {
                return out;
            }
            out.push(m);
        }
    }

    /// Waits for EOF, skipping lines; panics on timeout.
    pub async fn eof(&mut self) {
        while self.line().await.is_some() {}
    }
}

/// Sends `line` and returns everything it produced, up to a PING round trip.
///
/// Line and PING go out in one write: `IrcClient::send` writes the CRLF
/// separately, and Nagle's algorithm then holds it for a delayed ACK, which
/// costs tens of milliseconds per command.
pub async fn ask(c: &mut IrcClient, line: &str) -> Vec<Msg> {
    c.send_raw(format!("{line}\r\nPING :sync\r\n").as_bytes())
        .await;
    let mut out = Vec::new();
    loop {
        let m = c.msg().await;
        if m.command == "PONG" && m.params.last().is_some_and(|p| p == "sync") {
            return out;
        }
        out.push(m);
    }
}

/// Registers the account `name` with `password` over the wire, as a client
/// with that nick that then leaves.
pub async fn create_account(addr: SocketAddr, name: &str, password: &str) {
    let mut c = IrcClient::registered(addr, name).await;
    let r = ask(&mut c, &format!("REGISTER * * {password}")).await;
    assert!(
        r.iter()
            .any(|m| m.command == "REGISTER" && m.params[0] == "SUCCESS"),
        "{r:?}"
    );
    c.send("QUIT").await;
    c.eof().await;
}

/// Joins `chan` and waits until the join is over.
pub async fn join(c: &mut IrcClient, chan: &str) {
    ask(c, &format!("JOIN {chan}")).await;
}

/// The commands of `ms`, in order.
pub fn cmds(ms: &[Msg]) -> Vec<&str> {
    ms.iter().map(|m| &*m.command).collect()
}
