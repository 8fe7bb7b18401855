//! The single writer: every change goes through one thread that runs jobs in order,
//! commits a whole batch of them in one sled transaction and has sled write its log
//! buffers out durably (flush: each buffer is written and fdatasync'ed, see
//! `vendor/README.md`), and only then replies to the batch's jobs (group commit).
//! Jobs queued meanwhile form the next batch.
//!
//! Jobs see their own and earlier jobs' writes through an overlay, so checks such as
//! "enough funds" are serial and exact without sled's optimistic retries. A job that
//! returns `Err` leaves no trace. Jobs must not do IO other than store reads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

pub use super::tx::WriteTx;
use super::tx::{Clock, Overlay};
use super::{codec, StoreError, StoreInner, TreeId};
use crate::ledger::Timestamp;

/// Jobs waiting for the writer. Bounds memory under overload: at 10,000 jobs/s this
/// is under half a second of work; callers wait (async) when it is full.
const QUEUE_JOBS_MAX: usize = 4096;
/// Jobs per batch. Bounds reply latency and the size of one sled transaction.
const BATCH_JOBS_MAX: usize = 512;
/// Writes per batch: sled transactions of many thousand writes grow memory sharply.
const BATCH_WRITES_MAX: usize = 2048;

type Reply = Box<dyn FnOnce() + Send>;
type Job = Box<dyn FnOnce(&mut WriteTx<'_>) -> Reply + Send>;

/// What the writer receives: a job, or a request to pause once everything before it is
/// durable (online backups).
enum Msg {
    Job(Job),
    Pause(PauseRequest),
}

/// Signals `paused` once the store is durable and idle, then waits for `resume`.
struct PauseRequest {
    paused: std::sync::mpsc::Sender<()>,
    resume: std::sync::mpsc::Receiver<()>,
}

/// Holds the writer paused (every earlier change durable, no new one applied) until
/// dropped. Jobs submitted meanwhile queue; none is refused.
pub struct PauseGuard {
    resume: Option<std::sync::mpsc::Sender<()>>,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        if let Some(resume) = self.resume.take() {
            let _ = resume.send(());
        }
    }
}

/// Counters for benchmarks and metrics.
#[derive(Default, Debug)]
pub struct WriterStats {
    /// Batches committed (one sled transaction each).
    pub batches: AtomicU64,
    /// Jobs run.
    pub jobs: AtomicU64,
    /// Key writes committed.
    pub writes: AtomicU64,
    /// Time spent applying, committing and flushing, in microseconds.
    pub busy_micros: AtomicU64,
    /// Time spent in sled's `flush` (log writes and their fdatasync), in microseconds.
    pub flush_micros: AtomicU64,
    /// Time spent in the sled transaction, in microseconds.
    pub commit_micros: AtomicU64,
}

/// Handle for submitting jobs to the writer thread.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Msg>,
    /// Shared counters.
    pub stats: Arc<WriterStats>,
    closed: ClosedSignal,
}

/// Set when the writer thread has ended and released its hold on the database.
#[derive(Clone, Default)]
pub struct ClosedSignal(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl ClosedSignal {
    fn set(&self) {
        let (lock, cv) = &*self.0;
        if let Ok(mut closed) = lock.lock() {
            *closed = true;
        }
        cv.notify_all();
    }

    /// Waits until the writer has ended; false on timeout.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let (lock, cv) = &*self.0;
        let Ok(guard) = lock.lock() else { return false };
        cv.wait_timeout_while(guard, timeout, |closed| !*closed).map(|(g, _)| *g).unwrap_or(false)
    }
}

impl Writer {
    /// Starts the writer thread over an open store.
    pub(super) fn start(inner: Arc<StoreInner>) -> Result<Writer, StoreError> {
        let next_seq = match inner.tree(TreeId::Meta).get(META_SEQ)? {
            Some(v) => codec::decode::<u64>(&v)?,
            None => 1,
        };
        let clock = Clock { last: Timestamp(0), next_seq, stored_seq: next_seq };
        let (sender, receiver) = mpsc::channel(QUEUE_JOBS_MAX);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let closed = ClosedSignal::default();
        let thread_closed = closed.clone();
        std::thread::Builder::new()
            .name("sysgp-writer".into())
            .spawn(move || {
                run(inner, receiver, clock, thread_stats);
                thread_closed.set();
            })
            .map_err(StoreError::Io)?;
        Ok(Writer { sender, stats, closed })
    }

