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
use crate::auth::Actor;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::ledger::{self, format_minor, AccountKey, Minor, Transfer};
use crate::store::{keys, TreeId, WriteTx};
use crate::transfers::adjust::self_approval;
use crate::transfers::resolve::{check_reason, ResolveRequest};
use crate::transfers::{account_frozen, insufficient_funds};

/// Items re-queued or cancelled per store job (bounded transactions).
pub(super) const ITEMS_PER_JOB: usize = 1000;

/// `409 INVALID_STATE` naming the current state (and a cancel under way, if any).
pub(super) fn invalid_state(job: &Job, action: &str) -> Error {
    let status = job.status.as_str();
    if job.cancel_requested() {
        let in_flight = job.counts[ItemStatus::Processing.index()] + job.counts[ItemStatus::InDoubt.index()];
        let why = format!(
            "cannot {action} a job that is being cancelled: it is {status} until its {in_flight} item(s) in flight settle, then CANCELLED"
        );
        return Error::conflict("INVALID_STATE", why)
            .with_details(json!({ "status": status, "cancel_requested": true }));
    }
    Error::conflict("INVALID_STATE", format!("cannot {action} a job that is {status}"))
        .with_details(json!({ "status": status }))
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

/// Retry re-queues items of a job that runs or ran to its end, never of one being
/// cancelled.
fn retryable_state(job: &Job) -> bool {
    matches!(job.status, JobStatus::Processing | JobStatus::Paused | JobStatus::Completed) && !job.cancel_requested()
}

/// One audited change of a job in one store job: loads it, lets `change` check its
/// state and edit it (returning the audit entry's extra details), saves and audits it.
pub(super) fn change_job(
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

/// Starts a job awaiting approval: its valid total reserved on the source wallet, the
/// job PROCESSING. The audit details: what was reserved.
fn start(tx: &mut WriteTx<'_>, job: &mut Job, action: &str) -> Result<serde_json::Value, Error> {
    if job.status != JobStatus::AwaitingApproval {
        return Err(invalid_state(job, action));
    }
    let total = job.amounts[ItemStatus::Pending.index()];
    reserve(tx, job, total)?;
    job.status = JobStatus::Processing;
    job.started_at = Some(tx.now());
    Ok(json!({ "reserved": format_minor(total, job.currency) }))
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
                    let mut details = start(tx, job, "approve")?;
                    job.approved_by = Some(checker.clone());
                    job.warnings.extend(duplicates.iter().map(|w| format!("acknowledged: {w}")));
                    details["acknowledged_duplicates"] = json!(duplicates);
                    Ok(details)
                })
            })
            .await?;
        self.bulk.wake();
        Ok(job)
    }

    /// Without approval (`SYSGP_BULK_APPROVAL=false`) a valid job starts at once
    /// (`JOB_AUTO_APPROVED`), or, if it cannot be funded, ends FAILED with the reason
    /// (`JOB_FAILED`) and its items, never sent, are CANCELLED.
    pub fn auto_approve(self: &Arc<Self>, id: Uuid) {
        let key = self.audit_key.clone();
        let started = self.store.writer.run_blocking(move |tx| {
            change_job(tx, &key, "system", "JOB_AUTO_APPROVED", id, |tx, job| start(tx, job, "start"))
        });
        match started {
            Ok(_) => self.bulk.wake(),
            // Cancelled by its uploader in the meantime.
            Err(e) if e.kind == ErrorKind::Conflict => {}
            // Unfundable: no money, a frozen or vanished source wallet.
            Err(e) if e.kind == ErrorKind::Rejected => self.fail_unfunded(id, &e),
            Err(e) => log::error!("starting job {id} without approval: {e}"),
        }
    }

    /// A job that could not be started without approval: FAILED with the reason, its
    /// PENDING items CANCELLED (they were never sent; nothing was reserved).
    fn fail_unfunded(self: &Arc<Self>, id: Uuid, cause: &Error) {
        let key = self.audit_key.clone();
        let reason = format!("{}: {}", cause.code, cause.message);
        let failed = self.store.writer.run_blocking(move |tx| {
            change_job(tx, &key, "system", "JOB_FAILED", id, |tx, job| {
                if job.status != JobStatus::AwaitingApproval {
                    return Err(invalid_state(job, "fail"));
                }
                job.status = JobStatus::Failed;
                job.reason = Some(reason.clone());
                job.finished_at = Some(tx.now());
                Ok(json!({ "reason": reason, "approval": "automatic" }))
            })
        });
        let cancelled = failed.and_then(|_| self.cancel_pending_items(id));
        match cancelled {
            Ok(_) | Err(Error { kind: ErrorKind::Conflict, .. }) => {}
            Err(e) => log::error!("failing job {id} that cannot be funded: {e}"),
        }
    }

    /// A checker other than the uploader rejects a job awaiting approval.
    pub async fn reject_job(self: &Arc<Self>, actor: &Actor, id: Uuid, reason: String) -> Result<Job, Error> {
        let reason = check_reason(&reason)?;
        let key = self.audit_key.clone();
        let checker = actor.name.clone();
        self.store
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
        // Its items were never reserved: they are cancelled before the reply shows it.
        self.cancel_items_now(id).await
    }

    /// Pauses a running job (operators and the circuit breaker).
    pub fn pause_job_blocking(&self, actor: &str, id: Uuid, reason: String) -> Result<Job, Error> {
        let key = self.audit_key.clone();
        let actor = actor.to_owned();
        self.store
            .writer
            .run_blocking(move |tx| {
                change_job(tx, &key, &actor, "JOB_PAUSED", id, |_, job| {
                    if job.status != JobStatus::Processing || job.cancel_requested() {
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

    /// `POST …/retry/`: FAILED items with a retryable error are re-queued as new
    /// attempts (new transfer ids), their total reserved first. Never IN_DOUBT ones.
    pub async fn retry_job(
        self: &Arc<Self>,
        actor: &Actor,
        id: Uuid,
        acknowledge_duplicates: bool,
    ) -> Result<Job, Error> {
        let job = self.job(id)?;
        if !retryable_state(&job) {
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
                    if !retryable_state(job) {
                        return Err(invalid_state(job, "retry"));
                    }
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
