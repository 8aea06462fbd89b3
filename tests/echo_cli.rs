//! `bavard echo` as a command: the binary prints its address, echoes, and
//! stops cleanly on SIGTERM and SIGINT, for both models. The servers
//! themselves are tested in crates/echo/tests/echo.rs.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// The binary prints its address, echoes, and exits with status 0 on SIGTERM
/// and SIGINT, for both models.
#[test]
fn cli_exits_cleanly_on_signals() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    for model in ["threads", "async"] {
        for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_bavard"))
                .args(["echo", "--listen", "127.0.0.1:0", "--model", model])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let prefix = "echo listening on ";
            assert!(line.starts_with(prefix), "unexpected banner {line:?}");
            let addr: SocketAddr = line[prefix.len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(line.contains(&format!("(model {model})")), "{line:?}");

            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(b"ping\xff").unwrap();
            let mut back = [0u8; 5];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"ping\xff");

            // SAFETY: signalling our own child, whose pid we hold.
            let pid = i32::try_from(child.id()).unwrap();
            assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let status = loop {
                if let Some(st) = child.try_wait().unwrap() {
                    break st;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{model}: no exit within 5 s of {name}");
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(status.success(), "{model}: {name} gave {status}");
            // The still-open client sees the server close it.
            let mut rest = Vec::new();
            assert!(matches!(c.read_to_end(&mut rest), Ok(0) | Err(_)));
        }
    }
}
