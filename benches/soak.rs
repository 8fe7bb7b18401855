//! `cargo bench --bench soak`: a fixed-rate (open-loop) mixed load against the release
//! `sysgp serve` and `sysgp simulator` running as separate processes, for a given time:
//! on-us P2P, P2P through the simulator, deposits and withdrawals in a fixed mix, and in
//! every window a bulk job (30 items per second of window) paying for part of it.
//!
//! Open loop: request `k` is due at `start + k ÷ rate` whatever became of the earlier
//! ones, and its latency counts from when it was due, so a stalled server shows as
//! latency, not as a lower offered load (senders far outnumber what the rate needs).
//!
//! The run is cut into equal windows of at most 60 s, at least five of them: a 60 s run
//! (the CI size) has 12 s windows, a 10 min run 60 s windows. Per window: throughput,
//! p50/p99 latency, the server's VmRSS (sampled every second, the window's peak), the
//! data directory's size on disk, bulk items paid and CPU. The rule: the last window's
//! peak RSS within 1.25 × the second window's, its p99 within 2 × the second window's
//! (the second: the first holds the start-up). For 10 min, "the last minute against
//! minute 2"; a one-minute run scales the minutes down to 12 s windows.
//!
//! The run fails (exit status 1, reasons printed) when that rule fails, when a request
//! fails (anything but a 201 COMPLETED; a 422 business refusal is counted apart and
//! allowed, though this load causes none), when a bulk item fails or a job does not
//! finish, or when the server exits. Writes `target/bench/soak.json`.
//!
//! Options: `-- --secs 600` or `SYSGP_SOAK_SECS` (default 60), `-- --rate 300` or
//! `SYSGP_SOAK_RATE` (operations per second, default 300); `SYSGP_BIN`,
//! `SYSGP_BENCH_DIR` as for the other benches.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::jobs::{count, write_csv_tagged, Bench, CURRENCY};
use common::{
    disk_usage_bytes, expect_201_completed, json_exchange, parallel, proc_status_kb, round, run_open_loop, sleep_until,
    Conn, CpuSnapshot, OpenLoop, WindowSeen,
};
use serde_json::{json, Value};

/// The CI size.
const SECS_DEFAULT: f64 = 60.0;
/// A few hundred operations per second: a fraction of what two cores sustain (the p2p
/// bench does thousands of on-us transfers per second), so a healthy server idles.
const RATE_DEFAULT: f64 = 300.0;
/// Windows are at most this long…
const WINDOW_MAX_S: f64 = 60.0;
/// …and at least this many.
const WINDOWS_MIN: usize = 5;
/// The rule.
const RSS_RATIO_MAX: f64 = 1.25;
const P99_RATIO_MAX: f64 = 2.0;
/// Sender threads, one keep-alive connection each: room for a stall of ~200 ms at the
/// default rate before requests wait for a sender.
const SENDERS: usize = 64;
/// Wallets that pay and are paid; each sender wallet is funded once, far beyond the run.
const WALLETS: usize = 32;
const WALLET_FUNDING: &str = "1000000000";
/// The simulator answers after this long: SDK transfers and bulk items are not free.
const SIM_LATENCY_MS: u64 = 5;
/// Bulk workers: 4, half the default, so that a job shares the machine.
const BULK_WORKERS: &str = "4";
/// Items of each window's job per second of window: the job pays about 200 items/s on
/// two busy cores, so it runs for a sixth to a third of each window.
const BULK_ITEMS_PER_WINDOW_S: f64 = 30.0;
/// The smallest sled cache the server accepts, full within the first window: memory
/// growing later is growth, not the cache filling (as the default 64 MB would be).
const CACHE_MB: &str = "8";
/// Each window's job is uploaded this far into the window.
const BULK_START_FRACTION: f64 = 0.1;
/// Job polls while it pays.
const BULK_POLL: Duration = Duration::from_millis(50);
/// Longest a job may take after the load ended before the run counts it as stuck.
const BULK_GRACE: Duration = Duration::from_secs(120);

