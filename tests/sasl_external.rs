//! SASL EXTERNAL over a real TLS listener: a client certificate added
//! with `NickServ CERT ADD` logs in; an unknown one fails, and its
//! failures are throttled like wrong passwords.

use std::net::SocketAddr;
use std::sync::Arc;

use bavard::config::{Config, TlsConfig};
use bavard::effects::Stores;
use bavard::net::{self, Kind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

mod support;
use support::TIMEOUT;

/// A self-signed certificate for `name` and its key.
fn identity(name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("rcgen");
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).expect("key");
    (ck.cert.der().clone(), key)
}

/// The fingerprint the server gives a certificate: SHA-256 of its DER, in
/// lowercase hex.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    bavard_core::scram::sha256(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A TLS server with an IRC listener; cancelled when the token drops.
struct TlsServer {
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    _token: tokio_util::sync::DropGuard,
    _dir: tempfile::TempDir,
}

async fn start(cfg: Config) -> TlsServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write");
    let cfg = Config {
        tls: Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        }),
        ..cfg
    };
    let tls = Arc::new(net::tls::Tls::new(cert, key).expect("tls"));
    let l = net::listen_with(Kind::Irc, true, "127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = l.socket.local_addr().expect("addr");
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(
        async move { net::run(Arc::new(cfg), vec![l], Some(tls), Stores::memory(), t).await },
    );
    TlsServer {
        addr,
        ca: ck.cert.der().clone(),
        _token: token.drop_guard(),
        _dir: dir,
    }
}

/// An IRC client over TLS, showing `identity` if given.
struct Client {
    s: BufReader<TlsStream<TcpStream>>,
}

impl Client {
    async fn connect(
        server: &TlsServer,
        identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    ) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.ca.clone()).expect("root");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let cfg = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(vec![cert], key)
                .expect("client cert"),
            None => builder.with_no_client_auth(),
        };
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .expect("handshake");
        Client {
            s: BufReader::new(s),
        }
    }

    async fn send(&mut self, line: &str) {
        let s = self.s.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        s.flush().await.expect("flush");
    }

    /// Reads lines until one has `want` as its command; returns every line
    /// read, that one last.
    async fn until(&mut self, want: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let mut l = String::new();
            let n = tokio::time::timeout(TIMEOUT, self.s.read_line(&mut l))
                .await
                .unwrap_or_else(|_| panic!("no {want} in {seen:?}"))
                .expect("read");
            assert!(n > 0, "closed before {want}: {seen:?}");
            let l = l.trim_end().to_string();
            let command = l
                .split(' ')
                .find(|w| !w.starts_with(':') && !w.starts_with('@'))
                .unwrap_or("")
                .to_string();
            seen.push(l);
            if command == want {
                return seen;
            }
        }
    }

    /// Registers as `nick` (without SASL).
    async fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send("USER u 0 * :u").await;
        self.until("001").await;
    }

    /// Runs SASL EXTERNAL before registration; the lines up to its end
    /// (903 or 904).
    async fn external(&mut self) -> String {
        self.send("CAP REQ sasl").await;
        self.until("CAP").await;
        self.send("AUTHENTICATE EXTERNAL").await;
        let first = self.until("AUTHENTICATE").await;
        assert_eq!(first.last().map(String::as_str), Some("AUTHENTICATE +"));
        self.send("AUTHENTICATE +").await;
        let mut got = Vec::new();
        loop {
            let mut l = String::new();
            tokio::time::timeout(TIMEOUT, self.s.read_line(&mut l))
                .await
                .expect("an answer")
                .expect("read");
            got.push(l.trim_end().to_string());
            if l.contains(" 903 ") || l.contains(" 904 ") {
                return got.join("\n");
            }
        }
    }
}

#[tokio::test]
async fn external_logs_in_with_an_added_certificate() {
    let server = start(Config::default()).await;
    let (cert, key) = identity("alice");
    let fp = fingerprint(&cert);

    // Not yet added: no account knows this certificate.
    let mut c = Client::connect(&server, Some((cert.clone(), key.clone_key()))).await;
    let text = c.external().await;
    assert!(text.contains(" 904 "), "{text}");

    // alice registers and adds the certificate of her connection.
    let mut c = Client::connect(&server, Some((cert.clone(), key.clone_key()))).await;
    c.register("alice").await;
    c.send("PRIVMSG NickServ :REGISTER sesame").await;
    c.send("PRIVMSG NickServ :CERT ADD").await;
    c.send("PING :added").await;
    let added = c.until("PONG").await;
    assert!(
        added
            .iter()
            .any(|l| l.ends_with(&format!(":Added certificate fingerprint {fp}"))),
        "{added:?}"
    );

    // A new connection with it logs in before registering, as any nick.
    let mut c = Client::connect(&server, Some((cert, key))).await;
    let text = c.external().await;
    assert!(text.contains(" 900 * *!*@127.0.0.1 alice :"), "{text}");
    assert!(text.contains(" 903 "), "{text}");
    c.send("CAP END").await;
    c.register("someone").await;
    c.send("WHOIS someone").await;
    let whois = c.until("318").await;
    assert!(
        whois
            .iter()
            .any(|l| l.contains(" 330 someone someone alice ")),
        "{whois:?}"
    );

    // Without a certificate, EXTERNAL fails at once.
    let mut c = Client::connect(&server, None).await;
    c.send("CAP REQ sasl").await;
    c.until("CAP").await;
    c.send("AUTHENTICATE EXTERNAL").await;
    c.until("904").await;
}

/// An unknown certificate fails `accounts.login_failures` times, then is
/// refused without a lookup, with the throttle's text; a password login
/// from the same address is refused too, as the address is throttled.
#[tokio::test]
async fn external_failures_are_throttled() {
    let mut cfg = Config::default();
    cfg.accounts.login_failures = 3;
    cfg.accounts.login_window = 60;
    let server = start(cfg).await;
    let (cert, key) = identity("mallory");
    let mut c = Client::connect(&server, Some((cert, key))).await;
    for _ in 0..3 {
        let text = c.external().await;
        assert!(
            text.contains(" 904 * :SASL authentication failed"),
            "{text}"
        );
    }
    let text = c.external().await;
    assert!(
        text.contains(" 904 * :Too many failed attempts, try again in 60 s"),
        "{text}"
    );
    c.send("AUTHENTICATE PLAIN").await;
    c.until("AUTHENTICATE").await;
    // "\0alice\0sesame"
    c.send("AUTHENTICATE AGFsaWNlAHNlc2FtZQ==").await;
    let lines = c.until("904").await;
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("Too many failed attempts")),
        "{lines:?}"
    );
}
