//! `cargo bench --bench p2p`: P2P transfers over HTTP against the release `sysgp serve`
//! and `sysgp simulator` running as separate processes, at 1, 16 and 64 closed-loop
//! clients (one keep-alive connection each), on-us and SDK route, next to a bare warp
//! JSON POST measured in the same run. Prints a table (throughput, p50/p99, errors,
//! CPU by process, goals) and writes `target/bench/p2p.json`.
//!
//! Environment: `SYSGP_BENCH_SECS` (measured seconds per point, default 5),
//! `SYSGP_BENCH_WARMUP_SECS` (default 1), `SYSGP_BENCH_QUICK=1` (1 s per point, clients
//! 1 and 16: a CI smoke run), `SYSGP_BIN` (the sysgp binary), `SYSGP_BENCH_DIR` (where
//! the temporary data directories go), `SYSGP_BENCH_ONLY=on_us,sdk` (only those
//! scenarios: bare_warp, on_us, on_us_hot_sender, sdk, sdk_latency_50ms).
//!
//! A benchmark reports: a missed goal is printed as BELOW, never a panic.

mod common;
#[path = "p2p/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use common::{
    expect_201_completed, json_post_as, metrics_delta, parallel, round, run_load, scrape_metrics, BareWarp,
    CpuSnapshot, LoadResult, Mark, Settings, Stack, StackOptions,
};
use report::{one_line, print_table, row_json};
use serde_json::{json, Value};

/// Currency of every wallet (no minor unit, so amount "1" is one unit).
const CURRENCY: &str = "XOF";
/// Deposit of every sender: far more than any run can send.
const FUNDING: &str = "1000000000";
/// Simulator latency of the latency scenario.
const SLOW_SDK_LATENCY_MS: u64 = 50;
/// CPU used by other processes (and unattributed kernel work) above which a point is
/// flagged as measured on a busy machine.
const NOISE_CORES: f64 = 0.3;
/// Threads creating and funding wallets before a point.
const SETUP_THREADS: usize = 16;

/// A throughput goal with its latency bound, and the minimum acceptable.
#[derive(Clone, Debug)]
struct Goal {
    goal_per_s: f64,
    goal_p99_ms: Option<f64>,
    floor_per_s: f64,
    floor_p99_ms: Option<f64>,
}

impl Goal {
    fn text(&self) -> String {
        let bound = |p99: Option<f64>| p99.map(|p| format!(" p99≤{p:.0}ms")).unwrap_or_default();
        if (self.goal_per_s - self.floor_per_s).abs() < 0.5 && self.goal_p99_ms == self.floor_p99_ms {
            format!("≥{:.0}/s{}", self.floor_per_s, bound(self.floor_p99_ms))
        } else {
            format!(
                "goal {:.0}/s{}, ≥{:.0}/s{}",
                self.goal_per_s,
                bound(self.goal_p99_ms),
                self.floor_per_s,
                bound(self.floor_p99_ms)
            )
        }
    }

    fn verdict(&self, throughput: f64, p99_ms: Option<f64>) -> &'static str {
        let within = |bound: Option<f64>| match (bound, p99_ms) {
            (None, _) => true,
            (Some(b), Some(p)) => p <= b,
            (Some(_), None) => false,
        };
        if throughput >= self.goal_per_s && within(self.goal_p99_ms) {
            "PASS"
        } else if throughput >= self.floor_per_s && within(self.floor_p99_ms) {
            "PASS (floor)"
        } else {
            "BELOW"
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "goal_per_s": self.goal_per_s,
            "goal_p99_ms": self.goal_p99_ms,
            "floor_per_s": self.floor_per_s,
            "floor_p99_ms": self.floor_p99_ms,
        })
    }
}