/// One kind of operation in the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    OnUs,
    OffUs,
    Deposit,
    Withdraw,
}

/// The mix, in turn: half on-us, a fifth through the SDK, the rest cash in and out.
const MIX: [Op; 20] = {
    use Op::*;
    [
        OnUs, OffUs, OnUs, Deposit, OnUs, Withdraw, OnUs, OffUs, OnUs, Deposit, OnUs, Withdraw, OnUs, OffUs, OnUs,
        Deposit, OnUs, Withdraw, OffUs, OnUs,
    ]
};

impl Op {
    fn key(self) -> &'static str {
        match self {
            Op::OnUs => "p2p_on_us",
            Op::OffUs => "p2p_sdk",
            Op::Deposit => "deposit",
            Op::Withdraw => "withdrawal",
        }
    }
}

/// Run length, rate and windows.
#[derive(Clone, Debug)]
struct Plan {
    secs: f64,
    rate: f64,
    windows: usize,
    window: Duration,
    job_items: u64,
}

impl Plan {
    /// `--secs`/`--rate` arguments, else `SYSGP_SOAK_SECS`/`SYSGP_SOAK_RATE`, else defaults.
    fn from_env_and_args() -> Plan {
        let args: Vec<String> = std::env::args().collect();
        let number = |flag: &str, var: &str, default: f64| {
            let from_args = args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
            from_args
                .or_else(|| std::env::var(var).ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
                .unwrap_or(default)
        };
        let secs = number("--secs", "SYSGP_SOAK_SECS", SECS_DEFAULT);
        let rate = number("--rate", "SYSGP_SOAK_RATE", RATE_DEFAULT);
        let windows = ((secs / WINDOW_MAX_S).ceil() as usize).max(WINDOWS_MIN);
        let window = Duration::from_secs_f64(secs / windows as f64);
        let job_items = (window.as_secs_f64() * BULK_ITEMS_PER_WINDOW_S).round().max(1.0) as u64;
        Plan { secs, rate, windows, window, job_items }
    }
}

/// What the sampler saw in one window.
#[derive(Clone, Debug, Default)]
struct Sampled {
    rss_peak_kb: Option<u64>,
    rss_end_kb: Option<u64>,
    data_dir_bytes: u64,
    bulk_items: u64,
    cpu: Value,
}

fn sender(i: usize) -> String {
    format!("22501{i:06}")
}

fn local_receiver(i: usize) -> String {
    format!("22502{i:06}")
}

/// Not a wallet here; avoids the simulator's msisdn triggers (suffixes 404, 408).
fn remote_receiver(i: usize) -> String {
    format!("22503{i:05}1")
}

/// Creates and funds the wallets; the raw request of each (operation, wallet).
fn prepare(bench: &Bench) -> Result<BTreeMap<(Op, usize), Vec<u8>>, String> {
    let stack = &bench.stack;
    let post = |path: &str, body: Value| -> Result<(), String> {
        match json_exchange(&mut Conn::new(stack.addr), &stack.json_post(path, body.to_string().as_bytes()))? {
            (201, _) => Ok(()),
            (status, v) => Err(format!("POST {path}: HTTP {status} {v}")),
        }
    };
    parallel(WALLETS, 8, &|i| {
        post("/api/v1/accounts/", json!({ "msisdn": sender(i), "currency": CURRENCY }))?;
        post(&format!("/api/v1/accounts/{}/deposit/", sender(i)), json!({ "amount": WALLET_FUNDING }))?;
        post("/api/v1/accounts/", json!({ "msisdn": local_receiver(i), "currency": CURRENCY }))
    })?;
    let mut requests = BTreeMap::new();
    for op in MIX {
        for w in 0..WALLETS {
            // Amounts 1 and 2 are none of the simulator's amount triggers (13, 408, 666, 4001).
            let p2p = |to: String| json!({ "sender_msisdn": sender(w), "receiver_msisdn": to, "amount": "1" });
            let (path, body) = match op {
                Op::OnUs => ("/api/v1/transfers/".to_owned(), p2p(local_receiver(w))),
                Op::OffUs => ("/api/v1/transfers/".to_owned(), p2p(remote_receiver(w))),
                Op::Deposit => (format!("/api/v1/accounts/{}/deposit/", sender(w)), json!({ "amount": "2" })),
                Op::Withdraw => (format!("/api/v1/accounts/{}/withdraw/", sender(w)), json!({ "amount": "1" })),
            };
            requests.insert((op, w), stack.json_post(&path, body.to_string().as_bytes()));
        }
    }
    Ok(requests)
}

/// The bulk side: in each window, a job uploaded, approved and paid to its end.
/// `paid` follows the items that reached a final status.
fn bulk_loop(open: &OpenLoop, items: u64, bench: &mut Bench, dir: &Path, paid: &AtomicU64) -> Result<Value, String> {
    let (mut failed, mut jobs, mut longest_s) = (0, 0, 0.0f64);
    let (deadline, window) = (open.start + open.duration + BULK_GRACE, open.duration / open.windows as u32);
    for w in 0..open.windows {
        sleep_until(open.start + window.mul_f64(w as f64 + BULK_START_FRACTION));
        let csv = dir.join(format!("soak-{w}.csv"));
        write_csv_tagged(&csv, items, &format!("soak-{w}")).map_err(|e| format!("writing {}: {e}", csv.display()))?;
        let t0 = Instant::now();
        let job = bench.pay_job(&csv, BULK_POLL, deadline, paid).map_err(|e| format!("window {}: {e}", w + 1))?;
        let _ = std::fs::remove_file(&csv);
        failed += count(&job, "FAILED");
        jobs += 1;
        longest_s = longest_s.max(t0.elapsed().as_secs_f64());
    }
    Ok(json!({ "jobs": jobs, "items_per_job": items, "items_failed": failed,
               "longest_job_s": round(longest_s, 2), "workers": BULK_WORKERS }))
}

/// Samples the server every second; at each window's end also the disk, bulk and CPU.
fn sample_loop(open: &OpenLoop, pid: u32, sim_pid: u32, data: &Path, paid: &AtomicU64) -> Vec<Sampled> {
    let pids = [("server", pid), ("simulator", sim_pid)];
    let mut out = Vec::new();
    let mut cpu_before = CpuSnapshot::take(&pids, Some(pid));
    let mut paid_before = 0;
    for w in 0..open.windows {
        let end = open.start + open.duration.mul_f64((w + 1) as f64 / open.windows as f64);
        let mut s = Sampled::default();
        loop {
            let rss = proc_status_kb(pid, "VmRSS");
            s.rss_peak_kb = s.rss_peak_kb.max(rss);
            s.rss_end_kb = rss;
            let now = Instant::now();
            if now >= end {
                break;
            }
            sleep_until((now + Duration::from_secs(1)).min(end));
        }
        let cpu = CpuSnapshot::take(&pids, Some(pid));
        s.cpu = cpu_before.cores_until(&cpu);
        cpu_before = cpu;
        s.data_dir_bytes = disk_usage_bytes(data);
        let now_paid = paid.load(Ordering::Relaxed);
        s.bulk_items = now_paid - paid_before;
        paid_before = now_paid;
        println!(
            "  window {}/{}: RSS {} MB, data dir {:.1} MB, bulk items {}",
            w + 1,
            open.windows,
            fmt_mb(s.rss_peak_kb),
            s.data_dir_bytes as f64 / 1_048_576.0,
            s.bulk_items
        );
        out.push(s);
    }
    out
}

fn fmt_mb(kb: Option<u64>) -> String {
    kb.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "?".into())
}

