//! The P2P benchmark's report: the table it prints and the rows of `target/bench/p2p.json`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::common::{metric_sum, round};
use super::{ideal_slow_sdk, Goal, Measured, Row, Scenario, NOISE_CORES};

pub(crate) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".to_owned())
}

pub(crate) fn one_line(row: &Row) -> String {
    let errors = row.outcome.as_ref().map(|m| m.load.errors).unwrap_or(0);
    format!(
        "{:>9.0}/s  p50 {} ms  p99 {} ms  errors {errors}",
        row.throughput(),
        fmt_opt(row.p50(), 2),
        fmt_opt(row.p99(), 2)
    )
}

/// Writer figures over the measured window, from `/metrics` when the server has it.
/// "Per transfer" divides by the transfers the load generator saw completed in the
/// same window (the server counts store jobs, not transfers).
#[derive(Default)]
pub(crate) struct WriterFigures {
    pub(crate) writes_per_transfer: Option<f64>,
    pub(crate) jobs_per_transfer: Option<f64>,
    pub(crate) jobs_per_batch: Option<f64>,
    pub(crate) batches_per_s: Option<f64>,
    pub(crate) busy_share: Option<f64>,
    pub(crate) commit_share: Option<f64>,
    pub(crate) flush_share: Option<f64>,
}

pub(crate) fn writer_figures(m: &Measured) -> WriterFigures {
    let Some(d) = &m.metrics else { return WriterFigures::default() };
    let wall = m.cpu["wall_s"].as_f64().unwrap_or(m.load.measured.as_secs_f64());
    let transfers = metric_sum(d, &["sysgp_transfers_total", "sysgp_p2p_transfers_total"])
        .filter(|t| *t > 0.0)
        .unwrap_or(m.load.ok as f64);
    let per_transfer = |v: Option<f64>| v.filter(|_| transfers > 0.0).map(|v| round(v / transfers, 2));
    let writes = metric_sum(d, &["sysgp_store_writes_total"]);
    let jobs = metric_sum(d, &["sysgp_store_jobs_total"]);
    let batches = metric_sum(d, &["sysgp_store_batches_total"]).filter(|b| *b > 0.0);
    WriterFigures {
        writes_per_transfer: per_transfer(writes),
        jobs_per_transfer: per_transfer(jobs),
        jobs_per_batch: jobs.zip(batches).map(|(j, b)| round(j / b, 1)),
        batches_per_s: batches.map(|b| round(b / wall, 0)),
        busy_share: metric_sum(d, &["sysgp_writer_busy_seconds_total"]).map(|b| round(b / wall, 3)),
        commit_share: metric_sum(d, &["sysgp_commit_seconds_total"]).map(|c| round(c / wall, 3)),
        flush_share: metric_sum(d, &["sysgp_flush_seconds_total"]).map(|f| round(f / wall, 3)),
    }
}

pub(crate) fn row_json(row: &Row) -> Value {
    let mut v = json!({
        "scenario": row.scenario.key(),
        "name": row.scenario.name(),
        "clients": row.clients,
        "goal": row.goal.as_ref().map(Goal::to_json),
        "verdict": row.verdict(),
    });
    match &row.outcome {
        Err(e) => v["error"] = json!(e),
        Ok(m) => {
            let l = &m.load;
            let w = writer_figures(m);
            let metrics_note = if m.metrics.is_none() {
                "not exposed yet: the server has no GET /metrics"
            } else {
                "from GET /metrics at the window's start and end; per transfer = divided by the transfers \
                 the load generator saw completed in the window"
            };
            let errors: BTreeMap<&String, Value> =
                l.error_kinds.iter().map(|(k, e)| (k, json!({ "count": e.count, "sample": e.sample }))).collect();
            v["signed_in"] = json!(m.signed_in);
            v["measured_s"] = json!(l.measured.as_secs_f64());
            v["requests_ok"] = json!(l.ok);
            v["errors"] = json!(l.errors);
            v["error_kinds"] = json!(errors);
            v["throughput_per_s"] = json!(round(l.throughput(), 1));
            v["p50_ms"] = json!(l.percentile_ms(50.0).map(|x| round(x, 3)));
            v["p90_ms"] = json!(l.percentile_ms(90.0).map(|x| round(x, 3)));
            v["p99_ms"] = json!(l.percentile_ms(99.0).map(|x| round(x, 3)));
            v["max_ms"] = json!(l.percentile_ms(100.0).map(|x| round(x, 3)));
            v["connections_opened"] = json!(l.connects);
            v["cpu"] = m.cpu.clone();
            if row.scenario != Scenario::Bare {
                v["store_writes_per_transfer"] = json!(w.writes_per_transfer);
                v["writer_busy_share"] = json!(w.busy_share);
                v["writer_commit_share"] = json!(w.commit_share);
                v["writer_flush_share"] = json!(w.flush_share);
                v["store_jobs_per_transfer"] = json!(w.jobs_per_transfer);
                v["store_jobs_per_batch"] = json!(w.jobs_per_batch);
                v["store_batches_per_s"] = json!(w.batches_per_s);
                v["writer_metrics_note"] = json!(metrics_note);
                v["writer_thread_cpu_cores"] = json!(row.cores("server_threads_cores", "sysgp-writer"));
                v["metrics_delta"] = json!(m.metrics);
            }
            if row.scenario == Scenario::SdkSlow {
                let ideal = ideal_slow_sdk(row.clients);
                v["ideal_per_s"] = json!(ideal);
                v["efficiency"] = json!(round(l.throughput() / ideal, 3));
            }
        }
    }
    v
}

