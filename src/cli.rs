//! Command-line interface (clap): `serve`, `simulator`, `demo`, `check`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// sysgp: mobile-money back office.
#[derive(Parser, Debug)]
#[command(name = "sysgp", version, about)]
pub struct Cli {
    /// Read variables from this file (default: /etc/sysgp/sysgp.env when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service (configuration from the environment, SPEC §9).
    Serve,
    /// Run the Mojaloop SDK simulator.
    Simulator(SimulatorArgs),
    /// One command to see everything: own data directory and key, simulator, demo wallets.
    Demo(DemoArgs),
    /// Check every ledger invariant of a data directory.
    Check(CheckArgs),
}

/// `sysgp simulator`.
#[derive(clap::Args, Debug)]
pub struct SimulatorArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:4001")]
    pub bind: SocketAddr,
    /// Which acceptances the client must send: none (auto-accept both), party, quote, both.
    #[arg(long, default_value = "none")]
    pub accept: String,
    /// Delay of every call, in milliseconds (concurrent calls overlap).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability (0–1) of a random 5105 failure at the transfer stage.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Seed of the random failures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Append committed transfers to this file and reload it at start.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// `sysgp demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Listen address of the service.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Data directory (default: a fresh directory under the system temp dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `sysgp check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Data directory (default: SYSGP_DATA_DIR or ./data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}
