//! Real IRC client libraries against the real binary.
//!
//! Starts `bavard serve` on 127.0.0.1 port 0 (both dialects), learns the bound
//! ports from its stderr log, and runs `tests/clients/python_irc_client.py`,
//! which drives two connections of the Python `irc` library (PyPI `irc`,
//! pinned in `tests/clients/requirements.txt`) and one netcat-style `line`
//! user. When `python3` or its `irc` module is missing, the test prints SKIP
//! and passes; CI installs the module first.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the server may take to log its two listeners.
const STARTUP: Duration = Duration::from_secs(20);
/// How long the whole Python scenario may take.
const SCRIPT: Duration = Duration::from_secs(90);

/// Kills and reaps the child when dropped, so no server outlives the test,
/// then removes its working directory (and the database in it).
struct Reaped(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server; returns it, its (irc, line) ports and its stderr so far.
fn start_server() -> (Reaped, u16, u16, Arc<Mutex<String>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_bavard"))
        .current_dir(dir.path())
        .args([
            "serve",
            "--line",
            "127.0.0.1:0",
            "--irc",
            "127.0.0.1:0",
            "--log-level",
            "info",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bavard");
    let mut server = Reaped(child, dir);
    let stderr = server.0.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    {
        let log = Arc::clone(&log);
        // Reads stderr to its end, so the server never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(found) = listening(&line) {
                    let _ = tx.send(found);
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    let (mut irc, mut line) = (None, None);
    let deadline = Instant::now() + STARTUP;
    while irc.is_none() || line.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(("irc", p)) => irc = Some(p),
            Ok(("line", p)) => line = Some(p),
            Ok(_) => {}
            Err(_) => {
                let status = server.0.try_wait();
                panic!(
                    "bavard did not log both listeners within {STARTUP:?} (status {status:?}); \
                     stderr:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }
    (server, irc.unwrap(), line.unwrap(), log)
}

/// Parses `... listening dialect=irc addr=127.0.0.1:43567` into ("irc", 43567).
fn listening(line: &str) -> Option<(&'static str, u16)> {
    let rest = &line[line.find("listening dialect=")? + "listening dialect=".len()..];
    let dialect = match rest.split_whitespace().next()? {
        "irc" => "irc",
        "line" => "line",
        _ => return None,
    };
    let addr = rest
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))?;
    let port = addr.rsplit(':').next()?.parse().ok()?;
    Some((dialect, port))
}

/// Whether `python3` runs and has a recent enough `irc` module; its version.
fn python_irc_available() -> Result<String, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            // Reactor is in irc >= 15 (Debian 12's python3-irc is 8.5.3).
            "import irc.client, importlib.metadata as m; irc.client.Reactor; print(m.version('irc'))",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("python3 could not be run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "python3 cannot import irc.client: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

/// Waits for `child` at most `limit`; kills it past that.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn python_irc_library_talks_with_a_line_user() {
    let version = match python_irc_available() {
        Ok(v) => v,
        Err(why) => {
            eprintln!(
                "SKIP python_irc_library_talks_with_a_line_user: {why}\n\
                 SKIP install it with: python3 -m pip install -r tests/clients/requirements.txt"
            );
            return;
        }
    };
    let (server, irc, line, log) = start_server();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_irc_client.py");
    let mut py = Command::new("python3")
        .arg(&script)
        .args(["--irc-port", &irc.to_string()])
        .args(["--line-port", &line.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    // Drain both pipes on threads so a chatty script cannot block.
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(py.stdout.take().unwrap()));
    let err = drain(Box::new(py.stderr.take().unwrap()));
    let status = wait_bounded(&mut py, SCRIPT);
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    drop(server);
    match status {
        Some(s) if s.success() => {
            print!("{out}");
            eprintln!("python irc {version}: ok");
        }
        Some(s) => panic!(
            "python irc {version} scenario failed ({s}):\nstdout:\n{out}\nstderr:\n{err}\n\
             bavard stderr:\n{}",
            log.lock().unwrap()
        ),
        None => panic!(
            "python irc {version} scenario did not finish within {SCRIPT:?}:\nstdout:\n{out}\n\
             stderr:\n{err}"
        ),
    }
}

#[test]
fn listening_lines_are_parsed() {
    assert_eq!(
        listening(
            "2026-01-01T00:00:00Z  INFO bavard::net: listening dialect=irc addr=127.0.0.1:6667"
        ),
        Some(("irc", 6667))
    );
    assert_eq!(
        listening("INFO listening dialect=line addr=[::1]:7777"),
        Some(("line", 7777))
    );
    assert_eq!(listening("INFO echo listening on 127.0.0.1:1"), None);
}
