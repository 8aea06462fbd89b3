//! Integration tests of the `line` dialect over real TCP, against the real
//! server started in-process on an ephemeral port: under load (readers that
//! fall behind or never read, hundreds of clients in one channel) and at
//! shutdown. Commands, chat and framing are in `line.rs`.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bavard::config::Config;
use support::TIMEOUT;
use support::line::{LineClient, named};
use support::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- load

/// A connection with a 4 KiB receive buffer, so that the kernel holds little
#[tokio::test(flavor = "multi_thread")]
async fn when_most_readers_fall_behind_the_sender_waits_and_nobody_is_dropped() {
    let mut cfg = Config::default();
    // The queues' bound is the default 1 MiB (soft mark 128 KiB): the
    // sender writes four times as much.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let alice = named(&s, &["alice"]).await.remove(0);
    let mut readers = Vec::new();
    for _ in 0..4 {
        // In #lobby once greeted: the chat must not start before.
        readers.push(LineClient::small_buffer(s.line).await);
    }
    // Every reader is behind at once (none reads for half a second), which
    // one client cannot cause: the server must stop reading the sender
    // rather than drop them all for their queues.
    let pad = "p".repeat(1000);
    let total = 4000usize;
    let mut chat = Vec::new();
    for k in 0..total {
        chat.extend_from_slice(format!("MSG {k} {pad}\n").as_bytes());
    }
    chat.extend_from_slice(b"MSG done\n");
    let (mut alice_r, mut alice_w) = alice.split();
    let sender = tokio::spawn(async move {
        alice_w.write_all(&chat).await.expect("write");
        alice_w
    });
    // (The kernel's buffers may take all of it from the sender: the server
    // must leave it there rather than queue it.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tasks = Vec::new();
    for mut r in readers {
        let pad = pad.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let l = r.line().await;
                assert!(!l.ends_with("is disconnected"), "{l}");
                if l.starts_with("[server] ") {
                    continue;
                }
                if l == "[alice] done" {
                    return (next, r);
                }
                assert_eq!(l, format!("[alice] {next} {pad}"), "lost or out of order");
                next += 1;
            }
        }));
    }
    let mut keep = Vec::new();
    for t in tasks {
        let (n, r) = tokio::time::timeout(TIMEOUT * 2, t)
            .await
            .expect("reader stalled")
            .expect("reader failed");
        assert_eq!(n, total);
        keep.push(r);
    }
    let _w = sender.await.expect("sender");
    // Alice hears of nobody leaving.
    tokio::time::timeout(Duration::from_millis(300), async {
        let mut l = String::new();
        while alice_r.read_line(&mut l).await.unwrap_or(0) > 0 {
            assert!(!l.contains("disconnected"), "{l}");
            l.clear();
        }
    })
    .await
    .ok();
    drop(keep);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_that_never_read_are_dropped_even_while_the_sender_is_paused() {
    let mut cfg = Config::default();
    // Soft mark 32 KiB: a few reads of chat past it the queues overflow.
    cfg.limits.send_queue = 256 * 1024;
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let mut alice = named(&s, &["alice"]).await.remove(0);
    let mut readers = Vec::new();
    for _ in 0..4 {
        let r = LineClient::small_buffer(s.line).await;
        alice
            .expect(&format!("[server] {} is connected", r.nick))
            .await;
        readers.push(r);
    }
    // The four never read again: the server is congested and pauses alice,
    // but only for a second at a time, so their queues still fill up and
    // they are dropped instead of holding her back for good.
    let pad = "p".repeat(1000);
    let mut chat = Vec::new();
    for k in 0..8000 {
        chat.extend_from_slice(format!("MSG {k} {pad}\n").as_bytes());
    }
    let t0 = std::time::Instant::now();
    let (mut alice_r, mut alice_w) = alice.split();
    let sender = tokio::spawn(async move {
        // The server closes nothing of alice's: the write completes once
        // the readers are gone and their lines are no longer queued.
        alice_w.write_all(&chat).await.expect("write");
        alice_w
    });
    let mut gone = HashSet::new();
    while gone.len() < readers.len() {
        let mut l = String::new();
        let n = tokio::time::timeout(TIMEOUT * 4, alice_r.read_line(&mut l))
            .await
            .expect("the readers were never dropped")
            .expect("read");
        assert!(n > 0, "alice disconnected");
        if let Some(nick) = l
            .trim_end()
            .strip_prefix("[server] ")
            .and_then(|r| r.strip_suffix(" is disconnected"))
        {
            assert!(readers.iter().any(|r| r.nick == nick), "{l}");
            gone.insert(nick.to_string());
        }
    }
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "dropped after {:?}: the sender was never paused",
        t0.elapsed()
    );
    let _w = tokio::time::timeout(TIMEOUT * 2, sender)
        .await
        .expect("the sender stayed paused")
        .expect("sender");
    drop(readers);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reader_is_dropped_others_lose_nothing() {
    let mut cfg = Config::default();
    cfg.limits.send_queue = 64 * 1024;
    // The sender needs thousands of lines to fill the queues: that is a flood
    // by the default limits, which are tested on their own.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;

    // The slow client shrinks its receive buffer so the kernel absorbs little.
    let slow = support::small_buffer_stream(s.line);
    // Its nick, from the hub's point of view: learned from the announcement.
    let l = c[0].line().await;
    let slow_nick = l
        .strip_prefix("[server] ")
        .and_then(|r| r.strip_suffix(" is connected"))
        .expect("connect line")
        .to_string();
    c[1].expect(&l).await;
    c[2].expect(&l).await;

    let mut alice = c.remove(0);
    let gone = Arc::new(AtomicBool::new(false));
    // How many messages each reader has seen: the sender keeps at most a
    // window of them in flight, so only the client that never reads falls
    // behind (the readers must not be dropped for merely being slower than
    // a sender writing as fast as loopback allows).
    let progress: Vec<Arc<AtomicUsize>> = (0..c.len()).map(|_| Arc::default()).collect();
    let pad = "p".repeat(1000);
    let mut readers = Vec::new();
    for (cl, seen) in c.drain(..).zip(progress.iter().cloned()) {
        let gone = gone.clone();
        let slow_nick = slow_nick.clone();
        let pad = pad.clone();
        readers.push(tokio::spawn(async move {
            let mut cl = cl;
            let mut next = 0usize;
            let mut saw_drop = false;
            loop {
                let l = cl.line().await;
                if l == format!("[server] {slow_nick} is disconnected") {
                    assert!(!saw_drop);
                    saw_drop = true;
                    gone.store(true, Ordering::SeqCst);
                    continue;
                }
                if l == "[alice] done" {
                    return (next, saw_drop, cl);
                }
                assert_eq!(l, format!("[alice] {next} {pad}"), "{} lost order", cl.nick);
                next += 1;
                seen.store(next, Ordering::SeqCst);
            }
        }));
    }
    let mut sent = 0usize;
    let mut batch = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    while !gone.load(Ordering::SeqCst) {
        assert!(sent < 20_000, "the slow client was never dropped");
        let slowest = || progress.iter().map(|p| p.load(Ordering::SeqCst)).min();
        while sent - slowest().unwrap_or(sent) > 24 {
            assert!(tokio::time::Instant::now() < deadline, "readers stalled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        batch.clear();
        for _ in 0..8 {
            batch.extend_from_slice(format!("MSG {sent} {pad}\n").as_bytes());
            sent += 1;
        }
        alice.send_bytes(&batch).await;
        tokio::task::yield_now().await;
    }
    alice.send("MSG done").await;
    let mut keep = Vec::new();
    for r in readers {
        let (n, saw_drop, cl) = tokio::time::timeout(TIMEOUT * 2, r)
            .await
            .expect("reader stalled")
            .expect("reader failed");
        assert_eq!(n, sent, "{} missed messages", cl.nick);
        assert!(saw_drop);
        keep.push(cl);
    }
    for cl in keep.iter_mut() {
        cl.expect_quiet().await;
    }
    alice
        .expect(&format!("[server] {slow_nick} is disconnected"))
        .await;
    alice.expect_quiet().await;
    // The slow client reads what the kernel still held for it: an unbroken
    // prefix of the chat, maybe the reason, then EOF.
    let mut slow = LineClient::from_stream(slow);
    slow.nick = slow_nick.clone();
    slow.expect("[server] Welcome to Chat Server !").await;
    slow.expect(&format!(
        "[server] You are {slow_nick}, in #lobby. Type HELP for the commands."
    ))
    .await;
    let mut rest = Vec::new();
    tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read_to_end(&mut slow.reader(), &mut rest),
    )
    .await
    .expect("slow client: no EOF")
    .expect("slow client: read error");
    let rest = String::from_utf8(rest).expect("UTF-8");
    let mut lines: Vec<&str> = rest.lines().collect();
    if lines.last() == Some(&"[server] Disconnected: SendQ exceeded") {
        lines.pop();
    }
    assert!(
        lines.len() < sent,
        "the slow client cannot have got everything"
    );
    for (k, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("[alice] {k} {pad}"));
    }
    drop((slow, c, keep, alice));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_clients_same_order_for_everyone() {
    const N: usize = 300;
    const PER: usize = 3;
    let s = Server::start_default().await;
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        clients.push(LineClient::connect(s.line).await);
    }
    let nicks: Vec<String> = clients.iter().map(|c| c.nick.clone()).collect();
    let index: Arc<HashMap<String, usize>> = Arc::new(
        nicks
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    );
    let start = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::with_capacity(N);
    for (i, c) in clients.into_iter().enumerate() {
        let nicks = nicks.clone();
        let index = index.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let nick = c.nick.clone();
            let (mut r, mut w) = c.split();
            let next_line = async |r: &mut tokio::io::BufReader<_>| {
                let mut l = String::new();
                let n = tokio::time::timeout(TIMEOUT * 2, r.read_line(&mut l))
                    .await
                    .expect("stalled")
                    .expect("read");
                assert!(n > 0, "EOF");
                l.pop();
                l
            };
            // Everyone connected after this client is announced, in order.
            for later in &nicks[i + 1..] {
                let l = next_line(&mut r).await;
                assert_eq!(l, format!("[server] {later} is connected"), "{nick}");
            }
            start.wait().await;
            let mut out = Vec::new();
            for k in 0..PER {
                out.extend_from_slice(format!("MSG {nick} says {k}\n").as_bytes());
            }
            w.write_all(&out).await.expect("write");
            let mut seen = Vec::with_capacity((N - 1) * PER);
            while seen.len() < (N - 1) * PER {
                let l = next_line(&mut r).await;
                let (from, rest) = l
                    .strip_prefix('[')
                    .and_then(|l| l.split_once("] "))
                    .unwrap_or_else(|| panic!("{nick}: unexpected {l:?}"));
                let k: usize = rest
                    .strip_prefix(&format!("{from} says "))
                    .and_then(|k| k.parse().ok())
                    .unwrap_or_else(|| panic!("{nick}: unexpected {l:?}"));
                let f = *index.get(from).expect("known sender");
                assert_ne!(f, i, "{nick} received its own message");
                seen.push((f, k));
            }
            (i, seen, r, w)
        }));
    }
    let mut all = Vec::with_capacity(N);
    for t in tasks {
        all.push(t.await.expect("client task"));
    }
    // Each client got every other client's messages exactly once, each
    // sender's messages in sending order.
    for (i, seen, _, _) in &all {
        let set: HashSet<_> = seen.iter().collect();
        assert_eq!(set.len(), seen.len(), "client {i} got duplicates");
        let mut last = vec![None; N];
        for &(f, k) in seen {
            assert_eq!(
                last[f].map_or(0, |x: usize| x + 1),
                k,
                "client {i}: sender order"
            );
            last[f] = Some(k);
        }
    }
    // One total order explains every client's view: the "comes right after"
    // relation over all views has no cycle (topological sort succeeds).
    let mut succ: HashMap<(usize, usize), HashSet<(usize, usize)>> = HashMap::new();
    let mut indeg: HashMap<(usize, usize), usize> = HashMap::new();
    for f in 0..N {
        for k in 0..PER {
            indeg.insert((f, k), 0);
        }
    }
    for (_, seen, _, _) in &all {
        for w in seen.windows(2) {
            if succ.entry(w[0]).or_default().insert(w[1]) {
                *indeg.get_mut(&w[1]).expect("node") += 1;
            }
        }
    }
    let mut ready: Vec<_> = indeg
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut sorted = 0;
    while let Some(n) = ready.pop() {
        sorted += 1;
        for m in succ.get(&n).into_iter().flatten() {
            let d = indeg.get_mut(m).expect("node");
            *d -= 1;
            if *d == 0 {
                ready.push(*m);
            }
        }
    }
    assert_eq!(
        sorted,
        N * PER,
        "clients saw the channel in different orders"
    );
    drop(all);
    s.stop().await;
}

