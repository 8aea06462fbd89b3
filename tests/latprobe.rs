//! `bench/latprobe.c`, the second latency loader of docs/performance.md,
//! built with gcc (on every machine CI runs on) and run against a real
//! server on port 0, so that the figures it gave stay reproducible.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use support::server::Server;
use tokio::process::Command;

fn build(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/latprobe.c");
    let bin = dir.join("latprobe");
    let out = std::process::Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

async fn run(bin: &Path, args: &[&str]) -> Output {
    let child = Command::new(bin).args(args).kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .expect("latprobe ends by itself")
        .expect("latprobe starts")
}

/// `sent N messages, M deliveries` from the last line.
fn counts(stdout: &str) -> (u64, u64) {
    let last = stdout.lines().last().expect("a summary line");
    let words: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(
        (words[0], words[2], words[4]),
        ("sent", "messages,", "deliveries"),
        "{last}"
    );
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latprobe_measures_every_delivery_of_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build(dir.path());
    // Default limits: 2 senders at 100 lines/s each stay within flood control's burst.
    let server = Server::start_default().await;
    let port = server.irc.port().to_string();
    let out = run(&bin, &[&port, "20", "2", "200", "1"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (sent, deliveries) = counts(&stdout);
    assert!(sent >= 150, "{stdout}");
    // Every measured message reaches the 19 other members (latprobe itself
    // fails when one is missing after 5 s).
    assert_eq!(deliveries, sent * 19, "{stdout}");
    // Every tenth client's mean latency, then the summary.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("client ")).count(),
        2
    );
}

#[tokio::test]
async fn latprobe_refuses_arguments_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build(dir.path());
    // One client cannot hear anyone; more senders than clients; no time.
    for args in [
        &["6672", "1"][..],
        &["6672", "5", "6"],
        &["6672", "5", "2", "100", "0"],
    ] {
        let out = run(&bin, args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage"),
            "{args:?}"
        );
    }
}
