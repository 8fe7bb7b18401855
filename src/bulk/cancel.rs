//! Cancelling a job (SPEC §5 `cancel`): its PENDING items become CANCELLED at once, in
//! bounded batches, each releasing its money in the same store job. A job that still
//! has items in flight (PROCESSING, IN_DOUBT) stays PROCESSING with the cancel recorded
//! ([`Job::cancel_requested`]) and sends nothing more; it ends CANCELLED when the last
//! of them settles (by the worker, reconciliation or an item resolve). The items of
//! rejected jobs and of jobs that failed before starting are cancelled the same way.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::actions::{change_job, invalid_state, ITEMS_PER_JOB};
use super::items::{finish_if_done, load_item, load_job, release, save_item, save_job};
use super::model::{Item, ItemStatus, Job, JobStatus};
use crate::auth::{Actor, Role};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::store::WriteTx;

impl Engine {
    /// `POST …/cancel/`. The uploader may cancel a job not yet approved; makers,
    /// checkers and admins a running one. Replies with the job once its PENDING items
    /// are cancelled.
    pub async fn cancel_job(self: &Arc<Self>, actor: &Actor, role: Role, id: Uuid) -> Result<Job, Error> {
        let key = self.audit_key.clone();
        let name = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                change_job(tx, &key, &name, "JOB_CANCELLED", id, |tx, job| {
                    let unapproved = matches!(job.status, JobStatus::Pending | JobStatus::AwaitingApproval);
                    let running = matches!(job.status, JobStatus::Processing | JobStatus::Paused);
                    if !(unapproved || running) || job.cancel_requested() {
                        return Err(invalid_state(job, "cancel"));
                    }
                    if unapproved && job.created_by != name && role != Role::Admin {
                        return Err(Error::new(
                            ErrorKind::Forbidden,
                            "FORBIDDEN",
                            "only the uploader (or an admin) cancels a job that is not approved yet",
                        ));
                    }
                    let now = tx.now();
                    let in_flight =
                        job.counts[ItemStatus::Processing.index()] + job.counts[ItemStatus::InDoubt.index()];
                    let pending = job.counts[ItemStatus::Pending.index()];
                    // A running job keeps its status until its items in flight settle; a
                    // PAUSED one runs again, but only to settle them.
                    job.status = if unapproved { JobStatus::Cancelled } else { JobStatus::Processing };
                    job.finished_at = Some(now);
                    job.reason = Some(format!("cancelled by {name}"));
                    finish_if_done(job, now);
                    Ok(json!({ "pending_items": pending, "items_in_flight": in_flight }))
                })
            })
            .await?;
        self.bulk.wake();
        self.cancel_items_now(id).await
    }

    /// Cancels the PENDING items of a job that is over or being cancelled, then reads
    /// the job as it now is (for the reply of the action).
    pub(super) async fn cancel_items_now(self: &Arc<Self>, id: Uuid) -> Result<Job, Error> {
        let engine = self.clone();
        // A blocking task runs to its end even if the client goes away.
        tokio::task::spawn_blocking(move || engine.cancel_pending_items(id)).await.map_err(Error::internal)??;
        self.job(id)
    }

    /// Cancels, in the background, the PENDING items left by a cancel, reject or
    /// failure that a restart interrupted.
    pub fn spawn_cancel_items(self: &Arc<Self>, id: Uuid) {
        let engine = self.clone();
        let spawned = std::thread::Builder::new().name("sysgp-cancel".into()).spawn(move || {
            if let Err(e) = engine.cancel_pending_items(id) {
                log::error!("cancelling the items of job {id}: {e}");
            }
        });
        if let Err(e) = spawned {
            log::error!("cannot start cancelling job {id}: {e}");
        }
    }

    /// Cancels every PENDING item of a job that is over or being cancelled, a bounded
    /// batch per store job, in line order. Returns how many were cancelled.
    pub fn cancel_pending_items(&self, id: Uuid) -> Result<u64, Error> {
        let mut after = 0;
        let mut cancelled = 0;
        loop {
            let pending = |i: &Item| i.status == ItemStatus::Pending;
            let lines: Vec<u32> = self.store.items(id, after, ITEMS_PER_JOB, pending)?.iter().map(|i| i.line).collect();
            let Some(&last) = lines.last() else { return Ok(cancelled) };
            after = last;
            cancelled += self.store.writer.run_blocking(move |tx| cancel_items(tx, id, &lines))?;
        }
    }
}

/// Cancels the listed items that are still PENDING, releasing what the job reserved for
/// them, and ends the job if nothing is left in flight.
fn cancel_items(tx: &mut WriteTx<'_>, id: Uuid, lines: &[u32]) -> Result<u64, Error> {
    let mut job = load_job(tx, id)?;
    // A job cancelled while it was validated is still getting its items (and counts):
    // validation cancels them once they are all written.
    let validated = job.content_hash.is_some();
    if !validated || !(job.status.is_final() || job.cancel_requested()) {
        return Ok(0);
    }
    // Approval reserved every PENDING item (and retry every re-queued one); a job that
    // never started reserved nothing.
    let reserved = job.started_at.is_some();
    let now = tx.now();
    let (mut cancelled, mut released) = (0, 0);
    for &line in lines {
        let mut item = load_item(tx, id, line)?;
        if item.status != ItemStatus::Pending {
            continue;
        }
        job.count_move(Some(ItemStatus::Pending), ItemStatus::Cancelled, item.amount);
        released += item.amount;
        cancelled += 1;
        item.status = ItemStatus::Cancelled;
        item.updated_at = now;
        save_item(tx, id, &item)?;
    }
    if reserved {
        release(tx, &mut job, released)?;
    }
    finish_if_done(&mut job, now);
    save_job(tx, &job)?;
    Ok(cancelled)
}
