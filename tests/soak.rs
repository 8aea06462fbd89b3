//! The CI soak: the real `bavard` binary with bench/soak.toml on two free
//! loopback ports, and `bavard bench soak` run through the library for 30 s
//! with 200 well-behaved clients (both dialects, 20 channels) and 20 hostile
//! ones. Zero loss, reordering and duplication, every attack refused, no
//! ghost session, and the server alive, then stopped cleanly by SIGTERM.
//!
//! Longer runs: `bench/soak --duration 600` (see docs/reliability.md).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bavard_bench::{BenchConfig, Dialect, Scenario, run_scenario};

/// Kills the server if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn wait_listening(addr: SocketAddr, server: &mut Server) {
    let t0 = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            server.0.try_wait().expect("try_wait").is_none(),
            "bavard exited at start"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "bavard is not listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_30s_both_dialects_under_attack() {
    let irc_port = free_port();
    let mut line_port = free_port();
    while line_port == irc_port {
        line_port = free_port();
    }
    let irc: SocketAddr = format!("127.0.0.1:{irc_port}").parse().unwrap();
    let line: SocketAddr = format!("127.0.0.1:{line_port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("bavard.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/soak.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_bavard"))
        .args(["--log-level", "info", "serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .args(["--irc", &irc.to_string(), "--line", &line.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start bavard");
    let mut server = Server(child);
    wait_listening(irc, &mut server);
    wait_listening(line, &mut server);

    let mut cfg = BenchConfig::new(Scenario::Soak, Dialect::Irc, irc);
    cfg.line_target = line;
    cfg.clients = 200;
    cfg.hostile = 20;
    cfg.rooms = 20;
    cfg.duration = Duration::from_secs(30);
    cfg.server_pid = Some(server.0.id());
    cfg.server_log = Some(log_path.clone());
    let report = run_scenario(&cfg).await.expect("soak run");
    let table = report.to_table();
    println!("{table}");
    let soak = report.soak.as_ref().expect("soak figures");

    assert!(report.sent > 0, "{table}");
    assert_eq!(
        (report.lost, report.reordered, report.duplicates),
        (0, 0, 0),
        "{table}"
    );
    assert_eq!(report.received, report.expected, "{table}");
    assert_eq!(soak.well_disconnected, 0, "{table}");
    assert!(soak.health.alive, "{table}");
    assert!(
        soak.health.log_checked && soak.health.panics.is_empty(),
        "{table}"
    );
    assert!(soak.hostile_connections > 0, "{table}");
    assert!(soak.passed, "{table}");

    // SIGTERM: the server must close everything and exit 0.
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(server.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = server.0.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "bavard did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "bavard exited with {status}");
}
