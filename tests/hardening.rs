//! Flood control and TLS, over real sockets, at their edges.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bavard::config::{Config, TlsConfig};
use bavard::effects::Stores;
use bavard::net::{self, Kind};
use support::TIMEOUT;
use support::irc::IrcClient;
use support::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

fn flood_cfg() -> Config {
    let mut cfg = Config::default();
    cfg.flood.lines_per_sec = 5.0;
    cfg.flood.burst_lines = 5.0;
    cfg.flood.max_delay = 2.0;
    cfg
}

async fn line_client(
    addr: std::net::SocketAddr,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let s = TcpStream::connect(addr).await.unwrap();
    let (r, w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut l = String::new();
    r.read_line(&mut l).await.unwrap();
    assert_eq!(l, "[server] Welcome to Chat Server !\n");
    l.clear();
    r.read_line(&mut l).await.unwrap();
    (r, w)
}

async fn next_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut l = String::new();
    let n = tokio::time::timeout(TIMEOUT, r.read_line(&mut l))
        .await
        .expect("timeout")
        .ok()?;
    (n > 0).then(|| l.trim_end().to_string())
}

#[tokio::test]
async fn excess_lines_are_delayed_in_order_not_dropped() {
    let s = Server::start(flood_cfg()).await;
    let (mut r, mut w) = line_client(s.line).await;
    let start = Instant::now();
    let mut batch = String::new();
    for i in 0..8 {
        batch.push_str(&format!("TOPIC t{i}\n"));
    }
    w.write_all(batch.as_bytes()).await.unwrap();
    for i in 0..8 {
        let l = next_line(&mut r).await.unwrap();
        assert!(l.ends_with(&format!("to: t{i}")), "{l}");
    }
    // 5 lines pass at once, 3 more at 5 lines/s.
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_flood_past_the_bound_is_disconnected_others_are_told() {
    let s = Server::start(flood_cfg()).await;
    let (mut watcher, _ww) = line_client(s.line).await;
    let (mut r, mut w) = line_client(s.line).await;
    // The flooder's join notice reaches the watcher first.
    let joined = next_line(&mut watcher).await.unwrap();
    let nick = joined
        .trim_start_matches("[server] ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let flood = "WHO\n".repeat(200);
    w.write_all(flood.as_bytes()).await.unwrap();
    let mut last = String::new();
    while let Some(l) = next_line(&mut r).await {
        last = l;
    }
    assert_eq!(last, "[server] Disconnected: Excess Flood");
    assert_eq!(
        next_line(&mut watcher).await.unwrap(),
        format!("[server] {nick} is disconnected")
    );
}

#[tokio::test]
async fn irc_flood_gets_error_and_operators_are_exempt() {
    let mut cfg = flood_cfg();
    cfg.opers.push(bavard::config::Oper {
        name: "op".into(),
        password: bavard::passwd::hash("pw").unwrap(),
    });
    let s = Server::start(cfg).await;
    let mut a = IrcClient::registered(s.irc, "flooder").await;
    a.send_raw("PING :x\r\n".repeat(200).as_bytes()).await;
    let mut last = String::new();
    while let Some(l) = a.line().await {
        last = l;
    }
    assert_eq!(last, "ERROR :Closing Link: 127.0.0.1 (Excess Flood)");
    let mut o = IrcClient::registered(s.irc, "oper").await;
    // Registration used some tokens; wait for the bucket to refill.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    o.send("OPER op pw").await;
    o.expect("381").await;
    o.send_raw("PING :y\r\n".repeat(200).as_bytes()).await;
    for _ in 0..200 {
        assert_eq!(o.expect("PONG").await.params[1], "y");
    }
}

#[tokio::test]
async fn a_big_flood_still_gets_its_reason_and_backlog_is_measured_while_held() {
    let s = Server::start(flood_cfg()).await;
    let mut a = IrcClient::registered(s.irc, "flooder").await;
    // Within the bound at first: 10 lines, 5 held for about a second.
    a.send_raw("PING :a\r\n".repeat(10).as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Then far more than the bound, while the first ones are still held:
    // the server must notice without waiting to work through the backlog.
    let start = Instant::now();
    a.send_raw("PING :b\r\n".repeat(10_000).as_bytes()).await;
    let mut last = String::new();
    while let Some(l) = a.line().await {
        last = l;
    }
    // The reason arrives despite the unread input (no reset).
    assert_eq!(last, "ERROR :Closing Link: 127.0.0.1 (Excess Flood)");
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

fn write_cert(
    dir: &std::path::Path,
    name: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    rustls::pki_types::CertificateDer<'static>,
) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().clone())
}

fn connector(ca: rustls::pki_types::CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

#[tokio::test]
async fn tls_listeners_for_both_dialects_with_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca1) = write_cert(dir.path(), "localhost");
    let cfg = Config {
        tls: Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        }),
        ..Config::default()
    };
    let tls = Arc::new(net::tls::Tls::new(cert, key).unwrap());
    let line = net::listen_with(Kind::Line, true, "127.0.0.1:0".parse().unwrap()).unwrap();
    let irc = net::listen_with(Kind::Irc, true, "127.0.0.1:0".parse().unwrap()).unwrap();
    let plain = net::listen(Kind::Irc, "127.0.0.1:0".parse().unwrap()).unwrap();
    let (line_addr, irc_addr, plain_addr) = (
        line.socket.local_addr().unwrap(),
        irc.socket.local_addr().unwrap(),
        plain.socket.local_addr().unwrap(),
    );
    let token = CancellationToken::new();
    let t = token.clone();
    let tls2 = tls.clone();
    tokio::spawn(async move {
        let listeners = vec![line, irc, plain];
        net::run(Arc::new(cfg), listeners, Some(tls2), Stores::memory(), t).await
    });
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    // Line over TLS.
    let s = TcpStream::connect(line_addr).await.unwrap();
    let s = connector(ca1.clone())
        .connect(name.clone(), s)
        .await
        .unwrap();
    let mut s = BufReader::new(s);
    let mut l = String::new();
    s.read_line(&mut l).await.unwrap();
    assert_eq!(l, "[server] Welcome to Chat Server !\n");

    // IRC over TLS: WHOIS shows 671 for the TLS user, not for the plain one.
    let tcp = TcpStream::connect(irc_addr).await.unwrap();
    let mut t = BufReader::new(
        connector(ca1.clone())
            .connect(name.clone(), tcp)
            .await
            .unwrap(),
    );
    t.get_mut()
        .write_all(b"NICK secure\r\nUSER s 0 * :S\r\n")
        .await
        .unwrap();
    let mut plain = IrcClient::registered(plain_addr, "plain").await;
    loop {
        l.clear();
        t.read_line(&mut l).await.unwrap();
        if l.contains(" 376 ") || l.contains(" 422 ") {
            break;
        }
    }
    plain.send("WHOIS secure").await;
    let replies = plain.collect_until("318").await;
    assert!(replies.iter().any(|m| m.command == "671"), "{replies:?}");
    plain.send("WHOIS plain").await;
    let replies = plain.collect_until("318").await;
    assert!(!replies.iter().any(|m| m.command == "671"));

    // Reload with a new certificate: new connections get it, old ones live on.
    let dir2 = tempfile::tempdir().unwrap();
    let (c2, k2, ca2) = write_cert(dir2.path(), "localhost");
    std::fs::copy(&c2, dir.path().join("cert.pem")).unwrap();
    std::fs::copy(&k2, dir.path().join("key.pem")).unwrap();
    tls.reload().unwrap();
    let tcp = TcpStream::connect(line_addr).await.unwrap();
    assert!(
        connector(ca1).connect(name.clone(), tcp).await.is_err(),
        "old CA no longer matches"
    );
    let tcp = TcpStream::connect(line_addr).await.unwrap();
    assert!(connector(ca2).connect(name, tcp).await.is_ok());
    t.get_mut().write_all(b"PING :still\r\n").await.unwrap();
    loop {
        l.clear();
        t.read_line(&mut l).await.unwrap();
        if l.contains("PONG") {
            assert!(l.trim_end().ends_with(":still"));
            break;
        }
    }
    // A broken file keeps the old certificate.
    std::fs::write(dir.path().join("cert.pem"), "garbage").unwrap();
    assert!(tls.reload().is_err());
    token.cancel();
}

/// With a connection password, the first PASS decides: a later one is not
/// checked (each check is an argon2 hash), so a wrong first guess fails
/// registration whatever follows.
#[tokio::test]
async fn the_connection_password_is_checked_once() {
    let cfg = Config {
        password: Some(bavard::passwd::hash("letmein").unwrap()),
        ..Config::default()
    };
    let s = Server::start(cfg).await;
    // Registers as `nick` after sending `passes`.
    let attempt = async |nick: &str, passes: &[&str]| {
        let mut c = IrcClient::connect(s.irc).await;
        for p in passes {
            c.send(&format!("PASS {p}")).await;
        }
        c.send(&format!("NICK {nick}")).await;
        c.send("USER u 0 * :r").await;
        c
    };

    let mut none = attempt("nopass", &[]).await;
    none.expect("464").await;
    assert!(none.expect("ERROR").await.params[0].contains("Bad Password"));
    attempt("rightpass", &["letmein", "wrong"])
        .await
        .expect("001")
        .await;
    attempt("wrongpass", &["wrong", "letmein"])
        .await
        .expect("464")
        .await;
}
