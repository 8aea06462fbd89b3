//! Integration tests of the echo lab's servers: real TCP on 127.0.0.1, each
//! scenario run against both concurrency models. The `bavard echo` command's
//! signal handling is tested with the binary, in the root's tests/echo_cli.rs.

use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bavard_echo::{self as echo, Model};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, oneshot};
use tokio::time::timeout;

/// Upper bound for any single scenario, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(20);

/// A running server and the means to stop it.
struct Server {
    addr: SocketAddr,
    handle: Handle,
}

enum Handle {
    Threads(Arc<AtomicBool>, std::thread::JoinHandle<io::Result<()>>),
    Async(oneshot::Sender<()>, tokio::task::JoinHandle<io::Result<()>>),
}

impl Server {
    /// Starts `model` on 127.0.0.1 with an ephemeral port.
    fn start(model: Model) -> Server {
        raise_fd_limit();
        let listener = echo::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        Server::start_on(model, listener)
    }

    fn start_on(model: Model, listener: std::net::TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let handle = match model {
            Model::Threads => {
                let stop = Arc::new(AtomicBool::new(false));
                let flag = Arc::clone(&stop);
                let h = std::thread::spawn(move || echo::serve_threads(listener, flag));
                Handle::Threads(stop, h)
            }
            Model::Async => {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (tx, rx) = oneshot::channel::<()>();
                let h = tokio::spawn(echo::serve_async(listener, async {
                    let _ = rx.await;
                }));
                Handle::Async(tx, h)
            }
        };
        Server { addr, handle }
    }

    /// Stops the server and checks it returned `Ok` within a few seconds.
    async fn stop(self) {
        let res = match self.handle {
            Handle::Threads(stop, h) => {
                stop.store(true, Ordering::SeqCst);
                timeout(
                    Duration::from_secs(5),
                    tokio::task::spawn_blocking(move || h.join().unwrap()),
                )
                .await
                .expect("threads server did not stop in time")
                .unwrap()
            }
            Handle::Async(tx, h) => {
                let _ = tx.send(());
                timeout(Duration::from_secs(5), h)
                    .await
                    .expect("async server did not stop in time")
                    .unwrap()
            }
        };
        res.expect("server returned an error");
    }
}

/// 500 client sockets plus 500 server sockets per model, with tests running in
/// parallel, can pass a 1024 soft limit: raise it to the hard limit.
fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        bavard_sockets::raise_fd_limit();
    });
}

/// Deterministic pseudo-random bytes (xorshift64*), all 256 values likely.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Writes `data` while reading the same amount back concurrently (so neither
/// side's socket buffers can fill up and deadlock), returns what came back.
async fn roundtrip(stream: TcpStream, data: Vec<u8>) -> (TcpStream, Vec<u8>) {
    let (mut r, mut w) = stream.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w
    });
    let mut back = vec![0u8; len];
    r.read_exact(&mut back).await.unwrap();
    let w = writer.await.unwrap();
    (r.reunite(w).unwrap(), back)
}

/// Half-closes `stream` and reads until EOF.
async fn finish(mut stream: TcpStream) -> Vec<u8> {
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    rest
}

// ---------------------------------------------------------------------------
// Scenarios, each run for both models by `both_models!` below.
// ---------------------------------------------------------------------------

/// Binary data (every byte value, invalid UTF-8) and 1 MiB come back exactly.
async fn binary_and_large(model: Model) {
    let srv = Server::start(model);
    let s = TcpStream::connect(srv.addr).await.unwrap();

    let mut binary: Vec<u8> = (0..=255u8).collect();
    binary.extend_from_slice(b"\xff\xfe\xc0\x80\xed\xa0\x80 not utf-8 \0\r\n");
    let (s, back) = roundtrip(s, binary.clone()).await;
    assert_eq!(back, binary);

    let big = noise(1 << 20, 1);
    let (s, back) = roundtrip(s, big.clone()).await;
    assert!(back == big, "1 MiB payload differs");

    assert!(finish(s).await.is_empty());
    srv.stop().await;
}