/// Goals of the issue, for 64 clients (the latency scenario scales with its clients).
fn goal_for(scenario: Scenario, clients: usize) -> Option<Goal> {
    match scenario {
        Scenario::OnUs if clients == 64 => {
            Some(Goal { goal_per_s: 10_000.0, goal_p99_ms: Some(20.0), floor_per_s: 5_000.0, floor_p99_ms: Some(25.0) })
        }
        Scenario::Sdk if clients == 64 => {
            Some(Goal { goal_per_s: 3_000.0, goal_p99_ms: None, floor_per_s: 1_500.0, floor_p99_ms: None })
        }
        Scenario::SdkSlow => {
            let ideal = ideal_slow_sdk(clients);
            Some(Goal { goal_per_s: 0.9 * ideal, goal_p99_ms: None, floor_per_s: 0.9 * ideal, floor_p99_ms: None })
        }
        _ => None,
    }
}

/// Clients ÷ SDK latency: the most a closed loop can do against the slow simulator.
fn ideal_slow_sdk(clients: usize) -> f64 {
    clients as f64 / (SLOW_SDK_LATENCY_MS as f64 / 1000.0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// The bare warp JSON POST baseline.
    Bare,
    /// On-us P2P, each client its own sender and receiver.
    OnUs,
    /// On-us P2P, every client paying from one sender.
    OnUsHot,
    /// SDK route against the zero-latency simulator.
    Sdk,
    /// SDK route against a 50 ms simulator.
    SdkSlow,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Bare => "bare warp JSON POST",
            Scenario::OnUs => "on-us P2P",
            Scenario::OnUsHot => "on-us P2P, one hot sender",
            Scenario::Sdk => "SDK P2P, sim 0 ms",
            Scenario::SdkSlow => "SDK P2P, sim 50 ms",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Scenario::Bare => "bare_warp",
            Scenario::OnUs => "on_us",
            Scenario::OnUsHot => "on_us_hot_sender",
            Scenario::Sdk => "sdk",
            Scenario::SdkSlow => "sdk_latency_50ms",
        }
    }
}

fn sender(i: usize) -> String {
    format!("22501{i:06}")
}

fn local_receiver(i: usize) -> String {
    format!("22502{i:06}")
}

/// A payee that is not a local wallet and avoids the simulator's msisdn triggers
/// (suffixes 404 and 408).
fn remote_receiver(i: usize) -> String {
    let m = format!("22503{i:06}");
    if m.ends_with("404") || m.ends_with("408") {
        format!("22504{i:06}").replace("404", "400").replace("408", "400")
    } else {
        m
    }
}

const HOT_SENDER: &str = "22509000001";

fn p2p_body(from: &str, to: &str) -> Vec<u8> {
    // Amount 1 is none of the simulator's amount triggers (13, 666, 4001, 408).
    json!({ "sender_msisdn": from, "receiver_msisdn": to, "amount": "1" }).to_string().into_bytes()
}

/// Where requests go: address and, when the server has users, the `Authorization` value.
#[derive(Clone, Copy)]
struct Target<'a> {
    addr: SocketAddr,
    authorization: Option<&'a str>,
}

impl Target<'_> {
    fn post(&self, path: &str, body: &[u8]) -> Vec<u8> {
        json_post_as(&self.addr, path, self.authorization, body)
    }

    /// `POST` `body` to `path` on a fresh connection and expect 201.
    fn post_201(&self, path: &str, body: &Value) -> Result<(), String> {
        let raw = self.post(path, body.to_string().as_bytes());
        let reply = common::Conn::new(self.addr).request(&raw).map_err(|e| format!("POST {path}: {e}"))?;
        if reply.status == 201 {
            Ok(())
        } else {
            Err(format!("POST {path}: {} {}", reply.status, String::from_utf8_lossy(&reply.body)))
        }
    }

    fn create_wallet(&self, msisdn: &str, funding: Option<&str>) -> Result<(), String> {
        self.post_201("/api/v1/accounts/", &json!({ "msisdn": msisdn, "currency": CURRENCY }))?;
        if let Some(amount) = funding {
            self.post_201(&format!("/api/v1/accounts/{msisdn}/deposit/"), &json!({ "amount": amount }))?;
        }
        Ok(())
    }
}

