//! The reference model, continued: IN_DOUBT resolution and reconciliation (SPEC §3,
//! §4) and bulk jobs from upload to their last item (SPEC §5).

use sysgp::bulk::model::{ItemStatus, JobStatus};
use sysgp::ledger::TransferStatus;

use crate::obs::{BulkObs, Obs, Refusal};
use crate::ops::{Bulk, Decision, How, JobAction, To};
use crate::reference::{canonical, expect, minor, sdk_outcome, Kind, MItem, MJob, MTransfer, Mismatch, Model, Sys};

fn refused(status: u16, code: &str) -> Obs {
    Obs::Refused((status, code.to_owned()))
}

impl Model {
    pub(crate) fn resolve(&mut self, picked: Option<MTransfer>, how: How, got: &Obs) -> Result<(), Mismatch> {
        let Some(t) = picked else { return expect(&Obs::Skipped, got) };
        let i = self.transfers.iter().position(|x| x.id == t.id).unwrap_or_default();
        if t.status != TransferStatus::InDoubt {
            return expect(&refused(409, "INVALID_STATE"), got);
        }
        // Every IN_DOUBT transfer the simulator can produce deterministically was
        // committed by its hub (amount 408): the hub's answer is COMMITTED.
        let completed = match how {
            // Every IN_DOUBT transfer here carries its SDK id: another id is refused.
            How::HubBogusId => return expect(&refused(409, "SDK_TRANSFER_ID_MISMATCH"), got),
            How::Failed if t.hub_paid => return expect(&refused(409, "RESOLVE_CONTRADICTS_HUB"), got),
            How::Failed => false,
            How::HubOwnId => t.hub_paid,
            How::Completed => true,
        };
        let (status, code) = if completed {
            (TransferStatus::Completed, None)
        } else {
            (TransferStatus::Failed, Some("RESOLVED_FAILED"))
        };
        let want = Obs::Transfer { id: t.id, status, code: code.map(str::to_owned), replayed: false };
        expect(&want, got)?;
        self.settle(i, completed, code);
        Ok(())
    }

    pub(crate) fn reconcile(&mut self, picked: Option<MTransfer>, got: &Obs) -> Result<(), Mismatch> {
        let Some(t) = picked else { return expect(&Obs::Skipped, got) };
        expect(&Obs::Done, got)?;
        if t.status == TransferStatus::InDoubt && t.hub_paid {
            let i = self.transfers.iter().position(|x| x.id == t.id).unwrap_or_default();
            self.settle(i, true, None);
        }
        Ok(())
    }

    /// Applies the final outcome of an IN_DOUBT SDK transfer: post (reserved →
    /// settlement) or void (reserved → available), and follow a bulk item to its job.
    fn settle(&mut self, i: usize, completed: bool, code: Option<&str>) {
        let t = &mut self.transfers[i];
        t.status = if completed { TransferStatus::Completed } else { TransferStatus::Failed };
        t.code = code.map(str::to_owned);
        let (kind, amount, cur) = (t.kind, t.amount, t.cur);
        let payer = match kind {
            Kind::Sdk { from } => from,
            Kind::Item { job, line } => {
                let j = &mut self.jobs[job];
                j.reserved_remaining -= amount;
                if let Some(item) = j.items.iter_mut().find(|it| it.line == line) {
                    item.status = if completed { ItemStatus::Completed } else { ItemStatus::Failed };
                    item.code = code.map(str::to_owned);
                }
                // A job ends when its last open item settles: CANCELLED if a cancel
                // came while items were in flight, else COMPLETED.
                let running = matches!(j.status, JobStatus::Processing | JobStatus::Paused);
                if running && !j.items.iter().any(|it| it.status.holds_reservation()) {
                    j.status = if j.cancelling { JobStatus::Cancelled } else { JobStatus::Completed };
                }
                j.source
            }
            _ => return,
        };
        self.wallet_mut(payer).reserved -= amount;
        if completed {
            *self.balance_mut(cur, Sys::Settlement) += amount;
        } else {
            self.wallet_mut(payer).available += amount;
        }
    }

