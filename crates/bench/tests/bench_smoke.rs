//! Smoke tests of `bavard bench` against tiny in-test servers on loopback:
//! an echo server and a minimal IRC relay. No external server needed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    fake_irc_cluster(1, Duration::ZERO).await.0[0]
}

/// A line due at a node's remote relay: when, to whom, what.
type Relayed = (tokio::time::Instant, mpsc::UnboundedSender<String>, String);

/// [`fake_irc_server`] as `nodes` listeners sharing one channel table, like
/// the nodes of a cluster. Each node delivers its own clients' messages at
/// once and other nodes' after `remote_delay` (in order per node, through a
/// relay queue): with a delay, members on different nodes see different
/// interleavings of the senders. Also returns each node's accept count.
async fn fake_irc_cluster(
    nodes: usize,
    remote_delay: Duration,
) -> (Vec<SocketAddr>, Vec<Arc<AtomicUsize>>) {
    type ClusterMembers =
        Arc<Mutex<HashMap<String, Vec<(u64, usize, mpsc::UnboundedSender<String>)>>>>;
    let chans: ClusterMembers = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    let mut addrs = Vec::new();
    let mut accepted = Vec::new();
    let mut relays = Vec::new();
    for _ in 0..nodes {
        let (tx, mut rx) = mpsc::unbounded_channel::<Relayed>();
        tokio::spawn(async move {
            while let Some((due, t, m)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                let _ = t.send(m);
            }
        });
        relays.push(tx);
    }
    for node in 0..nodes {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        accepted.push(count.clone());
        let (chans, next_id, relays) = (chans.clone(), next_id.clone(), relays.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let id = next_id.fetch_add(1, Ordering::SeqCst) + 1;
                let (chans, relays) = (chans.clone(), relays.clone());
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
                                m.push((id, node, tx.clone()));
                                for (_, _, t) in m.iter() {
                                    let _ = t.send(format!(":{nick}!u@h JOIN :{rest}\r\n"));
                                }
                            }
                            "PRIVMSG" => {
                                let chan = rest.split(' ').next().unwrap_or("");
                                let c = chans.lock().unwrap();
                                let due = tokio::time::Instant::now() + remote_delay;
                                let out = format!(":{nick}!u@h PRIVMSG {rest}\r\n");
                                for (other, n, t) in c.get(chan).into_iter().flatten() {
                                    if *other == id {
                                        continue;
                                    }
                                    if *n == node || remote_delay.is_zero() {
                                        let _ = t.send(out.clone());
                                    } else {
                                        let _ = relays[*n].send((due, t.clone(), out.clone()));
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    let mut c = chans.lock().unwrap();
                    for m in c.values_mut() {
                        m.retain(|(o, _, _)| *o != id);
                    }
                });
            }
        });
    }
    (addrs, accepted)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spread_over_a_cluster_see_one_order() {
    let (addrs, accepted) = fake_irc_cluster(2, Duration::ZERO).await;
    let mut cfg = BenchConfig::new(Scenario::Fanout, Dialect::Irc, addrs[0]);
    cfg.targets = addrs.clone();
    cfg.clients = 6;
    cfg.senders = 2;
    cfg.rate = 400.0;
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    // Round-robin: three clients per node.
    let per_node: Vec<usize> = accepted.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert_eq!(per_node, [3, 3]);
    assert!(r.sent > 100 && r.lost == 0, "{r:?}");
    // Four pure receivers (clients 0..4), all complete and in agreement.
    assert!(r.order_ok, "{r:?}");
    assert_eq!(
        (r.order_channels, r.order_compared, r.order_fewer),
        (1, 4, 0)
    );
    let t = r.to_table();
    assert!(
        t.contains("one order in 1/1 channels (4 receivers compared)"),
        "{t}"
    );
    assert!(
        t.contains(&format!("{},{} (2 nodes)", addrs[0], addrs[1])),
        "{t}"
    );
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["order_ok"], true);
    assert_eq!(j["targets"].as_array().unwrap().len(), 2);

    // Rooms: three channels, each with two pure receivers.
    let mut cfg = BenchConfig::new(Scenario::Rooms, Dialect::Irc, addrs[0]);
    cfg.targets = addrs;
    cfg.clients = 12;
    cfg.senders = 6;
    cfg.rooms = 3;
    cfg.rate = 600.0;
    cfg.channel = "#oroom".into();
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert!(r.sent > 0 && r.lost == 0, "{r:?}");
    assert!(r.order_ok, "{r:?}");
    assert_eq!(
        (r.order_channels, r.order_compared, r.order_fewer),
        (3, 6, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_orders_across_nodes_are_reported() {
    // Each node hears its own sender first and the other's 30 ms later.
    let (addrs, _) = fake_irc_cluster(2, Duration::from_millis(30)).await;
    let mut cfg = BenchConfig::new(Scenario::Fanout, Dialect::Irc, addrs[0]);
    cfg.targets = addrs;
    cfg.clients = 6;
    cfg.senders = 2;
    cfg.rate = 400.0;
    short(&mut cfg);
    let r = run_scenario(&cfg).await.unwrap();
    assert_eq!(r.lost, 0, "{r:?}");
    assert!(!r.order_ok, "{r:?}");
    // Receivers 0 and 2 on one node, 1 and 3 on the other: two orders at
    // least (the relay can also interleave differently for two receivers
    // of one node).
    assert_eq!(r.order_mismatches.len(), 1, "{r:?}");
    let m = &r.order_mismatches[0];
    assert_eq!((m.channel.as_str(), m.receivers), ("#bench", 4), "{r:?}");
    assert!(m.distinct >= 2, "{r:?}");
    let t = r.to_table();
    assert!(
        t.contains(&format!(
            "DIFFERENT orders in channel #bench: {} distinct hashes among 4 receivers",
            m.distinct
        )),
        "{t}"
    );
}
