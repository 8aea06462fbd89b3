//! Real `nats-server` clusters on loopback, for tests (this crate's and the
//! server's): each server with JetStream, its own store folder and free
//! ports, started, killed and restarted at will.
//!
//! Tests that need one call [`skip`] first: without a `nats-server` binary
//! they pass with a note, except under CI (`CI=true`), where the binary is
//! installed and its absence must fail.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long a cluster may take to start and elect its JetStream leader.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The `nats-server` binary: `$NATS_SERVER`, else `nats-server` on `PATH`,
/// else `/usr/sbin/nats-server` (Debian's package).
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/sbin/nats-server");
        p.is_file().then_some(p)
    })
}

/// Whether a `nats-server` binary was found.
pub fn available() -> bool {
    binary().is_some()
}

/// Whether the test named `test` must be skipped: true (with a note) when
/// there is no `nats-server`; panics instead under CI (`CI=true`).
pub fn skip(test: &str) -> bool {
    if available() {
        return false;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: nats-server not found (set NATS_SERVER or install it)");
    }
    eprintln!("{test}: skipped, nats-server not found");
    true
}

struct Server {
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A cluster of `nats-server`s (a lone server when started with 1). Drop
/// kills them all and removes their stores.
pub struct NatsCluster {
    servers: Vec<Server>,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// A port free now on 127.0.0.1 (the OS picks it; it is released at once,
/// for the server to bind).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl NatsCluster {
    /// Starts `n` servers with JetStream and waits until the cluster can
    /// create a replicated stream (its JetStream meta leader is elected).
    pub async fn start(n: usize) -> anyhow::Result<NatsCluster> {
        if n == 0 {
            bail!("a cluster of no server");
        }
        let bin = binary().context("nats-server not found")?;
        let dir = tempfile::tempdir().context("a folder for the servers")?;
        let ports = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<Vec<(u16, u16)>>>()?;
        let mut servers = Vec::with_capacity(n);
        for (i, &(port, cluster_port)) in ports.iter().enumerate() {
            let store = dir.path().join(format!("store{i}"));
            let mut conf = String::new();
            writeln!(conf, "server_name: s{i}")?;
            writeln!(conf, "listen: 127.0.0.1:{port}")?;
            writeln!(
                conf,
                "jetstream {{\n  store_dir: {:?}\n  max_mem: 64M\n  max_file: 1G\n}}",
                store.display().to_string()
            )?;
            if n > 1 {
                let routes: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, (_, c))| format!("nats-route://127.0.0.1:{c}"))
                    .collect();
                writeln!(
                    conf,
                    "cluster {{\n  name: bavard\n  listen: 127.0.0.1:{cluster_port}\n  routes: [{}]\n}}",
                    routes.join(", ")
                )?;
            }
            let config = dir.path().join(format!("s{i}.conf"));
            std::fs::write(&config, conf).context("writing a server's config")?;
            servers.push(Server {
                port,
                config,
                log: dir.path().join(format!("s{i}.log")),
                child: None,
            });
        }
        let mut cluster = NatsCluster { servers, bin, dir };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        for i in 0..n {
            cluster.wait_port(i).await?;
        }
        cluster.wait_jetstream().await?;
        Ok(cluster)
    }

    /// The client urls, one a server.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The folder of the servers' configs, stores and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Server `i`'s log so far (for a failing test to show).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.servers[i].log).unwrap_or_default()
    }

    /// Kills server `i` (SIGKILL: a crash, no goodbye to its routes).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again, on the same ports with the same store; waits
    /// until it accepts connections (not until it caught up).
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_port(i).await
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let s = &mut self.servers[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log)
            .context("a server's log")?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&s.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        s.child = Some(child);
        Ok(())
    }

    async fn wait_port(&mut self, i: usize) -> anyhow::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.servers[i].port));
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.servers[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("nats-server s{i} exited ({status}):\n{}", self.log(i));
            }
            if Instant::now() >= deadline {
                bail!("nats-server s{i} not listening:\n{}", self.log(i));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a stream replicated on every server (up to 3) can be
    /// made, then removes it.
    async fn wait_jetstream(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        let replicas = self.servers.len().min(3);
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.try_stream(replicas).await {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("JetStream not ready after {READY_WITHIN:?}: {last}")
    }

    async fn try_stream(&self, replicas: usize) -> anyhow::Result<()> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(self.urls()[0].as_str())
            .await?;
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "HARNESS_READY".to_string(),
            subjects: vec!["harness.ready".to_string()],
            storage: async_nats::jetstream::stream::StorageType::Memory,
            num_replicas: replicas,
            ..Default::default()
        })
        .await?;
        js.delete_stream("HARNESS_READY").await?;
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
