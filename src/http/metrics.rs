//! `GET /metrics` in the Prometheus text format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use super::request::Ctx;
use crate::engine::now;
use crate::error::Error;
use crate::ledger::TransferStatus;

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// Jobs by status, their items by status, the items rate, breaker-paused jobs.
fn bulk_gauges(out: &mut String, engine: &crate::engine::Engine) -> Result<(), Error> {
    use crate::bulk::model::{ItemStatus, Job, JobStatus};
    let jobs: Vec<Job> = engine.store.scan_tree(crate::store::TreeId::Jobs)?;
    let _ = writeln!(out, "# HELP sysgp_bulk_jobs Bulk jobs by status.\n# TYPE sysgp_bulk_jobs gauge");
    for s in JobStatus::ALL {
        let _ = writeln!(
            out,
            "sysgp_bulk_jobs{{status=\"{}\"}} {}",
            s.as_str(),
            jobs.iter().filter(|j| j.status == s).count()
        );
    }
    let _ = writeln!(out, "# HELP sysgp_bulk_items Items of all jobs by status.\n# TYPE sysgp_bulk_items gauge");
    for s in ItemStatus::ALL {
        let _ = writeln!(
            out,
            "sysgp_bulk_items{{status=\"{}\"}} {}",
            s.as_str(),
            jobs.iter().map(|j| j.counts[s.index()]).sum::<u64>()
        );
    }
    let rate: f64 = jobs.iter().map(|j| engine.bulk.rate(j)).sum::<f64>() + 0.0;
    metric(
        out,
        "sysgp_bulk_items_per_second",
        "gauge",
        "Items finished per second over the last seconds, all jobs.",
        rate,
    );
    let tripped = jobs
        .iter()
        .filter(|j| {
            j.status == JobStatus::Paused && j.reason.as_deref().is_some_and(|r| r.starts_with("circuit breaker"))
        })
        .count();
    metric(out, "sysgp_bulk_breaker_open_jobs", "gauge", "Jobs paused by the circuit breaker.", tripped);
    Ok(())
}

/// `GET /metrics`.
pub async fn metrics(ctx: &mut Ctx) -> Result<Response, Error> {
    let engine = &ctx.state.engine;
    let stats = &engine.store.writer.stats;
    let mut out = String::new();
    let secs = |micros: u64| micros as f64 / 1e6;
    let _ = writeln!(
        out,
        "# HELP sysgp_build_info Build information.\n# TYPE sysgp_build_info gauge\nsysgp_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    metric(
        &mut out,
        "sysgp_store_batches_total",
        "counter",
        "Store batches committed (one sled transaction each).",
        stats.batches.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "sysgp_store_jobs_total",
        "counter",
        "Store jobs run by the writer.",
        stats.jobs.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "sysgp_store_writes_total",
        "counter",
        "Key writes committed.",
        stats.writes.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "sysgp_writer_busy_seconds_total",
        "counter",
        "Time the writer thread spent applying, committing and flushing.",
        secs(stats.busy_micros.load(Ordering::Relaxed)),
    );
    metric(
        &mut out,
        "sysgp_flush_seconds_total",
        "counter",
        "Time spent in the store's durable flush (log writes and their fdatasync).",
        secs(stats.flush_micros.load(Ordering::Relaxed)),
    );
    metric(
        &mut out,
        "sysgp_commit_seconds_total",
        "counter",
        "Time spent in sled transactions.",
        secs(stats.commit_micros.load(Ordering::Relaxed)),
    );
    metric(&mut out, "sysgp_store_size_bytes", "gauge", "Size of the store on disk.", engine.store.size_on_disk());
    let in_doubt = engine.store.transfers_with_status(TransferStatus::InDoubt)?;
    let now = now();
    let oldest = in_doubt
        .iter()
        .map(|t| now.micros_since(t.sdk.as_ref().and_then(|s| s.recon.since).unwrap_or(t.updated_at)))
        .max()
        .unwrap_or(0);
    metric(&mut out, "sysgp_in_doubt_transfers", "gauge", "Transfers in status IN_DOUBT.", in_doubt.len());
    metric(
        &mut out,
        "sysgp_in_doubt_oldest_seconds",
        "gauge",
        "Age of the oldest IN_DOUBT transfer.",
        secs(u64::try_from(oldest).unwrap_or(0)),
    );
    metric(
        &mut out,
        "sysgp_ready",
        "gauge",
        "1 when recovery is done and the invariants held.",
        u8::from(engine.is_ready()),
    );
    if let Ok(Some(head)) = crate::auth::audit_head(&engine.store) {
        let _ = writeln!(
            out,
            "# HELP sysgp_audit_head_seq Sequence number of the audit chain head (labels: its MAC and key id).\n# TYPE sysgp_audit_head_seq gauge\nsysgp_audit_head_seq{{mac=\"{}\",key_id=\"{}\"}} {}",
            hex::encode(head.mac),
            head.key_id,
            head.seq
        );
    }
    bulk_gauges(&mut out, engine)?;
    crate::metrics::render(&mut out);
    let mut r = Response::new(out.into());
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    Ok(r)
}
