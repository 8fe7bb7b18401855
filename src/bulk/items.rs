//! Item transitions inside store jobs: start an item (on-us at once, or PROCESSING
//! with its PENDING transfer), requeue an attempt that sent nothing, and follow a
//! settled transfer back to its item and job — each in the same transaction as the
//! money movement.

use serde_json::json;
use uuid::Uuid;

use super::model::{item_transfer_id, Item, ItemStatus, Job, JobStatus};
use crate::auth::audit::AuditKey;
use crate::error::Error;
use crate::ledger::{self, AccountKey, BulkRef, Route, SdkPhase, SdkState, Transfer, TransferError, TransferStatus};
use crate::store::{keys, TreeId, WriteTx};
use crate::transfers::{audit_transfer, existing_account, NewTransfer};

/// Reads a job inside a store job.
pub fn load_job(tx: &WriteTx<'_>, id: Uuid) -> Result<Job, Error> {
    tx.get(TreeId::Jobs, id.as_bytes())?.ok_or_else(|| Error::not_found("JOB_NOT_FOUND", format!("no job {id}")))
}

/// Reads an item inside a store job.
pub fn load_item(tx: &WriteTx<'_>, job: Uuid, line: u32) -> Result<Item, Error> {
    tx.get(TreeId::Items, &keys::item(job, line))?
        .ok_or_else(|| Error::not_found("ITEM_NOT_FOUND", format!("job {job} has no item on line {line}")))
}

/// Saves a job.
pub fn save_job(tx: &mut WriteTx<'_>, job: &Job) -> Result<(), Error> {
    Ok(tx.put(TreeId::Jobs, job.id.as_bytes(), job)?)
}

/// Saves an item.
pub fn save_item(tx: &mut WriteTx<'_>, job: Uuid, item: &Item) -> Result<(), Error> {
    Ok(tx.put(TreeId::Items, &keys::item(job, item.line), item)?)
}

/// Ends a PROCESSING or PAUSED job whose items are all final: COMPLETED, or CANCELLED
/// when a cancel was requested while items were in flight.
pub fn finish_if_done(job: &mut Job, now: crate::ledger::Timestamp) {
    if matches!(job.status, JobStatus::Processing | JobStatus::Paused) && job.open_items() == 0 {
        debug_assert_eq!(job.reserved_remaining, 0, "job {} finished holding a reservation", job.id);
        job.status = if job.cancel_requested() { JobStatus::Cancelled } else { JobStatus::Completed };
        job.finished_at = Some(now);
    }
}

/// Gives `amount` of the job's reservation back to the source wallet, journaled on the
/// job, in the caller's transaction.
pub fn release(tx: &mut WriteTx<'_>, job: &mut Job, amount: ledger::Minor) -> Result<(), Error> {
    if amount == 0 {
        return Ok(());
    }
    let mut source =
        tx.account(&AccountKey::Wallet(job.source))?.ok_or_else(|| Error::internal("source wallet vanished"))?;
    job.postings.push(ledger::void(&mut source, amount).map_err(Error::internal)?);
    job.reserved_remaining -= amount;
    assert!(job.reserved_remaining >= 0, "job {} released more than it reserved", job.id);
    tx.update_account(&source)?;
    Ok(())
}

/// What a worker must do after starting an item.
pub enum Started {
    /// Nothing: the item was not PENDING or its job not PROCESSING.
    Skip,
    /// Settled on-us in the same transaction.
    Done,
    /// PROCESSING: call the SDK for this transfer.
    CallSdk(Box<Transfer>),
}

