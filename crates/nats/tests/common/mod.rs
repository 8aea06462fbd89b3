//! What the bus and account tests share.

// Each test file uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use bavard_nats::BusConfig;
use bavard_nats::harness::NatsCluster;

/// The lease the tests' nodes run with.
pub const LEASE: Duration = Duration::from_secs(1);

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
