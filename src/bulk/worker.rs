//! The bulk worker pool (SPEC §5): a dispatcher hands PENDING items of PROCESSING jobs
//! to `SYSGP_BULK_WORKERS` threads, a small chunk per job in turn (fair sharing), at
//! most `SYSGP_BULK_RATE_PER_SEC`. Claims live in memory only: after a restart every
//! unfinished item is PENDING again. Each worker marks its item PROCESSING durably,
//! calls the SDK synchronously through the core client, and records the outcome.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::breaker::{Breaker, Trip};
use super::items::{self, Started};
use super::model::{Item, ItemStatus, Job, JobStatus};
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{SdkPhase, Transfer};
use crate::sdk::SdkMode;
use crate::store::TreeId;

/// Items claimed from one job per turn: small, so that jobs share the pool.
const CHUNK: usize = 16;
/// How long the dispatcher sleeps after a round that handed nothing out, unless woken,
/// before it asks its listed jobs for items again.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// How long the dispatcher keeps its list of runnable jobs when nobody woke it. Every
/// change that makes a job runnable wakes it (approve, resume, retry, start-up, an
/// item requeued), and so do pause and cancel, so this is only a safety net: listing
/// reads every job record, which costs more the longer the job history (it was read
/// up to four times a second while no job was runnable).
const RESCAN: Duration = Duration::from_secs(30);
/// Completions counted for the rate and ETA.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Finish times kept per job for its rate: enough for the window at any realistic rate.
const RATE_SAMPLES_MAX: usize = 10_000;

/// Records an item finished at `now`: only the rate window's finish times are kept
/// (at most [`RATE_SAMPLES_MAX`] per job), and jobs with none in it are forgotten, so
/// the table does not grow with the items or the jobs a process has run.
fn record_done(done: &mut HashMap<Uuid, VecDeque<Instant>>, job: Uuid, now: Instant) {
    let times = done.entry(job).or_default();
    times.push_back(now);
    if times.len() > RATE_SAMPLES_MAX {
        times.pop_front();
    }
    done.retain(|_, times| {
        drop_outside_window(times, now);
        !times.is_empty()
    });
}

/// Drops the finish times older than the rate window.
fn drop_outside_window(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now.duration_since(*t) > RATE_WINDOW) {
        times.pop_front();
    }
}

/// One item handed to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Claim {
    job: Uuid,
    line: u32,
}

#[derive(Default)]
struct PoolState {
    claimed: HashSet<Claim>,
    cursors: HashMap<Uuid, u32>,
    breakers: HashMap<Uuid, Breaker>,
    done: HashMap<Uuid, VecDeque<Instant>>,
    /// Settled SDK items whose outcome the breaker has not seen yet.
    unobserved: Vec<(Uuid, Transfer)>,
    woken: bool,
    /// A job changed state since the dispatcher last listed the runnable ones.
    changed: bool,
}

/// Shared state of the pool: claims, per-job cursors, breakers and rates.
#[derive(Default)]
pub struct BulkPool {
    state: Mutex<PoolState>,
    signal: Condvar,
}

impl BulkPool {
    /// Tells the dispatcher that a job changed state (approve, resume, retry, pause,
    /// cancel): work may be waiting, or a job may have stopped.
    pub fn wake(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.woken = true;
            s.changed = true;
        }
        self.signal.notify_all();
    }

    fn take_changed(&self) -> bool {
        self.state.lock().map(|mut s| std::mem::take(&mut s.changed)).unwrap_or(true)
    }

    /// Forgets a job's breaker history (on resume).
    pub fn reset_breaker(&self, job: Uuid) {
        if let Ok(mut s) = self.state.lock() {
            s.breakers.remove(&job);
        }
    }

    /// Items finished per second over the last seconds, for a running job; 0 for any
    /// other (a paused job finishes nothing until it is resumed, whatever it just did).
    pub fn rate(&self, job: &Job) -> f64 {
        if job.status != JobStatus::Processing {
            return 0.0;
        }
        let Ok(mut s) = self.state.lock() else { return 0.0 };
        let Some(times) = s.done.get_mut(&job.id) else { return 0.0 };
        let now = Instant::now();
        drop_outside_window(times, now);
        match times.front() {
            Some(first) if times.len() > 1 => times.len() as f64 / now.duration_since(*first).as_secs_f64().max(1.0),
            _ => 0.0,
        }
    }

    fn finished(&self, claim: Claim) {
        if let Ok(mut s) = self.state.lock() {
            s.claimed.remove(&claim);
            record_done(&mut s.done, claim.job, Instant::now());
        }
    }

    /// A deferred outcome is durable: the claim ends and the breaker will see it.
    fn settled(&self, claim: Claim, result: Result<Transfer, Error>) {
        match result {
            Ok(t) => {
                // A requeued item is PENDING again, maybe in a job already handed out.
                let requeued = t.bulk.is_some_and(|b| b.requeued);
                self.finished(claim);
                if let Ok(mut s) = self.state.lock() {
                    s.unobserved.push((claim.job, t));
                }
                if requeued {
                    self.wake();
                }
            }
            Err(e) => {
                log::error!("bulk item {} line {}: {e}", claim.job, claim.line);
                self.release(claim);
            }
        }
    }

    fn take_unobserved(&self) -> Vec<(Uuid, Transfer)> {
        self.state.lock().map(|mut s| std::mem::take(&mut s.unobserved)).unwrap_or_default()
    }

    fn release(&self, claim: Claim) {
        if let Ok(mut s) = self.state.lock() {
            s.claimed.remove(&claim);
        }
    }

    fn wait(&self, timeout: Duration) {
        let Ok(guard) = self.state.lock() else { return };
        if let Ok((mut s, _)) = self.signal.wait_timeout_while(guard, timeout, |s| !s.woken) {
            s.woken = false;
        }
    }
}

