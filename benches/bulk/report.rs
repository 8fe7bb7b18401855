//! The bulk benchmark's report: the table it prints and the figures of `target/bench/bulk.json`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::common::{metric_sum, metrics_delta, noise_note, round, thread_groups, LoadResult};
use super::Row;

/// A P2P figure; `cpu` holds one entry per window pooled.
pub(crate) fn load_json(l: &LoadResult, cpu: Value) -> Value {
    let ms = |p: f64| l.percentile_ms(p).map(|x| round(x, 3));
    json!({
        "measured_s": l.measured.as_secs_f64(),
        "requests_ok": l.ok,
        "errors": l.errors,
        "error_kinds": l.error_kinds.iter().map(|(k, e)| (k.clone(), e.count)).collect::<BTreeMap<_, _>>(),
        "throughput_per_s": round(l.throughput(), 1),
        "p50_ms": ms(50.0),
        "p90_ms": ms(90.0),
        "p99_ms": ms(99.0),
        "max_ms": ms(100.0),
        "windows_cpu": cpu,
    })
}

// ---------------------------------------------------------------------------------
// Figures and the report
// ---------------------------------------------------------------------------------

/// The store writer's counters over a part, per row or item and as shares of the wall time.
pub(crate) fn writer_figures(
    before: &Option<BTreeMap<String, f64>>,
    after: &Option<BTreeMap<String, f64>>,
    wall_s: f64,
    units: u64,
) -> Value {
    let (Some(a), Some(b)) = (before, after) else { return Value::Null };
    let d = metrics_delta(a, b);
    let sum = |name: &str| metric_sum(&d, &[name]);
    let per_unit = |name: &str| sum(name).map(|v| round(v / units.max(1) as f64, 2));
    let share = |name: &str| sum(name).map(|v| round(v / wall_s, 3));
    let batches = sum("sysgp_store_batches_total");
    json!({
        "writes_per_unit": per_unit("sysgp_store_writes_total"),
        "jobs_per_unit": per_unit("sysgp_store_jobs_total"),
        "batches_per_s": batches.map(|x| round(x / wall_s, 0)),
        "jobs_per_batch": sum("sysgp_store_jobs_total").zip(batches).map(|(j, b)| round(j / b.max(1.0), 1)),
        "busy_share": share("sysgp_writer_busy_seconds_total"),
        "commit_share": share("sysgp_commit_seconds_total"),
        "flush_share": share("sysgp_flush_seconds_total"),
        "store_size_mb": b.get("sysgp_store_size_bytes").map(|s| round(s / 1_048_576.0, 1)),
        "store_wait_mean_ms": mean_ms(a, b, "sysgp_store_wait_seconds", ""),
        "sdk_post_mean_ms": mean_ms(a, b, "sysgp_sdk_request_duration_seconds", "{method=\"POST\"}"),
    })
}

/// The mean of a histogram series between two scrapes, in milliseconds: its `_sum`
/// over its `_count` (a series first seen in the second scrape started from zero).
pub(crate) fn mean_ms(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    name: &str,
    labels: &str,
) -> Option<f64> {
    let delta = |part: &str| {
        let key = format!("{name}_{part}{labels}");
        Some(after.get(&key)? - before.get(&key).copied().unwrap_or(0.0))
    };
    let (sum, count) = (delta("sum")?, delta("count")?);
    (count > 0.0).then(|| round(sum / count * 1000.0, 2))
}

pub(crate) fn fmt_ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into())
}

pub(crate) fn print_table(rows: &[Row]) {
    println!();
    println!("{:<40} {:<82} {:<38} verdict", "part", "measured", "goal");
    for r in rows {
        println!("{:<40} {:<82} {:<38} {}", r.name, r.figure, r.goal, r.verdict.unwrap_or(""));
    }
    println!();
    for r in rows {
        match &r.outcome {
            Err(e) => println!("{}: FAILED: {e}", r.name),
            Ok(v) => {
                let cpu = if r.key == "p2p_during_job" { &v["during_job"]["windows_cpu"][0] } else { &v["cpu"] };
                let mut cpus = vec![cpu];
                for kind in ["without_job", "during_job"] {
                    cpus.extend(v[kind]["windows_cpu"].as_array().into_iter().flatten());
                }
                for c in cpus.iter().skip(usize::from(r.key == "p2p_during_job")) {
                    noise_note(&r.name, c);
                }
                let w = &v["writer"];
                println!(
                    "{}: CPU cores server {} simulator {} load generator {} other {} | server threads: {}",
                    r.name,
                    cpu["processes_cores"]["server"],
                    cpu["processes_cores"]["simulator"],
                    cpu["processes_cores"]["load generator"],
                    cpu["other_cores"],
                    thread_groups(cpu)
                );
                if !w.is_null() {
                    println!(
                        "  writer: writes/{unit} {} jobs/{unit} {} jobs/batch {} batches/s {} busy {} (commit {}, \
                         durable flush {}); store {} MB; mean waited store write {} ms, SDK POST {} ms",
                        w["writes_per_unit"],
                        w["jobs_per_unit"],
                        w["jobs_per_batch"],
                        w["batches_per_s"],
                        w["busy_share"],
                        w["commit_share"],
                        w["flush_share"],
                        w["store_size_mb"],
                        w["store_wait_mean_ms"],
                        w["sdk_post_mean_ms"],
                        unit = if r.key == "ingest" { "row" } else { "item" },
                    );
                }
            }
        }
    }
}