/// Fragments sent with pauses: each comes back on its own (ping-pong), and a
/// pipelined burst of fragments comes back concatenated, in order.
async fn fragments(model: Model) {
    let srv = Server::start(model);
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let frags: [&[u8]; 5] = [b"he", b"llo", b" wor", b"ld\n", b"\xff\x00\xfe"];

    for f in frags {
        s.write_all(f).await.unwrap();
        let mut back = vec![0u8; f.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, f);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    for f in frags {
        s.write_all(f).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = frags.concat();
    let mut back = vec![0u8; all.len()];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, all);

    assert!(finish(s).await.is_empty());
    srv.stop().await;
}

/// 500 connections open at once, each with its own payload, none crossed.
async fn concurrent_500(model: Model) {
    const N: usize = 500;
    let srv = Server::start(model);
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        let addr = srv.addr;
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let s = TcpStream::connect(addr).await.unwrap();
            // Every connection is open before anyone talks, so the server
            // really holds N at once.
            barrier.wait().await;
            let mut payload = format!("client {i}:").into_bytes();
            payload.extend(noise(100 + i * 7, i as u64));
            let (s, back) = roundtrip(s, payload.clone()).await;
            assert!(back == payload, "client {i} got someone else's bytes");
            assert!(finish(s).await.is_empty());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    srv.stop().await;
}

/// After the client shuts down its write side, everything still pending is
/// echoed, then the server closes (EOF).
async fn half_close(model: Model) {
    let srv = Server::start(model);

    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"bye").await.unwrap();
    assert_eq!(finish(s).await, b"bye");

    // Larger than the socket buffers: still in flight when the FIN is sent.
    let data = noise(256 * 1024, 7);
    let (mut r, mut w) = TcpStream::connect(srv.addr).await.unwrap().into_split();
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert!(back == expected, "half-close lost or changed bytes");
    drop(writer.await.unwrap());

    srv.stop().await;
}

/// Connections reset by their peer (SO_LINGER 0, then close) do not disturb
/// the others or the server.
async fn reset(model: Model) {
    let srv = Server::start(model);
    let s = TcpStream::connect(srv.addr).await.unwrap();
    let (s, back) = roundtrip(s, b"before".to_vec()).await;
    assert_eq!(back, b"before");

    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        // Reset with no data exchanged.
        let c = std::net::TcpStream::connect(addr).unwrap();
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
        // Reset while the server has echo data in flight towards us (we never
        // read), so it is likely blocked in a write or has unread bytes.
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let _ = c.write_all(&noise(64 * 1024, 3));
        std::thread::sleep(Duration::from_millis(50));
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
        // Reset mid-exchange after reading part of the echo.
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"0123456789").unwrap();
        let mut two = [0u8; 2];
        c.read_exact(&mut two).unwrap();
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let (s, back) = roundtrip(s, b"after".to_vec()).await;
    assert_eq!(back, b"after");
    assert!(finish(s).await.is_empty());
    let fresh = TcpStream::connect(srv.addr).await.unwrap();
    let (fresh, back) = roundtrip(fresh, b"fresh".to_vec()).await;
    assert_eq!(back, b"fresh");
    assert!(finish(fresh).await.is_empty());
    srv.stop().await;
}

/// Stopping closes the listener and the connections still open.
async fn stop_closes_connections(model: Model) {
    let srv = Server::start(model);
    let addr = srv.addr;
    let idle = TcpStream::connect(addr).await.unwrap();
    let (mut idle, back) = roundtrip(idle, b"x".to_vec()).await;
    assert_eq!(back, b"x");

    srv.stop().await;

    let mut buf = [0u8; 16];
    match timeout(Duration::from_secs(2), idle.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("unexpected {n} bytes after stop"),
        Err(_) => panic!("connection still open after stop"),
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );
}

macro_rules! both_models {
    ($($name:ident),* $(,)?) => {
        mod threads {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    tokio::time::timeout(super::LIMIT, super::$name(super::Model::Threads))
                        .await
                        .expect("scenario timed out");
                }
            )*
        }
        mod async_model {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    tokio::time::timeout(super::LIMIT, super::$name(super::Model::Async))
                        .await
                        .expect("scenario timed out");
                }
            )*
        }
    };
}

both_models!(
    binary_and_large,
    fragments,
    concurrent_500,
    half_close,
    reset,
    stop_closes_connections,
);

// ---------------------------------------------------------------------------
// Model-independent checks.
// ---------------------------------------------------------------------------

/// `[::]` accepts IPv4 and IPv6 clients on one socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_bind() {
    let unspecified = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0);
    let listener = match echo::bind_listener(unspecified, 128) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipping: cannot bind [::]: {e}");
            return;
        }
    };
    let port = listener.local_addr().unwrap().port();
    let srv = Server::start_on(Model::Async, listener);
    for host in ["127.0.0.1", "::1"] {
        let addr = SocketAddr::new(host.parse().unwrap(), port);
        let s = match TcpStream::connect(addr).await {
            Ok(s) => s,
            // No loopback IPv6 here: only the IPv4 half can be checked.
            Err(e) if host == "::1" => {
                eprintln!("skipping ::1: {e}");
                continue;
            }
            Err(e) => panic!("IPv4 client refused on [::]: {e}"),
        };
        let (s, back) = roundtrip(s, host.as_bytes().to_vec()).await;
        assert_eq!(back, host.as_bytes());
        assert!(finish(s).await.is_empty());
    }
    srv.stop().await;
}
