//! `bavard echo`: the lab's first part, a TCP echo server in two concurrency models.

use std::net::SocketAddr;

/// Which concurrency model serves the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// One OS thread per connection (the lab's 1.1).
    Threads,
    /// One event loop multiplexing every connection (the lab's 1.2, done right).
    Async,
}

/// Command-line arguments of `bavard echo`.
#[derive(Clone, Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "[::]:7777")]
    pub listen: SocketAddr,
    /// Concurrency model.
    #[arg(long, value_enum, default_value = "async")]
    pub model: Model,
}

/// Runs the echo server until SIGINT/SIGTERM.
pub fn run(_args: EchoArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
