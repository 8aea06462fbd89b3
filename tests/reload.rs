//! Live reload: the `bavard` binary with a configuration file, sent
//! SIGHUP (or an operator's REHASH, in either dialect) after the file
//! changed, greets new line users with the new welcome text; after a
//! broken file, it keeps the running configuration and says why.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (bound, then released for the server).
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// `secret`'s hash, from `bavard mkpasswd`.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$5tzf10mhUEdcYfqHO8pEcA$uSm20XK9QHbK22Hefg5/fjhLDWNXya6MiQnTDElBAOo";

fn write_config(path: &Path, db: &Path, line: SocketAddr, irc: SocketAddr, welcome: &str) {
    let text = format!(
        "welcome = \"{welcome}\"\n\
         [listeners]\nline = \"{line}\"\nirc = \"{irc}\"\nhttp = \"off\"\n\
         [storage]\npath = \"{}\"\n\
         [[oper]]\nname = \"admin\"\npassword = \"{HASH}\"\n",
        db.display()
    );
    std::fs::write(path, text).expect("write the config");
}

/// The first line a new line-dialect user gets, if the server answers.
fn greeting(addr: SocketAddr) -> Option<String> {
    let s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut l = String::new();
    BufReader::new(s).read_line(&mut l).ok()?;
    Some(l.trim_end().to_string())
}

/// Waits until a new user is greeted with `want`.
fn greeted_with(addr: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        last = greeting(addr);
        if last.as_deref() == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never greeted with {want:?}; last: {last:?}");
}

fn hangup(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on a process this test spawned and has not reaped.
    let r = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(r, 0, "kill -HUP");
}

/// A plain-socket client of either dialect.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            w: s.try_clone().expect("clone"),
            r: BufReader::new(s),
        }
    }

    fn send(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }

    /// Reads lines until one contains `want`, and returns it.
    fn until(&mut self, want: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let mut l = String::new();
            match self.r.read_line(&mut l) {
                Ok(n) if n > 0 => {}
                _ => panic!("no line with {want:?}; got {seen:?}"),
            }
            if l.contains(want) {
                return l.trim_end().to_string();
            }
            seen.push(l);
        }
    }
}

/// The binary serving `bavard.toml` in a directory of its own, with an
/// operator `admin` (password `secret`) and welcome text `first welcome`;
/// killed when the test ends, passed or not.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
    line: SocketAddr,
    irc: SocketAddr,
}

impl Running {
    fn start() -> Running {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (line, irc) = (free_addr(), free_addr());
        let cfg = dir.path().join("bavard.toml");
        write_config(
            &cfg,
            &dir.path().join("bavard.db"),
            line,
            irc,
            "first welcome",
        );
        let child = Command::new(env!("CARGO_BIN_EXE_bavard"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bavard");
        let server = Running {
            child,
            dir,
            line,
            irc,
        };
        greeted_with(line, "[server] first welcome");
        server
    }

    fn cfg(&self) -> std::path::PathBuf {
        self.dir.path().join("bavard.toml")
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("bavard.db")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_it_on_a_broken_file() {
    let mut server = Running::start();
    let (cfg, db, line, irc) = (server.cfg(), server.db(), server.line, server.irc);

    write_config(&cfg, &db, line, irc, "second welcome");
    hangup(&server.child);
    greeted_with(line, "[server] second welcome");

    std::fs::write(&cfg, "welcome = [not toml").expect("write");
    hangup(&server.child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "the server died"
    );
    greeted_with(line, "[server] second welcome");
}

#[test]
fn rehash_in_both_dialects_for_operators_only() {
    let server = Running::start();
    let (cfg, db, line, irc) = (server.cfg(), server.db(), server.line, server.irc);

    let mut op = Client::connect(irc);
    op.send("NICK op");
    op.send("USER op 0 * :op");
    op.until(" 001 ");
    op.send("REHASH");
    op.until(" 481 op :Permission Denied");
    op.send("OPER admin secret");
    op.until(" 381 ");

    write_config(&cfg, &db, line, irc, "second welcome");
    op.send("REHASH");
    op.until(" 382 op config :Rehashing");
    greeted_with(line, "[server] second welcome");

    std::fs::write(&cfg, "welcome = [not toml").expect("write");
    op.send("REHASH");
    let fail = op.until("FAIL REHASH CONFIG_INVALID");
    assert!(fail.contains("keeping the running one"), "{fail}");
    greeted_with(line, "[server] second welcome");

    // The line dialect.
    let mut liner = Client::connect(line);
    liner.until("[server] second welcome");
    liner.send("REHASH");
    liner.until("[server] Permission denied");
    liner.send("OPER admin secret");
    liner.until("[server] You are now");
    write_config(&cfg, &db, line, irc, "third welcome");
    liner.send("REHASH");
    liner.until("[server] Configuration reloaded");
    greeted_with(line, "[server] third welcome");
}
