//! The `sysgp` binary: parse the command line, set up logging, hand over.

use std::process::ExitCode;

/// sled allocates for every write; mimalloc makes its writes about twice as fast as
/// the system allocator (measured on the store's write path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use sysgp::cli::{Cli, Command};
use sysgp::{admin_cli, commands, config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let vars = match config::gather_vars(cli.env_file.as_deref()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("sysgp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let debug = vars.get("DEBUG").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let default_level = if debug { "debug" } else { "info" };
    // Checked before the logger starts, so a bad filter is refused with our one message
    // rather than env_logger's warning.
    if let Err(e) = config::check_log_filter(vars.get("RUST_LOG").map(String::as_str)) {
        eprintln!("sysgp: {e}");
        return ExitCode::FAILURE;
    }
    let log_filter = vars.get("RUST_LOG").cloned().unwrap_or_else(|| default_level.to_owned());
    env_logger::Builder::new().parse_filters(&log_filter).format_timestamp_millis().init();
    match cli.command {
        Command::Serve => match config::Config::from_vars(&vars) {
            Ok(c) => commands::serve(c),
            Err(e) => {
                eprintln!("sysgp: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Simulator(args) => commands::simulator(args),
        Command::Demo(args) => commands::demo(args),
        Command::Check(args) if args.live => admin_cli::check_live(&vars),
        Command::Check(args) => commands::check(args, &vars),
        Command::User(cmd) => admin_cli::user(cmd, &vars),
        Command::Audit(cmd) => admin_cli::audit(cmd, &vars),
        Command::Backup(args) => admin_cli::backup(args, &vars),
        Command::Restore(args) => admin_cli::restore(args, &vars),
    }
}