// ---------------------------------------------------------------- shutdown

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_tells_everyone_and_run_returns() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    c[2].send("JOIN #x").await;
    c[2].expect_all(&[
        "[server] You joined #x",
        "[server] No topic is set for #x",
        "[server] Members of #x: carol",
    ])
    .await;
    c[0].expect("[server] carol left #lobby").await;
    c[1].expect("[server] carol left #lobby").await;
    // One client with a half-sent line.
    c[1].send_bytes(b"MSG unfinis").await;
    s.token.cancel();
    for cl in c.iter_mut() {
        cl.expect("[server] Server is shutting down").await;
        cl.expect_eof().await;
    }
    tokio::time::timeout(Duration::from_secs(10), s.handle)
        .await
        .expect("run did not return")
        .expect("run panicked")
        .expect("run failed");
}

/// A client that stopped reading, with megabytes queued for it, cannot hold
/// the server up: the flush at shutdown is bounded (3 s, then a 2 s linger).
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_bounded_when_a_client_does_not_read() {
    let mut cfg = Config::default();
    cfg.limits.send_queue = 64 << 20;
    // Thousands of lines to fill the socket buffers: a flood, on purpose.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let mut c = named(&s, &["talker", "stuck"]).await;
    let line = format!("MSG {}\n", "x".repeat(1900));
    let burst = line.repeat(100);
    for _ in 0..60 {
        c[0].send_bytes(burst.as_bytes()).await;
    }
    // Far more than loopback buffers hold is now queued for `stuck`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = std::time::Instant::now();
    s.token.cancel();
    tokio::time::timeout(Duration::from_secs(15), s.handle)
        .await
        .expect("run did not return")
        .expect("run panicked")
        .expect("run failed");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "stuck was not flushing ({took:?})"
    );
}

