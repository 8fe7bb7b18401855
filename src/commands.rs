//! What each command does, once the CLI is parsed and logging is set up.

use std::collections::HashMap;
use std::process::ExitCode;

use crate::app;
use crate::auth::audit::{self, AuditEntry, AuditKey};
use crate::check::{check_store, ChainVerdict, Verdict};
use crate::cli::{CheckArgs, DemoArgs, SimulatorArgs};
use crate::config::Config;
use crate::sdk::simulator::{self, Accept, SimulatorConfig};
use crate::store::{Store, StoreError, TreeId};

/// Prints a start-up error the way operators read it and returns failure.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("sysgp: {message}");
    ExitCode::FAILURE
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("sysgp-http").build()
}

/// Resolves on SIGTERM or SIGINT.
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `sysgp serve`.
pub fn serve(config: Config) -> ExitCode {
    if let Err(e) = config.check_for_serve() {
        return fail(e);
    }
    for w in config.key_warnings.iter().chain(&config.warnings) {
        log::warn!("{w}");
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async {
        let server = match app::start(&config).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        log::info!("sysgp {} serving on http://{}", env!("CARGO_PKG_VERSION"), server.addr);
        crate::notify::notify("READY=1\nSTATUS=serving");
        stop_signal().await;
        crate::notify::notify("STOPPING=1");
        log::info!("stopping: no new requests or bulk items; finishing in-flight work");
        // In-flight SDK calls end within their own timeout; five seconds more to commit.
        let grace = config.sdk_timeout + std::time::Duration::from_secs(5);
        match tokio::time::timeout(grace, server.stop()).await {
            Ok(()) => log::info!("stopped: every acknowledged change is durable"),
            Err(_) => log::warn!("stop took longer than {} s; exiting with work still in flight", grace.as_secs()),
        }
        ExitCode::SUCCESS
    })
}

/// `sysgp simulator`.
pub fn simulator(args: SimulatorArgs) -> ExitCode {
    let Some(accept) = Accept::parse(&args.accept) else {
        return fail(format!("--accept must be none, party, quote or both, got {:?}", args.accept));
    };
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return fail("--fail-rate must be between 0 and 1");
    }
    let config = SimulatorConfig {
        accept,
        latency_ms: args.latency_ms,
        fail_rate: args.fail_rate,
        seed: args.seed,
        state_file: args.state,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.bind).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.bind)),
        };
        log::info!("SDK simulator listening on http://{} (accept {})", args.bind, accept.as_str());
        match simulator::serve(listener, config, stop_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

/// `sysgp check`.
pub fn check(args: CheckArgs, vars: &HashMap<String, String>) -> ExitCode {
    let config = match Config::from_vars(vars) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let dir = args.data_dir.unwrap_or(config.data_dir);
    if !dir.join("db").exists() {
        return fail(format!("{} is not a sysgp data directory", dir.display()));
    }
    if let Err(e) = crate::admin_cli::check_owner(&dir) {
        return fail(e);
    }
    let store = match Store::open(&dir, config.cache_mb) {
        Ok(s) => s,
        Err(StoreError::Locked(_)) => {
            return fail("the service is running on this data directory; use `sysgp check --live`")
        }
        Err(e) => return fail(e),
    };
    // The chain first: without SECRET_KEY it cannot be verified, which is reported
    // (and fails the check) after the invariants are printed.
    let audit = match &config.secret_key {
        Some(secret) => {
            let key = AuditKey::derive(secret.expose());
            match audit::verify(|| store.scan_forward::<AuditEntry>(TreeId::Audit), &key, None) {
                Ok(r) => ChainVerdict::from(&r),
                Err(e) => return fail(e),
            }
        }
        None => ChainVerdict::NoKey,
    };
    match check_store(&store) {
        Ok(report) => Verdict::new(&report, audit).print(),
        Err(e) => fail(e),
    }
}

/// `sysgp demo`.
pub fn demo(args: DemoArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async {
        let demo = match crate::demo::start(args.bind, args.data_dir).await {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        println!("{}", demo.banner());
        stop_signal().await;
        demo.stop().await;
        ExitCode::SUCCESS
    })
}
