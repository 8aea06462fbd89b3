//! Smoke tests of `bavard bench` against tiny in-test servers on loopback:
//! an echo server and a minimal IRC relay. No external server needed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bavard_bench::{BenchConfig, Dialect, Scenario, run_scenario};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Echoes every byte back.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

type Members = Arc<Mutex<HashMap<String, Vec<(u64, mpsc::UnboundedSender<String>)>>>>;

/// Just enough IRC: NICK/USER get 001 (plus noise and a PING), JOIN is
/// echoed to the channel, PRIVMSG is relayed to the other members.
async fn fake_irc_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let chans: Members = Arc::default();
    tokio::spawn(async move {
        let mut next_id = 0u64;
        while let Ok((s, _)) = l.accept().await {
            next_id += 1;
            let id = next_id;
            let chans = chans.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = s.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if wr.write_all(m.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
                let mut lines = BufReader::new(rd).lines();
                let mut nick = String::from("*");
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut parts = line.splitn(2, ' ');
                    let cmd = parts.next().unwrap_or("");
                    let rest = parts.next().unwrap_or("");
                    match cmd {
                        "NICK" => nick = rest.to_string(),
                        "USER" => {
                            let _ = tx.send(format!(
                                ":fake 001 {nick} :Welcome\r\n:fake 005 {nick} CHANTYPES=# :ok\r\nPING :fake{id}\r\n"
                            ));
                        }
                        "PONG" => {}
                        "JOIN" => {
                            let mut c = chans.lock().unwrap();
                            let m = c.entry(rest.to_string()).or_default();
                            m.push((id, tx.clone()));
                            for (_, t) in m.iter() {
                                let _ = t.send(format!(":{nick}!u@h JOIN :{rest}\r\n"));
                            }
                        }
                        "PRIVMSG" => {
                            let chan = rest.split(' ').next().unwrap_or("");
                            let c = chans.lock().unwrap();
                            if let Some(m) = c.get(chan) {
                                let out = format!(":{nick}!u@h PRIVMSG {rest}\r\n");
                                for (other, t) in m {
                                    if *other != id {
                                        let _ = t.send(out.clone());
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                let mut c = chans.lock().unwrap();
                for m in c.values_mut() {
                    m.retain(|(o, _)| *o != id);
                }
            });
        }
    });
    addr
}

/// Just enough of bavard's line protocol: greeting, `NICK`, `JOIN` (one
/// channel at a time, confirmed by a `[server]` line naming it) and `MSG`
/// relayed as `[nick] text` to the other members.
async fn fake_line_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let chans: Members = Arc::default();
    tokio::spawn(async move {
        let mut next_id = 0u64;
        while let Ok((s, _)) = l.accept().await {
            next_id += 1;
            let id = next_id;
            let chans = chans.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = s.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if wr.write_all(m.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
                let mut nick = format!("guest{id}");
                let mut chan = String::from("#lobby");
                chans
                    .lock()
                    .unwrap()
                    .entry(chan.clone())
                    .or_default()
                    .push((id, tx.clone()));
                let _ = tx.send("[server] Welcome to Chat Server !\n".into());
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let (cmd, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                    match cmd {
                        "NICK" => {
                            let _ = tx.send(format!("[server] {nick} is now known as {rest}\n"));
                            nick = rest.to_string();
                        }
                        "JOIN" => {
                            let mut c = chans.lock().unwrap();
                            if let Some(m) = c.get_mut(&chan) {
                                m.retain(|(o, _)| *o != id);
                            }
                            chan = rest.to_string();
                            c.entry(chan.clone()).or_default().push((id, tx.clone()));
                            let _ = tx.send(format!("[server] You joined {chan}\n"));
                        }
                        "MSG" => {
                            let c = chans.lock().unwrap();
                            let out = format!("[{nick}] {rest}\n");
                            for (other, t) in c.get(&chan).into_iter().flatten() {
                                if *other != id {
                                    let _ = t.send(out.clone());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                let mut c = chans.lock().unwrap();
                for m in c.values_mut() {
                    m.retain(|(o, _)| *o != id);
                }
            });
        }
    });
    addr
}

fn short(cfg: &mut BenchConfig) {
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_secs(1);
    cfg.drain = Duration::from_secs(3);
    cfg.connect_timeout = Duration::from_secs(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_scenario_round_trips_without_loss() {
    let addr = echo_server().await;
    let mut cfg = BenchConfig::new(Scenario::Echo, Dialect::Echo, addr);
    cfg.clients = 4;
    cfg.window = Some(2);
    cfg.size = 64;
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert_eq!(r.connect.registered, 4);
    assert!(r.received > 0, "{r:?}");
    assert_eq!(r.lost, 0, "{r:?}");
    assert_eq!(r.received, r.sent);
    assert_eq!(r.reordered + r.duplicates, 0);
    assert!(r.latency_us.is_some());
    // The report is the --json output.
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["scenario"], "echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_against_fake_irc_loses_nothing() {
    let addr = fake_irc_server().await;
    let mut cfg = BenchConfig::new(Scenario::Fanout, Dialect::Irc, addr);
    cfg.clients = 5;
    cfg.senders = 2;
    cfg.rate = 400.0;
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert!(r.sent > 100, "{r:?}");
    // 2 senders in a 5-member channel: every message reaches 4 others.
    assert_eq!(r.expected, r.sent * 4);
    assert_eq!(r.lost, 0, "{r:?}");
    assert_eq!(r.received, r.expected);
    assert_eq!(r.reordered, 0);
    assert_eq!(r.duplicates, 0);
    assert!(r.drained);
    assert!(r.latency_us.unwrap().count == r.received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_window_and_rooms_against_fake_irc() {
    let addr = fake_irc_server().await;
    let mut cfg = BenchConfig::new(Scenario::Fanout, Dialect::Irc, addr);
    cfg.clients = 5;
    cfg.senders = 2;
    cfg.window = Some(4);
    cfg.channel = "#win".into();
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert!(r.sent > 0 && r.lost == 0 && r.reordered == 0, "{r:?}");

    let mut cfg = BenchConfig::new(Scenario::Rooms, Dialect::Irc, addr);
    cfg.clients = 12;
    cfg.senders = 12;
    cfg.rooms = 3;
    cfg.rate = 600.0;
    cfg.channel = "#room".into();
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    // 4 members per room: 3 deliveries per message.
    assert_eq!(r.expected, r.sent * 3);
    assert!(r.sent > 0 && r.lost == 0 && r.reordered == 0, "{r:?}");

    // Rooms in window mode: every client sends; the first two members of
    // each room keep the senders' windows moving.
    let mut cfg = BenchConfig::new(Scenario::Rooms, Dialect::Irc, addr);
    cfg.clients = 12;
    cfg.senders = 12;
    cfg.rooms = 3;
    cfg.window = Some(4);
    cfg.channel = "#wroom".into();
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert_eq!(r.expected, r.sent * 3);
    // Far more than 12 senders x 4 in flight: the windows kept moving.
    assert!(r.sent > 200, "{r:?}");
    assert!(
        r.lost == 0 && r.reordered == 0 && r.duplicates == 0,
        "{r:?}"
    );

    let mut cfg = BenchConfig::new(Scenario::Rooms, Dialect::Irc, addr);
    cfg.clients = 5;
    cfg.senders = 5;
    cfg.rooms = 3;
    cfg.window = Some(4);
    let err = run_scenario(&cfg).await.unwrap_err().to_string();
    assert!(err.contains("two clients per room"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_line_dialect_against_fake_line_server() {
    let addr = fake_line_server().await;
    let mut cfg = BenchConfig::new(Scenario::Fanout, Dialect::Line, addr);
    cfg.clients = 5;
    cfg.senders = 2;
    cfg.rate = 400.0;
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert_eq!(r.connect.join_unconfirmed, 0, "{r:?}");
    assert!(r.sent > 100, "{r:?}");
    assert_eq!(r.expected, r.sent * 4);
    assert_eq!(r.lost, 0, "{r:?}");
    assert_eq!(r.reordered + r.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_registers_every_connection() {
    let addr = fake_irc_server().await;
    let mut cfg = BenchConfig::new(Scenario::Idle, Dialect::Irc, addr);
    cfg.clients = 50;
    cfg.hold = Duration::from_millis(300);
    cfg.server_pid = Some(std::process::id());
    let r = run_scenario(&cfg).await.unwrap();
    assert_eq!(r.connect.registered, 50, "{r:?}");
    assert_eq!(r.connect.failed, 0);
    assert!(r.connect.connect_us.is_some());
    assert!(r.server.unwrap().rss_after_kib.is_some());
}

#[test]
fn remote_targets_are_refused_by_default() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        b: bavard_bench::BenchArgs,
    }
    let cli = Cli::parse_from(["x", "fanout", "--target", "192.0.2.1:6667"]);
    let err = cli.b.to_config().unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
    let cli = Cli::parse_from(["x", "fanout", "--clients", "1"]);
    assert!(cli.b.to_config().is_err());
}
