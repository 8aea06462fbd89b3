//! Connection admission limits, at their edges, on both dialects.

mod ircsupport;

use bavard::config::Config;
use ircsupport::*;
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
    let s = start(cfg).await;
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
    let mut i = Client::connect(s.irc).await;
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
    cfg.limits.connection_burst = 3.0;
    let s = start(cfg).await;
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
    let s = start(cfg).await;
    let (_a, _k) = first_line(s.line).await;
    let (b, _) = first_line(s.line).await;
    assert_eq!(b, "[server] Server is full, try again later\n");
}
