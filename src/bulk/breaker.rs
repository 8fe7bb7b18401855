//! The circuit breaker of a job (SPEC §5): only infrastructure failures count
//! (SDK_UNREACHABLE, IN_DOUBT, SDK errors and timeouts, FSPIOP 1xxx/2xxx); payee
//! rejections (3xxx, 5xxx) never do. It trips after N consecutive SDK_UNREACHABLE, or
//! when at least P % of the last W attempts (at least M) failed for infrastructure
//! reasons; FSPIOP 4001 (hub liquidity) trips at once.

use std::collections::VecDeque;

use crate::engine::BulkSettings;
use crate::ledger::{Transfer, TransferStatus};

/// Why the breaker tripped.
#[derive(Debug, PartialEq, Eq)]
pub struct Trip(pub String);

/// One job's recent attempts.
pub struct Breaker {
    limits: BulkSettings,
    consecutive_unreachable: u32,
    window: VecDeque<bool>,
}

/// Whether an outcome is an infrastructure failure, and whether it was SDK_UNREACHABLE.
fn classify(t: &Transfer) -> (bool, bool) {
    match (t.status, t.error.as_ref().map(|e| e.code.as_str())) {
        (TransferStatus::InDoubt, _) => (true, false),
        (TransferStatus::Failed, Some("SDK_UNREACHABLE")) => (true, true),
        (TransferStatus::Failed, Some(code)) => {
            let fspiop_infra = code.len() == 4 && (code.starts_with('1') || code.starts_with('2'));
            let ours = matches!(
                code,
                "SDK_TIMEOUT_PARTY"
                    | "SDK_TIMEOUT_QUOTE"
                    | "SDK_ERROR"
                    | "SDK_CONFIG_ERROR"
                    | "SDK_MODE_MISMATCH"
                    | "INTERRUPTED"
            );
            (fspiop_infra || ours, false)
        }
        _ => (false, false),
    }
}

impl Breaker {
    /// A fresh breaker.
    pub fn new(limits: BulkSettings) -> Breaker {
        Breaker { limits, consecutive_unreachable: 0, window: VecDeque::new() }
    }

    /// Records an attempt; `Some` when the job must pause.
    pub fn observe(&mut self, t: &Transfer) -> Option<Trip> {
        if t.error.as_ref().is_some_and(|e| e.code == "4001") {
            return Some(Trip("FSPIOP 4001: payer FSP insufficient liquidity at the hub".into()));
        }
        let (infra, unreachable) = classify(t);
        self.consecutive_unreachable = if unreachable { self.consecutive_unreachable + 1 } else { 0 };
        if self.consecutive_unreachable >= self.limits.breaker_unreachable {
            return Some(Trip(format!(
                "{} consecutive attempts could not reach the SDK",
                self.consecutive_unreachable
            )));
        }
        self.window.push_back(infra);
        while self.window.len() > self.limits.breaker_window as usize {
            self.window.pop_front();
        }
        let failures = self.window.iter().filter(|f| **f).count() as u64;
        let attempts = self.window.len() as u64;
        if attempts >= u64::from(self.limits.breaker_min_attempts)
            && failures * 100 >= attempts * u64::from(self.limits.breaker_failure_percent)
        {
            return Some(Trip(format!("{failures} of the last {attempts} attempts failed for infrastructure reasons")));
        }
        None
    }
}
