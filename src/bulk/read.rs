//! Reading jobs (SPEC §5 "Reading", §6.1): the job shape with counts, amounts,
//! progress, rate and ETA; items; the validation report; `results.csv` and
//! `errors.csv` rendered a bounded batch of items at a time (formula injection
//! neutralised); progress events.

use std::io::BufRead;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::csv::{header_columns, safe_cell, validate, Event};
use super::files;
use super::model::{Item, ItemStatus, Job};
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{format_minor, Msisdn};

/// Items rendered per chunk of a CSV download.
pub const CSV_CHUNK_ITEMS: usize = 1000;

/// The job shape of SPEC §6.1.
pub fn job_view(job: &Job, rate_per_sec: f64) -> Value {
    let c = job.currency;
    let mut counts = Map::new();
    let mut amounts = Map::new();
    for s in ItemStatus::ALL {
        counts.insert(s.as_str().into(), json!(job.counts[s.index()]));
        amounts.insert(s.as_str().into(), json!(format_minor(job.amounts[s.index()], c)));
    }
    let valid = job.valid_count();
    let done = valid - job.open_items();
    let progress = if valid == 0 { 0.0 } else { (done as f64 * 1000.0 / valid as f64).round() / 10.0 };
    let remaining = job.counts[ItemStatus::Pending.index()] + job.counts[ItemStatus::Processing.index()];
    let eta = (rate_per_sec > 0.0 && remaining > 0).then(|| (remaining as f64 / rate_per_sec).ceil() as u64);
    json!({
        "job_id": job.id.to_string(),
        "status": job.status.as_str(),
        "file_name": job.file_name,
        "source_msisdn": job.source.to_string(),
        "currency": c.code(),
        "created_by": job.created_by,
        "approved_by": job.approved_by,
        "created_at": job.created_at.to_string(),
        "started_at": job.started_at.map(|t| t.to_string()),
        // While a cancel waits for items in flight, the field holds when it was asked.
        "finished_at": job.finished_at.filter(|_| job.status.is_final()).map(|t| t.to_string()),
        "counts": counts,
        "amounts": amounts,
        "total_count": valid,
        "total_amount": format_minor(job.valid_amount(), c),
        "reserved_remaining": format_minor(job.reserved_remaining, c),
        "progress": progress,
        "rate_per_sec": (rate_per_sec * 10.0).round() / 10.0,
        "eta_seconds": eta,
        "reason": job.reason,
        "warnings": job.warnings,
        "rows": job.rows,
        "invalid_rows": job.counts[ItemStatus::Invalid.index()].max(job.problems),
        "skip_invalid": job.options.skip_invalid,
        "allow_duplicate": job.options.allow_duplicate,
        "note": job.options.note,
        "retries": job.retries,
    })
}

/// One item.
pub fn item_view(item: &Item, job: &Job) -> Value {
    json!({
        "line": item.line,
        "msisdn": item.msisdn.map(|m| m.to_string()),
        "amount": format_minor(item.amount, job.currency),
        "reference": item.reference,
        "name": item.name,
        "note": item.note,
        "status": item.status.as_str(),
        "route": item.route.map(|r| r.as_str()),
        "transfer_id": item.transfer_id.to_string(),
        "sdk_transfer_id": item.sdk_transfer_id,
        "error_code": item.error.as_ref().map(|e| e.code.clone()),
        "error_message": item.error.as_ref().map(|e| e.message.clone()),
        "attempts": item.attempts,
        "updated_at": item.updated_at.to_string(),
        "completed_at": item.completed_at.map(|t| t.to_string()),
    })
}

/// The columns of an upload when the file's own are unknown (its header was refused).
const UPLOAD_COLUMNS: [&str; 2] = ["msisdn", "amount"];

/// Problems of a `#` line (a comment or the control line): such a line is no payment
/// row, and in `errors.csv` it would make the file fail again.
const HASH_LINE_CODES: [&str; 3] = ["COMMENT_NOT_ALLOWED", "CONTROL_FORMAT", "CONTROL_MISMATCH"];

/// The columns `results.csv` and `errors.csv` start with: the job's, or for a job whose
/// validation stopped before recording them, the stored file's header read again, or
/// the two required columns when even that was refused.
pub fn download_columns(engine: &Engine, job: &Job) -> Vec<String> {
    if !job.columns.is_empty() {
        return job.columns.clone();
    }
    std::fs::File::open(files::upload_path(&engine.store, job.id))
        .ok()
        .and_then(|f| header_columns(std::io::BufReader::new(f), job.currency, engine.csv_limits(job)).ok())
        .unwrap_or_else(|| UPLOAD_COLUMNS.map(String::from).to_vec())
}

/// The cells of a row as uploaded, for `errors.csv`: every raw cell (a row with the
/// wrong number of fields is not cut to fit), but a payee that parsed is written
/// normalised, digits only, so that it needs no neutralising and uploads again as it is.
fn upload_row(columns: &[String], raw: &[String], msisdn: Option<Msisdn>) -> Vec<String> {
    let at = columns.iter().position(|c| c == "msisdn").filter(|_| raw.len() == columns.len());
    raw.iter()
        .enumerate()
        .map(|(i, cell)| match msisdn {
            Some(m) if Some(i) == at => m.to_string(),
            _ => cell.clone(),
        })
        .collect()
}