/// Starts one PENDING item of a PROCESSING job: a local payee is paid on-us at once,
/// anyone else gets a PENDING transfer (phase `first_phase`) and the item PROCESSING.
pub fn start(
    tx: &mut WriteTx<'_>,
    key: &AuditKey,
    job_id: Uuid,
    line: u32,
    first_phase: SdkPhase,
) -> Result<Started, Error> {
    let mut job = load_job(tx, job_id)?;
    let mut item = load_item(tx, job_id, line)?;
    if job.status != JobStatus::Processing || job.cancel_requested() || item.status != ItemStatus::Pending {
        return Ok(Started::Skip);
    }
    let payee = item.msisdn.ok_or_else(|| Error::internal(format!("line {line} has no payee")))?;
    let receiver = tx.account(&AccountKey::Wallet(payee))?;
    let route = if receiver.is_some() { Route::OnUs } else { Route::Sdk };
    let mut t = NewTransfer {
        id: item.transfer_id,
        sender: AccountKey::Wallet(job.source),
        receiver: AccountKey::Wallet(payee),
        amount: item.amount,
        currency: job.currency,
        route,
        status: TransferStatus::Pending,
        note: item.note.clone(),
        reference: item.reference.clone(),
        created_by: job.created_by.clone(),
        request_hash: [0; 32],
    }
    .build(tx);
    t.bulk = Some(BulkRef { job_id, line, requeued: false });
    t.approved_by = job.approved_by.clone();
    item.route = Some(route);
    item.updated_at = tx.now();
    if let Some(receiver) = receiver {
        return on_us(tx, key, &mut job, item, t, receiver).map(|_| Started::Done);
    }
    t.sdk = Some(SdkState {
        transfer_id: None,
        phase: first_phase,
        quote: None,
        recon: Default::default(),
        resume_final: false,
    });
    job.count_move(Some(ItemStatus::Pending), ItemStatus::Processing, item.amount);
    item.status = ItemStatus::Processing;
    tx.insert_transfer(&t)?;
    save_item(tx, job_id, &item)?;
    save_job(tx, &job)?;
    Ok(Started::CallSdk(Box::new(t)))
}

/// Pays a local payee out of the job's reservation, or fails the item if the payee
/// cannot receive (frozen, other currency): one transaction either way.
fn on_us(
    tx: &mut WriteTx<'_>,
    key: &AuditKey,
    job: &mut Job,
    mut item: Item,
    mut t: Transfer,
    mut receiver: ledger::Account,
) -> Result<(), Error> {
    let mut source = existing_account(tx, &t.sender)?;
    // A line paying the source wallet itself moves nothing (SPEC §3: sender ≠ receiver).
    let refusal = if receiver.key == source.key {
        Some(("SAME_ACCOUNT", "the payee is the job's source wallet".to_owned()))
    } else if receiver.is_frozen() {
        Some(("ACCOUNT_FROZEN", format!("wallet {} is frozen", receiver.key)))
    } else if receiver.currency != t.currency {
        Some(("CURRENCY_MISMATCH", format!("wallet {} holds {}", receiver.key, receiver.currency)))
    } else {
        None
    };
    let now = tx.now();
    let next = match refusal {
        None => {
            t.postings.push(ledger::post(&mut source, &mut receiver, t.amount).map_err(Error::internal)?);
            tx.update_account(&receiver)?;
            TransferStatus::Completed
        }
        Some((code, message)) => {
            t.postings.push(ledger::void(&mut source, t.amount).map_err(Error::internal)?);
            t.error = Some(TransferError { code: code.into(), message, retryable: false });
            TransferStatus::Failed
        }
    };
    tx.update_account(&source)?;
    t.status = next;
    tx.insert_transfer(&t)?;
    apply_outcome(job, &mut item, &t, now);
    save_item(tx, job.id, &item)?;
    save_job(tx, job)?;
    audit_transfer(tx, key, "system", "TRANSFER_SETTLED", &t)
}

