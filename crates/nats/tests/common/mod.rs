//! What the bus and account tests share.

// Each test file uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use bavard_nats::BusConfig;
use bavard_nats::harness::NatsCluster;

/// The lease the tests' nodes run with.
pub const LEASE: Duration = Duration::from_secs(1);

/// One test of a file at a time: each starts three nats-servers, and on
/// a small machine JetStream's elections and the 1 s leases of several
/// at once run late.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn; held until the test ends.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Logs to the test's output when RUST_LOG asks for it.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node named `node` on `cluster`, three copies, a [`LEASE`].
pub fn config(cluster: &NatsCluster, node: &str) -> BusConfig {
    BusConfig {
        urls: cluster.urls(),
        node: node.to_string(),
        replicas: 3,
        lease: LEASE,
    }
}
