//! `bavard bench`: a load generator for chat servers.

/// Command-line arguments of `bavard bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs a benchmark and prints its report.
pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