impl Engine {
    /// Starts the dispatcher and the workers.
    pub fn start_bulk(self: &Arc<Self>) -> std::io::Result<Vec<JoinHandle<()>>> {
        let workers = self.limits.bulk.workers;
        let (sender, receiver) = sync_channel::<Claim>(workers * 2);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut threads = Vec::with_capacity(workers + 1);
        for i in 0..workers {
            let (engine, rx) = (self.clone(), receiver.clone());
            threads.push(std::thread::Builder::new().name(format!("sysgp-bulk-{i}")).spawn(move || engine.work(&rx))?);
        }
        let engine = self.clone();
        threads
            .push(std::thread::Builder::new().name("sysgp-dispatch".into()).spawn(move || engine.dispatch(&sender))?);
        Ok(threads)
    }

    fn dispatch(&self, sender: &SyncSender<Claim>) {
        let mut limiter = self.limits.bulk.rate_per_sec.map(RateLimiter::new);
        let mut jobs: Vec<Uuid> = Vec::new();
        let mut listed: Option<Instant> = None;
        while !self.is_stopping() {
            let stale = listed.is_none_or(|at| at.elapsed() >= RESCAN);
            if self.bulk.take_changed() || stale {
                jobs = self.runnable_jobs().unwrap_or_else(|e| {
                    log::error!("bulk dispatcher: {e}");
                    Vec::new()
                });
                listed = Some(Instant::now());
            }
            let mut handed = 0;
            let mut exhausted = Vec::new();
            for &job in &jobs {
                let claims = self.next_claims(job);
                if claims.is_empty() {
                    exhausted.push(job);
                }
                for claim in claims {
                    if let Some(l) = limiter.as_mut() {
                        l.wait();
                    }
                    if sender.send(claim).is_err() {
                        return;
                    }
                    handed += 1;
                }
            }
            // Nothing left to hand out: dropped until the next listing.
            jobs.retain(|job| !exhausted.contains(job));
            if handed == 0 {
                self.bulk.wait(IDLE_WAIT);
            }
        }
    }

    /// PROCESSING jobs with PENDING items, unless a cancel was requested.
    fn runnable_jobs(&self) -> Result<Vec<Uuid>, Error> {
        let jobs: Vec<Job> = self.store.scan_tree(TreeId::Jobs)?;
        Ok(jobs
            .into_iter()
            .filter(|j| {
                j.status == JobStatus::Processing && !j.cancel_requested() && j.counts[ItemStatus::Pending.index()] > 0
            })
            .map(|j| j.id)
            .collect())
    }

    /// The next few unclaimed PENDING items of a job after its cursor (wrapping once).
    fn next_claims(&self, job: Uuid) -> Vec<Claim> {
        let Ok(mut state) = self.bulk.state.lock() else { return Vec::new() };
        let after = state.cursors.get(&job).copied().unwrap_or(0);
        let claimed = &state.claimed;
        let pending = |i: &Item| i.status == ItemStatus::Pending && !claimed.contains(&Claim { job, line: i.line });
        let mut found: Vec<Item> = self.store.items(job, after, CHUNK, pending).unwrap_or_default();
        if found.is_empty() && after > 0 {
            found = self.store.items(job, 0, CHUNK, pending).unwrap_or_default();
        }
        let claims: Vec<Claim> = found.iter().map(|i| Claim { job, line: i.line }).collect();
        state.cursors.insert(job, claims.last().map_or(0, |c| c.line));
        state.claimed.extend(claims.iter().copied());
        claims
    }

