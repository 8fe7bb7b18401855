//! `sysgp user …`, `sysgp audit …` and `sysgp check --live`: through the running
//! server's admin socket when it answers, directly on the store otherwise (sled allows
//! one process), refusing to open the store as anyone but the data directory's owner.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::admin::{self, AdminRequest};
use crate::auth::Actor;
use crate::check::Verdict;
use crate::cli::{AuditCommand, UserCommand};
use crate::config::{Config, SecretKey};
use crate::engine::{Engine, Limits};
use crate::sdk::{SdkClient, SdkMode};
use crate::store::Store;

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("sysgp: {message}");
    ExitCode::FAILURE
}

/// Reads a password: a prompt (asked twice) on a terminal, else stdin's first line (an
/// identical second line is accepted as confirmation).
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the passwords differ".into());
        }
        return Ok(first);
    }
    let mut lines = std::io::stdin().lock().lines();
    let first = lines.next().ok_or("no password on stdin")?.map_err(|e| e.to_string())?;
    if let Some(Ok(second)) = lines.next() {
        if !second.is_empty() && second != first {
            return Err("the second line of stdin differs from the first".into());
        }
    }
    Ok(first)
}

/// The effective uid, from /proc (no unsafe code in this crate).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Refuses to open the store as another user than the data directory's owner (files
/// written as root would lock the service user out).
pub fn check_owner(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else { return Ok(()) };
    match effective_uid() {
        Some(uid) if uid != meta.uid() => Err(format!(
            "{} belongs to uid {}, but this command runs as uid {uid}; run it as the service user (e.g. with systemd-run or sudo -u)",
            dir.display(),
            meta.uid()
        )),
        _ => Ok(()),
    }
}

/// An engine on the store alone (no server running).
fn offline(config: &Config, secret: SecretKey) -> Result<Arc<Engine>, String> {
    check_owner(&config.data_dir)?;
    if !config.data_dir.join("db").exists() {
        return Err(format!("{} is not a sysgp data directory", config.data_dir.display()));
    }
    let store = Store::open(&config.data_dir, config.cache_mb).map_err(|e| e.to_string())?;
    let sdk = SdkClient::new("http://127.0.0.1:9", SdkMode::Auto, Duration::from_secs(1));
    let security = crate::auth::Security::new(
        secret,
        crate::auth::throttle::LoginThrottle::new(Default::default()),
        config.session_ttl,
        Vec::new(),
    )
    .map_err(|e| e.to_string())?;
    Ok(Engine::new(store, sdk, Limits { amount_max: config.amount_max, ..Limits::default() }, security))
}

/// Runs `req` through the socket, or on the store when no server answers.
fn run(config: &Config, req: AdminRequest) -> Result<Value, String> {
    if let Some(reply) = admin::send(&config.data_dir, &req).map_err(|e| format!("admin socket: {e}"))? {
        return if reply["ok"] == true {
            Ok(reply["result"].clone())
        } else {
            Err(format!(
                "{}: {}",
                reply["error"]["code"].as_str().unwrap_or("ERROR"),
                reply["error"]["message"].as_str().unwrap_or("")
            ))
        };
    }
    let secret = config.secret_key.clone().ok_or("SECRET_KEY: is required (it seals the audit chain)")?;
    let engine = offline(config, secret)?;
    crate::auth::check_audit_key(&engine.store, &engine.audit_key)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let actor = Actor::new(format!("cli:{}", effective_uid().unwrap_or(u32::MAX)));
    let result = rt.block_on(admin::execute(&engine, &actor, req)).map_err(|e| format!("{}: {}", e.code, e.message));
    close(engine);
    result
}

/// Drops the engine and waits until the store is closed (and durable).
fn close(engine: Arc<Engine>) {
    let closed = engine.store.writer.closed_signal();
    drop(engine);
    closed.wait(Duration::from_secs(10));
}

fn config(vars: &HashMap<String, String>) -> Result<Config, ExitCode> {
    Config::from_vars(vars).map_err(fail)
}

