//! `cargo bench --bench bulk`: bulk disbursements against the release `sysgp serve` and
//! `sysgp simulator` running as separate processes (SPEC §10), each part on a fresh
//! data directory:
//! - ingest: a generated CSV (streamed to disk, then streamed up as multipart) from the
//!   upload to AWAITING_APPROVAL, with the server's peak VmHWM (`SYSGP_CACHE_MB=64`);
//! - processing: items/s from approval to COMPLETED against the zero-latency simulator
//!   with 8 workers;
//! - efficiency: items/s ÷ (32 workers ÷ 0.05 s) against a 50 ms simulator;
//! - P2P p99 at 16 clients (on-us) with no job and while a job runs (windows before
//!   the job, then alternately with the job running and paused, pooled by kind).
//!
//! Payees end in 1 and amounts avoid 13, 408, 666 and 4001: no simulator trigger fires.
//! Prints a table with the goals and writes `target/bench/bulk.json`. A missed goal is
//! printed as BELOW, never a panic.
//!
//! Environment: `SYSGP_BENCH_QUICK=1` (a CI smoke run: ingest 10,000 and 100,000 rows,
//! 5,000 items at 0 ms, 2,000 at 50 ms, 1 s P2P windows), `SYSGP_BENCH_ONLY=ingest,
//! processing,efficiency,p2p_during_job` (only those parts), `SYSGP_BENCH_INGEST_ROWS=
//! 100000,1000000`, `SYSGP_BENCH_ITEMS` (zero-latency items, default 50,000),
//! `SYSGP_BENCH_EFFICIENCY_ITEMS` (default 20,000), `SYSGP_BENCH_SECS` and
//! `SYSGP_BENCH_WARMUP_SECS` (P2P windows, default 5 and 1), `SYSGP_BIN` (the sysgp
//! binary), `SYSGP_BENCH_DIR` (where the data directories and CSV files go).

mod common;
#[path = "bulk/report.rs"]
mod report;

use std::path::Path;
use std::time::Instant;

use common::jobs::{count, write_csv, Bench, CURRENCY, FUNDING};
use common::{
    expect_201_completed, json_exchange, parallel, proc_status_kb, round, run_load, thousands, Conn, LoadResult, Mark,
    Settings, Stack,
};
use report::{fmt_ms, load_json, print_table, writer_figures};
use serde_json::{json, Value};

/// `SYSGP_CACHE_MB` of the ingest part (the setting, also the default).
const INGEST_CACHE_MB: &str = "64";
/// Workers and latency of the efficiency part.
const EFFICIENCY_WORKERS: u64 = 32;
const SLOW_SIM_MS: u64 = 50;
/// Workers of the zero-latency part (the default).
const PROCESSING_WORKERS: u64 = 8;
/// P2P clients of the p99 comparison.
const P2P_CLIENTS: usize = 16;

/// What this run measures.
struct Plan {
    quick: bool,
    ingest_rows: Vec<u64>,
    items: u64,
    efficiency_items: u64,
    /// A job long enough to outlast both P2P windows at 8 workers ÷ 50 ms = 160 items/s.
    p2p_job_items: u64,
    only: Option<Vec<String>>,
    settings: Settings,
}

impl Plan {
    fn from_env() -> Plan {
        let settings = Settings::from_env();
        let quick = settings.quick;
        let number = |name: &str, default: u64| {
            std::env::var(name).ok().and_then(|v| v.trim().replace('_', "").parse().ok()).unwrap_or(default)
        };
        let ingest_rows = std::env::var("SYSGP_BENCH_INGEST_ROWS")
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().replace('_', "").parse().ok()).collect::<Vec<u64>>())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| if quick { vec![10_000, 100_000] } else { vec![100_000, 1_000_000] });
        Plan {
            quick,
            ingest_rows,
            items: number("SYSGP_BENCH_ITEMS", if quick { 5_000 } else { 50_000 }),
            efficiency_items: number("SYSGP_BENCH_EFFICIENCY_ITEMS", if quick { 2_000 } else { 20_000 }),
            p2p_job_items: if quick { 2_000 } else { 20_000 },
            only: std::env::var("SYSGP_BENCH_ONLY").ok().map(|v| v.split(',').map(|k| k.trim().to_owned()).collect()),
            settings,
        }
    }

    fn selected(&self, part: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|k| k == part))
    }
}

