//! The built-in web client in a real browser: headless Chromium, driven
//! over the DevTools protocol by tests/browser/web_client.py, loads the
//! page from a server on port 0 that keeps history, logs in with SASL to an
//! account a line user registered, joins #lobby, scrolls back through its
//! history, talks with the line user both ways, follows the line user's
//! nick change in a private conversation, then saves a screenshot in a
//! temporary directory.
//!
//! Without `chromium` or Python's `websockets` module the test says so and
//! skips, except under `CI=true`, where .ci/run installs both.

mod support;

use std::process::Command;
use std::time::Duration;

use support::server::{Server, with_history};

/// What is missing to run the browser, if anything.
fn missing() -> Option<String> {
    let chromium = std::env::var_os("CHROMIUM").is_some()
        || ["chromium", "chromium-browser"].iter().any(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !chromium {
        return Some("chromium (apt-get install chromium)".into());
    }
    let module = Command::new("python3")
        .args(["-c", "import websockets"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !module {
        return Some("python3's websockets module (pip install websockets)".into());
    }
    None
}

#[tokio::test]
async fn the_web_client_talks_with_a_line_user() {
    if let Some(what) = missing() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the browser test cannot run without {what}"
        );
        eprintln!("SKIPPED the_web_client_talks_with_a_line_user: no {what}");
        return;
    }
    let s = Server::start(with_history()).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let shot = dir.path().join("web-client.png");
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/web_client.py"
    ))
    .arg("--http")
    .arg(s.http.to_string())
    .arg("--line")
    .arg(s.line.to_string())
    .arg("--screenshot")
    .arg(&shot);
    let run = tokio::task::spawn_blocking(move || cmd.output());
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test took over 120 s")
        .expect("join")
        .expect("run python3");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
}