#[test]
fn binary_serves_and_exits_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    // No configuration: the database is bavard.db in the working directory.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bavard"))
        .args(["serve", "--line", "127.0.0.1:0", "--irc", "127.0.0.1:0"])
        .args(["--http", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bavard");
    // Kill the child whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().expect("stderr");
    let mut child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let port = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no listening line in the log");
        if let Some(rest) = l.split("dialect=line addr=").nth(1) {
            let addr: std::net::SocketAddr = rest
                .split_whitespace()
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("cannot parse {l:?}"));
            break addr.port();
        }
    };
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut r = BufReader::new(sock.try_clone().expect("clone"));
    let mut l = String::new();
    r.read_line(&mut l).expect("welcome");
    assert_eq!(l, "[server] Welcome to Chat Server !\n");
    l.clear();
    r.read_line(&mut l).expect("greeting");
    assert!(l.starts_with("[server] You are guest"), "{l:?}");
    sock.write_all(b"WHO\n").expect("write");
    l.clear();
    r.read_line(&mut l).expect("who");
    assert!(l.starts_with("[server] guest"), "{l:?}");

    let pid = child.0.id() as libc::pid_t;
    // SAFETY: plain syscall on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    l.clear();
    r.read_line(&mut l).expect("shutdown line");
    assert_eq!(l, "[server] Server is shutting down\n");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).expect("EOF");
    assert!(rest.is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.0.try_wait().expect("wait") {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(dir.path().join("bavard.db").is_file(), "no bavard.db");
}