/// A column of the upload for an item (INVALID items keep their raw cells).
fn cell(job: &Job, item: &Item, column: usize) -> String {
    if item.status == ItemStatus::Invalid {
        return item.raw.get(column).cloned().unwrap_or_default();
    }
    match job.columns.get(column).map(String::as_str) {
        Some("msisdn") => item.msisdn.map(|m| m.to_string()).unwrap_or_default(),
        Some("amount") => format_minor(item.amount, job.currency),
        Some("currency") => job.currency.code().to_owned(),
        Some("reference") => item.reference.clone().unwrap_or_default(),
        Some("name") => item.name.clone().unwrap_or_default(),
        Some("note") => item.note.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// One CSV record, cells neutralised. A first cell starting with `#` is quoted, so the
/// line cannot be read back as a comment.
fn csv_line(cells: impl IntoIterator<Item = String>) -> Result<Vec<u8>, Error> {
    let cells: Vec<String> = cells.into_iter().map(|c| safe_cell(&c).into_owned()).collect();
    let quote = match cells.first().is_some_and(|c| c.starts_with('#')) {
        true => ::csv::QuoteStyle::Always,
        false => ::csv::QuoteStyle::Necessary,
    };
    let mut w = ::csv::WriterBuilder::new().quote_style(quote).from_writer(Vec::new());
    w.write_record(&cells).map_err(Error::internal)?;
    w.into_inner().map_err(|e| Error::internal(e.to_string()))
}

/// The header of `results.csv` (`errors` = false) or `errors.csv` (`errors` = true):
/// the job's columns (see [`download_columns`]), then for results the outcome columns.
pub fn csv_header(job: &Job, errors: bool) -> Result<Vec<u8>, Error> {
    let mut cells: Vec<String> = job.columns.clone();
    if !errors {
        cells.extend(
            ["status", "error_code", "error_message", "transfer_id", "sdk_transfer_id", "completed_at"]
                .map(String::from),
        );
    }
    csv_line(cells)
}

/// Whether an item belongs in `errors.csv`: INVALID rows (but no `#` line) and rows
/// whose latest attempt FAILED, never IN_DOUBT or COMPLETED ones.
fn in_errors(item: &Item) -> bool {
    match item.status {
        ItemStatus::Failed => true,
        ItemStatus::Invalid => !item.error.as_ref().is_some_and(|e| HASH_LINE_CODES.contains(&e.code.as_str())),
        _ => false,
    }
}

/// Renders the items after `after_line` (a bounded batch); `None` when there are no more.
pub fn csv_chunk(engine: &Engine, job: &Job, after_line: u32, errors: bool) -> Result<Option<(Vec<u8>, u32)>, Error> {
    let keep = |i: &Item| !errors || in_errors(i);
    let items: Vec<Item> = engine.store.items(job.id, after_line, CSV_CHUNK_ITEMS, keep)?;
    let Some(last) = items.last().map(|i| i.line) else { return Ok(None) };
    let mut out = Vec::new();
    for item in &items {
        if errors && item.status == ItemStatus::Invalid {
            out.extend(csv_line(upload_row(&job.columns, &item.raw, item.msisdn))?);
            continue;
        }
        let mut cells: Vec<String> = (0..job.columns.len()).map(|c| cell(job, item, c)).collect();
        if !errors {
            cells.push(item.status.as_str().into());
            cells.push(item.error.as_ref().map(|e| e.code.clone()).unwrap_or_default());
            cells.push(item.error.as_ref().map(|e| e.message.clone()).unwrap_or_default());
            cells.push(item.transfer_id.to_string());
            cells.push(item.sdk_transfer_id.clone().unwrap_or_default());
            cells.push(item.completed_at.map(|t| t.to_string()).unwrap_or_default());
        }
        out.extend(csv_line(cells)?);
    }
    Ok(Some((out, last)))
}

/// `errors.csv` of a job that has no items (the whole file was refused): the header
/// (see [`download_columns`]) and the invalid rows, read again from the stored file.
pub fn errors_from_file(engine: &Engine, job: &Job) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(files::upload_path(&engine.store, job.id)).map_err(Error::internal)?;
    // The job's own limits, so that rows refused for a limit are listed too; a file
    // refused as a whole lists the invalid rows found before it was refused.
    let limits = engine.csv_limits(job);
    let mut out = csv_header(job, true)?;
    let mut failure = None;
    // The outcome does not matter here: the job already failed, and why is its reason.
    let _ = validate(std::io::BufReader::new(file), job.currency, limits, |event| {
        let Event::Invalid { raw, problems, msisdn, .. } = event else { return };
        if problems.iter().any(|p| HASH_LINE_CODES.contains(&p.code)) {
            return;
        }
        match csv_line(upload_row(&job.columns, &raw, msisdn)) {
            Ok(line) => out.extend(line),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A page of the validation report: problems `offset..offset + limit`.
pub fn report_page(
    engine: &Engine,
    id: Uuid,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Value>, Option<usize>), Error> {
    let path = files::report_path(&engine.store, id);
    let Ok(file) = std::fs::File::open(&path) else { return Ok((Vec::new(), None)) };
    let mut items = Vec::new();
    let mut more = false;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate().skip(offset) {
        let line = line.map_err(Error::internal)?;
        if items.len() == limit {
            more = true;
            break;
        }
        if i >= offset {
            items.push(serde_json::from_str(&line).unwrap_or(Value::Null));
        }
    }
    Ok((items, more.then_some(offset + limit)))
}