/// One line of the table and one entry of the JSON report.
struct Row {
    key: &'static str,
    name: String,
    /// The figures, or why the part could not be measured.
    outcome: Result<Value, String>,
    /// The headline, e.g. "2,345 items/s".
    figure: String,
    goal: String,
    verdict: Option<&'static str>,
}

impl Row {
    fn failed(key: &'static str, name: String, goal: String, error: String) -> Row {
        let verdict = (!goal.is_empty()).then_some("BELOW");
        Row { key, name, outcome: Err(error), figure: "FAILED".into(), goal, verdict }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "part": self.key, "name": self.name, "goal": self.goal, "verdict": self.verdict });
        match &self.outcome {
            Ok(figures) => v["figures"] = figures.clone(),
            Err(e) => v["error"] = json!(e),
        }
        v
    }
}

fn mb(kb: Option<u64>) -> Option<f64> {
    kb.map(|k| round(k as f64 / 1024.0, 1))
}

// ---------------------------------------------------------------------------------
// The parts
// ---------------------------------------------------------------------------------

/// The goal for 1M rows: (seconds, MB) goal and floor.
const INGEST_GOAL: (f64, f64) = (10.0, 150.0);
const INGEST_FLOOR: (f64, f64) = (15.0, 250.0);

fn ingest_row(bin: &Path, dir: &Path, rows: u64) -> Row {
    let name = format!("ingest {} rows", thousands(rows));
    let goal = if rows == 1_000_000 {
        format!("goal ≤{}s ≤{}MB, ≥ ≤{}s ≤{}MB", INGEST_GOAL.0, INGEST_GOAL.1, INGEST_FLOOR.0, INGEST_FLOOR.1)
    } else {
        String::new()
    };
    println!("… {name}");
    match measure_ingest(bin, dir, rows) {
        Err(e) => Row::failed("ingest", name, goal, e),
        Ok(v) => {
            let (secs, peak) = (v["to_awaiting_approval_s"].as_f64().unwrap_or(0.0), v["vm_hwm_mb"].as_f64());
            let within = |(s, m): (f64, f64)| secs <= s && peak.is_some_and(|p| p <= m);
            let verdict = (rows == 1_000_000).then(|| {
                if within(INGEST_GOAL) {
                    "PASS"
                } else if within(INGEST_FLOOR) {
                    "PASS (floor)"
                } else {
                    "BELOW"
                }
            });
            let figure = format!(
                "{secs:.2} s to AWAITING_APPROVAL ({} rows/s; upload {:.2} s), peak VmHWM {} MB",
                thousands(v["rows_per_s"].as_f64().unwrap_or(0.0) as u64),
                v["upload_s"].as_f64().unwrap_or(0.0),
                peak.map(|p| format!("{p:.0}")).unwrap_or_else(|| "?".into())
            );
            Row { key: "ingest", name, outcome: Ok(v), figure, goal, verdict }
        }
    }
}

