//! The engine: what every use case shares (store, SDK client, limits, in-flight
//! idempotency claims, reconciliation queue, health). Use cases are `impl Engine`
//! blocks in `accounts`, `transfers`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use uuid::Uuid;

use crate::auth::audit::AuditKey;
use crate::auth::Security;
use crate::error::Error;
use crate::ledger::{major_to_minor, Currency, Minor, Timestamp};
use crate::sdk::SdkClient;
use crate::store::Store;
use crate::transfers::reconcile::ReconQueue;

/// Limits that apply to every request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `SYSGP_AMOUNT_MAX`, major units.
    pub amount_max: u64,
    /// `SYSGP_CASH_APPROVAL_ABOVE`, major units.
    pub cash_approval_above: Option<u64>,
    /// Bulk settings.
    pub bulk: BulkSettings,
}

/// `SYSGP_BULK_*` and `SYSGP_BREAKER_*` (SPEC §5).
#[derive(Clone, Copy, Debug)]
pub struct BulkSettings {
    /// Worker threads.
    pub workers: usize,
    /// Items per second across all jobs, if capped.
    pub rate_per_sec: Option<u32>,
    /// Whether a checker must approve valid jobs.
    pub approval: bool,
    /// Largest upload.
    pub file_bytes_max: u64,
    /// Most data rows per file.
    pub rows_max: u64,
    /// Largest total per job, major units.
    pub total_max: u64,
    /// Consecutive SDK_UNREACHABLE that pause a job.
    pub breaker_unreachable: u32,
    /// Attempts the failure ratio is computed over.
    pub breaker_window: u32,
    /// Fewest attempts in the window before the ratio counts.
    pub breaker_min_attempts: u32,
    /// Infrastructure failures (percent of the window) that pause a job.
    pub breaker_failure_percent: u32,
}

impl Default for BulkSettings {
    fn default() -> Self {
        BulkSettings {
            workers: 8,
            rate_per_sec: None,
            approval: true,
            file_bytes_max: 64 * 1024 * 1024,
            rows_max: 1_000_000,
            total_max: 1_000_000_000_000_000,
            breaker_unreachable: 5,
            breaker_window: 100,
            breaker_min_attempts: 20,
            breaker_failure_percent: 50,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { amount_max: 1_000_000_000_000, cash_approval_above: None, bulk: BulkSettings::default() }
    }
}

impl Limits {
    /// The largest single amount in minor units of `currency`.
    pub fn amount_max_minor(&self, currency: Currency) -> Minor {
        major_to_minor(self.amount_max, currency)
    }
}

/// What `/readyz` reports about the SDK.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SdkHealth {
    /// Whether the last probe answered.
    pub ok: bool,
    /// When the last probe ran.
    pub last_probe_at: Option<String>,
    /// The last problem seen (probe failure or a configuration error from a payment).
    pub error: Option<String>,
}

/// Shared state of the running service.
pub struct Engine {
    /// The store.
    pub store: Store,
    /// The SDK client.
    pub sdk: SdkClient,
    /// Request limits.
    pub limits: Limits,
    /// Secrets, throttling, sessions settings.
    pub security: Security,
    /// Key of the audit chain, derived from `SECRET_KEY`.
    pub audit_key: Arc<AuditKey>,
    claims: Mutex<HashSet<ClaimKey>>,
    /// IN_DOUBT transfers waiting for their next reconciliation attempt.
    pub recon: Arc<ReconQueue>,
    /// The bulk worker pool's shared state.
    pub bulk: Arc<crate::bulk::worker::BulkPool>,
    ready: AtomicBool,
    stopping: AtomicBool,
    stop_lock: Mutex<()>,
    stop_signal: std::sync::Condvar,
    /// SDK health for `/readyz`.
    pub sdk_health: Mutex<SdkHealth>,
    /// Invariant violations found at start-up (the service stays unready).
    pub violations: Mutex<Vec<String>>,
}

/// Something a request holds exclusively while it runs (SPEC §3 "key claimed, not
/// yet committed").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClaimKey {
    /// `Idempotency-Key`, scoped to the acting user.
    Key(String, String),
    /// A client-supplied transfer id.
    Transfer(Uuid),
}

/// Releases its claims when dropped.
pub struct ClaimGuard {
    engine: Arc<Engine>,
    keys: Vec<ClaimKey>,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Ok(mut claims) = self.engine.claims.lock() {
            for k in &self.keys {
                claims.remove(k);
            }
        }
    }
}

impl Engine {
    /// Builds the engine over an open store.
    pub fn new(store: Store, sdk: SdkClient, limits: Limits, security: Security) -> Arc<Engine> {
        let audit_key = Arc::new(AuditKey::derive(security.secret.expose()));
        Arc::new(Engine {
            store,
            sdk,
            limits,
            security,
            audit_key,
            claims: Mutex::new(HashSet::new()),
            recon: Default::default(),
            bulk: Default::default(),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_signal: std::sync::Condvar::new(),
            sdk_health: Mutex::new(SdkHealth::default()),
            violations: Mutex::new(Vec::new()),
        })
    }

    /// Claims keys for the duration of a request, or `409 IDEMPOTENCY_IN_PROGRESS`.
    pub fn claim(self: &Arc<Self>, keys: Vec<ClaimKey>) -> Result<ClaimGuard, Error> {
        let mut claims = self.claims.lock().map_err(|_| Error::internal("claims lock poisoned"))?;
        if keys.iter().any(|k| claims.contains(k)) {
            return Err(Error::conflict(
                "IDEMPOTENCY_IN_PROGRESS",
                "a request with this idempotency key is still being processed; retry shortly",
            )
            .with_retry_after(1));
        }
        claims.extend(keys.iter().cloned());
        drop(claims);
        Ok(ClaimGuard { engine: self.clone(), keys })
    }

    /// Whether start-up recovery finished and the invariants held.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Marks the service ready (after recovery).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether a stop was requested (background threads exit).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Asks background threads to stop.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.recon.wake();
        self.bulk.wake();
        if let Ok(_guard) = self.stop_lock.lock() {
            self.stop_signal.notify_all();
        }
    }

    /// Sleeps for `duration` or until [`Engine::stop`] is called.
    pub fn sleep_unless_stopping(&self, duration: std::time::Duration) {
        let Ok(guard) = self.stop_lock.lock() else { return };
        if self.is_stopping() {
            return;
        }
        let _ = self.stop_signal.wait_timeout(guard, duration);
    }

    /// Records an SDK configuration problem for `/readyz`.
    pub fn note_sdk_problem(&self, problem: String) {
        if let Ok(mut h) = self.sdk_health.lock() {
            h.error = Some(problem);
        }
    }
}

/// The wall clock as a ledger timestamp.
pub fn now() -> Timestamp {
    Timestamp::from_system(SystemTime::now())
}
