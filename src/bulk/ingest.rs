//! Background validation of an uploaded job (SPEC §5): a first pass checks the whole
//! file and writes the report; if the job may go on, a second pass writes its items in
//! bounded batches; then the job awaits approval (or starts, without approval).
//! Memory stays flat: rows stream through; pass 1 keeps a fingerprint per row for the
//! uniqueness checks, pass 2 only an 8-byte hash per valid line.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, BufWriter, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::csv::{self, Event, Fatal, Problem, Row, Summary};
use super::files;
use super::items::{load_job, save_job};
use super::model::{item_transfer_id, Item, ItemStatus, Job, JobStatus};
use crate::auth::audit::{self, Draft};
use crate::engine::{now, Engine};
use crate::error::Error;
use crate::ledger::{major_to_minor, Minor, Msisdn};
use crate::store::{keys, TreeId, WriteTx};

/// Items written per store job: sled transactions of many thousand writes grow memory
/// sharply, and a small job keeps P2P latency low while a large file is ingested. What
/// is queued or not yet durable costs memory too: 1M rows peaked at 218–224 MB with 200
/// items per job against 246–270 MB with 500, in about the same time (100 saved 15 MB
/// more but took 1–2 s longer).
const ITEMS_PER_JOB: usize = 200;
/// Item batches queued to the store or being made durable while the file is read on:
/// P2P changes wait behind at most this × ITEMS_PER_JOB item writes.
const BATCHES_IN_FLIGHT: usize = 2;
/// Warnings kept on the job record (the report has them all).
const WARNINGS_KEPT: usize = 20;
/// Duplicate contents are refused within this window.
pub const DUPLICATE_WINDOW_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;

/// The 64-bit hash of a line for cross-job duplicate warnings: (msisdn, amount, reference).
pub fn line_hash(msisdn: Msisdn, amount: i128, reference: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    (msisdn.as_u64(), amount, reference).hash(&mut h);
    h.finish()
}

impl Engine {
    /// Validates a PENDING job in a thread of its own.
    pub fn spawn_ingest(self: &Arc<Self>, job_id: Uuid) {
        let engine = self.clone();
        let spawned = std::thread::Builder::new().name("sysgp-ingest".into()).spawn(move || {
            if let Err(e) = engine.ingest(job_id) {
                log::error!("validating job {job_id}: {e}");
                let _ =
                    engine.fail_job(job_id, "INGEST_ERROR", "validation stopped on an internal error; see the logs");
            }
        });
        if let Err(e) = spawned {
            log::error!("cannot start validation of job {job_id}: {e}");
        }
    }

    fn ingest(self: &Arc<Self>, job_id: Uuid) -> Result<(), Error> {
        let Some(job) = self.store.record::<Job>(TreeId::Jobs, job_id.as_bytes())? else { return Ok(()) };
        if job.status != JobStatus::Pending {
            return Ok(());
        }
        let limits = self.csv_limits(&job);
        let started = std::time::Instant::now();
        let FirstPass { summary, warnings, control } = match self.first_pass(&job, limits)? {
            Ok(found) => found,
            Err(Fatal(p)) => return self.fail_job(job_id, p.code, &describe(&p)),
        };
        if let Some(p) = control {
            return self.fail_job(job_id, p.code, &describe(&p));
        }
        if summary.invalid > 0 && !job.options.skip_invalid {
            let why = format!(
                "{} of {} rows are invalid; nothing will be paid (see the report, or upload with skip_invalid)",
                summary.invalid, summary.rows
            );
            return self.fail_job(job_id, "INVALID_ROWS", &why);
        }
        if summary.valid == 0 {
            return self.fail_job(job_id, "NO_VALID_ROWS", "the file has no valid row");
        }
        if let Some(earlier) = self.duplicate_content(&job, &summary.content_hash)? {
            if !job.options.allow_duplicate {
                let why = format!("the same content was uploaded for this wallet as job {earlier} within 30 days; upload again with allow_duplicate and a reason to pay it twice");
                return self.fail_job(job_id, "DUPLICATE_FILE", &why);
            }
        }
        let checked = started.elapsed();
        let hashes = self.second_pass(&job, limits, &summary)?;
        // Every row is an item here: invalid rows stopped the job unless skip_invalid.
        log::info!(
            "job {job_id}: {} rows checked in {:.2} s, written as items in {:.2} s",
            summary.rows,
            checked.as_secs_f64(),
            (started.elapsed() - checked).as_secs_f64()
        );
        files::write_lines(&files::lines_path(&self.store, job_id), &hashes)?;
        self.finish_ingest(job_id, summary, warnings)
    }

