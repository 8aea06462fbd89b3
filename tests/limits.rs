//! Connection admission limits, at their edges, on both dialects.

mod support;

use bavard::config::Config;
use support::TIMEOUT;
use support::irc::IrcClient;
use support::server::Server;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

async fn first_line(addr: std::net::SocketAddr) -> (String, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).await.unwrap();
    let mut r = BufReader::new(s);
    let mut l = String::new();
    tokio::time::timeout(TIMEOUT, r.read_line(&mut l))
        .await
        .unwrap()
        .unwrap();
    (l, r)
}

#[tokio::test]
async fn per_address_limit_refuses_with_a_reason_then_admits_again() {
    let mut cfg = Config::default();
    cfg.limits.connections_per_ip = 2;
    // Loopback is exempt by default; these clients must count.
    cfg.limits.exempt_networks.clear();
    let s = Server::start(cfg).await;
    let (a, _ka) = first_line(s.line).await;
    assert_eq!(a, "[server] Welcome to Chat Server !\n");
    let (_b, kb) = first_line(s.line).await;
    let (c, mut kc) = first_line(s.line).await;
    assert_eq!(c, "[server] Too many connections from your address\n");
    let mut rest = String::new();
    assert_eq!(
        kc.read_line(&mut rest).await.unwrap(),
        0,
        "closed after the reason"
    );
    // The limit is shared by the irc listener.
    let mut i = IrcClient::connect(s.irc).await;
    let l = i.line().await.unwrap();
    assert!(
        l.starts_with("ERROR :Closing Link:") && l.contains("Too many connections"),
        "{l}"
    );
    // A slot frees up when a connection closes.
    drop(kb);
    let mut admitted = false;
    for _ in 0..50 {
        let (l, _k) = first_line(s.line).await;
        if l.starts_with("[server] Welcome") {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted);
}

#[tokio::test]
async fn connection_rate_limit() {
    let mut cfg = Config::default();
    cfg.limits.connection_rate = 0.5;
    cfg.limits.exempt_networks.clear();
    cfg.limits.connection_burst = 3.0;
    let s = Server::start(cfg).await;
    let mut keep = Vec::new();
    for _ in 0..3 {
        let (l, k) = first_line(s.line).await;
        assert!(l.starts_with("[server] Welcome"), "{l}");
        keep.push(k);
    }
    let (l, _) = first_line(s.line).await;
    assert_eq!(l, "[server] Connecting too fast, slow down\n");
}

#[tokio::test]
async fn total_limit() {
    let mut cfg = Config::default();
    cfg.limits.max_connections = 1;
    let s = Server::start(cfg).await;
    let (_a, _k) = first_line(s.line).await;
    let (b, _) = first_line(s.line).await;
    assert_eq!(b, "[server] Server is full, try again later\n");
}

/// A client that stops reading and goes past its send queue while a write to
/// it is stuck is dropped by the hub at once; its connection, and its
/// admission slot, are then given up within the closing bound instead of
/// being held until the client reads again.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_past_its_send_queue_is_let_go() {
    use tokio::io::AsyncWriteExt;
    let mut cfg = Config::default();
    cfg.limits.connections_per_ip = 2;
    // Loopback is exempt by default; these clients must count.
    cfg.limits.exempt_networks.clear();
    cfg.limits.send_queue = 64 * 1024;
    // Megabytes of chat on purpose.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let (_, mut talker) = first_line(s.line).await;
    // Never read again.
    let (_, stuck) = first_line(s.line).await;
    // Slowly enough that the server's writes keep up until the kernel's
    // buffers for `stuck` are full, then past the 64 KiB queue: the queue
    // overflows while a write to `stuck` is blocked.
    let burst = format!("MSG {}\n", "x".repeat(1000)).repeat(50);
    for _ in 0..300 {
        talker.get_mut().write_all(burst.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let t0 = std::time::Instant::now();
    loop {
        let (l, _k) = first_line(s.line).await;
        if l.starts_with("[server] Welcome") {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(25),
            "the stalled connection still holds its slot"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(stuck);
}

/// The default limit per address (10) applies to any address but the
/// exempt networks, loopback by default: local tools are not limited.
#[tokio::test]
async fn default_limit_per_address_and_loopback_exemption() {
    let s = Server::start(Config::default()).await;
    let mut keep = Vec::new();
    for i in 0..15 {
        let (l, k) = first_line(s.line).await;
        assert!(
            l.starts_with("[server] Welcome"),
            "loopback client {i}: {l}"
        );
        keep.push(k);
    }
    drop(keep);
    let mut cfg = Config::default();
    cfg.limits.exempt_networks.clear();
    assert_eq!(cfg.limits.connections_per_ip, 10);
    let s = Server::start(cfg).await;
    let mut keep = Vec::new();
    for i in 0..10 {
        let (l, k) = first_line(s.line).await;
        assert!(l.starts_with("[server] Welcome"), "client {i}: {l}");
        keep.push(k);
    }
    let (l, _) = first_line(s.line).await;
    assert_eq!(l, "[server] Too many connections from your address\n");
}