fn measure_ingest(bin: &Path, dir: &Path, rows: u64) -> Result<Value, String> {
    let csv = dir.join(format!("ingest-{rows}.csv"));
    let bytes = write_csv(&csv, rows).map_err(|e| format!("writing {}: {e}", csv.display()))?;
    let mut bench = Bench::start(bin, 0, &[("SYSGP_CACHE_MB", INGEST_CACHE_MB)])?;
    let pid = bench.server_pid();
    let idle_hwm = proc_status_kb(pid, "VmHWM");
    let before = bench.snapshot();
    let (_, upload_s, total_s) = bench.ingest(&csv)?;
    let after = bench.snapshot();
    let _ = std::fs::remove_file(&csv);
    Ok(json!({
        "rows": rows,
        "file_bytes": bytes,
        "upload_s": round(upload_s, 3),
        "validate_s": round(total_s - upload_s, 3),
        "to_awaiting_approval_s": round(total_s, 3),
        "rows_per_s": round(rows as f64 / total_s, 0),
        "vm_hwm_mb": mb(proc_status_kb(pid, "VmHWM")),
        "vm_hwm_at_start_mb": mb(idle_hwm),
        "vm_rss_after_mb": mb(proc_status_kb(pid, "VmRSS")),
        "rss_anon_after_mb": mb(proc_status_kb(pid, "RssAnon")),
        "rss_file_after_mb": mb(proc_status_kb(pid, "RssFile")),
        "sysgp_cache_mb": INGEST_CACHE_MB,
        "cpu": before.0.cores_until(&after.0),
        "writer": writer_figures(&before.1, &after.1, total_s, rows),
    }))
}