    /// Pass 1: validate the whole file, writing the report.
    fn first_pass(&self, job: &Job, limits: csv::Limits) -> Result<Result<FirstPass, Fatal>, Error> {
        let input = BufReader::new(File::open(files::upload_path(&self.store, job.id)).map_err(Error::internal)?);
        let report_path = files::report_path(&self.store, job.id);
        let mut report = BufWriter::new(File::create(&report_path).map_err(Error::internal)?);
        let mut io_error = None;
        let mut warnings = Vec::new();
        let mut control = None;
        let mut write = |p: &Problem, severity: &str| {
            let line =
                json!({ "line": p.line, "field": p.field, "code": p.code, "message": p.message, "severity": severity });
            if let Err(e) = writeln!(report, "{line}") {
                io_error.get_or_insert(e);
            }
        };
        let result = csv::validate(input, job.currency, limits, |event| match event {
            Event::Invalid { problems, .. } => {
                for p in &problems {
                    write(p, "error");
                }
                // A control line that disagrees condemns the whole file, skip_invalid or not.
                if let Some(p) = problems.iter().find(|p| matches!(p.code, "CONTROL_MISMATCH" | "CONTROL_FORMAT")) {
                    control.get_or_insert(p.clone());
                }
            }
            Event::Warning(p) => {
                if warnings.len() < WARNINGS_KEPT {
                    warnings.push(describe(&p));
                }
                write(&p, "warning");
            }
            Event::Valid(_) => {}
        });
        if let Err(Fatal(p)) = &result {
            write(p, "error");
        }
        if let Some(e) = io_error {
            return Err(Error::internal(e));
        }
        let file = report.into_inner().map_err(|e| Error::internal(e.error()))?;
        file.sync_all().map_err(Error::internal)?;
        Ok(result.map(|summary| FirstPass { summary, warnings, control }))
    }