    pub(crate) fn bulk(&mut self, b: &Bulk, got: &Obs) -> Result<(), Mismatch> {
        self.bulk_ops += 1;
        let Obs::Bulk(seen) = got else { return Err(format!("expected a bulk job's story, got {got:?}")) };
        let mut want = BulkObs::default();
        let Some(source) = self.wallets.get(&b.source).cloned() else {
            want.upload = Some(Err((422, "ACCOUNT_NOT_FOUND".into())));
            return expect(&Obs::Bulk(want), got);
        };
        if source.frozen {
            want.upload = Some(Err((422, "ACCOUNT_FROZEN".into())));
            return expect(&Obs::Bulk(want), got);
        }
        let Some(Ok(id)) = seen.upload.clone() else {
            return Err(format!("expected the upload to be accepted, got {seen:?}"));
        };
        want.upload = Some(Ok(id));
        let job = self.jobs.len();
        let amounts: Result<Vec<i128>, _> = b.lines.iter().map(|(_, a)| minor(a, source.cur)).collect();
        let Ok(amounts) = amounts else {
            // One invalid row fails the whole file (all-or-nothing without skip_invalid).
            want.validated = Some(JobStatus::Failed);
            want.status = Some(JobStatus::Failed);
            expect(&Obs::Bulk(want), got)?;
            self.jobs.push(MJob {
                id,
                source: b.source,
                status: JobStatus::Failed,
                reserved_remaining: 0,
                items: Vec::new(),
                cancelling: false,
            });
            return Ok(());
        };
        want.validated = Some(JobStatus::AwaitingApproval);
        let mut items: Vec<MItem> = amounts
            .iter()
            .enumerate()
            .zip(&b.lines)
            .map(|((n, amount), (to, _))| MItem {
                line: n as u32 + 2,
                to: to.clone(),
                status: ItemStatus::Pending,
                code: None,
                amount: *amount,
            })
            .collect();
        let total: i128 = amounts.iter().sum();
        if b.decision == Decision::SelfApproveFirst {
            want.self_approval = Some(Err((403, "SELF_APPROVAL".into())));
        }
        let mut m = MJob {
            id,
            source: b.source,
            status: JobStatus::AwaitingApproval,
            reserved_remaining: 0,
            items: Vec::new(),
            cancelling: false,
        };
        if b.decision == Decision::Reject {
            want.decision = Some(Ok(()));
            m.status = JobStatus::Rejected;
            items.iter_mut().for_each(|it| it.status = ItemStatus::Cancelled);
        } else if source.available < total {
            want.decision = Some(Err((422, "INSUFFICIENT_FUNDS".into())));
        } else {
            want.decision = Some(Ok(()));
            let s = self.wallet_mut(b.source);
            s.available -= total;
            s.reserved += total;
            m.reserved_remaining = total;
            for item in items.iter_mut() {
                self.pay_item(&mut m, item, source.cur);
            }
            m.status = if m.reserved_remaining > 0 { JobStatus::Processing } else { JobStatus::Completed };
        }
        want.status = Some(m.status);
        want.items = item_obs(&items, seen);
        expect(&Obs::Bulk(want), got)?;
        let cur = source.cur;
        for (item, obs) in items.iter().zip(&seen.items) {
            self.record_item_transfer(job, item, obs.transfer, cur);
        }
        m.items = items;
        self.jobs.push(m);
        Ok(())
    }

    /// One item of an approved job: on-us at once (or refused), else through the SDK.
    fn pay_item(&mut self, job: &mut MJob, item: &mut MItem, cur: crate::reference::Cur) {
        let to = item.to.clone();
        let payee = match &to {
            To::Wallet(w) => self.wallets.get(w).cloned().map(|wallet| (*w, wallet)),
            To::Payee(_) => None,
        };
        let (status, code, to_wallet) = match payee {
            Some((w, _)) if w == job.source => (ItemStatus::Failed, Some("SAME_ACCOUNT"), None),
            Some((_, p)) if p.frozen => (ItemStatus::Failed, Some("ACCOUNT_FROZEN"), None),
            Some((_, p)) if p.cur != cur => (ItemStatus::Failed, Some("CURRENCY_MISMATCH"), None),
            Some((w, _)) => (ItemStatus::Completed, None, Some(w)),
            None => {
                let (s, code, _) = sdk_outcome(&to.msisdn(), &canonical(item.amount, cur));
                let s = match s {
                    TransferStatus::Completed => ItemStatus::Completed,
                    TransferStatus::InDoubt => ItemStatus::InDoubt,
                    _ => ItemStatus::Failed,
                };
                (s, code, None)
            }
        };
        item.status = status;
        item.code = code.map(str::to_owned);
        if status == ItemStatus::InDoubt {
            return;
        }
        job.reserved_remaining -= item.amount;
        self.wallet_mut(job.source).reserved -= item.amount;
        match (status, to_wallet) {
            (ItemStatus::Completed, Some(w)) => self.wallet_mut(w).available += item.amount,
            (ItemStatus::Completed, None) => *self.balance_mut(cur, Sys::Settlement) += item.amount,
            _ => self.wallet_mut(job.source).available += item.amount,
        }
    }

    /// An item that was attempted has a transfer (its id is the system's).
    fn record_item_transfer(&mut self, job: usize, item: &MItem, id: uuid::Uuid, cur: crate::reference::Cur) {
        let status = match item.status {
            ItemStatus::Completed => TransferStatus::Completed,
            ItemStatus::Failed => TransferStatus::Failed,
            ItemStatus::InDoubt => TransferStatus::InDoubt,
            _ => return,
        };
        let on_us = matches!(&item.to, To::Wallet(w) if self.wallets.contains_key(w));
        let hub_paid = !on_us && sdk_outcome(&item.to.msisdn(), &canonical(item.amount, cur)).2;
        self.transfers.push(MTransfer {
            id,
            status,
            code: item.code.clone(),
            kind: Kind::Item { job, line: item.line },
            amount: item.amount,
            cur,
            request: String::new(),
            created_by: "maker".into(),
            sdk: !on_us,
            hub_paid,
        });
    }

