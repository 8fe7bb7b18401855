//! Operator actions on a job (SPEC §5): approve (reserving the total), reject, pause,
//! resume, cancel, retry, and resolving an IN_DOUBT item. All audited; an action in
//! the wrong state is `409 INVALID_STATE` naming the current state.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::files;
use super::items::{job_details, load_item, load_job, save_item, save_job};
use super::model::{item_transfer_id, Item, ItemStatus, Job, JobStatus};
use crate::auth::audit::{self, Draft};
use crate::auth::{Actor, Role};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::ledger::{self, format_minor, AccountKey, Minor, Transfer};
use crate::store::{keys, TreeId, WriteTx};
use crate::transfers::adjust::self_approval;
use crate::transfers::resolve::{check_reason, ResolveRequest};
use crate::transfers::{account_frozen, insufficient_funds};

/// Items re-queued or cancelled per store job (bounded transactions).
const ITEMS_PER_JOB: usize = 1000;

fn invalid_state(job: &Job, action: &str) -> Error {
    Error::conflict("INVALID_STATE", format!("cannot {action} a job that is {}", job.status.as_str()))
        .with_details(json!({ "status": job.status.as_str() }))
}

fn audit_job(
    tx: &mut WriteTx<'_>,
    key: &audit::AuditKey,
    actor: &str,
    action: &str,
    job: &Job,
    extra: serde_json::Value,
) -> Result<(), Error> {
    let mut details = job_details(job);
    if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    audit::append(
        tx,
        key,
        Draft { actor: actor.into(), action: action.into(), target: Some(job.id.to_string()), details },
    )?;
    Ok(())
}

