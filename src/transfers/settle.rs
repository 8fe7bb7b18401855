//! Settling SDK transfers: the durable FINAL_SENT mark before the final call, and the
//! posting (reserved → settlement), void (reserved → available) or IN_DOUBT that
//! follows an SDK verdict, each in one store transaction.

use uuid::Uuid;

use super::{audit_transfer, existing_account};
use crate::auth::audit::AuditKey;
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{self, AccountKey, Quote, Resolution, SdkPhase, Transfer, TransferError, TransferStatus};
use crate::sdk::{FinalSent, PayOutcome, Payment, Verdict};
use crate::store::WriteTx;

/// Code recorded on IN_DOUBT transfers.
pub const IN_DOUBT_CODE: &str = "SDK_OUTCOME_UNKNOWN";

/// A change to an SDK transfer, applied by [`settle`].
#[derive(Clone, Debug)]
pub struct Settlement {
    /// The verdict to apply.
    pub verdict: Verdict,
    /// The SDK's id, when learned.
    pub sdk_transfer_id: Option<String>,
    /// Quote details, when learned.
    pub quote: Option<Quote>,
    /// Set when an operator resolved the transfer.
    pub resolution: Option<Resolution>,
}

impl Engine {
    /// Runs a reserved SDK transfer through the SDK and records the outcome, without
    /// waiting for that write: this (blocking) thread is free once the SDK has
    /// answered, and `then` gets the settled transfer once it is durable (on the writer
    /// thread, so it must be quick), or the error. If the writer has stopped, `then` is
    /// dropped unrun.
    pub fn pay_reserved_then(&self, t: Transfer, then: impl FnOnce(Result<Transfer, Error>) + Send + 'static) {
        let id = t.id;
        match self.call_sdk(t) {
            Ok(outcome) => {
                let settled = self.reconciling(then);
                if let Err(e) = self.store.writer.submit_blocking_observed(self.outcome_job(id, outcome), settled) {
                    log::error!("transfer {id}: the SDK outcome could not be recorded: {e}");
                }
            }
            Err(e) => then(Err(e)),
        }
    }

    /// The SDK calls of a reserved transfer (with the durable FINAL_SENT mark before
    /// the final call in the two-step modes); the outcome is not yet recorded.
    pub fn call_sdk(&self, t: Transfer) -> Result<PayOutcome, Error> {
        let (AccountKey::Wallet(from), AccountKey::Wallet(to)) = (t.sender, t.receiver) else {
            return Err(Error::internal(format!("SDK transfer {} between non-wallets", t.id)));
        };
        let payment = Payment {
            home_transaction_id: t.id,
            from,
            to,
            amount: t.amount,
            currency: t.currency,
            note: t.note.clone(),
        };
        let id = t.id;
        // In auto mode the reservation was recorded as FINAL_SENT already (the POST is
        // the final call and nothing is learnt before it): no second durable write.
        let already_final = t.phase() == Some(SdkPhase::FinalSent);
        let outcome = self.sdk.pay(&payment, |fs| match already_final {
            true => Ok(()),
            false => self.record_final_sent(id, fs),
        })?;
        if let Some(problem) = &outcome.config_problem {
            self.note_sdk_problem(problem.clone());
        }
        Ok(outcome)
    }

    fn record_final_sent(&self, id: Uuid, fs: &FinalSent) -> Result<(), Error> {
        let fs = fs.clone();
        self.store.writer.run_blocking(move |tx| {
            let mut t = tx.transfer(id)?.ok_or_else(|| Error::internal(format!("transfer {id} vanished")))?;
            let now = tx.now();
            let sdk = t.sdk.as_mut().ok_or_else(|| Error::internal(format!("transfer {id} has no SDK state")))?;
            if t.status != TransferStatus::Pending || sdk.phase != SdkPhase::Reserved {
                return Err(Error::internal(format!("transfer {id} is not reserved ({:?})", t.status)));
            }
            sdk.phase = SdkPhase::FinalSent;
            sdk.transfer_id = fs.sdk_transfer_id.clone().or(sdk.transfer_id.take());
            if fs.quote.is_some() {
                sdk.quote = fs.quote.clone();
            }
            if let Some(sdk_id) = &fs.sdk_transfer_id {
                tx.index_sdk_id(sdk_id, id);
            }
            t.updated_at = now;
            tx.update_transfer(TransferStatus::Pending, &t)?;
            Ok(())
        })
    }

    /// Records an SDK outcome on a PENDING transfer without waiting: reconciliation is
    /// scheduled if it is in doubt, and `then` gets the settled transfer once it is
    /// durable (on the writer thread, so it must be quick). For bulk items,
    /// whose outcome nobody is waiting to be told: a crash before it is durable leaves
    /// the item PROCESSING at its phase, and start-up recovery asks the SDK again.
    pub fn apply_outcome_then(
        &self,
        id: Uuid,
        outcome: PayOutcome,
        then: impl FnOnce(Result<Transfer, Error>) + Send + 'static,
    ) -> Result<(), Error> {
        Ok(self.store.writer.submit_blocking(self.outcome_job(id, outcome), self.reconciling(then))?)
    }