/// Everything a run measured.
struct Run {
    seen: Vec<WindowSeen>,
    sampled: Vec<Sampled>,
    bulk: Result<Value, String>,
    server_exit: Option<String>,
    data_start_bytes: u64,
}

fn run(plan: &Plan, bin: &Path, dir: &Path) -> Result<Run, String> {
    let env = [("SYSGP_BULK_WORKERS", BULK_WORKERS), ("SYSGP_CACHE_MB", CACHE_MB)];
    let mut bench = Bench::start(bin, SIM_LATENCY_MS, &env)?;
    let requests = prepare(&bench)?;
    let (pid, sim_pid) = (bench.server_pid(), bench.stack.sim.pid());
    let data = bench.stack.dir.path().join("data");
    let data_start_bytes = disk_usage_bytes(&data);
    let open = OpenLoop {
        addr: bench.stack.addr,
        senders: SENDERS,
        rate: plan.rate,
        duration: Duration::from_secs_f64(plan.secs),
        windows: plan.windows,
        start: Instant::now() + Duration::from_millis(100),
    };
    let request = |k: u64| {
        let op = MIX[(k % MIX.len() as u64) as usize];
        let wallet = ((k / MIX.len() as u64) % WALLETS as u64) as usize;
        (op.key(), requests[&(op, wallet)].as_slice())
    };
    let paid = AtomicU64::new(0);
    let ((seen, sampled), bulk) = std::thread::scope(|scope| {
        let bulk = scope.spawn(|| bulk_loop(&open, plan.job_items, &mut bench, dir, &paid));
        let load =
            run_open_loop(&open, &request, &expect_201_completed, || sample_loop(&open, pid, sim_pid, &data, &paid));
        (load, bulk.join().expect("bulk thread"))
    });
    let server_exit = bench.stack.server.check_alive().err();
    Ok(Run { seen, sampled, bulk, server_exit, data_start_bytes })
}

