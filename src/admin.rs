//! The admin Unix socket (SPEC §9): while `serve` runs, the CLI's `user`, `audit verify`
//! and `check --live` commands are sent here as one JSON line each, authorised by the
//! socket's file permissions (0600, service user) and audited as `cli:<uid>`. The same
//! commands run directly on the store when no server answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::auth::audit::{self, AuditEntry};
use crate::auth::users::{self, UserChange};
use crate::auth::{Actor, Role};
use crate::check::{check_store, ChainVerdict, Verdict};
use crate::engine::Engine;
use crate::error::Error;
use crate::store::TreeId;

/// One request line is at most this long (a password and a name fit many times over).
const REQUEST_BYTES_MAX: u64 = 64 * 1024;

/// A command of the admin socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// `sysgp user add NAME --role ROLE`.
    UserAdd {
        /// User name.
        name: String,
        /// Role name.
        role: String,
        /// Password (read from a prompt or stdin, never an argument).
        password: String,
    },
    /// `sysgp user list`.
    UserList,
    /// `sysgp user passwd NAME`.
    UserPasswd {
        /// User name.
        name: String,
        /// New password.
        password: String,
    },
    /// `sysgp user disable NAME`.
    UserDisable {
        /// User name.
        name: String,
    },
    /// `sysgp audit verify`.
    AuditVerify,
    /// `sysgp check --live`.
    Check,
    /// `sysgp backup FILE`: the reply is the backup stream itself.
    Backup,
}

/// Where the server puts its socket: `$RUNTIME_DIRECTORY/admin.sock` under systemd,
/// else `<data dir>/admin.sock`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    match std::env::var("RUNTIME_DIRECTORY").ok().and_then(|d| d.split(':').next().map(PathBuf::from)) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("admin.sock"),
        _ => data_dir.join("admin.sock"),
    }
}

/// Where the CLI looks for a running server: the server's own rule, then the systemd
/// unit's runtime directory (`/run/sysgp`), since an operator's shell has no
/// `$RUNTIME_DIRECTORY`.
pub fn socket_candidates(data_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![socket_path(data_dir)];
    for p in [PathBuf::from("/run/sysgp/admin.sock"), data_dir.join("admin.sock")] {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Runs a command against an engine (socket or direct mode).
pub async fn execute(engine: &Arc<Engine>, actor: &Actor, req: AdminRequest) -> Result<Value, Error> {
    match req {
        AdminRequest::UserAdd { name, role, password } => {
            let role = Role::parse(&role)
                .ok_or_else(|| Error::invalid("INVALID_ROLE", "role must be admin, maker, checker or viewer"))?;
            Ok(users::view(&engine.add_user(actor, &name, role, password).await?))
        }
        AdminRequest::UserList => Ok(json!(engine.list_users()?.iter().map(users::view).collect::<Vec<_>>())),
        AdminRequest::UserPasswd { name, password } => {
            Ok(users::view(&engine.change_user(actor, &name, UserChange::Password(password)).await?))
        }
        AdminRequest::UserDisable { name } => {
            Ok(users::view(&engine.change_user(actor, &name, UserChange::Disable).await?))
        }
        AdminRequest::AuditVerify => {
            let engine = engine.clone();
            let report =
                tokio::task::spawn_blocking(move || verify_audit(&engine)).await.map_err(Error::internal)??;
            serde_json::to_value(report).map_err(Error::internal)
        }
        AdminRequest::Backup => Err(Error::invalid("BAD_REQUEST", "backup streams its reply")),
        // SPEC §9: every §2 invariant and the audit chain, as the offline check.
        AdminRequest::Check => {
            let engine = engine.clone();
            let verdict = tokio::task::spawn_blocking(move || -> Result<Verdict, Error> {
                let audit = ChainVerdict::from(&verify_audit(&engine)?);
                Ok(Verdict::new(&check_store(&engine.store)?, audit))
            })
            .await
            .map_err(Error::internal)??;
            serde_json::to_value(verdict).map_err(Error::internal)
        }
    }
}

/// Verifies the whole audit chain with the engine's key.
fn verify_audit(engine: &Engine) -> Result<audit::VerifyReport, Error> {
    Ok(audit::verify(|| engine.store.scan_forward::<AuditEntry>(TreeId::Audit), &engine.audit_key, None)?)
}

/// Binds the socket (mode 0600) and serves it until the engine stops.
pub async fn serve(engine: Arc<Engine>, path: PathBuf) -> std::io::Result<tokio::task::JoinHandle<()>> {
    // The store lock guarantees no other server owns this directory: a socket file
    // left here belongs to a process that died.
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    log::info!("admin socket at {}", path.display());
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let engine = engine.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(engine, stream).await {
                    log::warn!("admin socket: {e}");
                }
            });
        }
    }))
}

async fn answer(engine: Arc<Engine>, stream: UnixStream) -> std::io::Result<()> {
    let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    (&mut reader).take(REQUEST_BYTES_MAX).read_line(&mut line).await?;
    if let Ok(AdminRequest::Backup) = serde_json::from_str::<AdminRequest>(&line) {
        let stream = reader.into_inner().reunite(write).map_err(std::io::Error::other)?.into_std()?;
        return stream_backup(engine, stream, uid).await;
    }
    let reply = match serde_json::from_str::<AdminRequest>(&line) {
        Ok(req) => match execute(&engine, &Actor::new(format!("cli:{uid}")), req).await {
            Ok(result) => json!({ "ok": true, "result": result }),
            Err(e) => json!({ "ok": false, "error": e.body()["error"] }),
        },
        Err(e) => json!({ "ok": false, "error": { "code": "BAD_REQUEST", "message": e.to_string() } }),
    };
    write.write_all(format!("{reply}\n").as_bytes()).await?;
    write.shutdown().await
}

/// Writes an online backup to the socket: the writer pauses (requests queue) while
/// every tree and bulk file is copied.
async fn stream_backup(engine: Arc<Engine>, stream: std::os::unix::net::UnixStream, uid: u32) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let report = tokio::task::spawn_blocking(move || {
        let writer = engine.store.writer.clone();
        crate::backup::write_backup(&engine.store, stream, || writer.pause_blocking().map(Some))
    })
    .await
    .map_err(std::io::Error::other)?;
    match report {
        Ok(r) => log::info!(
            "backup by cli:{uid}: {} entries, {} files, {} bytes; writes paused {} ms",
            r.entries,
            r.files,
            r.bytes,
            r.pause.as_millis()
        ),
        Err(e) => log::error!("backup by cli:{uid} failed: {e}"),
    }
    Ok(())
}

/// Connects to the first socket a server answers on, if any.
pub fn connect(data_dir: &Path) -> Option<std::os::unix::net::UnixStream> {
    socket_candidates(data_dir).iter().find_map(|p| std::os::unix::net::UnixStream::connect(p).ok())
}

/// Sends one command to a running server. `Ok(None)` when no server answers.
pub fn send(data_dir: &Path, req: &AdminRequest) -> std::io::Result<Option<Value>> {
    use std::io::{BufRead, Write};
    let Some(mut stream) = connect(data_dir) else { return Ok(None) };
    let line = serde_json::to_string(req).map_err(std::io::Error::other)?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    std::io::BufReader::new(stream).read_line(&mut reply)?;
    serde_json::from_str(&reply).map(Some).map_err(std::io::Error::other)
}