    /// Pass 2: write the items, a bounded batch per store job. Returns the sorted
    /// line hashes of the valid rows. The rows are judged again with the duplicate
    /// references of pass 1, so no per-row table is held while the store grows.
    fn second_pass(&self, job: &Job, limits: csv::Limits, first: &Summary) -> Result<Vec<u64>, Error> {
        let input = BufReader::new(File::open(files::upload_path(&self.store, job.id)).map_err(Error::internal)?);
        // One per valid row, as pass 1 counted: the vector never grows by copying.
        let mut hashes = Vec::with_capacity(usize::try_from(first.valid).unwrap_or(0));
        let mut batch: Vec<Item> = Vec::with_capacity(ITEMS_PER_JOB);
        let mut failure = None;
        let job_id = job.id;
        let skip_invalid = job.options.skip_invalid;
        // Batches are written while the next ones are read: at most BATCHES_IN_FLIGHT
        // are queued or being made durable, and all of them are before the job moves on.
        // Each has its own reply channel: a reply lost with its store job (a panic) is
        // an error when its turn comes, never a wait that does not end.
        let mut in_flight: VecDeque<Written> = VecDeque::new();
        let mut flush = |batch: &mut Vec<Item>, failure: &mut Option<Error>| {
            if batch.is_empty() {
                return;
            }
            if in_flight.len() == BATCHES_IN_FLIGHT {
                settle_oldest(&mut in_flight, failure);
            }
            let items = std::mem::take(batch);
            let write = move |tx: &mut WriteTx<'_>| {
                for item in &items {
                    tx.put(TreeId::Items, &keys::item(job_id, item.line), item)?;
                }
                Ok::<(), Error>(())
            };
            // A channel of one: the writer thread never blocks on it.
            let (done, reply) = sync_channel(1);
            match self.store.writer.submit_blocking(write, move |result| {
                let _ = done.send(result);
            }) {
                Ok(()) => in_flight.push_back(reply),
                Err(e) => {
                    failure.get_or_insert(e.into());
                }
            }
        };
        let result = csv::revalidate(input, job.currency, limits, first, |event| {
            let item = match event {
                Event::Valid(row) => {
                    hashes.push(line_hash(row.msisdn, row.amount, row.reference.as_deref()));
                    new_item(job_id, row)
                }
                Event::Invalid { line, raw, problems, msisdn, amount } if skip_invalid => {
                    invalid_item(job_id, line, raw, &problems, msisdn, amount)
                }
                _ => return,
            };
            batch.push(item);
            if batch.len() >= ITEMS_PER_JOB {
                flush(&mut batch, &mut failure);
            }
        });
        flush(&mut batch, &mut failure);
        while !in_flight.is_empty() {
            settle_oldest(&mut in_flight, &mut failure);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let again = result
            .map_err(|Fatal(p)| Error::internal(format!("second pass disagrees with the first: {}", describe(&p))))?;
        if again != *first {
            return Err(Error::internal("second pass disagrees with the first: the rows differ"));
        }
        hashes.sort_unstable();
        Ok(hashes)
    }

    fn finish_ingest(self: &Arc<Self>, job_id: Uuid, summary: Summary, warnings: Vec<String>) -> Result<(), Error> {
        let key = self.audit_key.clone();
        let approval = self.limits.bulk.approval;
        let cancelled = self.store.writer.run_blocking(move |tx| {
            let mut job = load_job(tx, job_id)?;
            // Cancelled while validated: its items are written, and are cancelled below.
            let cancelled = job.status == JobStatus::Cancelled;
            if job.status != JobStatus::Pending && !cancelled {
                return Ok(false);
            }
            job.rows = summary.rows;
            job.columns = summary.columns.clone();
            job.problems = summary.invalid;
            job.counts = [0; 7];
            job.amounts = [0; 7];
            job.counts[ItemStatus::Pending.index()] = summary.valid;
            job.amounts[ItemStatus::Pending.index()] = summary.valid_total;
            job.counts[ItemStatus::Invalid.index()] = summary.invalid;
            job.amounts[ItemStatus::Invalid.index()] = summary.invalid_total;
            job.content_hash = Some(summary.content_hash);
            job.warnings = warnings;
            if !cancelled {
                job.status = JobStatus::AwaitingApproval;
                tx.put_raw(TreeId::JobsByHash, &keys::job_hash(&job.source, &summary.content_hash), job_id.as_bytes());
            }
            save_job(tx, &job)?;
            let details = json!({ "rows": summary.rows, "valid": summary.valid, "invalid": summary.invalid });
            audit::append(
                tx,
                &key,
                Draft {
                    actor: "system".into(),
                    action: "JOB_VALIDATED".into(),
                    target: Some(job_id.to_string()),
                    details,
                },
            )?;
            Ok::<bool, Error>(cancelled)
        })?;
        if cancelled {
            self.cancel_pending_items(job_id)?;
        } else if !approval {
            self.auto_approve(job_id);
        }
        Ok(())
    }

    /// The earlier job (same wallet, last 30 days, not failed or rejected) with this content.
    fn duplicate_content(&self, job: &Job, hash: &[u8; 32]) -> Result<Option<Uuid>, Error> {
        let Some(raw) = self.store.raw(TreeId::JobsByHash, &keys::job_hash(&job.source, hash))? else {
            return Ok(None);
        };
        let earlier = Uuid::from_slice(&raw).map_err(Error::internal)?;
        let Some(other) = self.store.record::<Job>(TreeId::Jobs, earlier.as_bytes())? else { return Ok(None) };
        let recent = now().micros_since(other.created_at) < DUPLICATE_WINDOW_MICROS;
        let counts = !matches!(other.status, JobStatus::Failed | JobStatus::Rejected);
        Ok((other.id != job.id && recent && counts).then_some(earlier))
    }

