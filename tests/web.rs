//! The HTTP listener: IRC over WebSocket with TCP IRC and line users on the
//! same hub, subprotocols, origins, limits, `/metrics` and `/healthz`.

mod support;

use bavard::config::Config;
use support::irc::{IrcClient, join};
use support::line::LineClient;
use support::server::Server;
use support::ws::{WsClient, get, get_raw, sample, try_connect};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn websocket_irc_and_line_users_talk_in_one_channel() {
    let s = Server::start_default().await;
    let mut web = WsClient::registered(s.http, "web").await;
    web.send("JOIN #lobby").await;
    web.expect("366").await;
    let mut tcp = IrcClient::registered(s.irc, "tcp").await;
    join(&mut tcp, "#lobby").await;
    let mut line = LineClient::connect(s.line).await;
    line.nick("liner").await;
    // The line user joined #lobby on connecting, then took its nick.
    web.until(|m| m.command == "NICK" && m.params == ["liner"])
        .await;

    // A trailing CRLF in a frame is allowed and dropped.
    web.send("PRIVMSG #lobby :hello from the web\r\n").await;
    let m = tcp.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#lobby", "hello from the web"]);
    assert!(m.source.as_deref().unwrap().starts_with("web!"));
    line.expect("[web] hello from the web").await;

    tcp.send("PRIVMSG #lobby :hi web").await;
    let m = web.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#lobby", "hi web"]);
    line.send("MSG from nc").await;
    let m = web.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#lobby", "from nc"]);

    // A private message both ways.
    tcp.send("PRIVMSG web :psst").await;
    assert_eq!(web.expect("PRIVMSG").await.params, ["web", "psst"]);
    web.send("PRIVMSG tcp :ack").await;
    let m = tcp
        .until(|m| m.command == "PRIVMSG" && m.params[0] == "tcp")
        .await;
    assert_eq!(m.params, ["tcp", "ack"]);

    // QUIT: the server says goodbye and closes the WebSocket.
    web.send("QUIT :bye").await;
    web.expect("ERROR").await;
    assert!(web.frame().await.is_none());
    let m = tcp.expect("QUIT").await;
    assert!(m.source.as_deref().unwrap().starts_with("web!"));
}

#[tokio::test]
async fn subprotocols_are_negotiated_in_the_clients_order() {
    let s = Server::start_default().await;
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["binary.ircv3.net"], Some("binary.ircv3.net")),
        (&["text.ircv3.net"], Some("text.ircv3.net")),
        (
            &["binary.ircv3.net", "text.ircv3.net"],
            Some("binary.ircv3.net"),
        ),
        (
            &["text.ircv3.net", "binary.ircv3.net"],
            Some("text.ircv3.net"),
        ),
        (&[], None),
    ];
    for (offered, want) in cases {
        let mut c = WsClient::connect(s.http, offered).await;
        assert_eq!(c.protocol.as_deref(), *want, "{offered:?}");
        c.send("PING :x").await;
        let frame = c.frame().await.unwrap();
        let binary = *want == Some("binary.ircv3.net");
        match frame {
            Message::Binary(b) if binary => assert!(b.ends_with(b"PONG bavard.local :x")),
            Message::Text(t) if !binary => assert!(t.ends_with("PONG bavard.local :x"), "{t}"),
            other => panic!("{offered:?}: unexpected frame {other:?}"),
        }
    }
    // `/ws` works as well as `/`.
    let mut c = try_connect(s.http, "/ws", &[], None).await.unwrap();
    c.send("PING :y").await;
    assert!(c.line().await.ends_with(":y"));
}