/// One audited change of a job in one store job: loads it, lets `change` check its
/// state and edit it (returning the audit entry's extra details), saves and audits it.
fn change_job(
    tx: &mut WriteTx<'_>,
    key: &audit::AuditKey,
    actor: &str,
    action: &str,
    id: Uuid,
    change: impl FnOnce(&mut WriteTx<'_>, &mut Job) -> Result<serde_json::Value, Error>,
) -> Result<Job, Error> {
    let mut job = load_job(tx, id)?;
    let extra = change(tx, &mut job)?;
    save_job(tx, &job)?;
    audit_job(tx, key, actor, action, &job, extra)?;
    Ok(job)
}

/// Takes `amount` out of the source wallet's available money into its reserved money,
/// recording the reservation on the job. 422 with the shortfall if it cannot.
fn reserve(tx: &mut WriteTx<'_>, job: &mut Job, amount: Minor) -> Result<(), Error> {
    let mut source = tx.account(&AccountKey::Wallet(job.source))?.ok_or_else(|| {
        Error::rejected("ACCOUNT_NOT_FOUND", format!("the source wallet {} no longer exists", job.source))
    })?;
    if source.is_frozen() {
        return Err(account_frozen(&source));
    }
    if source.available < amount {
        return Err(insufficient_funds(&source, amount));
    }
    job.postings.push(ledger::reserve(&mut source, amount).map_err(Error::internal)?);
    job.reserved_remaining += amount;
    tx.update_account(&source)?;
    Ok(())
}

/// Gives `amount` of the job's reservation back to the source wallet.
fn release(tx: &mut WriteTx<'_>, job: &mut Job, amount: Minor) -> Result<(), Error> {
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

impl Engine {
    /// A checker or admin other than the uploader approves: the valid total is reserved.
    pub async fn approve_job(
        self: &Arc<Self>,
        actor: &Actor,
        id: Uuid,
        acknowledge_duplicates: bool,
    ) -> Result<Job, Error> {
        let job = self.job(id)?;
        if job.status != JobStatus::AwaitingApproval {
            return Err(invalid_state(&job, "approve"));
        }
        if job.created_by == actor.name {
            return Err(self_approval());
        }
        let lines = files::read_lines(&files::lines_path(&self.store, id));
        let engine = self.clone();
        let dup_job = job.clone();
        let duplicates = tokio::task::spawn_blocking(move || engine.duplicate_lines(&dup_job, &lines))
            .await
            .map_err(Error::internal)??;
        if !duplicates.is_empty() && !acknowledge_duplicates {
            return Err(Error::conflict("DUPLICATES_NOT_ACKNOWLEDGED", "lines of this job were already paid or queued in other jobs; approve with acknowledge_duplicates: true to pay them again")
                .with_details(json!({ "warnings": duplicates })));
        }
        let key = self.audit_key.clone();
        let checker = actor.name.clone();
        let job = self
            .store
            .writer
            .run(move |tx| {
                change_job(tx, &key, &checker, "JOB_APPROVED", id, |tx, job| {
                    if job.status != JobStatus::AwaitingApproval {
                        return Err(invalid_state(job, "approve"));
                    }
                    let total = job.amounts[ItemStatus::Pending.index()];
                    reserve(tx, job, total)?;
                    job.status = JobStatus::Processing;
                    job.approved_by = Some(checker.clone());
                    job.started_at = Some(tx.now());
                    job.warnings.extend(duplicates.iter().map(|w| format!("acknowledged: {w}")));
                    Ok(json!({ "reserved": format_minor(total, job.currency), "acknowledged_duplicates": duplicates }))
                })
            })
            .await?;
        self.bulk.wake();
        Ok(job)
    }

    /// Without approval (`SYSGP_BULK_APPROVAL=false`) a valid job starts at once, or
    /// fails `INSUFFICIENT_FUNDS`.
    pub fn auto_approve(self: &Arc<Self>, id: Uuid) {
        let key = self.audit_key.clone();
        let result = self.store.writer.run_blocking(move |tx| {
            let mut job = load_job(tx, id)?;
            if job.status != JobStatus::AwaitingApproval {
                return Ok(job);
            }
            let total = job.amounts[ItemStatus::Pending.index()];
            match reserve(tx, &mut job, total) {
                Ok(()) => {
                    job.status = JobStatus::Processing;
                    job.started_at = Some(tx.now());
                }
                Err(e) => {
                    job.status = JobStatus::Failed;
                    job.reason = Some(format!("{}: {}", e.code, e.message));
                    job.finished_at = Some(tx.now());
                }
            }
            save_job(tx, &job)?;
            audit_job(tx, &key, "system", "JOB_AUTO_APPROVED", &job, json!({}))?;
            Ok::<Job, Error>(job)
        });
        match result {
            Ok(_) => self.bulk.wake(),
            Err(e) => log::error!("starting job {id} without approval: {e}"),
        }
    }

    /// A checker other than the uploader rejects a job awaiting approval.
    pub async fn reject_job(self: &Arc<Self>, actor: &Actor, id: Uuid, reason: String) -> Result<Job, Error> {
        let reason = check_reason(&reason)?;
        let key = self.audit_key.clone();
        let checker = actor.name.clone();
        let job = self
            .store
            .writer
            .run(move |tx| {
                change_job(tx, &key, &checker, "JOB_REJECTED", id, |tx, job| {
                    if job.status != JobStatus::AwaitingApproval {
                        return Err(invalid_state(job, "reject"));
                    }
                    if job.created_by == checker {
                        return Err(self_approval());
                    }
                    job.status = JobStatus::Rejected;
                    job.reason = Some(reason.clone());
                    job.finished_at = Some(tx.now());
                    Ok(json!({ "reason": reason }))
                })
            })
            .await?;
        self.spawn_cancel_items(id);
        Ok(job)
    }

    /// Pauses a running job (operators and the circuit breaker).
    pub fn pause_job_blocking(&self, actor: &str, id: Uuid, reason: String) -> Result<Job, Error> {
        let key = self.audit_key.clone();
        let actor = actor.to_owned();
        self.store
            .writer
            .run_blocking(move |tx| {
                change_job(tx, &key, &actor, "JOB_PAUSED", id, |_, job| {
                    if job.status != JobStatus::Processing {
                        return Err(invalid_state(job, "pause"));
                    }
                    job.status = JobStatus::Paused;
                    job.reason = Some(reason.clone());
                    Ok(json!({ "reason": reason }))
                })
            })
            .inspect(|_| self.bulk.wake())
    }

    /// `POST …/pause/`.
    pub async fn pause_job(self: &Arc<Self>, actor: &Actor, id: Uuid) -> Result<Job, Error> {
        let engine = self.clone();
        let name = actor.name.clone();
        tokio::task::spawn_blocking(move || engine.pause_job_blocking(&name, id, format!("paused by {name}")))
            .await
            .map_err(Error::internal)?
    }

    /// `POST …/resume/`: a paused job continues (the breaker starts afresh).
    pub async fn resume_job(self: &Arc<Self>, actor: &Actor, id: Uuid) -> Result<Job, Error> {
        let key = self.audit_key.clone();
        let name = actor.name.clone();
        let job = self
            .store
            .writer
            .run(move |tx| {
                change_job(tx, &key, &name, "JOB_RESUMED", id, |tx, job| {
                    if job.status != JobStatus::Paused {
                        return Err(invalid_state(job, "resume"));
                    }
                    job.status = JobStatus::Processing;
                    job.reason = None;
                    super::items::finish_if_done(job, tx.now());
                    Ok(json!({}))
                })
            })
            .await?;
        self.bulk.reset_breaker(id);
        self.bulk.wake();
        Ok(job)
    }

    /// `POST …/cancel/`: remaining PENDING items are cancelled (in the background, a
    /// bounded batch at a time, releasing their money). The uploader may cancel a job
    /// not yet approved; makers, checkers and admins a running one.
    pub async fn cancel_job(self: &Arc<Self>, actor: &Actor, role: Role, id: Uuid) -> Result<Job, Error> {
        let key = self.audit_key.clone();
        let name = actor.name.clone();
        let job = self
            .store
            .writer
            .run(move |tx| {
                change_job(tx, &key, &name, "JOB_CANCELLED", id, |tx, job| {
                    let unapproved = matches!(job.status, JobStatus::Pending | JobStatus::AwaitingApproval);
                    let running = matches!(job.status, JobStatus::Processing | JobStatus::Paused);
                    if !unapproved && !running {
                        return Err(invalid_state(job, "cancel"));
                    }
                    if unapproved && job.created_by != name && role != Role::Admin {
                        return Err(Error::new(
                            ErrorKind::Forbidden,
                            "FORBIDDEN",
                            "only the uploader (or an admin) cancels a job that is not approved yet",
                        ));
                    }
                    job.status = JobStatus::Cancelled;
                    job.finished_at = Some(tx.now());
                    Ok(json!({}))
                })
            })
            .await?;
        self.bulk.wake();
        self.spawn_cancel_items(id);
        Ok(job)
    }

    /// Cancels the PENDING items of a cancelled or rejected job in bounded batches.
    pub fn spawn_cancel_items(self: &Arc<Self>, id: Uuid) {
        let engine = self.clone();
        let spawned = std::thread::Builder::new().name("sysgp-cancel".into()).spawn(move || loop {
            match engine.cancel_some_items(id) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    log::error!("cancelling the items of job {id}: {e}");
                    break;
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("cannot start cancelling job {id}: {e}");
        }
    }

    fn cancel_some_items(&self, id: Uuid) -> Result<usize, Error> {
        let lines: Vec<u32> = self
            .store
            .items(id, 0, ITEMS_PER_JOB, |i: &Item| i.status == ItemStatus::Pending)?
            .into_iter()
            .map(|i| i.line)
            .collect();
        let n = lines.len();
        if n == 0 {
            return Ok(0);
        }
        self.store.writer.run_blocking(move |tx| {
            let mut job = load_job(tx, id)?;
            let mut released = 0;
            for line in lines {
                let mut item = load_item(tx, id, line)?;
                if item.status != ItemStatus::Pending {
                    continue;
                }
                job.count_move(Some(ItemStatus::Pending), ItemStatus::Cancelled, item.amount);
                released += item.amount;
                item.status = ItemStatus::Cancelled;
                item.updated_at = tx.now();
                save_item(tx, id, &item)?;
            }
            // Unapproved jobs hold no reservation: nothing to give back.
            let held = released.min(job.reserved_remaining);
            release(tx, &mut job, held)?;
            save_job(tx, &job)
        })?;
        Ok(n)
    }

    /// `POST …/retry/`: FAILED items with a retryable error are re-queued as new
    /// attempts (new transfer ids), their total reserved first. Never IN_DOUBT ones.
    pub async fn retry_job(
        self: &Arc<Self>,
        actor: &Actor,
        id: Uuid,
        acknowledge_duplicates: bool,
    ) -> Result<Job, Error> {
        let job = self.job(id)?;
        if !matches!(job.status, JobStatus::Processing | JobStatus::Paused | JobStatus::Completed) {
            return Err(invalid_state(&job, "retry"));
        }
        let store = self.store.clone();
        let retryable: Vec<Item> = tokio::task::spawn_blocking(move || {
            store.items(id, 0, usize::MAX, |i: &Item| {
                i.status == ItemStatus::Failed && i.error.as_ref().is_some_and(|e| e.retryable)
            })
        })
        .await
        .map_err(Error::internal)??;
        if retryable.is_empty() {
            return Err(Error::conflict("NOTHING_TO_RETRY", "no FAILED item of this job has a retryable error"));
        }
        let lines: Vec<u64> = {
            let mut v: Vec<u64> = retryable
                .iter()
                .filter_map(|i| Some(super::ingest::line_hash(i.msisdn?, i.amount, i.reference.as_deref())))
                .collect();
            v.sort_unstable();
            v
        };
        let engine = self.clone();
        let dup_job = job.clone();
        let duplicates = tokio::task::spawn_blocking(move || engine.duplicate_lines(&dup_job, &lines))
            .await
            .map_err(Error::internal)??;
        if !duplicates.is_empty() && !acknowledge_duplicates {
            return Err(Error::conflict(
                "DUPLICATES_NOT_ACKNOWLEDGED",
                "lines to retry were already paid or queued in other jobs; retry with acknowledge_duplicates: true",
            )
            .with_details(json!({ "warnings": duplicates })));
        }
        for chunk in retryable.chunks(ITEMS_PER_JOB) {
            self.requeue_failed(actor, id, chunk.iter().map(|i| i.line).collect()).await?;
        }
        self.bulk.wake();
        self.job(id)
    }

    async fn requeue_failed(self: &Arc<Self>, actor: &Actor, id: Uuid, lines: Vec<u32>) -> Result<(), Error> {
        let key = self.audit_key.clone();
        let name = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                change_job(tx, &key, &name, "JOB_RETRIED", id, |tx, job| {
                    let mut items = Vec::new();
                    for line in lines {
                        let item = load_item(tx, id, line)?;
                        if item.status == ItemStatus::Failed && item.error.as_ref().is_some_and(|e| e.retryable) {
                            items.push(item);
                        }
                    }
                    let total: Minor = items.iter().map(|i| i.amount).sum();
                    reserve(tx, job, total)?;
                    for mut item in items {
                        job.count_move(Some(ItemStatus::Failed), ItemStatus::Pending, item.amount);
                        item.status = ItemStatus::Pending;
                        item.attempts += 1;
                        item.transfer_id = item_transfer_id(id, item.line, item.attempts);
                        item.updated_at = tx.now();
                        save_item(tx, id, &item)?;
                    }
                    if job.status == JobStatus::Completed {
                        job.status = JobStatus::Processing;
                        job.finished_at = None;
                    }
                    job.retries += 1;
                    Ok(json!({ "reserved": format_minor(total, job.currency) }))
                })
            })
            .await
            .map(|_| ())
    }

    /// `POST …/items/{line}/resolve/`: resolves the item's IN_DOUBT transfer (SPEC §3).
    pub async fn resolve_item(
        self: &Arc<Self>,
        actor: &Actor,
        id: Uuid,
        line: u32,
        req: ResolveRequest,
    ) -> Result<Transfer, Error> {
        let item: Item = self
            .store
            .record(TreeId::Items, &keys::item(id, line))?
            .ok_or_else(|| Error::not_found("ITEM_NOT_FOUND", format!("job {id} has no item on line {line}")))?;
        if item.status != ItemStatus::InDoubt {
            return Err(Error::conflict(
                "INVALID_STATE",
                format!("only IN_DOUBT items can be resolved; line {line} is {}", item.status.as_str()),
            )
            .with_details(json!({ "status": item.status.as_str() })));
        }
        self.resolve(actor, item.transfer_id, req).await
    }

    /// A job by id.
    pub fn job(&self, id: Uuid) -> Result<Job, Error> {
        self.store
            .record(TreeId::Jobs, id.as_bytes())?
            .ok_or_else(|| Error::not_found("JOB_NOT_FOUND", format!("no job {id}")))
    }
}