    fn work(&self, receiver: &Mutex<Receiver<Claim>>) {
        while !self.is_stopping() {
            for (job, t) in self.bulk.take_unobserved() {
                self.observe(job, &t);
            }
            let claim = match receiver.lock().map(|rx| rx.recv_timeout(IDLE_WAIT)) {
                Ok(Ok(claim)) => claim,
                Ok(Err(RecvTimeoutError::Timeout)) => continue,
                _ => return,
            };
            match self.process_claim(claim) {
                Ok(Processed::Settled(Some(t))) => {
                    self.bulk.finished(claim);
                    self.observe(claim.job, &t);
                }
                Ok(Processed::Deferred) => {}
                Ok(Processed::Settled(None)) => self.bulk.release(claim),
                Err(e) => {
                    log::error!("bulk item {} line {}: {e}", claim.job, claim.line);
                    self.bulk.release(claim);
                }
            }
        }
    }

    /// Starts the item and, for a payee elsewhere, pays it through the SDK. The SDK's
    /// outcome is recorded without waiting for it to be durable: nobody is told of it,
    /// the worker's next store job is ordered after it, and until it is durable a crash
    /// leaves the item PROCESSING for start-up recovery to ask the SDK again.
    fn process_claim(&self, claim: Claim) -> Result<Processed, Error> {
        let first_phase = if self.sdk.mode() == SdkMode::Auto { SdkPhase::FinalSent } else { SdkPhase::Reserved };
        let key = self.audit_key.clone();
        let started =
            self.store.writer.run_blocking(move |tx| items::start(tx, &key, claim.job, claim.line, first_phase))?;
        match started {
            Started::Skip => Ok(Processed::Settled(None)),
            Started::Done => Ok(Processed::Settled(self.store.transfer(self.current_transfer(claim)?)?.map(Box::new))),
            Started::CallSdk(t) => {
                let id = t.id;
                let outcome = self.call_sdk(*t)?;
                let pool = self.bulk.clone();
                self.apply_outcome_then(id, outcome, move |result| pool.settled(claim, result))?;
                Ok(Processed::Deferred)
            }
        }
    }

    fn current_transfer(&self, claim: Claim) -> Result<Uuid, Error> {
        let item: Item = self
            .store
            .record(TreeId::Items, &crate::store::keys::item(claim.job, claim.line))?
            .ok_or_else(|| Error::internal("item vanished"))?;
        Ok(item.transfer_id)
    }

    /// Feeds the breaker; pauses the job when it trips.
    fn observe(&self, job: Uuid, t: &Transfer) {
        let trip = {
            let Ok(mut state) = self.bulk.state.lock() else { return };
            let b = self.limits.bulk;
            let breaker = state.breakers.entry(job).or_insert_with(|| Breaker::new(b));
            breaker.observe(t)
        };
        if let Some(Trip(reason)) = trip {
            log::warn!("circuit breaker paused job {job}: {reason}");
            match self.pause_job_blocking("system", job, format!("circuit breaker: {reason}")) {
                Ok(_) | Err(Error { kind: crate::error::ErrorKind::Conflict, .. }) => {}
                Err(e) => log::error!("pausing job {job}: {e}"),
            }
            self.bulk.reset_breaker(job);
        }
    }
}

/// What became of a claim.
enum Processed {
    /// Settled (on-us), or nothing to do (`None`).
    Settled(Option<Box<Transfer>>),
    /// Paid through the SDK; the outcome is being made durable.
    Deferred,
}

/// Spaces item starts to at most `per_sec` per second.
struct RateLimiter {
    interval: Duration,
    next: Instant,
}

impl RateLimiter {
    fn new(per_sec: u32) -> RateLimiter {
        RateLimiter { interval: Duration::from_secs(1) / per_sec.max(1), next: Instant::now() }
    }

    fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next = self.next.max(now) + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_times_stay_bounded_and_idle_jobs_are_forgotten() {
        let mut done = HashMap::new();
        let (busy, idle) = (Uuid::new_v4(), Uuid::new_v4());
        let start = Instant::now();
        record_done(&mut done, idle, start);
        for _ in 0..(RATE_SAMPLES_MAX + 500) {
            record_done(&mut done, busy, start);
        }
        assert_eq!(done[&busy].len(), RATE_SAMPLES_MAX, "one job's finish times are capped");
        assert!(done.contains_key(&idle), "still inside the window");
        let later = start + RATE_WINDOW + Duration::from_secs(1);
        record_done(&mut done, busy, later);
        assert!(!done.contains_key(&idle), "a job with nothing in the window is forgotten");
        assert_eq!(done[&busy].len(), 1, "only the window's finish times are kept");
    }
}
