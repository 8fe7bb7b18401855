//! Builds the running service from a `Config`: opens the store, binds the listener
//! first (so tests can use port 0), runs start-up recovery before reporting ready,
//! then starts reconciliation and the SDK probe.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::throttle::{LoginThrottle, ThrottleLimits};
use crate::auth::Security;
use crate::config::Config;
use crate::engine::{now, Engine, Limits};
use crate::http::{self, HttpState};
use crate::sdk::SdkClient;
use crate::store::{Store, StoreError};

/// How often `/readyz`'s SDK status is refreshed (SPEC §6).
const SDK_PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// How long `stop` waits for the last user of the store to let go.
const STORE_CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is incomplete.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened.
    #[error("cannot open the data directory: {0}")]
    Store(#[from] StoreError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// Recovery failed.
    #[error("start-up recovery failed: {0}")]
    Recovery(crate::error::Error),
    /// The audit chain is sealed by another key.
    #[error("{0}")]
    Audit(String),
    /// A thread could not be started.
    #[error("cannot start a background thread: {0}")]
    Thread(std::io::Error),
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The engine (tests drive and inspect it directly).
    pub engine: Arc<Engine>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: JoinHandle<()>,
    /// Periodic async tasks (SDK probe, audit head log), aborted on stop.
    tasks: Vec<JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Opens everything and serves; returns once the service is ready (or unready with
/// invariant violations reported on `/readyz`).
pub async fn start(config: &Config) -> Result<Server, StartError> {
    let sdk_url = config
        .sdk_url
        .clone()
        .ok_or_else(|| crate::config::ConfigError { var: "MOJALOOP_SDK_URL".into(), problem: "is required".into() })?;
    let (dir, cache_mb) = (config.data_dir.clone(), config.cache_mb);
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, cache_mb))
        .await
        .map_err(|e| StartError::Thread(std::io::Error::other(e.to_string())))??;
    let sdk = SdkClient::new(&sdk_url, config.sdk_mode, config.sdk_timeout);
    let security = security(config)?;
    let engine = Engine::new(
        store,
        sdk,
        Limits { amount_max: config.amount_max, cash_approval_above: config.cash_approval_above, bulk: config.bulk },
        security,
    );
    crate::auth::check_audit_key(&engine.store, &engine.audit_key).map_err(StartError::Audit)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|error| StartError::Bind { addr: config.bind, error })?;
    let addr = listener.local_addr().map_err(|error| StartError::Bind { addr: config.bind, error })?;
    let state = Arc::new(HttpState {
        engine: engine.clone(),
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        config_warnings: config.warnings.clone(),
    });
    let (shutdown, stop_rx) = oneshot::channel::<()>();
    let serving = tokio::spawn(
        warp::serve(http::filter(state))
            .incoming(listener)
            .graceful(async {
                let _ = stop_rx.await;
            })
            .run(),
    );
    log::info!("listening on http://{addr}; recovering");
    let report = engine.recover().await.map_err(StartError::Recovery)?;
    log::info!(
        "recovery done: {} interrupted transfers failed, {} in doubt, {} scheduled for reconciliation",
        report.failed,
        report.in_doubt,
        report.scheduled
    );
    if report.violations.is_empty() {
        engine.set_ready(true);
    } else {
        for v in &report.violations {
            log::error!("ledger {v}");
        }
        if let Ok(mut slot) = engine.violations.lock() {
            *slot = report.violations;
        }
    }
    let reconciler = engine.start_reconciler().map_err(StartError::Thread)?;
    let sweeper = engine.start_sweeper().map_err(StartError::Thread)?;
    let mut threads = vec![reconciler, sweeper];
    threads.extend(engine.start_bulk().map_err(StartError::Thread)?);
    engine.resume_bulk().map_err(StartError::Recovery)?;
    let socket = crate::admin::socket_path(&config.data_dir);
    let admin = crate::admin::serve(engine.clone(), socket.clone()).await.map_err(StartError::Thread)?;
    let tasks = vec![tokio::spawn(probe_sdk(engine.clone())), tokio::spawn(log_audit_head(engine.clone())), admin];
    Ok(Server { addr, engine, shutdown: Some(shutdown), serving, tasks, threads })
}

/// The security layer from the configuration (`SECRET_KEY` is required).
pub fn security(config: &Config) -> Result<Security, StartError> {
    let secret = config
        .secret_key
        .clone()
        .ok_or_else(|| crate::config::ConfigError { var: "SECRET_KEY".into(), problem: "is required".into() })?;
    let limits = ThrottleLimits {
        user_failures: config.login_user_failures,
        address_failures: config.login_address_failures,
        window: config.login_window,
    };
    Security::new(secret, LoginThrottle::new(limits), config.session_ttl, config.trusted_proxies.clone())
        .map_err(StartError::Recovery)
}

/// Logs the audit chain head at start and hourly, so that a truncated tail can be
/// detected against an outside copy (SPEC §7).
async fn log_audit_head(engine: Arc<Engine>) {
    const EVERY: Duration = Duration::from_secs(3600);
    while !engine.is_stopping() {
        match crate::auth::audit_head(&engine.store) {
            Ok(Some(h)) => log::info!("audit chain head: seq {} mac {} key {}", h.seq, hex::encode(h.mac), h.key_id),
            Ok(None) => log::info!("audit chain head: empty"),
            Err(e) => log::warn!("audit chain head unreadable: {e}"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

async fn probe_sdk(engine: Arc<Engine>) {
    while !engine.is_stopping() {
        let probing = engine.clone();
        let result = tokio::task::spawn_blocking(move || probing.sdk.probe()).await;
        if let Ok(mut h) = engine.sdk_health.lock() {
            h.last_probe_at = Some(now().to_string());
            match result {
                Ok(Ok(())) => {
                    h.ok = true;
                    if h.error.as_deref().is_some_and(|e| e.starts_with("probe:")) {
                        h.error = None;
                    }
                }
                Ok(Err(e)) => {
                    h.ok = false;
                    h.error = Some(format!("probe: {e}"));
                }
                Err(e) => h.error = Some(format!("probe: {e}")),
            }
        }
        tokio::time::sleep(SDK_PROBE_INTERVAL).await;
    }
}

impl Server {
    /// Stops taking requests, lets in-flight ones finish, stops background work and
    /// waits until the store is closed (its last write durable, its lock released).
    pub async fn stop(self) {
        let Server { engine, shutdown, serving, tasks, threads, .. } = self;
        engine.stop();
        if let Some(tx) = shutdown {
            let _ = tx.send(());
        }
        let _ = serving.await;
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        let closed = engine.store.writer.closed_signal();
        let dir = engine.store.dir().to_path_buf();
        drop(engine);
        let _ = tokio::task::spawn_blocking(move || {
            threads.into_iter().for_each(|t| drop(t.join()));
            let deadline = std::time::Instant::now() + STORE_CLOSE_WAIT;
            if !(closed.wait(STORE_CLOSE_WAIT) && crate::store::wait_unlocked(&dir, deadline)) {
                log::warn!("the store was still in use {} s after stopping", STORE_CLOSE_WAIT.as_secs());
            }
        })
        .await;
    }

    /// Resolves when the server task ends.
    pub async fn wait(&mut self) {
        let _ = (&mut self.serving).await;
    }
}
