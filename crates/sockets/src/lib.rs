//! Socket helpers shared by the server (`bavard`), the load generator
//! (`bavard-bench`) and the echo lab (`bavard-echo`): a dual-stack listener
//! and the open-file limit that thousands of connections need. No tokio, no
//! server state: the crate every other one can depend on.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    let dual = matches!(addr.ip(), IpAddr::V6(ip) if ip.is_unspecified());
    let socket = match socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    ) {
        Ok(s) => s,
        Err(e) if dual && e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
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

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
///
/// Thousands of connections need thousands of descriptors, and the usual
/// soft limit (1024) is far below what the hard limit allows.
pub fn raise_fd_limit() -> Option<u64> {
    // SAFETY: plain data struct.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return None;
    }
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max;
        // SAFETY: valid pointer; raising soft up to hard needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
            return None;
        }
    }
    Some(rl.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv6Addr, TcpStream};

    #[test]
    fn fd_limit_is_raised_to_the_hard_limit() {
        let soft = raise_fd_limit().expect("getrlimit works");
        // SAFETY: plain data struct, valid pointer.
        let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        assert_eq!(soft, rl.rlim_cur as u64);
        assert_eq!(rl.rlim_cur, rl.rlim_max);
    }

    #[test]
    fn binds_loopback_on_a_free_port_in_blocking_mode() {
        let l = bind_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = l.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let mut c = TcpStream::connect(addr).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    /// `[::]` accepts IPv4 clients too, whatever `net.ipv6.bindv6only` says
    /// (or falls back to `0.0.0.0` on a host without IPv6).
    #[test]
    fn unspecified_v6_is_dual_stack() {
        let l = bind_listener(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0), 16).unwrap();
        let port = l.local_addr().unwrap().port();
        TcpStream::connect(("127.0.0.1", port)).expect("IPv4 client accepted on [::]");
    }
}
