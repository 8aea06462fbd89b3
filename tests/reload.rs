//! Live reload: the `bavard` binary with a configuration file, sent
//! SIGHUP (or an operator's REHASH, in either dialect) after the file
//! changed, greets new line users with the new welcome text, and listens
//! where the new file says (listeners added, removed, moved; connections
//! made through a removed one stay); after a broken file, or a listener
//! that cannot be bound, it keeps the running configuration and says why.

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
    let listeners = format!("line = \"{line}\"\nirc = \"{irc}\"\nhttp = \"off\"\n");
    write_full(path, db, &listeners, welcome, "");
}

/// A configuration with `listeners` (the body of `[listeners]`) and
/// `extra` sections.
fn write_full(path: &Path, db: &Path, listeners: &str, welcome: &str, extra: &str) {
    let text = format!(
        "welcome = \"{welcome}\"\n\
         [listeners]\n{listeners}\
         [storage]\npath = \"{}\"\n\
         [[oper]]\nname = \"admin\"\npassword = \"{HASH}\"\n{extra}",
        db.display()
    );
    std::fs::write(path, text).expect("write the config");
}

/// Waits until nothing accepts connections on `addr` any more.
fn refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr} still accepts connections");
}

/// Waits until `GET /healthz` on `addr` answers 200.
fn healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            last.clear();
            let _ = std::io::Read::read_to_string(&mut s, &mut last);
            if last.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no /healthz on {addr}; last: {last:?}");
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
        Running::start_with("", "")
    }

    /// [`Running::start`] with `more` in `[listeners]` and `extra`
    /// sections in the file.
    fn start_with(more: &str, extra: &str) -> Running {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (line, irc) = (free_addr(), free_addr());
        let cfg = dir.path().join("bavard.toml");
        let listeners = format!("line = \"{line}\"\nirc = \"{irc}\"\nhttp = \"off\"\n{more}");
        let db = dir.path().join("bavard.db");
        write_full(&cfg, &db, &listeners, "first welcome", extra);
        let log = std::fs::File::create(dir.path().join("bavard.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_bavard"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
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

    /// What the server logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bavard.log")).unwrap_or_default()
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

/// Registers an IRC client as `nick`.
fn irc_user(addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::connect(addr);
    c.send(&format!("NICK {nick}"));
    c.send(&format!("USER {nick} 0 * :{nick}"));
    c.until(" 001 ");
    c
}

#[test]
fn sighup_adds_removes_and_moves_listeners() {
    let server = Running::start();
    let (cfg, db, line, irc) = (server.cfg(), server.db(), server.line, server.irc);
    let mut stays = irc_user(irc, "stays");

    // The IRC listener goes, an HTTP one comes.
    let http = free_addr();
    let listeners = format!("line = \"{line}\"\nirc = \"off\"\nhttp = \"{http}\"\n");
    write_full(&cfg, &db, &listeners, "second welcome", "");
    hangup(&server.child);
    healthy(http);
    refused(irc);
    greeted_with(line, "[server] second welcome");
    // A connection made through the removed listener stays.
    stays.send("PING :still");
    stays.until("PONG");

    // The line listener moves: the old address stops, the new one greets.
    let line2 = free_addr();
    let listeners = format!("line = \"{line2}\"\nirc = \"off\"\nhttp = \"{http}\"\n");
    write_full(&cfg, &db, &listeners, "third welcome", "");
    hangup(&server.child);
    greeted_with(line2, "[server] third welcome");
    refused(line);
    healthy(http);
    let log = server.log();
    assert!(log.contains("stopped listening"), "{log}");
}

/// A new listener whose address is taken: the whole file is refused (its
/// welcome text too, and the listener it removes keeps listening), and the
/// operator and the log say why.
#[test]
fn a_listener_that_cannot_bind_keeps_the_running_configuration() {
    let server = Running::start();
    let (cfg, db, line, irc) = (server.cfg(), server.db(), server.line, server.irc);
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr");

    let mut op = irc_user(irc, "op");
    op.send("OPER admin secret");
    op.until(" 381 ");
    let listeners = format!("line = \"off\"\nirc = \"{irc}\"\nhttp = \"{taken_addr}\"\n");
    write_full(&cfg, &db, &listeners, "second welcome", "");
    op.send("REHASH");
    let fail = op.until("FAIL REHASH CONFIG_INVALID");
    assert!(
        fail.contains(&format!(
            "keeping the running one: cannot listen on {taken_addr} (http): "
        )),
        "{fail}"
    );
    greeted_with(line, "[server] first welcome");
    let log = server.log();
    assert!(
        log.contains("configuration not reloaded") && log.contains("cannot listen on"),
        "{log}"
    );

    // Once the address is free, the same file loads.
    drop(taken);
    op.send("REHASH");
    op.until(" 382 ");
    healthy(taken_addr);
    refused(line);
}

/// TLS listeners follow the file too, with the running certificate; TLS
/// itself is decided at start.
#[test]
fn tls_listeners_are_added_on_reload() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).expect("write");
    std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).expect("write");
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    );
    let (line_tls, irc_tls) = (free_addr(), free_addr());
    let tls_listeners = format!("line_tls = \"{line_tls}\"\nirc_tls = \"{irc_tls}\"\n");

    // Started without [tls], a reload that adds it starts no TLS listener
    // (and says it needs a restart).
    let server = Running::start();
    let listeners = format!(
        "line = \"{}\"\nirc = \"{}\"\nhttp = \"off\"\n{tls_listeners}",
        server.line, server.irc
    );
    write_full(
        &server.cfg(),
        &server.db(),
        &listeners,
        "second welcome",
        &tls,
    );
    hangup(&server.child);
    greeted_with(server.line, "[server] second welcome");
    assert!(
        TcpStream::connect(irc_tls).is_err(),
        "TLS started by a reload"
    );
    assert!(
        server.log().contains("[tls] is read at start"),
        "{}",
        server.log()
    );
    drop(server);

    // Started with [tls] and no TLS listener, a reload adds both.
    let server = Running::start_with("line_tls = \"off\"\nirc_tls = \"off\"\n", &tls);
    let listeners = format!(
        "line = \"{}\"\nirc = \"{}\"\nhttp = \"off\"\n{tls_listeners}",
        server.line, server.irc
    );
    write_full(
        &server.cfg(),
        &server.db(),
        &listeners,
        "first welcome",
        &tls,
    );
    hangup(&server.child);
    let ca = ck.cert.der().clone();
    let welcome = tls_first_line(line_tls, ca.clone(), b"");
    assert_eq!(welcome, "[server] first welcome");
    let reply = tls_first_line(irc_tls, ca, b"PING :tls\r\n");
    assert!(reply.contains("PONG") && reply.ends_with(":tls"), "{reply}");
}

/// Connects over TLS to `addr` (trusting `ca`), sends `send`, and returns
/// the first line that arrives; retried until the listener is up.
fn tls_first_line(
    addr: SocketAddr,
    ca: rustls::pki_types::CertificateDer<'static>,
    send: &[u8],
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("root");
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let cfg = std::sync::Arc::new(cfg);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tcp = match TcpStream::connect(addr) {
            Ok(t) => t,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => panic!("nothing listens on {addr}: {e}"),
        };
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(cfg.clone(), name).expect("client");
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(send).expect("write");
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("read");
        return line.trim_end().to_string();
    }
}