#[tokio::test]
async fn refused_origins_get_403_and_are_counted() {
    let mut cfg = Config::default();
    cfg.http.allowed_origins = vec!["https://chat.example.org".into()];
    let s = Server::start(cfg).await;
    let refused = try_connect(
        s.http,
        "/",
        &["text.ircv3.net"],
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(refused.err(), Some(403));
    let ok = try_connect(
        s.http,
        "/",
        &["text.ircv3.net"],
        Some("https://chat.example.org"),
    )
    .await;
    assert!(ok.is_ok());
    // Not a browser: no Origin, allowed.
    assert!(try_connect(s.http, "/", &[], None).await.is_ok());
    let (_, page) = get(s.http, "/metrics").await;
    assert_eq!(
        sample(&page, "bavard_refused_connections_total{reason=\"origin\"}"),
        1.0
    );
}

#[tokio::test]
async fn an_oversize_line_is_refused_and_the_connection_stays() {
    let s = Server::start_default().await;
    let mut web = WsClient::registered(s.http, "big").await;
    let long = format!("PRIVMSG big :{}", "x".repeat(20_000));
    web.send(&long).await;
    web.expect("417").await;
    web.send("PING :still").await;
    assert_eq!(web.expect("PONG").await.params.last().unwrap(), "still");
}

#[tokio::test]
async fn a_websocket_flood_is_dropped_like_a_tcp_one() {
    let mut cfg = Config::default();
    cfg.flood.lines_per_sec = 1.0;
    cfg.flood.burst_lines = 5.0;
    cfg.flood.max_delay = 1.0;
    let s = Server::start(cfg).await;
    let mut web = WsClient::registered(s.http, "flooder").await;
    for i in 0..200 {
        web.send(&format!("PRIVMSG flooder :{i}")).await;
    }
    let m = web.expect("ERROR").await;
    assert!(m.params[0].contains("Excess Flood"), "{:?}", m.params);
    assert!(web.frame().await.is_none());
    let (_, page) = get(s.http, "/metrics").await;
    assert_eq!(
        sample(&page, "bavard_dropped_clients_total{reason=\"flood\"}"),
        1.0
    );
}

#[tokio::test]
async fn healthz_metrics_and_unknown_paths() {
    let s = Server::start_default().await;
    assert_eq!(get(s.http, "/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get(s.http, "/nope").await.0, 404);
    assert_eq!(get(s.http, "/").await.0, 200);

    let (status, before) = get(s.http, "/metrics").await;
    assert_eq!(status, 200);
    let mut web = WsClient::registered(s.http, "w").await;
    let mut tcp = IrcClient::registered(s.irc, "t").await;
    join(&mut tcp, "#m").await;
    web.send("JOIN #m").await;
    web.expect("366").await;
    tcp.send("PRIVMSG #m :counted").await;
    web.expect("PRIVMSG").await;
    let (_, after) = get(s.http, "/metrics").await;
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(
        moved("bavard_connections{dialect=\"irc\",transport=\"websocket\"}"),
        1.0
    );
    assert_eq!(
        moved("bavard_connections{dialect=\"irc\",transport=\"tcp\"}"),
        1.0
    );
    assert_eq!(moved("bavard_registrations_total"), 2.0);
    assert!(moved("bavard_messages_received_total") >= 6.0);
    // At least w's join to t and the message to w.
    assert!(moved("bavard_deliveries_total") >= 2.0);
    assert!(moved("bavard_written_bytes_total") > 500.0);
    assert_eq!(sample(&after, "bavard_registered_users"), 2.0);
    assert_eq!(sample(&after, "bavard_channels"), 2.0);
    assert!(sample(&after, "process_resident_memory_bytes") > 1e6);
    assert!(sample(&after, "process_open_fds") > 3.0);
    promtool_check(&after);
}

/// `promtool check metrics` on the page, where promtool is installed
/// (Debian's `prometheus` package; .ci/run installs it).
fn promtool_check(page: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!(
            "SKIPPED: promtool is not installed (apt-get install prometheus); format not checked"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_web_client_is_served_with_its_types_and_a_strict_policy() {
    let s = Server::start_default().await;
    for (path, kind, needle) in [
        ("/", "text/html", "<title>bavard</title>"),
        ("/app.js", "text/javascript", "text.ircv3.net"),
        ("/app.css", "text/css", "@media"),
    ] {
        let r = get_raw(s.http, path).await.to_ascii_lowercase();
        assert!(r.starts_with("http/1.1 200"), "{path}: {r}");
        assert!(r.contains(&format!("content-type: {kind}")), "{path}: {r}");
        assert!(
            r.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {r}"
        );
        assert!(r.contains("x-content-type-options: nosniff"), "{path}");
        assert!(r.contains(&needle.to_ascii_lowercase()), "{path}");
    }
}
