//! Support for the integration tests of both dialects: a real server on
//! port 0 with a listener for each ([`server`]), a client for the line
//! dialect ([`line`]) and one for the irc dialect ([`irc`]). Every read is
//! bounded by [`TIMEOUT`], so that a failing test fails fast.
//!
//! The two clients are distinct types with distinct names,
//! [`LineClient`](line::LineClient) and [`IrcClient`](irc::IrcClient), so one
//! cannot be passed where the other is expected. A test file says
//! `mod support;` and imports what it uses from the submodules, e.g.
//! `use support::server::Server;` and `use support::irc::{IrcClient, Msg};`.

// Each file in tests/ is compiled as a crate of its own, with its own copy of
// this module, and none uses every helper: without this, every test crate
// would warn about the helpers it leaves unused (and `cargo clippy -- -D
// warnings` would fail on them).
#![allow(dead_code)]

use std::time::Duration;

pub mod irc;
pub mod line;
pub mod server;
pub mod ws;

/// How long any single read may wait before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to `addr` with a 4 KiB receive buffer, so that the kernel
/// holds little of what the server writes to it while it does not read.
pub fn small_buffer_stream(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect(&addr.into()).expect("connect");
    sock.set_nonblocking(true).expect("nonblocking");
    tokio::net::TcpStream::from_std(sock.into()).expect("from_std")
}
