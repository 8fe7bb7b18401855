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
    /// Manage users (through the running server's admin socket, or on the store).
    #[command(subcommand)]
    User(UserCommand),
    /// Verify or rotate the audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Copy every tree and bulk file into FILE (online: writes pause, none is refused).
    Backup(BackupArgs),
    /// Fill an empty data directory from a backup, then check it.
    Restore(BackupArgs),
}

/// `sysgp backup FILE` / `sysgp restore FILE`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Data directory (default: SYSGP_DATA_DIR or ./data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `sysgp user …`: the password comes from a prompt, or from stdin's first line when
/// stdin is not a terminal; never from an argument.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// User name.
        name: String,
        /// admin, maker, checker or viewer.
        #[arg(long)]
        role: String,
    },
    /// List users.
    List,
    /// Set a user's password.
    Passwd {
        /// User name.
        name: String,
    },
    /// Disable a user (revokes their sessions).
    Disable {
        /// User name.
        name: String,
    },
}

/// `sysgp audit …`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify the whole chain with the current SECRET_KEY.
    Verify,
    /// After changing SECRET_KEY (service stopped): append a KEY_ROTATED entry sealed
    /// with both keys.
    Rotate {
        /// File holding the previous SECRET_KEY (first line).
        #[arg(long, value_name = "FILE")]
        old_key_file: PathBuf,
    },
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
    /// Ask the running server (through its admin socket) instead of opening the store.
    #[arg(long)]
    pub live: bool,
}