/// Wallets and the per-client request bodies of a scenario.
fn prepare(scenario: Scenario, t: Target<'_>, clients: usize) -> Result<Vec<Vec<u8>>, String> {
    match scenario {
        Scenario::Bare => Ok((0..clients).map(|i| p2p_body(&sender(i), &local_receiver(i))).collect()),
        Scenario::OnUs => {
            parallel(clients, SETUP_THREADS, &|i| {
                t.create_wallet(&sender(i), Some(FUNDING))?;
                t.create_wallet(&local_receiver(i), None)
            })?;
            Ok((0..clients).map(|i| p2p_body(&sender(i), &local_receiver(i))).collect())
        }
        Scenario::OnUsHot => {
            t.create_wallet(HOT_SENDER, Some(FUNDING))?;
            parallel(clients, SETUP_THREADS, &|i| t.create_wallet(&local_receiver(i), None))?;
            Ok((0..clients).map(|i| p2p_body(HOT_SENDER, &local_receiver(i))).collect())
        }
        Scenario::Sdk | Scenario::SdkSlow => {
            parallel(clients, SETUP_THREADS, &|i| t.create_wallet(&sender(i), Some(FUNDING)))?;
            Ok((0..clients).map(|i| p2p_body(&sender(i), &remote_receiver(i))).collect())
        }
    }
}

/// One measured point.
struct Row {
    scenario: Scenario,
    clients: usize,
    outcome: Result<Measured, String>,
    goal: Option<Goal>,
}

struct Measured {
    /// Signed in as a maker (the server has users).
    signed_in: bool,
    load: LoadResult,
    cpu: Value,
    metrics: Option<BTreeMap<String, f64>>,
}

impl Row {
    fn p50(&self) -> Option<f64> {
        self.outcome.as_ref().ok().and_then(|m| m.load.percentile_ms(50.0))
    }
    fn p99(&self) -> Option<f64> {
        self.outcome.as_ref().ok().and_then(|m| m.load.percentile_ms(99.0))
    }
    fn throughput(&self) -> f64 {
        self.outcome.as_ref().map(|m| m.load.throughput()).unwrap_or(0.0)
    }
    fn verdict(&self) -> Option<&'static str> {
        self.goal
            .as_ref()
            .map(|g| if self.outcome.is_err() { "BELOW" } else { g.verdict(self.throughput(), self.p99()) })
    }
    fn cores(&self, group: &str, name: &str) -> Option<f64> {
        self.outcome.as_ref().ok().and_then(|m| m.cpu[group][name].as_f64())
    }
}

fn run_point(bin: &Path, settings: &Settings, scenario: Scenario, clients: usize) -> Row {
    let goal = goal_for(scenario, clients);
    println!("… {} with {clients} client{}", scenario.name(), if clients == 1 { "" } else { "s" });
    let outcome = measure_point(bin, settings, scenario, clients);
    if let Err(e) = &outcome {
        println!("  FAILED: {e}");
    }
    let row = Row { scenario, clients, outcome, goal };
    if row.outcome.is_ok() {
        println!("  {}", one_line(&row));
    }
    row
}

fn measure_point(bin: &Path, settings: &Settings, scenario: Scenario, clients: usize) -> Result<Measured, String> {
    // Keep the processes alive until the load is done; they drop (killed) at the end.
    let (_bare, stack, addr, path, pids) = if scenario == Scenario::Bare {
        let bare = BareWarp::start(&p2p_body(&sender(0), &local_receiver(0)))?;
        let (addr, pid) = (bare.addr, bare.proc_.pid());
        (Some(bare), None, addr, common::BARE_PATH, vec![("bare warp", pid)])
    } else {
        let latency = if scenario == Scenario::SdkSlow { SLOW_SDK_LATENCY_MS } else { 0 };
        let stack = Stack::start(bin, &StackOptions { sim_latency_ms: latency, ..StackOptions::default() })?;
        let (addr, pids) = (stack.addr, vec![("server", stack.server.pid()), ("simulator", stack.sim.pid())]);
        (None, Some(stack), addr, "/api/v1/transfers/", pids)
    };
    let target = Target { addr, authorization: stack.as_ref().and_then(|s| s.authorization.as_deref()) };
    let bodies = prepare(scenario, target, clients)?;
    let requests: Vec<Vec<u8>> = bodies.iter().map(|b| target.post(path, b)).collect();
    let server_pid = pids.first().map(|(_, pid)| *pid);
    let mut snapshots: Vec<(CpuSnapshot, Option<BTreeMap<String, f64>>)> = Vec::new();
    let load = run_load(
        addr,
        clients,
        settings.warmup,
        settings.measure,
        &|client, _seq| requests[client].clone(),
        &expect_201_completed,
        &mut |_: Mark| {
            // Called at the window's start and end.
            let metrics = if scenario == Scenario::Bare { None } else { scrape_metrics(addr) };
            snapshots.push((CpuSnapshot::take(&pids, server_pid), metrics));
        },
    );
    let (cpu, metrics) = match snapshots.as_slice() {
        [(c0, m0), (c1, m1)] => {
            let metrics = match (m0, m1) {
                (Some(a), Some(b)) => Some(metrics_delta(a, b)),
                _ => None,
            };
            (c0.cores_until(c1), metrics)
        }
        _ => (Value::Null, None),
    };
    Ok(Measured { signed_in: target.authorization.is_some(), load, cpu, metrics })
}