    /// The validation limits of a job's currency.
    pub fn csv_limits(&self, job: &Job) -> csv::Limits {
        csv::Limits {
            rows_max: self.limits.bulk.rows_max,
            amount_max: self.limits.amount_max_minor(job.currency),
            total_max: major_to_minor(self.limits.bulk.total_max, job.currency),
        }
    }

    /// Marks a job FAILED with a reason (validation problems, fatal errors).
    pub fn fail_job(&self, job_id: Uuid, code: &str, why: &str) -> Result<(), Error> {
        let key = self.audit_key.clone();
        let reason = format!("{code}: {why}");
        self.store.writer.run_blocking(move |tx| {
            let mut job = load_job(tx, job_id)?;
            if job.status.is_final() {
                return Ok(());
            }
            debug_assert_eq!(job.reserved_remaining, 0, "only jobs holding no reservation fail");
            job.status = JobStatus::Failed;
            job.reason = Some(reason.clone());
            job.finished_at = Some(tx.now());
            save_job(tx, &job)?;
            audit::append(
                tx,
                &key,
                Draft {
                    actor: "system".into(),
                    action: "JOB_FAILED".into(),
                    target: Some(job_id.to_string()),
                    details: json!({ "reason": reason }),
                },
            )?;
            Ok::<(), Error>(())
        })
    }
}

/// The reply of an item batch submitted to the store: its result once durable.
type Written = Receiver<Result<(), Error>>;

/// Waits for the oldest batch in flight; a reply lost with its store job is an error.
fn settle_oldest(in_flight: &mut VecDeque<Written>, failure: &mut Option<Error>) {
    let Some(reply) = in_flight.pop_front() else { return };
    let result = reply.recv().unwrap_or_else(|_| Err(Error::internal("a batch of items was not written")));
    if let Err(e) = result {
        failure.get_or_insert(e);
    }
}

/// What the first pass learnt.
struct FirstPass {
    summary: Summary,
    warnings: Vec<String>,
    control: Option<Problem>,
}

fn describe(p: &Problem) -> String {
    match &p.field {
        Some(field) => format!("line {}, {field}: {} ({})", p.line, p.message, p.code),
        None => format!("line {}: {} ({})", p.line, p.message, p.code),
    }
}

fn new_item(job: Uuid, row: Row) -> Item {
    Item {
        line: row.line,
        msisdn: Some(row.msisdn),
        amount: row.amount,
        raw: Vec::new(),
        reference: row.reference,
        name: row.name,
        note: row.note,
        status: ItemStatus::Pending,
        route: None,
        transfer_id: item_transfer_id(job, row.line, 0),
        sdk_transfer_id: None,
        error: None,
        attempts: 0,
        updated_at: now(),
        completed_at: None,
    }
}

/// An INVALID row keeps what could be read of it (never paid, never reserved).
fn invalid_item(
    job: Uuid,
    line: u32,
    raw: Vec<String>,
    problems: &[Problem],
    msisdn: Option<Msisdn>,
    amount: Option<Minor>,
) -> Item {
    let first = problems.first();
    Item {
        line,
        msisdn,
        amount: amount.unwrap_or(0),
        raw,
        reference: None,
        name: None,
        note: None,
        status: ItemStatus::Invalid,
        route: None,
        transfer_id: item_transfer_id(job, line, 0),
        sdk_transfer_id: None,
        error: first.map(|p| crate::ledger::TransferError {
            code: p.code.into(),
            message: describe(p),
            retryable: false,
        }),
        attempts: 0,
        updated_at: now(),
        completed_at: None,
    }
}
