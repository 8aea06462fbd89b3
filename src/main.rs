use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bavard", version, about = "A chat server for nc and every IRC client")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Echo server (the lab's first part).
    Echo(bavard::echo::EchoArgs),
    /// Load generator.
    Bench(bavard::bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Echo(a) => bavard::echo::run(a),
        Cmd::Bench(a) => bavard::bench::run(a),
    }
}