/// The reasons the run fails (empty when it passes), and the ratios of the rule.
fn judge(run: &Run) -> (Vec<String>, Option<f64>, Option<f64>) {
    let mut reasons = Vec::new();
    let (second, last) = (1, run.seen.len() - 1);
    let rss = |w: usize| run.sampled.get(w).and_then(|s| s.rss_peak_kb).map(|k| k as f64);
    let rss_ratio = rss(last).zip(rss(second)).map(|(l, s)| round(l / s, 3));
    let p99_ratio = run.seen[last].ms(99.0).zip(run.seen[second].ms(99.0)).map(|(l, s)| round(l / s, 3));
    match rss_ratio {
        Some(r) if r <= RSS_RATIO_MAX => {}
        Some(r) => reasons.push(format!(
            "RSS grew: last window {} MB = {r} × window 2's {} MB (limit {RSS_RATIO_MAX} ×)",
            fmt_mb(run.sampled[last].rss_peak_kb),
            fmt_mb(run.sampled[second].rss_peak_kb)
        )),
        None => reasons.push("the server's VmRSS could not be read".into()),
    }
    match p99_ratio {
        Some(r) if r <= P99_RATIO_MAX => {}
        Some(r) => reasons.push(format!(
            "p99 grew: last window {} ms = {r} × window 2's {} ms (limit {P99_RATIO_MAX} ×)",
            run.seen[last].ms(99.0).unwrap_or(0.0),
            run.seen[second].ms(99.0).unwrap_or(0.0)
        )),
        None => reasons.push("no successful request in window 2 or in the last window".into()),
    }
    let errors: u64 = run.seen.iter().map(WindowSeen::error_count).sum();
    if errors > 0 {
        reasons.push(format!("{errors} requests failed"));
    }
    match &run.bulk {
        Ok(b) if b["items_failed"].as_u64().unwrap_or(0) > 0 => {
            reasons.push(format!("{} bulk items failed", b["items_failed"]));
        }
        Ok(_) => {}
        Err(e) => reasons.push(format!("bulk: {e}")),
    }
    if let Some(e) = &run.server_exit {
        reasons.push(format!("the server stopped: {e}"));
    }
    (reasons, rss_ratio, p99_ratio)
}