fn main() {
    if common::run_role_if_asked() {
        return;
    }
    let settings = Settings::from_env();
    let bin = common::sysgp_bin();
    let machine = common::machine_info();
    println!(
        "p2p bench: sysgp {} | {} s per point after {} s warm-up | clients {:?}{} | {} × {} | data dir on {}",
        bin.display(),
        settings.measure.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.clients,
        if settings.quick { " | QUICK" } else { "" },
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["data_dir_filesystem"].as_str().unwrap_or("?"),
    );
    let started = std::time::Instant::now();
    let max = settings.max_clients();
    // `SYSGP_BENCH_ONLY=on_us,sdk` runs only those scenarios (keys as in the JSON).
    let only: Option<Vec<String>> =
        std::env::var("SYSGP_BENCH_ONLY").ok().map(|v| v.split(',').map(|k| k.trim().to_owned()).collect());
    let selected = |s: Scenario| only.as_ref().is_none_or(|o| o.iter().any(|k| k == s.key()));
    let mut points = Vec::new();
    for scenario in [Scenario::Bare, Scenario::OnUs] {
        points.extend(settings.clients.iter().map(|&c| (scenario, c)));
    }
    points.push((Scenario::OnUsHot, max));
    points.extend(settings.clients.iter().map(|&c| (Scenario::Sdk, c)));
    points.push((Scenario::SdkSlow, max));
    let rows: Vec<Row> = points
        .into_iter()
        .filter(|(s, _)| selected(*s))
        .map(|(scenario, clients)| run_point(&bin, &settings, scenario, clients))
        .collect();
    print_table(&rows);

    let goals = json!([
        { "scenario": "on_us", "clients": 64, "goal": goal_for(Scenario::OnUs, 64).map(|g| g.to_json()) },
        { "scenario": "sdk", "clients": 64, "goal": goal_for(Scenario::Sdk, 64).map(|g| g.to_json()) },
        { "scenario": "sdk_latency_50ms", "clients": 64,
          "goal": goal_for(Scenario::SdkSlow, 64).map(|g| g.to_json()),
          "note": "at least 0.9 × clients ÷ 0.05 s" },
    ]);
    let report = json!({
        "bench": "p2p",
        "date": common::now_rfc3339(),
        "sysgp_version": env!("CARGO_PKG_VERSION"),
        "sysgp_bin": bin.display().to_string(),
        "quick": settings.quick,
        "only": only,
        "warmup_s": settings.warmup.as_secs_f64(),
        "measure_s": settings.measure.as_secs_f64(),
        "clients": settings.clients,
        "machine": machine,
        "method": "closed loop: each client thread one keep-alive HTTP/1.1 connection, next request as soon as \
                   the reply arrives; counts completions inside the measured window; every 201 must say \
                   status COMPLETED; CPU from /proc (cores = CPU seconds ÷ wall seconds); the server, \
                   simulator and bare warp server are separate processes; fresh data directory per point",
        "goals": goals,
        "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
        "total_s": round(started.elapsed().as_secs_f64(), 1),
    });
    match common::write_report("p2p", &report) {
        Ok(path) => println!("\nwrote {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64()),
        Err(e) => println!("\ncould not write the JSON report: {e}"),
    }
}