    fn job<R, E, F>(f: F) -> (Job, oneshot::Receiver<Result<R, E>>)
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel();
        let job = Writer::job_then(f, move |result| {
            // The caller may have gone away; the change is committed either way.
            let _ = reply_to.send(result);
        });
        (job, reply)
    }

    /// A job whose result goes to `then` once its writes are durable.
    fn job_then<R, E, F, T>(f: F, then: T) -> Job
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        T: FnOnce(Result<R, E>) + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        Box::new(move |tx: &mut WriteTx<'_>| {
            let result = f(tx);
            if result.is_err() {
                tx.job = Overlay::new();
            }
            Box::new(move || then(result))
        })
    }

    /// Queues `f` without waiting for it (blocking only while the queue is full; call
    /// it from a worker thread). `then` receives the result once the writes are
    /// durable, on the writer thread: it must be quick and must not wait for the
    /// store. Jobs queued later by the same thread run after this one, so a later
    /// durable reply means this job is durable too.
    pub fn submit_blocking<R, E, F, T>(&self, f: F, then: T) -> Result<(), StoreError>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        T: FnOnce(Result<R, E>) + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let job = Writer::job_then(f, then);
        self.sender.blocking_send(Msg::Job(job)).map_err(|_| StoreError::WriterGone)
    }

    /// Async form of [`Writer::submit_blocking`] for a caller that waits on `then`
    /// itself: the time until `then` runs counts as a waited store write. `then` runs
    /// on the writer thread: it must be quick and must not wait for the store.
    pub async fn submit<R, E, F, T>(&self, f: F, then: T) -> Result<(), StoreError>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        T: FnOnce(Result<R, E>) + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let job = Writer::job_then(f, observed(then));
        self.sender.send(Msg::Job(job)).await.map_err(|_| StoreError::WriterGone)
    }

    /// [`Writer::submit`] from a worker thread (never call it on an async worker).
    pub fn submit_blocking_observed<R, E, F, T>(&self, f: F, then: T) -> Result<(), StoreError>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        T: FnOnce(Result<R, E>) + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        self.submit_blocking(f, observed(then))
    }

    /// Runs `f` on the writer and waits until its writes are durable.
    pub async fn run<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let started = Instant::now();
        let (job, reply) = Writer::job(f);
        self.sender.send(Msg::Job(job)).await.map_err(|_| StoreError::WriterGone)?;
        let result = reply.await.map_err(|_| StoreError::WriterGone)?;
        crate::metrics::observe("sysgp_store_wait_seconds", &[], started.elapsed());
        result
    }

    /// Pauses the writer once every change submitted before is durable; blocking (call
    /// it from a worker thread). Returns when paused.
    pub fn pause_blocking(&self) -> Result<PauseGuard, StoreError> {
        let (paused, paused_rx) = std::sync::mpsc::channel();
        let (resume, resume_rx) = std::sync::mpsc::channel();
        self.sender
            .blocking_send(Msg::Pause(PauseRequest { paused, resume: resume_rx }))
            .map_err(|_| StoreError::WriterGone)?;
        paused_rx.recv().map_err(|_| StoreError::WriterGone)?;
        Ok(PauseGuard { resume: Some(resume) })
    }

    /// A signal that fires once the writer thread has ended (every `Writer` dropped).
    pub fn closed_signal(&self) -> ClosedSignal {
        self.closed.clone()
    }

    /// Blocking form of [`Writer::run`] for worker threads (never call it on an async worker).
    pub fn run_blocking<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let started = Instant::now();
        let (job, reply) = Writer::job(f);
        self.sender.blocking_send(Msg::Job(job)).map_err(|_| StoreError::WriterGone)?;
        let result = reply.blocking_recv().map_err(|_| StoreError::WriterGone)?;
        crate::metrics::observe("sysgp_store_wait_seconds", &[], started.elapsed());
        result
    }
}

/// `then`, timing the store write from now until it runs.
fn observed<R, T: FnOnce(R)>(then: T) -> impl FnOnce(R) {
    let started = Instant::now();
    move |result| {
        crate::metrics::observe("sysgp_store_wait_seconds", &[], started.elapsed());
        then(result)
    }
}

const META_SEQ: &[u8] = b"next_seq";