/// Items/s from approval to COMPLETED, with writer and CPU figures.
fn measure_processing(bin: &Path, dir: &Path, items: u64, latency_ms: u64, workers: u64) -> Result<Value, String> {
    let csv = dir.join(format!("processing-{latency_ms}ms-{items}.csv"));
    write_csv(&csv, items).map_err(|e| format!("writing {}: {e}", csv.display()))?;
    let workers_text = workers.to_string();
    let mut bench = Bench::start(bin, latency_ms, &[("SYSGP_BULK_WORKERS", &workers_text)])?;
    let (id, _, ingest_s) = bench.ingest(&csv)?;
    let _ = std::fs::remove_file(&csv);
    let before = bench.snapshot();
    let t0 = Instant::now();
    bench.approve(&id)?;
    // Items PROCESSING at each poll: by Little's law, ÷ items/s = time from the durable
    // start of an item to its recorded outcome.
    let mut in_flight = Vec::new();
    let job = bench.wait_job(&id, "completion", |j| {
        in_flight.push(count(j, "PROCESSING"));
        j["status"] == "COMPLETED"
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let mean_in_flight = in_flight.iter().sum::<u64>() as f64 / in_flight.len().max(1) as f64;
    let after = bench.snapshot();
    let per_s = items as f64 / secs;
    let ideal = workers as f64 / (latency_ms as f64 / 1000.0);
    Ok(json!({
        "items": items,
        "workers": workers,
        "sim_latency_ms": latency_ms,
        "ingest_s": round(ingest_s, 3),
        "processing_s": round(secs, 3),
        "items_per_s": round(per_s, 1),
        "ideal_items_per_s": (latency_ms > 0).then_some(ideal),
        "efficiency": (latency_ms > 0).then(|| round(per_s / ideal, 3)),
        "mean_items_processing": round(mean_in_flight, 1),
        "item_latency_ms": round(mean_in_flight / per_s * 1000.0, 1),
        "completed": count(&job, "COMPLETED"),
        "failed": count(&job, "FAILED"),
        "vm_hwm_mb": mb(proc_status_kb(bench.server_pid(), "VmHWM")),
        "cpu": before.0.cores_until(&after.0),
        "writer": writer_figures(&before.1, &after.1, secs, items),
    }))
}

const PROCESSING_GOAL_PER_S: f64 = 2_000.0;
const EFFICIENCY_GOAL: f64 = 0.9;

fn processing_row(bin: &Path, dir: &Path, items: u64) -> Row {
    let name = format!("processing, sim 0 ms, {PROCESSING_WORKERS} workers");
    let goal = format!("≥{} items/s", thousands(PROCESSING_GOAL_PER_S as u64));
    println!("… {name}, {} items", thousands(items));
    match measure_processing(bin, dir, items, 0, PROCESSING_WORKERS) {
        Err(e) => Row::failed("processing", name, goal, e),
        Ok(v) => {
            let per_s = v["items_per_s"].as_f64().unwrap_or(0.0);
            let figure = format!(
                "{} items in {:.1} s: {} items/s; {} in flight, {} ms each",
                thousands(items),
                v["processing_s"].as_f64().unwrap_or(0.0),
                thousands(per_s as u64),
                v["mean_items_processing"],
                v["item_latency_ms"],
            );
            let verdict = Some(if per_s >= PROCESSING_GOAL_PER_S { "PASS" } else { "BELOW" });
            Row { key: "processing", name, outcome: Ok(v), figure, goal, verdict }
        }
    }
}

fn efficiency_row(bin: &Path, dir: &Path, items: u64) -> Row {
    let name = format!("efficiency, sim {SLOW_SIM_MS} ms, {EFFICIENCY_WORKERS} workers");
    let goal = format!("≥{EFFICIENCY_GOAL} × workers ÷ latency");
    println!("… {name}, {} items", thousands(items));
    match measure_processing(bin, dir, items, SLOW_SIM_MS, EFFICIENCY_WORKERS) {
        Err(e) => Row::failed("efficiency", name, goal, e),
        Ok(v) => {
            let eff = v["efficiency"].as_f64().unwrap_or(0.0);
            let figure = format!(
                "{} items in {:.1} s: {:.0} items/s = {eff:.3} × {:.0}/s; {} in flight, {} ms each",
                thousands(items),
                v["processing_s"].as_f64().unwrap_or(0.0),
                v["items_per_s"].as_f64().unwrap_or(0.0),
                v["ideal_items_per_s"].as_f64().unwrap_or(0.0),
                v["mean_items_processing"],
                v["item_latency_ms"],
            );
            let verdict = Some(if eff >= EFFICIENCY_GOAL { "PASS" } else { "BELOW" });
            Row { key: "efficiency", name, outcome: Ok(v), figure, goal, verdict }
        }
    }
}

/// P2P with no job, then while a job runs against a 50 ms simulator.
fn p2p_row(bin: &Path, dir: &Path, plan: &Plan) -> Row {
    let name = format!("P2P p99 during a job, {P2P_CLIENTS} clients");
    let goal = "p99 ≤2 × p99 with no job".to_owned();
    println!("… {name} ({} items, sim {SLOW_SIM_MS} ms)", thousands(plan.p2p_job_items));
    match measure_p2p_during_job(bin, dir, plan) {
        Err(e) => Row::failed("p2p_during_job", name, goal, e),
        Ok(v) => {
            let (alone, during) = (v["without_job"]["p99_ms"].as_f64(), v["during_job"]["p99_ms"].as_f64());
            let ratio = v["p99_ratio"].as_f64().unwrap_or(f64::INFINITY);
            let figure = format!(
                "p99 {} ms during vs {} ms without (×{ratio:.2}); {} vs {} req/s",
                fmt_ms(during),
                fmt_ms(alone),
                v["during_job"]["throughput_per_s"].as_f64().unwrap_or(0.0).round(),
                v["without_job"]["throughput_per_s"].as_f64().unwrap_or(0.0).round()
            );
            let ok = ratio <= 2.0 && v["job_ran_throughout"] == true;
            let verdict = Some(if ok { "PASS" } else { "BELOW" });
            Row { key: "p2p_during_job", name, outcome: Ok(v), figure, goal, verdict }
        }
    }
}

/// Windows with the job running, each followed by one with it paused, after a first
/// window before any job: alternating spreads whatever else the machine does over both.
const P2P_ROUNDS: usize = 2;

/// P2P windows before the job, then alternately while it runs and while it is paused;
/// the latencies of each kind are pooled.
fn measure_p2p_during_job(bin: &Path, dir: &Path, plan: &Plan) -> Result<Value, String> {
    let csv = dir.join("p2p-job.csv");
    write_csv(&csv, plan.p2p_job_items).map_err(|e| format!("writing {}: {e}", csv.display()))?;
    let mut bench = Bench::start(bin, SLOW_SIM_MS, &[])?;
    let requests = p2p_requests(&bench.stack)?;
    let mut alone = vec![p2p_window(&bench, &plan.settings, &requests)];
    let (id, _, _) = bench.ingest(&csv)?;
    bench.approve(&id)?;
    let done = |j: &Value| count(j, "COMPLETED") + count(j, "FAILED");
    let (mut during, mut paid, mut ran_throughout) = (Vec::new(), 0, true);
    for round in 0..P2P_ROUNDS {
        if round > 0 {
            bench.resume(&id)?;
        }
        let start = bench.wait_job(&id, "items paid", |j| j["status"] == "PROCESSING" && count(j, "PROCESSING") > 0)?;
        during.push(p2p_window(&bench, &plan.settings, &requests));
        let end = bench.job(&id)?;
        ran_throughout &= end["status"] == "PROCESSING";
        paid += done(&end) - done(&start);
        bench.pause(&id)?;
        bench.wait_paused(&id)?;
        alone.push(p2p_window(&bench, &plan.settings, &requests));
    }
    let window_s = (plan.settings.warmup + plan.settings.measure).as_secs_f64() * P2P_ROUNDS as f64;
    let (alone, during) = (pool(alone), pool(during));
    let p99 = |l: &LoadResult| l.percentile_ms(99.0);
    Ok(json!({
        "clients": P2P_CLIENTS,
        "route": "ON_US",
        "rounds": P2P_ROUNDS,
        "job_items": plan.p2p_job_items,
        "job_sim_latency_ms": SLOW_SIM_MS,
        "job_workers": "default (8)",
        "job_items_per_s_during": round(paid as f64 / window_s, 1),
        "job_ran_throughout": ran_throughout,
        "p99_ratio": p99(&alone.0).zip(p99(&during.0)).map(|(a, d)| round(d / a, 3)),
        "without_job": load_json(&alone.0, alone.1),
        "during_job": load_json(&during.0, during.1),
    }))
}

/// Windows of one kind as one: latencies and counts together, the CPU of each window.
fn pool(windows: Vec<(LoadResult, Value)>) -> (LoadResult, Value) {
    let mut all = LoadResult::default();
    let mut cpu = Vec::new();
    for (l, c) in windows {
        all.clients = l.clients;
        all.measured += l.measured;
        all.ok += l.ok;
        all.errors += l.errors;
        all.connects += l.connects;
        all.total_requests += l.total_requests;
        all.latencies_us.extend(l.latencies_us);
        for (kind, e) in l.error_kinds {
            let mine = all.error_kinds.entry(kind).or_default();
            mine.count += e.count;
            if mine.sample.is_empty() {
                mine.sample = e.sample;
            }
        }
        cpu.push(c);
    }
    all.latencies_us.sort_unstable();
    (all, Value::Array(cpu))
}

/// On-us wallets for each client (funded sender, receiver) and their requests.
fn p2p_requests(stack: &Stack) -> Result<Vec<Vec<u8>>, String> {
    let post = |path: &str, body: Value| -> Result<(), String> {
        match json_exchange(&mut Conn::new(stack.addr), &stack.json_post(path, body.to_string().as_bytes()))? {
            (201, _) => Ok(()),
            (status, v) => Err(format!("POST {path}: HTTP {status} {v}")),
        }
    };
    let wallets = |i: usize| (format!("22501{i:06}"), format!("22502{i:06}"));
    parallel(P2P_CLIENTS, P2P_CLIENTS, &|i| {
        let (from, to) = wallets(i);
        post("/api/v1/accounts/", json!({ "msisdn": from, "currency": CURRENCY }))?;
        post(&format!("/api/v1/accounts/{from}/deposit/"), json!({ "amount": FUNDING }))?;
        post("/api/v1/accounts/", json!({ "msisdn": to, "currency": CURRENCY }))
    })?;
    Ok((0..P2P_CLIENTS)
        .map(|i| {
            let (from, to) = wallets(i);
            let body = json!({ "sender_msisdn": from, "receiver_msisdn": to, "amount": "1" }).to_string();
            stack.json_post("/api/v1/transfers/", body.as_bytes())
        })
        .collect())
}

/// One closed-loop P2P window, with the server's CPU over it.
fn p2p_window(bench: &Bench, settings: &Settings, requests: &[Vec<u8>]) -> (LoadResult, Value) {
    let mut snapshots = Vec::new();
    let load = run_load(
        bench.stack.addr,
        P2P_CLIENTS,
        settings.warmup,
        settings.measure,
        &|client, _| requests[client].clone(),
        &expect_201_completed,
        &mut |_: Mark| snapshots.push(bench.snapshot().0),
    );
    let cpu = match snapshots.as_slice() {
        [a, b] => a.cores_until(b),
        _ => Value::Null,
    };
    (load, cpu)
}

fn main() {
    if common::run_role_if_asked() {
        return;
    }
    let plan = Plan::from_env();
    let bin = common::sysgp_bin();
    let machine = common::machine_info();
    println!(
        "bulk bench: sysgp {} | ingest {:?} rows | {} items at 0 ms | {} items at {SLOW_SIM_MS} ms | P2P {} s windows{} \
         | {} × {} | data dir on {}",
        bin.display(),
        plan.ingest_rows,
        plan.items,
        plan.efficiency_items,
        plan.settings.measure.as_secs_f64(),
        if plan.quick { " | QUICK" } else { "" },
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["data_dir_filesystem"].as_str().unwrap_or("?"),
    );
    let started = Instant::now();
    let dir = match common::bench_tempdir() {
        Ok(d) => d,
        Err(e) => return println!("cannot create a temporary directory: {e}"),
    };
    let mut rows = Vec::new();
    if plan.selected("ingest") {
        rows.extend(plan.ingest_rows.iter().map(|&n| ingest_row(&bin, dir.path(), n)));
    }
    if plan.selected("processing") {
        rows.push(processing_row(&bin, dir.path(), plan.items));
    }
    if plan.selected("efficiency") {
        rows.push(efficiency_row(&bin, dir.path(), plan.efficiency_items));
    }
    if plan.selected("p2p_during_job") {
        rows.push(p2p_row(&bin, dir.path(), &plan));
    }
    print_table(&rows);
    let report = json!({
        "bench": "bulk",
        "date": common::now_rfc3339(),
        "sysgp_version": env!("CARGO_PKG_VERSION"),
        "sysgp_bin": bin.display().to_string(),
        "sysgp_bin_modified": std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "quick": plan.quick,
        "only": plan.only,
        "ingest_rows": plan.ingest_rows,
        "items": plan.items,
        "efficiency_items": plan.efficiency_items,
        "p2p_job_items": plan.p2p_job_items,
        "p2p_warmup_s": plan.settings.warmup.as_secs_f64(),
        "p2p_measure_s": plan.settings.measure.as_secs_f64(),
        "machine": machine,
        "method": "server and simulator are separate processes on a fresh data directory per part; CSV files are \
                   generated on disk and streamed up as multipart with a Content-Length; ingest = upload start to \
                   AWAITING_APPROVAL (job polled every 10 ms), peak memory = the server's VmHWM from /proc; \
                   processing = approval to COMPLETED, items/s = items ÷ seconds; efficiency = items/s ÷ (workers ÷ \
                   latency); P2P = on-us, closed loop, one keep-alive connection per client: a window before any job, \
                   then alternately a window while a job pays against a 50 ms simulator and one with the job paused; \
                   latencies pooled by kind (no job running / job running); writer figures from GET /metrics before \
                   and after; CPU from /proc",
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "total_s": round(started.elapsed().as_secs_f64(), 1),
    });
    match common::write_report("bulk", &report) {
        Ok(path) => println!("\nwrote {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64()),
        Err(e) => println!("\ncould not write the JSON report: {e}"),
    }
}
