//! What the soak's hostile clients and its observer share: a seedable
//! generator (the well-behaved clients draw from it too), their source
//! addresses, connecting, and reading until a line with the farewell kept.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;

use tokio::io::AsyncRead;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};

use crate::wire::LineBuf;

/// A small deterministic generator (SplitMix64): `Send`, seedable per task.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Source address of hostile client `h`: 127.3.0.0/16, away from the
/// well-behaved clients' 127.0.1.1-127.0.4.250.
pub(super) fn hostile_source(target: SocketAddr, h: usize, spread: bool) -> Option<IpAddr> {
    match target {
        SocketAddr::V4(a) if spread && a.ip().is_loopback() => {
            let k = h % 60_000;
            Some(Ipv4Addr::new(127, 3, (k / 250) as u8, 1 + (k % 250) as u8).into())
        }
        _ => None,
    }
}

/// Connects a hostile client, optionally with a tiny receive buffer.
pub(super) async fn hostile_connect(
    target: SocketAddr,
    src: Option<IpAddr>,
    rcvbuf: Option<u32>,
) -> io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(b) = rcvbuf {
        sock.set_recv_buffer_size(b)?;
    }
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = sock.connect(target).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Whether the peer has closed (FIN or RST received), without reading.
pub(super) fn peer_closed(s: &TcpStream) -> bool {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid fd and a buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // 1 = ESTABLISHED; CLOSE_WAIT (8) or CLOSE (7) once the server is gone.
    r == 0 && info.tcpi_state != 1
}

/// How reading ended.
#[derive(Debug)]
pub(super) enum Until {
    Found,
    Eof,
    Reset,
    Error(String),
    Timeout,
}

/// A hostile connection's reading side: lines, and the last few of them.
pub(super) struct Reader<R> {
    pub(super) r: R,
    pub(super) lb: LineBuf,
    pub(super) last: VecDeque<String>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub(super) fn new(r: R) -> Self {
        Reader {
            r,
            lb: LineBuf::new(16 * 1024),
            last: VecDeque::new(),
        }
    }

    /// Reads until a line satisfies `pred`, the connection ends or `deadline`.
    pub(super) async fn until(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Until {
        loop {
            while let Some(l) = self.lb.next_line() {
                if self.last.len() == 4 {
                    self.last.pop_front();
                }
                let keep = &l[..l.len().min(200)];
                self.last
                    .push_back(String::from_utf8_lossy(keep).into_owned());
                if pred(l) {
                    return Until::Found;
                }
            }
            match timeout_at(deadline, self.lb.fill(&mut self.r)).await {
                Err(_) => return Until::Timeout,
                Ok(Ok(0)) => return Until::Eof,
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => return Until::Reset,
                Ok(Err(e)) => return Until::Error(e.kind().to_string()),
            }
        }
    }

    /// The farewell among the last lines, normalised: `ERROR (<reason>)` for
    /// IRC (the host varies), the `[server]` line as is for line.
    fn farewell(&self) -> Option<String> {
        self.last.iter().rev().find_map(|l| farewell_of(l))
    }

    /// Label for a connection the server ended.
    pub(super) fn ended(&self, how: &Until, secs: f64) -> String {
        if let Some(f) = self.farewell() {
            return f;
        }
        match how {
            Until::Eof => "EOF, no farewell".into(),
            Until::Reset => "reset, no farewell".into(),
            Until::Error(e) => format!("read error ({e}), no farewell"),
            Until::Timeout => format!("still open after {secs:.0}s"),
            Until::Found => "answered".into(),
        }
    }
}

pub(super) fn farewell_of(l: &str) -> Option<String> {
    if let Some(rest) = l.strip_prefix("ERROR ") {
        if let (Some(a), Some(b)) = (rest.rfind('('), rest.rfind(')'))
            && a < b
        {
            return Some(format!("ERROR ({})", &rest[a + 1..b]));
        }
        return Some(format!("ERROR {rest}"));
    }
    const LINE: [&str; 6] = [
        "[server] Disconnected:",
        "[server] Timeout:",
        "[server] Too many",
        "[server] Connecting too fast",
        "[server] Server is full",
        "[server] Server is shutting down",
    ];
    LINE.iter().any(|p| l.starts_with(p)).then(|| l.to_string())
}
