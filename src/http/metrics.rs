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
        "Store batches committed (one fdatasync each).",
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
        "Time the writer thread spent applying and committing.",
        secs(stats.busy_micros.load(Ordering::Relaxed)),
    );
    metric(
        &mut out,
        "sysgp_fsync_seconds_total",
        "counter",
        "Time spent in fdatasync.",
        secs(stats.fsync_micros.load(Ordering::Relaxed)),
    );
    metric(
        &mut out,
        "sysgp_flush_seconds_total",
        "counter",
        "Time spent in sled's flush.",
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
    let mut r = Response::new(out.into());
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    Ok(r)
}