pub(crate) fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<27} {:>7} {:>10} {:>8} {:>8} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}  {:<40} verdict",
        "scenario", "clients", "req/s", "p50 ms", "p99 ms", "errors", "gen", "server", "writer", "sim", "other", "goal"
    );
    println!(
        "{:<27} {:>7} {:>10} {:>8} {:>8} {:>7} {:>34}",
        "", "", "", "", "", "", "(CPU cores used, of the machine's)"
    );
    for row in rows {
        let errors = match &row.outcome {
            Ok(m) => m.load.errors.to_string(),
            Err(_) => "FAILED".to_owned(),
        };
        let mut goal = row.goal.as_ref().map(Goal::text).unwrap_or_default();
        if row.scenario == Scenario::SdkSlow {
            goal = format!("{goal} (eff {:.2})", row.throughput() / ideal_slow_sdk(row.clients));
        }
        let main_proc = if row.scenario == Scenario::Bare { "bare warp" } else { "server" };
        println!(
            "{:<27} {:>7} {:>10.0} {:>8} {:>8} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}  {:<40} {}",
            row.scenario.name(),
            row.clients,
            row.throughput(),
            fmt_opt(row.p50(), 2),
            fmt_opt(row.p99(), 2),
            errors,
            fmt_opt(row.cores("processes_cores", "load generator"), 2),
            fmt_opt(row.cores("processes_cores", main_proc), 2),
            fmt_opt(row.cores("server_threads_cores", "sysgp-writer"), 2),
            fmt_opt(row.cores("processes_cores", "simulator"), 2),
            fmt_opt(row.outcome.as_ref().ok().and_then(|m| m.cpu["other_cores"].as_f64()), 2),
            goal,
            row.verdict().unwrap_or(""),
        );
    }
    for row in rows {
        let Ok(m) = &row.outcome else { continue };
        let other = m.cpu["other_cores"].as_f64().unwrap_or(0.0);
        if other > NOISE_CORES {
            let top: Vec<String> = m.cpu["other_top_cores"]
                .as_array()
                .map(|a| a.iter().map(|p| format!("{} {}", p[0].as_str().unwrap_or("?"), p[1])).collect())
                .unwrap_or_default();
            println!(
                "  note: {} / {} clients: {other:.2} cores used outside the bench's processes (top: {})",
                row.scenario.name(),
                row.clients,
                if top.is_empty() { "kernel work not charged to a process".to_owned() } else { top.join(", ") }
            );
        }
    }
    for row in rows {
        if let Ok(m) = &row.outcome {
            for (kind, e) in &m.load.error_kinds {
                println!(
                    "  errors in {} / {} clients: {} × {kind}: {}",
                    row.scenario.name(),
                    row.clients,
                    e.count,
                    e.sample
                );
            }
        }
    }
    let seen = rows.iter().find_map(|r| r.outcome.as_ref().ok().and_then(|m| m.metrics.as_ref()));
    if let Some(seen) = seen {
        let names: Vec<&str> = seen.keys().map(String::as_str).filter(|k| k.starts_with("sysgp_")).collect();
        println!();
        println!("server GET /metrics over each measured window (counters: {}):", names.join(", "));
        for row in rows {
            let Ok(m) = &row.outcome else { continue };
            if m.metrics.is_none() {
                continue;
            }
            let w = writer_figures(m);
            println!(
                "  {:<27} {:>3} clients: writes/transfer {:>6}  jobs/transfer {:>5}  jobs/batch {:>6}  \
                 batches/s {:>5}  writer busy {:>5} (commit {:>5}, durable flush {:>5})",
                row.scenario.name(),
                row.clients,
                fmt_opt(w.writes_per_transfer, 2),
                fmt_opt(w.jobs_per_transfer, 2),
                fmt_opt(w.jobs_per_batch, 1),
                fmt_opt(w.batches_per_s, 0),
                fmt_opt(w.busy_share, 3),
                fmt_opt(w.commit_share, 3),
                fmt_opt(w.flush_share, 3),
            );
        }
    } else {
        println!("store writes per transfer, writer busy share: not exposed yet (the server has no GET /metrics)");
    }
}