fn window_json(plan: &Plan, i: usize, seen: &WindowSeen, s: &Sampled) -> Value {
    let window_s = plan.window.as_secs_f64();
    let errors: BTreeMap<&String, Value> =
        seen.errors.iter().map(|(k, (n, sample))| (k, json!({ "count": n, "sample": sample }))).collect();
    json!({
        "window": i + 1,
        "from_s": round(window_s * i as f64, 1),
        "to_s": round(window_s * (i + 1) as f64, 1),
        "requests_ok": seen.ok,
        "ok_by_operation": seen.ok_by_kind,
        "throughput_per_s": round(seen.ok as f64 / window_s, 1),
        "refused": seen.refused,
        "errors": seen.error_count(),
        "error_kinds": errors,
        "p50_ms": seen.ms(50.0),
        "p99_ms": seen.ms(99.0),
        "max_ms": seen.ms(100.0),
        "send_lag_max_ms": round(f64::from(seen.send_lag_max_us) / 1000.0, 3),
        "rss_peak_mb": s.rss_peak_kb.map(|k| round(k as f64 / 1024.0, 1)),
        "rss_end_mb": s.rss_end_kb.map(|k| round(k as f64 / 1024.0, 1)),
        "data_dir_mb": round(s.data_dir_bytes as f64 / 1_048_576.0, 2),
        "bulk_items": s.bulk_items,
        "cpu": s.cpu,
    })
}

fn print_table(windows: &[Value]) {
    println!();
    println!(
        "window       seconds     ok/s  errors  p50 ms   p99 ms   max ms   lag ms   RSS MB   data MB   bulk server"
    );
    for w in windows {
        let f = |k: &str, d: usize| w[k].as_f64().map(|x| format!("{x:.d$}")).unwrap_or_else(|| "-".into());
        println!(
            "{:>6} {:>13} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6}",
            w["window"].to_string(),
            format!("{}–{}", w["from_s"], w["to_s"]),
            f("throughput_per_s", 0),
            w["errors"].to_string(),
            f("p50_ms", 2),
            f("p99_ms", 2),
            f("max_ms", 1),
            f("send_lag_max_ms", 1),
            f("rss_peak_mb", 1),
            f("data_dir_mb", 1),
            w["bulk_items"].to_string(),
            w["cpu"]["processes_cores"]["server"].as_f64().map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into()),
        );
        for (kind, e) in w["error_kinds"].as_object().into_iter().flatten() {
            println!("         errors: {} × {kind}: {}", e["count"], e["sample"]);
        }
        common::noise_note(&format!("window {}", w["window"]), &w["cpu"]);
    }
}