    /// `then`, after scheduling the reconciliation of a transfer left in doubt.
    fn reconciling(
        &self,
        then: impl FnOnce(Result<Transfer, Error>) + Send + 'static,
    ) -> impl FnOnce(Result<Transfer, Error>) + Send + 'static {
        let recon = self.recon.clone();
        move |result| {
            if let Ok(t) = &result {
                recon.schedule_transfer(t);
            }
            then(result);
        }
    }

    fn outcome_job(
        &self,
        id: Uuid,
        outcome: PayOutcome,
    ) -> impl FnOnce(&mut WriteTx<'_>) -> Result<Transfer, Error> + Send + 'static {
        let change = Settlement {
            verdict: outcome.verdict,
            sdk_transfer_id: outcome.sdk_transfer_id,
            quote: outcome.quote,
            resolution: None,
        };
        let key = self.audit_key.clone();
        move |tx| {
            let t = tx.transfer(id)?.ok_or_else(|| Error::internal(format!("transfer {id} vanished")))?;
            // A bulk item whose SDK could not be reached goes back to PENDING (SPEC §5).
            if let (Some(_), Verdict::Failed { code, message, retryable }) = (t.bulk, &change.verdict) {
                if code == "SDK_UNREACHABLE" {
                    let error = TransferError { code: code.clone(), message: message.clone(), retryable: *retryable };
                    return crate::bulk::items::requeue(tx, &key, id, error);
                }
            }
            settle(tx, &key, "system", id, TransferStatus::Pending, &change)
        }
    }
}

/// Applies `change` to a transfer that must be in status `expected` (else 409).
pub fn settle(
    tx: &mut WriteTx<'_>,
    key: &AuditKey,
    actor: &str,
    id: Uuid,
    expected: TransferStatus,
    change: &Settlement,
) -> Result<Transfer, Error> {
    let mut t = tx.transfer(id)?.ok_or_else(|| Error::not_found("TRANSFER_NOT_FOUND", format!("no transfer {id}")))?;
    if t.status != expected {
        return Err(Error::conflict("INVALID_STATE", format!("transfer {id} is {}", t.status.as_str()))
            .with_details(serde_json::json!({ "status": t.status.as_str() })));
    }
    let now = tx.now();
    let before = t.status;
    let (next, posting) = match &change.verdict {
        Verdict::Completed => {
            let mut sender = existing_account(tx, &t.sender)?;
            let settlement_key = AccountKey::Settlement(t.currency);
            let mut settlement = existing_account(tx, &settlement_key)?;
            let p = ledger::post(&mut sender, &mut settlement, t.amount).map_err(Error::internal)?;
            tx.update_account(&sender)?;
            tx.update_account(&settlement)?;
            t.error = None;
            (TransferStatus::Completed, Some(p))
        }
        Verdict::Failed { code, message, retryable } => {
            let mut sender = existing_account(tx, &t.sender)?;
            let p = ledger::void(&mut sender, t.amount).map_err(Error::internal)?;
            tx.update_account(&sender)?;
            t.error = Some(TransferError { code: code.clone(), message: message.clone(), retryable: *retryable });
            (TransferStatus::Failed, Some(p))
        }
        Verdict::InDoubt { reason } => {
            t.error = Some(TransferError { code: IN_DOUBT_CODE.into(), message: reason.clone(), retryable: false });
            (TransferStatus::InDoubt, None)
        }
    };
    t.set_status(next, now).map_err(Error::internal)?;
    if let Some(sdk) = t.sdk.as_mut() {
        if let Some(sdk_id) = change.sdk_transfer_id.as_ref().filter(|new| sdk.transfer_id.as_ref() != Some(*new)) {
            sdk.transfer_id = Some(sdk_id.clone());
            tx.index_sdk_id(sdk_id, id);
        }
        if change.quote.is_some() {
            sdk.quote = change.quote.clone();
        }
        if next == TransferStatus::InDoubt {
            sdk.recon.since = Some(now);
        } else {
            sdk.phase = SdkPhase::Done;
        }
    }
    if change.resolution.is_some() {
        t.resolution = change.resolution.clone();
    }
    if let Some(p) = posting {
        t.postings.push(p);
    }
    tx.update_transfer(before, &t)?;
    crate::bulk::items::on_transfer_settled(tx, &t)?;
    let action = match (change.resolution.is_some(), next) {
        (true, _) => "TRANSFER_RESOLVED",
        (false, TransferStatus::InDoubt) => "TRANSFER_IN_DOUBT",
        (false, _) => "TRANSFER_SETTLED",
    };
    audit_transfer(tx, key, actor, action, &t)?;
    Ok(t)
}