/// `sysgp user …`.
pub fn user(cmd: UserCommand, vars: &HashMap<String, String>) -> ExitCode {
    let config = match config(vars) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let req = match cmd {
        UserCommand::Add { name, role } => match read_password() {
            Ok(password) => AdminRequest::UserAdd { name, role, password },
            Err(e) => return fail(e),
        },
        UserCommand::List => AdminRequest::UserList,
        UserCommand::Passwd { name } => match read_password() {
            Ok(password) => AdminRequest::UserPasswd { name, password },
            Err(e) => return fail(e),
        },
        UserCommand::Disable { name } => AdminRequest::UserDisable { name },
    };
    let list = matches!(req, AdminRequest::UserList);
    match run(&config, req) {
        Ok(Value::Array(users)) if list => {
            for u in users {
                let state = if u["disabled"] == true { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<8} {state}",
                    u["username"].as_str().unwrap_or(""),
                    u["role"].as_str().unwrap_or("")
                );
            }
            ExitCode::SUCCESS
        }
        Ok(u) => {
            println!(
                "ok: {} ({}){}",
                u["username"].as_str().unwrap_or(""),
                u["role"].as_str().unwrap_or(""),
                if u["disabled"] == true { ", disabled" } else { "" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `sysgp check --live`.
pub fn check_live(vars: &HashMap<String, String>) -> ExitCode {
    let config = match config(vars) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let socket = admin::socket_path(&config.data_dir);
    match admin::send(&config.data_dir, &AdminRequest::Check) {
        Ok(Some(reply)) if reply["ok"] == true => match serde_json::from_value::<Verdict>(reply["result"].clone()) {
            Ok(verdict) => verdict.print(),
            Err(e) => fail(format!("the server's check reply is not understood ({e}); is it an older version?")),
        },
        Ok(Some(reply)) => fail(format!(
            "{}: {}",
            reply["error"]["code"].as_str().unwrap_or("ERROR"),
            reply["error"]["message"].as_str().unwrap_or("")
        )),
        Ok(None) => {
            fail(format!("no server answers on {}; use `sysgp check` on a stopped data directory", socket.display()))
        }
        Err(e) => fail(e),
    }
}

/// `sysgp audit …`.
pub fn audit(cmd: AuditCommand, vars: &HashMap<String, String>) -> ExitCode {
    let config = match config(vars) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cmd {
        AuditCommand::Verify => match run(&config, AdminRequest::AuditVerify) {
            Ok(report) if report["ok"] == true => {
                println!("ok: {} entries, the chain verifies", report["entries"]);
                ExitCode::SUCCESS
            }
            Ok(report) => fail(format!(
                "audit chain broken at seq {}: {}",
                report["first_bad"]["seq"],
                report["first_bad"]["reason"].as_str().unwrap_or("")
            )),
            Err(e) => fail(e),
        },
        AuditCommand::Rotate { old_key_file } => match rotate(&config, &old_key_file) {
            Ok(seq) => {
                println!("ok: KEY_ROTATED appended as entry {seq}; start the service with the new SECRET_KEY");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

fn rotate(config: &Config, old_key_file: &Path) -> Result<u64, String> {
    if admin::connect(&config.data_dir).is_some() {
        return Err("the service is running: stop it, rotate, then start it with the new SECRET_KEY".into());
    }
    let old = std::fs::read_to_string(old_key_file).map_err(|e| format!("{}: {e}", old_key_file.display()))?;
    let old = old.lines().next().unwrap_or("").trim().to_owned();
    let new = config.secret_key.clone().ok_or("SECRET_KEY: set the new key in the environment")?;
    let engine = offline(config, new)?;
    let seq = rotate_audit_key(&engine, old.as_bytes());
    close(engine);
    seq
}

/// Appends `KEY_ROTATED` switching the chain from `old_secret` to the engine's key.
pub fn rotate_audit_key(engine: &Arc<Engine>, old_secret: &[u8]) -> Result<u64, String> {
    let old = crate::auth::audit::AuditKey::derive(old_secret);
    let new = engine.audit_key.clone();
    let actor = format!("cli:{}", effective_uid().unwrap_or(u32::MAX));
    engine
        .store
        .writer
        .run_blocking(move |tx| crate::auth::audit::append_rotation(tx, &old, &new, &actor).map(|e| e.seq))
        .map_err(|e| e.to_string())
}

/// `sysgp backup FILE`: through the running server (online, the writer pauses) or on
/// the stopped store.
pub fn backup(args: crate::cli::BackupArgs, vars: &HashMap<String, String>) -> ExitCode {
    let mut config = match config(vars) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let out = match crate::backup::create_file(&args.file) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    match backup_to(&config, out, &args.file) {
        Ok((bytes, pause, online)) => {
            let how =
                if online { format!("online; writes paused {} ms", pause.as_millis()) } else { "offline".to_owned() };
            println!("ok: {bytes} bytes written to {} ({how})", args.file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Only the file this command created is removed.
            let _ = std::fs::remove_file(&args.file);
            fail(e)
        }
    }
}

fn backup_to(config: &Config, mut out: std::fs::File, file: &Path) -> Result<(u64, Duration, bool), String> {
    use std::io::Write;
    if let Some(mut stream) = admin::connect(&config.data_dir) {
        stream.write_all(b"{\"cmd\":\"backup\"}\n").map_err(|e| e.to_string())?;
        let bytes = std::io::copy(&mut stream, &mut out).map_err(|e| e.to_string())?;
        out.sync_all().map_err(|e| e.to_string())?;
        let pause =
            crate::backup::reported_pause(file).ok_or("the server's backup stream ended early (see its log)")?;
        return Ok((bytes, pause, true));
    }
    check_owner(&config.data_dir)?;
    // Opening a missing store would create an empty one, and back that up.
    if !config.data_dir.join("db").exists() {
        return Err(format!("{} is not a sysgp data directory", config.data_dir.display()));
    }
    let store = Store::open(&config.data_dir, config.cache_mb).map_err(|e| e.to_string())?;
    let report = crate::backup::write_backup(&store, &mut out, || Ok(None)).map_err(|e| e.to_string())?;
    out.sync_all().map_err(|e| e.to_string())?;
    if !store.close(Duration::from_secs(10)) {
        log::warn!("the data directory's store did not close within 10 s after the backup (the backup is complete)");
    }
    Ok((report.bytes, report.pause, false))
}

/// `sysgp restore FILE`: only into an empty directory, then `sysgp check`.
pub fn restore(args: crate::cli::BackupArgs, vars: &HashMap<String, String>) -> ExitCode {
    let config = match config(vars) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = args.data_dir.clone().unwrap_or(config.data_dir.clone());
    // The check that follows verifies the audit chain: refuse before writing anything.
    if config.secret_key.is_none() {
        return fail("SECRET_KEY is needed to verify the audit chain of the restored directory: set it (environment or --env-file)");
    }
    // Restored files would belong to this user: the service could not open them.
    if let Err(e) = check_owner(&dir) {
        return fail(e);
    }
    match crate::backup::restore(&args.file, &dir, config.cache_mb) {
        Ok(entries) => println!("restored {entries} entries into {}", dir.display()),
        Err(e) => return fail(e),
    }
    crate::commands::check(crate::cli::CheckArgs { data_dir: Some(dir), live: false }, vars)
}
