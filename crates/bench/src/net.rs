//! Connecting, registering and joining: the cold path of every client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};

use super::config::Dialect;
use super::wire::{LineBuf, find};

/// The source address for client `i` when spreading over 127.0.0.0/8.
///
/// Returns `None` unless the target is loopback IPv4: elsewhere the kernel's
/// own choice is the only one that can route.
pub fn source_addr(target: SocketAddr, i: usize, spread: bool) -> Option<IpAddr> {
    match target {
        SocketAddr::V4(a) if spread && a.ip().is_loopback() => {
            // 1000 sources: 127.0.1.1 .. 127.0.4.250, avoiding .0 and .255.
            let k = i % 1000;
            Some(Ipv4Addr::new(127, 0, 1 + (k / 250) as u8, 1 + (k % 250) as u8).into())
        }
        _ => None,
    }
}

/// Connects to `target`, optionally from `src`, with TCP_NODELAY on.
pub async fn connect(target: SocketAddr, src: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = src {
        // Without IP_BIND_ADDRESS_NO_PORT, bind() picks the port right away
        // and must keep it unique per source address; with it, the port is
        // chosen at connect() time per 4-tuple, which scales much further.
        let one: libc::c_int = 1;
        // SAFETY: valid fd, option value points to a c_int of the given size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(target).await?;
    // Small chat lines must leave at once, not wait for Nagle.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Asks the kernel to ACK at once rather than delay the ACK (the setting
/// lapses by itself, hence it is re-armed after every read).
pub fn quickack(fd: &impl AsRawFd) {
    let one: libc::c_int = 1;
    // SAFETY: valid fd, option value points to a c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Reads the next line as an owned vector (setup only, so allocation is fine).
async fn next_line(
    stream: &mut TcpStream,
    lb: &mut LineBuf,
    deadline: Instant,
) -> anyhow::Result<Vec<u8>> {
    loop {
        if let Some(l) = lb.next_line() {
            return Ok(l.to_vec());
        }
        let n = timeout_at(deadline, lb.fill(stream))
            .await
            .map_err(|_| anyhow!("timed out"))??;
        if n == 0 {
            bail!("connection closed by server");
        }
    }
}

/// Splits an IRC line into (prefix, command, rest).
fn irc_parts(line: &[u8]) -> (Option<&[u8]>, &[u8], &[u8]) {
    let (prefix, rest) = match line.strip_prefix(b":") {
        Some(r) => match find(r, b' ') {
            Some(i) => (Some(&r[..i]), &r[i + 1..]),
            None => (Some(r), &b""[..]),
        },
        None => (None, line),
    };
    match find(rest, b' ') {
        Some(i) => (prefix, &rest[..i], &rest[i + 1..]),
        None => (prefix, rest, &b""[..]),
    }
}

/// Answers a PING seen during setup.
async fn maybe_pong(stream: &mut TcpStream, line: &[u8]) -> anyhow::Result<bool> {
    if let Some(tok) = line.strip_prefix(b"PING ") {
        let mut v = b"PONG ".to_vec();
        v.extend_from_slice(tok);
        v.extend_from_slice(b"\r\n");
        stream.write_all(&v).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Registers on the server; returns the nick finally in use.
///
/// * irc: NICK/USER, then waits for `001`; a taken nick gets `_` appended.
/// * line: waits for the first `[server]` greeting, then sends `NICK`.
/// * echo: nothing to do.
pub async fn register(
    dialect: Dialect,
    stream: &mut TcpStream,
    lb: &mut LineBuf,
    nick: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    let mut nick = nick.to_string();
    match dialect {
        Dialect::Echo => {}
        Dialect::Irc => {
            let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
            stream.write_all(hello.as_bytes()).await?;
            loop {
                let line = next_line(stream, lb, deadline)
                    .await
                    .context("waiting for 001")?;
                if maybe_pong(stream, &line).await? {
                    continue;
                }
                let (_, cmd, _) = irc_parts(&line);
                match cmd {
                    b"001" => break,
                    b"433" | b"436" => {
                        nick.push('_');
                        stream
                            .write_all(format!("NICK {nick}\r\n").as_bytes())
                            .await?;
                    }
                    b"ERROR" | b"432" | b"465" => {
                        bail!("registration refused: {}", String::from_utf8_lossy(&line))
                    }
                    _ => {}
                }
            }
        }
        Dialect::Line => {
            loop {
                let line = next_line(stream, lb, deadline)
                    .await
                    .context("waiting for the [server] greeting")?;
                if line.starts_with(b"[server]") {
                    break;
                }
            }
            stream
                .write_all(format!("NICK {nick}\n").as_bytes())
                .await?;
        }
    }
    Ok(nick)
}

/// Joins `chan`; returns false when the join could not be confirmed but the
/// client went on anyway (tolerant `line` dialect).
///
/// * irc: waits for our own JOIN echo or for `366` (end of NAMES).
/// * line: `#lobby` is where the server puts us, so no JOIN; otherwise sends
///   `JOIN` and waits for a `[server]` line naming the channel (2 s at most,
///   since the wording of that server is not settled).
pub async fn join(
    dialect: Dialect,
    stream: &mut TcpStream,
    lb: &mut LineBuf,
    nick: &str,
    chan: &str,
    deadline: Instant,
) -> anyhow::Result<bool> {
    match dialect {
        Dialect::Echo => Ok(true),
        Dialect::Irc => {
            stream
                .write_all(format!("JOIN {chan}\r\n").as_bytes())
                .await?;
            loop {
                let line = next_line(stream, lb, deadline)
                    .await
                    .with_context(|| format!("waiting for JOIN {chan}"))?;
                if maybe_pong(stream, &line).await? {
                    continue;
                }
                let (prefix, cmd, rest) = irc_parts(&line);
                match cmd {
                    b"JOIN" => {
                        let who = prefix.map(|p| &p[..find(p, b'!').unwrap_or(p.len())]);
                        let target = rest.strip_prefix(b":").unwrap_or(rest);
                        if who.is_some_and(|w| w.eq_ignore_ascii_case(nick.as_bytes()))
                            && target.eq_ignore_ascii_case(chan.as_bytes())
                        {
                            return Ok(true);
                        }
                    }
                    b"366" => {
                        // `<me> <chan> :End of NAMES`
                        let mut it = rest.split(|&c| c == b' ');
                        let _me = it.next();
                        if it
                            .next()
                            .is_some_and(|c| c.eq_ignore_ascii_case(chan.as_bytes()))
                        {
                            return Ok(true);
                        }
                    }
                    b"403" | b"405" | b"471" | b"473" | b"474" | b"475" | b"ERROR" => {
                        bail!("JOIN refused: {}", String::from_utf8_lossy(&line))
                    }
                    _ => {}
                }
            }
        }
        Dialect::Line => {
            let lobby = chan.eq_ignore_ascii_case("#lobby");
            // What a confirmation must mention: the channel, or our nick for
            // the lobby (the NICK acknowledgement).
            let needle = if lobby {
                nick.to_string()
            } else {
                stream
                    .write_all(format!("JOIN {chan}\n").as_bytes())
                    .await?;
                chan.to_string()
            };
            let short = Instant::now() + Duration::from_secs(2);
            let deadline = deadline.min(short);
            loop {
                let line = match next_line(stream, lb, deadline).await {
                    Ok(l) => l,
                    Err(e) if e.to_string() == "timed out" => return Ok(false),
                    Err(e) => return Err(e),
                };
                if line.starts_with(b"[server]")
                    && line
                        .windows(needle.len())
                        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
                {
                    return Ok(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irc_parts_split() {
        assert_eq!(
            irc_parts(b":a!b@c JOIN :#x"),
            (Some(&b"a!b@c"[..]), &b"JOIN"[..], &b":#x"[..])
        );
        assert_eq!(irc_parts(b"PING x"), (None, &b"PING"[..], &b"x"[..]));
    }

    #[test]
    fn sources_spread_only_on_loopback_v4() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(source_addr(lo, 0, true), Some("127.0.1.1".parse().unwrap()));
        assert_eq!(
            source_addr(lo, 999, true),
            Some("127.0.4.250".parse().unwrap())
        );
        assert_eq!(source_addr(lo, 1, false), None);
        assert_eq!(source_addr("[::1]:1".parse().unwrap(), 1, true), None);
    }
}