    /// `retry` or `cancel` on an earlier job, run to its end.
    pub(crate) fn job_action(&mut self, pick: u8, action: JobAction, got: &Obs) -> Result<(), Mismatch> {
        let Some(j) = self.job_pick(pick, action) else { return expect(&Obs::Skipped, got) };
        let Obs::Bulk(seen) = got else { return Err(format!("expected a job's story, got {got:?}")) };
        let mut job = self.jobs[j].clone();
        let refusal = match action {
            JobAction::Retry => self.retry(&mut job),
            JobAction::Cancel | JobAction::CancelByOther => self.cancel(&mut job, action),
        };
        let accepted = refusal.is_none();
        let mut want = BulkObs { decision: Some(refusal.map_or(Ok(()), Err)), ..BulkObs::default() };
        want.status = Some(job.status);
        want.items = item_obs(&job.items, seen);
        expect(&Obs::Bulk(want), got)?;
        let cur = self.wallets[&job.source].cur;
        if action == JobAction::Retry && accepted {
            let before = &self.jobs[j].items;
            let attempted: Vec<(MItem, uuid::Uuid)> = job
                .items
                .iter()
                .zip(before)
                .zip(&seen.items)
                .filter(|((_, old), _)| retryable(old))
                .map(|((new, _), obs)| (new.clone(), obs.transfer))
                .collect();
            for (item, id) in attempted {
                self.record_item_transfer(j, &item, id, cur);
            }
        }
        self.jobs[j] = job;
        Ok(())
    }

    fn retry(&mut self, job: &mut MJob) -> Option<Refusal> {
        if job.cancelling || !matches!(job.status, JobStatus::Processing | JobStatus::Paused | JobStatus::Completed) {
            return Some((409, "INVALID_STATE".into()));
        }
        let total: i128 = job.items.iter().filter(|it| retryable(it)).map(|it| it.amount).sum();
        if !job.items.iter().any(retryable) {
            return Some((409, "NOTHING_TO_RETRY".into()));
        }
        let source = self.wallets[&job.source].clone();
        if source.frozen {
            return Some((422, "ACCOUNT_FROZEN".into()));
        }
        if source.available < total {
            return Some((422, "INSUFFICIENT_FUNDS".into()));
        }
        let s = self.wallet_mut(job.source);
        s.available -= total;
        s.reserved += total;
        job.reserved_remaining += total;
        let mut items = std::mem::take(&mut job.items);
        for item in items.iter_mut().filter(|it| retryable(it)) {
            self.pay_item(job, item, source.cur);
        }
        job.items = items;
        if !job.items.iter().any(|it| it.status.holds_reservation()) {
            job.status = JobStatus::Completed;
        } else {
            job.status = JobStatus::Processing;
        }
        None
    }

    fn cancel(&mut self, job: &mut MJob, action: JobAction) -> Option<Refusal> {
        let unapproved = matches!(job.status, JobStatus::Pending | JobStatus::AwaitingApproval);
        let running = matches!(job.status, JobStatus::Processing | JobStatus::Paused);
        if (!unapproved && !running) || job.cancelling {
            return Some((409, "INVALID_STATE".into()));
        }
        if unapproved && action == JobAction::CancelByOther {
            return Some((403, "FORBIDDEN".into()));
        }
        // Items in flight keep a running job PROCESSING until they settle (SPEC §5).
        let in_flight = job.items.iter().any(|it| matches!(it.status, ItemStatus::Processing | ItemStatus::InDoubt));
        if running && in_flight {
            job.status = JobStatus::Processing;
            job.cancelling = true;
        } else {
            job.status = JobStatus::Cancelled;
        }
        let mut released = 0;
        for item in job.items.iter_mut().filter(|it| it.status == ItemStatus::Pending) {
            item.status = ItemStatus::Cancelled;
            released += item.amount;
        }
        let held = released.min(job.reserved_remaining);
        job.reserved_remaining -= held;
        let s = self.wallet_mut(job.source);
        s.reserved -= held;
        s.available += held;
        None
    }
}

/// A FAILED item whose error is retryable (SDK_TIMEOUT_PARTY, FSPIOP 4001).
fn retryable(it: &MItem) -> bool {
    it.status == ItemStatus::Failed && matches!(it.code.as_deref(), Some("SDK_TIMEOUT_PARTY" | "4001"))
}

/// The expected items with the transfer ids the system chose.
fn item_obs(items: &[MItem], seen: &BulkObs) -> Vec<crate::obs::ItemObs> {
    let ids = seen.items.iter().map(|i| i.transfer).chain(std::iter::repeat(uuid::Uuid::nil()));
    items
        .iter()
        .zip(ids)
        .map(|(it, transfer)| crate::obs::ItemObs { line: it.line, status: it.status, code: it.code.clone(), transfer })
        .collect()
}
