//! Start-up recovery (SPEC §4): before the service reports ready, PENDING transfers
//! are settled by phase (before FINAL_SENT nothing moved → FAILED retryable; after it
//! → IN_DOUBT), IN_DOUBT transfers are scheduled for reconciliation, and the ledger
//! invariants are checked.

use super::settle::{settle, Settlement};
use crate::check::check_store;
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{SdkPhase, TransferStatus};
use crate::sdk::{SdkMode, Verdict};

/// What recovery did.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// PENDING transfers failed because nothing had been sent.
    pub failed: usize,
    /// PENDING transfers moved to IN_DOUBT.
    pub in_doubt: usize,
    /// IN_DOUBT transfers scheduled for reconciliation.
    pub scheduled: usize,
    /// Invariant violations found.
    pub violations: Vec<String>,
}

impl Engine {
    /// Runs recovery; the caller marks the service ready afterwards.
    pub async fn recover(&self) -> Result<RecoveryReport, Error> {
        let mut report = RecoveryReport::default();
        for t in self.store.transfers_with_status(TransferStatus::Pending)? {
            let after_final = t.phase() == Some(SdkPhase::FinalSent);
            if t.bulk.is_some() && !after_final {
                // Nothing was sent: the item is re-queued as a new attempt (SPEC §5).
                report.failed += 1;
                let (key, id) = (self.audit_key.clone(), t.id);
                let error = crate::ledger::TransferError {
                    code: "INTERRUPTED".into(),
                    message: "the service stopped before the payment was sent to the SDK; nothing moved".into(),
                    retryable: true,
                };
                self.store.writer.run(move |tx| crate::bulk::items::requeue(tx, &key, id, error).map(|_| ())).await?;
                continue;
            }
            let verdict = if after_final {
                report.in_doubt += 1;
                Verdict::InDoubt { reason: "the service stopped while the SDK call was in flight".into() }
            } else {
                report.failed += 1;
                Verdict::Failed {
                    code: "INTERRUPTED".into(),
                    message: "the service stopped before the payment was sent to the SDK; nothing moved".into(),
                    retryable: true,
                }
            };
            let change = Settlement { verdict, sdk_transfer_id: None, quote: None, resolution: None };
            let id = t.id;
            let key = self.audit_key.clone();
            // In the accept modes the final call may never have reached the SDK: the
            // reconciler sends it once more (same SDK id, so at most one payment).
            let resume = after_final && self.sdk.mode() != SdkMode::Auto;
            self.store
                .writer
                .run(move |tx| {
                    let mut t = settle(tx, &key, "system", id, TransferStatus::Pending, &change)?;
                    if let Some(sdk) = t.sdk.as_mut().filter(|s| resume && s.transfer_id.is_some()) {
                        sdk.resume_final = true;
                        tx.update_transfer(t.status, &t)?;
                    }
                    Ok::<_, Error>(())
                })
                .await?;
        }
        for t in self.store.transfers_with_status(TransferStatus::InDoubt)? {
            if t.sdk.as_ref().is_some_and(|s| s.transfer_id.is_some()) {
                self.schedule_reconciliation(&t);
                report.scheduled += 1;
            }
        }
        let store = self.store.clone();
        let check = tokio::task::spawn_blocking(move || check_store(&store)).await.map_err(Error::internal)??;
        report.violations =
            check.violations.iter().map(|v| format!("invariant {}: {}", v.invariant, v.message)).collect();
        Ok(report)
    }
}