/// The JSON report, with the reasons the run fails (none when it passes).
fn report(plan: &Plan, run: &Run, windows: Vec<Value>, bin: &Path, machine: Value) -> (Value, Vec<String>) {
    let (reasons, rss_ratio, p99_ratio) = judge(run);
    let mut all = WindowSeen::default();
    run.seen.iter().cloned().for_each(|s| all.merge(s));
    all.latencies_us.sort_unstable();
    let end_bytes = run.sampled.last().map(|s| s.data_dir_bytes).unwrap_or(0);
    let growth = end_bytes.saturating_sub(run.data_start_bytes) as f64;
    let refused: u64 = run.seen.iter().flat_map(|s| s.refused.values()).sum();
    let totals = json!({
        "requests_ok": all.ok,
        "ok_by_operation": all.ok_by_kind,
        "throughput_per_s": round(all.ok as f64 / plan.secs, 1),
        "refused": refused,
        "errors": all.error_count(),
        "p50_ms": all.ms(50.0),
        "p99_ms": all.ms(99.0),
        "max_ms": all.ms(100.0),
        "data_dir_start_mb": round(run.data_start_bytes as f64 / 1_048_576.0, 2),
        "data_dir_end_mb": round(end_bytes as f64 / 1_048_576.0, 2),
        "data_dir_growth_mb": round(growth / 1_048_576.0, 2),
        "data_dir_growth_bytes_per_op": (all.ok > 0).then(|| round(growth / all.ok as f64, 0)),
    });
    println!(
        "\nsoak: {} ops/s offered, {} ok/s, p99 {} ms, errors {}, refused {refused}; RSS last ÷ window 2 = {} \
         (≤ {RSS_RATIO_MAX}), p99 last ÷ window 2 = {} (≤ {P99_RATIO_MAX}); data dir +{} MB; bulk {}",
        plan.rate,
        totals["throughput_per_s"],
        totals["p99_ms"],
        totals["errors"],
        json!(rss_ratio),
        json!(p99_ratio),
        totals["data_dir_growth_mb"],
        run.bulk.as_ref().map(Value::to_string).unwrap_or_else(|e| e.clone()),
    );
    let report = json!({
        "bench": "soak",
        "date": common::now_rfc3339(),
        "sysgp_version": env!("CARGO_PKG_VERSION"),
        "sysgp_bin": bin.display().to_string(),
        "machine": machine,
        "duration_s": plan.secs,
        "rate_per_s": plan.rate,
        "window_s": round(plan.window.as_secs_f64(), 3),
        "windows_count": plan.windows,
        "mix": MIX.iter().map(|o| o.key()).collect::<Vec<_>>(),
        "sim_latency_ms": SIM_LATENCY_MS,
        "senders": SENDERS,
        "wallets": WALLETS,
        "sysgp_cache_mb": CACHE_MB,
        "method": "open loop: request k due at start + k ÷ rate, latency from when it was due; requests counted in \
                   the window they were due in; RSS = the server's VmRSS sampled every second, peak per window; \
                   data dir = allocated blocks under the data directory at each window's end; one bulk job per \
                   window, uploaded 10 % into it, paid against the simulator by 4 workers; sled cache 8 MB",
        "rule": {
            "compares": "window 2 with the last window",
            "rss_ratio": rss_ratio, "rss_ratio_max": RSS_RATIO_MAX,
            "p99_ratio": p99_ratio, "p99_ratio_max": P99_RATIO_MAX,
        },
        "totals": totals,
        "bulk": run.bulk.as_ref().map_or_else(|e| json!({ "error": e }), Value::clone),
        "windows": windows,
        "passed": reasons.is_empty(),
        "reasons": reasons,
    });
    (report, reasons)
}

fn main() {
    if common::run_role_if_asked() {
        return;
    }
    let plan = Plan::from_env_and_args();
    let bin = common::sysgp_bin();
    let machine = common::machine_info();
    println!(
        "soak: sysgp {} | {} s at {} ops/s | {} windows of {:.1} s | bulk job of {} items per window | {} × {}",
        bin.display(),
        plan.secs,
        plan.rate,
        plan.windows,
        plan.window.as_secs_f64(),
        plan.job_items,
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or("?"),
    );
    let dir = common::bench_tempdir().expect("a temporary directory for the CSV files");
    let run = match run(&plan, &bin, dir.path()) {
        Ok(run) => run,
        Err(e) => {
            println!("soak: FAILED to start: {e}");
            std::process::exit(1);
        }
    };
    let windows: Vec<Value> = (0..plan.windows).map(|i| window_json(&plan, i, &run.seen[i], &run.sampled[i])).collect();
    print_table(&windows);
    let (report, reasons) = report(&plan, &run, windows, &bin, machine);
    match common::write_report("soak", &report) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => println!("could not write the JSON report: {e}"),
    }
    if !reasons.is_empty() {
        println!("soak: FAILED");
        for r in &reasons {
            println!("  - {r}");
        }
        std::process::exit(1);
    }
    println!("soak: PASS");
}
