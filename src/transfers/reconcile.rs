//! Reconciliation of IN_DOUBT transfers (SPEC §4): ask the hub through the SDK at
//! 5 s, 15 s, 30 s, 1 min, 2 min and 5 min after the doubt began, then every 15 min
//! for 24 h, then daily. COMMITTED posts, ABORTED voids, two FSPIOP 3208 answers at
//! least 5 min after the quote expired fail the transfer; anything else waits.
//! Never inline in an HTTP request: one background thread works the queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use uuid::Uuid;

use super::settle::{settle, Settlement};
use crate::engine::{now, Engine};
use crate::error::Error;
use crate::ledger::{Timestamp, Transfer, TransferStatus};
use crate::sdk::{HubState, Verdict};

const SECOND: i64 = 1_000_000;
/// Offsets of the first attempts after the doubt began.
const EARLY_ATTEMPTS_SECS: [i64; 6] = [5, 15, 30, 60, 120, 300];
/// Then every 15 minutes…
const STEADY_SECS: i64 = 15 * 60;
/// …until a day has passed, then daily.
const DAY_SECS: i64 = 24 * 3600;
/// 3208 counts only this long after the quote expired.
const UNKNOWN_GRACE_SECS: i64 = 5 * 60;
/// Without a quote, assume it expired this long after creation (SDK default quote
/// lifetimes are about a minute; five is conservative).
const QUOTE_EXPIRY_FALLBACK_SECS: i64 = 5 * 60;

/// When attempt number `attempts` (0-based) is due for a doubt that began at `since`.
pub fn next_attempt(since: Timestamp, attempts: u32) -> Timestamp {
    let n = attempts as usize;
    if let Some(offset) = EARLY_ATTEMPTS_SECS.get(n) {
        return since.plus_micros(offset * SECOND);
    }
    let last_early = EARLY_ATTEMPTS_SECS[EARLY_ATTEMPTS_SECS.len() - 1];
    let steady_count = ((DAY_SECS - last_early) / STEADY_SECS) as usize;
    let k = (n - EARLY_ATTEMPTS_SECS.len() + 1) as i64;
    if n < EARLY_ATTEMPTS_SECS.len() + steady_count {
        return since.plus_micros((last_early + k * STEADY_SECS) * SECOND);
    }
    let days = (n - EARLY_ATTEMPTS_SECS.len() - steady_count + 1) as i64;
    since.plus_micros((DAY_SECS + days * DAY_SECS) * SECOND)
}

/// Due times of IN_DOUBT transfers, earliest first.
#[derive(Default)]
pub struct ReconQueue {
    heap: Mutex<BinaryHeap<Reverse<(Timestamp, Uuid)>>>,
    wakeup: Condvar,
}

impl ReconQueue {
    /// Plans an attempt.
    pub fn schedule(&self, id: Uuid, due: Timestamp) {
        if let Ok(mut heap) = self.heap.lock() {
            heap.push(Reverse((due, id)));
        }
        self.wakeup.notify_all();
    }

    /// Plans the next attempt for an IN_DOUBT transfer whose SDK id is known.
    pub fn schedule_transfer(&self, t: &Transfer) {
        let Some(sdk) = &t.sdk else { return };
        if t.status != TransferStatus::InDoubt || sdk.transfer_id.is_none() {
            return;
        }
        let since = sdk.recon.since.unwrap_or(t.updated_at);
        self.schedule(t.id, next_attempt(since, sdk.recon.attempts));
    }

    /// Wakes the reconciler (stop requests).
    pub fn wake(&self) {
        self.wakeup.notify_all();
    }

    /// Number of planned attempts.
    pub fn len(&self) -> usize {
        self.heap.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to a second for due work and takes it.
    fn take_due(&self) -> Vec<Uuid> {
        let Ok(mut heap) = self.heap.lock() else { return Vec::new() };
        let wait = match heap.peek() {
            Some(Reverse((due, _))) => Duration::from_micros(due.micros_since(now()).clamp(0, SECOND) as u64),
            None => Duration::from_secs(1),
        };
        if !wait.is_zero() {
            heap = match self.wakeup.wait_timeout(heap, wait) {
                Ok((h, _)) => h,
                Err(_) => return Vec::new(),
            };
        }
        let now = now();
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            if let Some(Reverse((_, id))) = heap.pop() {
                due.push(id);
            }
        }
        due
    }
}

impl Engine {
    /// Plans the next attempt for an IN_DOUBT transfer whose SDK id is known.
    pub fn schedule_reconciliation(&self, t: &Transfer) {
        self.recon.schedule_transfer(t);
    }