/// Mirrors a transfer's new status onto its item and job (counters, reservation,
/// completion). Called inside the transaction that moved the money.
fn apply_outcome(job: &mut Job, item: &mut Item, t: &Transfer, now: crate::ledger::Timestamp) {
    let next = match t.status {
        TransferStatus::Completed => ItemStatus::Completed,
        TransferStatus::Failed => ItemStatus::Failed,
        TransferStatus::InDoubt => ItemStatus::InDoubt,
        _ => return,
    };
    let from = item.status;
    job.count_move(Some(from), next, item.amount);
    if matches!(next, ItemStatus::Completed | ItemStatus::Failed) {
        job.reserved_remaining -= item.amount;
        assert!(job.reserved_remaining >= 0, "job {} released more than it reserved", job.id);
    }
    item.status = next;
    item.sdk_transfer_id = t.sdk.as_ref().and_then(|s| s.transfer_id.clone());
    item.error = t.error.clone();
    item.updated_at = now;
    if next == ItemStatus::Completed {
        item.completed_at = Some(now);
    }
    finish_if_done(job, now);
}

/// Follows a settled item transfer back to its item and job.
pub fn on_transfer_settled(tx: &mut WriteTx<'_>, t: &Transfer) -> Result<(), Error> {
    let Some(b) = t.bulk else { return Ok(()) };
    let mut job = load_job(tx, b.job_id)?;
    let mut item = load_item(tx, b.job_id, b.line)?;
    if item.transfer_id != t.id {
        return Err(Error::internal(format!("transfer {} is not the current attempt of line {}", t.id, b.line)));
    }
    apply_outcome(&mut job, &mut item, t, tx.now());
    save_item(tx, b.job_id, &item)?;
    save_job(tx, &job)
}

/// An attempt that sent nothing (SDK unreachable, or stopped before FINAL_SENT): its
/// transfer fails without releasing money and the item goes back to PENDING with a
/// new transfer id for the next attempt — or, in a job being cancelled (or over),
/// becomes CANCELLED and its amount goes back to the source wallet.
pub fn requeue(
    tx: &mut WriteTx<'_>,
    key: &AuditKey,
    transfer_id: Uuid,
    error: TransferError,
) -> Result<Transfer, Error> {
    let mut t = tx.transfer(transfer_id)?.ok_or_else(|| Error::internal(format!("transfer {transfer_id} vanished")))?;
    let Some(mut b) = t.bulk else { return Err(Error::internal("requeue of a transfer that is not a bulk item")) };
    let before = t.status;
    let now = tx.now();
    t.set_status(TransferStatus::Failed, now).map_err(Error::internal)?;
    t.error = Some(error);
    b.requeued = true;
    t.bulk = Some(b);
    if let Some(sdk) = t.sdk.as_mut() {
        sdk.phase = SdkPhase::Done;
    }
    tx.update_transfer(before, &t)?;
    let mut job = load_job(tx, b.job_id)?;
    let mut item = load_item(tx, b.job_id, b.line)?;
    item.error = t.error.clone();
    item.updated_at = now;
    if job.cancel_requested() || job.status.is_final() {
        // Nothing was sent: the attempt stays the item's last, and the job may end here.
        job.count_move(Some(item.status), ItemStatus::Cancelled, item.amount);
        item.status = ItemStatus::Cancelled;
        release(tx, &mut job, item.amount)?;
        finish_if_done(&mut job, now);
    } else {
        job.count_move(Some(item.status), ItemStatus::Pending, item.amount);
        item.status = ItemStatus::Pending;
        item.attempts += 1;
        item.transfer_id = item_transfer_id(b.job_id, b.line, item.attempts);
    }
    save_item(tx, b.job_id, &item)?;
    save_job(tx, &job)?;
    audit_transfer(tx, key, "system", "TRANSFER_REQUEUED", &t)?;
    Ok(t)
}

/// Audit details of a job.
pub fn job_details(job: &Job) -> serde_json::Value {
    json!({
        "status": job.status.as_str(),
        "source": job.source.to_string(),
        "currency": job.currency.code(),
        "file_name": job.file_name,
        "reserved_remaining": crate::ledger::format_minor(job.reserved_remaining, job.currency),
    })
}