fn run(inner: Arc<StoreInner>, mut receiver: mpsc::Receiver<Msg>, mut clock: Clock, stats: Arc<WriterStats>) {
    // Every commit below is followed by `flush_kept` on this thread, before any other
    // commit: it writes the commit's manifest with its data under one fdatasync.
    sled::defer_manifest_writes();
    let mut waiting: Option<Msg> = None;
    while let Some(msg) = waiting.take().or_else(|| receiver.blocking_recv()) {
        let first = match msg {
            Msg::Job(job) => job,
            Msg::Pause(request) => {
                pause(request);
                continue;
            }
        };
        let started = Instant::now();
        let (batch, replies, pause_next) = apply_batch(&inner, first, &mut receiver, &mut clock);
        waiting = pause_next.map(Msg::Pause);
        if batch.writes > 0 {
            if let Err(e) = commit(&inner, batch, &mut clock, &stats).and_then(|()| flush(&inner, &stats)) {
                fatal(&e);
            }
        }
        stats.jobs.fetch_add(replies.len() as u64, Ordering::Relaxed);
        stats.busy_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        // Durable now, as is every earlier batch: reply in order. A reply that panics
        // loses only its own continuation; the writer carries on with the next.
        for reply in replies {
            if catch_unwind(AssertUnwindSafe(reply)).is_err() {
                log::error!("a store reply panicked; its changes are durable, its continuation was lost");
            }
        }
    }
}

/// Tells the requester that everything before is durable (each batch is before its
/// replies) and holds the writer until it is released.
fn pause(request: PauseRequest) {
    let _ = request.paused.send(());
    let _ = request.resume.recv();
}

/// Runs jobs until the queue is empty, the batch is full, or a pause is requested.
fn apply_batch(
    inner: &StoreInner,
    first: Job,
    receiver: &mut mpsc::Receiver<Msg>,
    clock: &mut Clock,
) -> (Overlay, Vec<Reply>, Option<PauseRequest>) {
    let mut batch = Overlay::new();
    let mut replies: Vec<Reply> = Vec::new();
    let mut next = Some(first);
    while let Some(job) = next.take() {
        let now = Timestamp::from_system(SystemTime::now()).max(clock.last);
        clock.last = now;
        let mut tx = WriteTx { inner, batch: &batch, job: Overlay::new(), clock, now };
        // A panicking job loses its writes and its reply (the caller sees an
        // internal error); the batch and the thread carry on.
        if let Ok(reply) = catch_unwind(AssertUnwindSafe(|| job(&mut tx))) {
            let job_writes = tx.job;
            batch.merge(job_writes);
            replies.push(reply);
        } else {
            log::error!("a store job panicked; its changes were discarded");
        }
        if replies.len() >= BATCH_JOBS_MAX || batch.writes >= BATCH_WRITES_MAX {
            break;
        }
        match receiver.try_recv() {
            Ok(Msg::Job(job)) => next = Some(job),
            Ok(Msg::Pause(request)) => return (batch, replies, Some(request)),
            Err(_) => {}
        }
    }
    (batch, replies, None)
}

/// A failed commit or fsync leaves the on-disk state unknown: the only safe answer is
/// to stop and let start-up recovery rebuild from what is durable.
fn fatal(error: &StoreError) -> ! {
    log::error!("store commit failed, stopping to protect the ledger: {error}");
    std::process::abort();
}

/// Commits a batch atomically (see [`Overlay::commit`]), with the sequence counter if
/// it moved.
fn commit(inner: &StoreInner, mut batch: Overlay, clock: &mut Clock, stats: &WriterStats) -> Result<(), StoreError> {
    if clock.next_seq != clock.stored_seq {
        batch.set(TreeId::Meta, META_SEQ.to_vec(), Some(codec::encode(&clock.next_seq)?));
    }
    let writes = batch.writes as u64;
    let started = Instant::now();
    batch.commit(inner)?;
    clock.stored_seq = clock.next_seq;
    stats.commit_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    stats.writes.fetch_add(writes, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

// The replies after `flush` promise durability: only the vendored sled's flush gives it.
const _: () = assert!(sled::FLUSH_IS_DURABLE);

/// Writes sled's log buffers out and makes them durable: the vendored sled fdatasyncs
/// what it writes, and this thread writes the last buffer itself, together with the
/// commit's manifest it kept, under one fdatasync (no hand-off).
fn flush(inner: &StoreInner, stats: &WriterStats) -> Result<(), StoreError> {
    let started = Instant::now();
    inner.db.flush_kept()?;
    let took = started.elapsed();
    stats.flush_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    crate::metrics::observe("sysgp_fsync_duration_seconds", &[], took);
    Ok(())
}