    /// Starts the reconciliation thread.
    pub fn start_reconciler(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let engine = self.clone();
        std::thread::Builder::new().name("sysgp-reconcile".into()).spawn(move || {
            while !engine.is_stopping() {
                for id in engine.recon.take_due() {
                    if let Err(e) = engine.reconcile_one(id) {
                        log::warn!("reconciling transfer {id}: {e}");
                    }
                }
            }
        })
    }

    /// One attempt: ask the hub and apply a final answer, or record the attempt.
    pub fn reconcile_one(&self, id: Uuid) -> Result<(), Error> {
        let Some(t) = self.store.transfer(id)? else { return Ok(()) };
        let Some(sdk_id) = t.sdk.as_ref().and_then(|s| s.transfer_id.clone()) else { return Ok(()) };
        if t.status != TransferStatus::InDoubt {
            return Ok(());
        }
        // An interrupted final call in an accept mode is sent once more first; only a
        // COMMITTED reply to it settles anything, otherwise the hub is asked.
        let committed = t.sdk.as_ref().is_some_and(|s| s.resume_final) && {
            let committed = self.sdk.resume_final(&sdk_id);
            log::info!("final acceptance of {id} (SDK {sdk_id}) sent again; committed: {committed}");
            committed
        };
        let answer = if committed { HubState::Committed } else { self.sdk.lookup(&sdk_id) };
        log::info!("reconciliation of {id} (SDK {sdk_id}): {answer:?}");
        let verdict = match &answer {
            HubState::Committed => Some(Verdict::Completed),
            HubState::Aborted => Some(Verdict::Failed {
                code: "SDK_ABORTED".into(),
                message: "the hub aborted the transfer".into(),
                retryable: false,
            }),
            _ => None,
        };
        let unknown = answer == HubState::Unknown && now() >= unknown_counts_after(&t);
        let key = self.audit_key.clone();
        let t = self.store.writer.run_blocking(move |tx| {
            if let Some(verdict) = verdict {
                let change = Settlement { verdict, sdk_transfer_id: None, quote: None, resolution: None };
                return settle(tx, &key, "system", id, TransferStatus::InDoubt, &change);
            }
            let mut t = tx.transfer(id)?.ok_or_else(|| Error::internal("transfer vanished"))?;
            if t.status != TransferStatus::InDoubt {
                return Ok(t);
            }
            let now = tx.now();
            let Some(sdk) = t.sdk.as_mut() else { return Ok(t) };
            sdk.recon.attempts += 1;
            sdk.recon.last_attempt_at = Some(now);
            sdk.resume_final = false;
            if unknown {
                sdk.recon.unknown_answers += 1;
            }
            if sdk.recon.unknown_answers >= 2 {
                let change = Settlement {
                    verdict: Verdict::Failed {
                        code: "HUB_UNKNOWN_TRANSFER".into(),
                        message: "the hub does not know this transfer (FSPIOP 3208 twice after the quote expired)"
                            .into(),
                        retryable: false,
                    },
                    sdk_transfer_id: None,
                    quote: None,
                    resolution: None,
                };
                tx.update_transfer(TransferStatus::InDoubt, &t)?;
                return settle(tx, &key, "system", id, TransferStatus::InDoubt, &change);
            }
            tx.update_transfer(TransferStatus::InDoubt, &t)?;
            Ok(t)
        });
        match t {
            Ok(t) => self.schedule_reconciliation(&t),
            // Someone else settled it meanwhile (an operator): nothing to plan.
            Err(e) if e.code == "INVALID_STATE" => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// 3208 answers count from 5 minutes after the quote expired.
fn unknown_counts_after(t: &Transfer) -> Timestamp {
    let expiry = t
        .sdk
        .as_ref()
        .and_then(|s| s.quote.as_ref())
        .and_then(|q| q.expiration.as_deref())
        .and_then(Timestamp::parse_rfc3339)
        .unwrap_or_else(|| t.created_at.plus_micros(QUOTE_EXPIRY_FALLBACK_SECS * SECOND));
    expiry.plus_micros(UNKNOWN_GRACE_SECS * SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_follows_the_spec() {
        let since = Timestamp(0);
        let secs = |n| next_attempt(since, n).0 / SECOND;
        assert_eq!((0..6).map(secs).collect::<Vec<_>>(), vec![5, 15, 30, 60, 120, 300]);
        assert_eq!(secs(6), 300 + 900);
        assert_eq!(secs(7), 300 + 1800);
        let mut n = 6;
        while secs(n) <= DAY_SECS {
            assert_eq!(secs(n) - secs(n - 1), STEADY_SECS, "attempt {n}");
            n += 1;
        }
        assert_eq!(secs(n + 1) - secs(n), DAY_SECS, "daily after a day");
    }
}
