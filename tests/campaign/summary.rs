//! The campaign's summary: one line per mode on stderr and an entry per mode in
//! `target/bench/crash.json` (both tests of a run share the file).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::load::Load;
use crate::procs::lock;
use crate::verify::Done;
use crate::{Mode, Stats};

/// The two modes run in parallel and update the same file.
static FILE_LOCK: Mutex<()> = Mutex::new(());

/// One mode's run, as reported.
#[derive(Debug)]
pub struct Summary {
    mode: &'static str,
    seed: u64,
    latency_ms: u64,
    cycles_survived: usize,
    kills: usize,
    kills_mid_job: usize,
    acknowledged: usize,
    /// Acknowledged per route (SDK, ON_US, CASH).
    acknowledged_by_route: Map<String, Value>,
    unacknowledged: usize,
    sampled: usize,
    transfers: usize,
    bulk_items: usize,
    retried_items: usize,
    hub_paid: usize,
    in_doubt_seen_after_restarts: usize,
    /// IN_DOUBT transfers and items an operator had to resolve.
    pub resolved_by_operator: usize,
    /// SDK calls that may have been in flight, summed over the kills.
    pub in_flight_at_kills: usize,
    max_in_flight: usize,
    /// Until the load stopped after the last cycle.
    cycles_time: Duration,
    /// Until the end of the checks.
    duration: Duration,
}

impl Summary {
    /// Gathers the figures of a finished run; `times`: the cycles', the whole run's.
    pub fn new(mode: Mode, seed: u64, stats: &Stats, load: &Load, done: &Done, times: [Duration; 2]) -> Summary {
        let acked = load.acked();
        let mut by_route = Map::new();
        for a in &acked {
            let n = by_route.get(&a.route).and_then(Value::as_u64).unwrap_or(0);
            by_route.insert(a.route.clone(), json!(n + 1));
        }
        Summary {
            mode: mode.name,
            seed,
            latency_ms: stats.latency_ms,
            cycles_survived: stats.cycles_survived,
            kills: stats.kills,
            kills_mid_job: stats.kills_mid_job,
            acknowledged: acked.len(),
            acknowledged_by_route: by_route,
            unacknowledged: load.unacked(),
            sampled: stats.sampled,
            transfers: done.transfers,
            bulk_items: done.bulk_items,
            retried_items: done.retried_items,
            hub_paid: done.hub_paid,
            in_doubt_seen_after_restarts: stats.in_doubt_p2p_seen + stats.in_doubt_items_seen,
            resolved_by_operator: done.resolved_p2p + done.resolved_items,
            in_flight_at_kills: stats.client_in_flight + stats.bulk_in_flight,
            max_in_flight: stats.max_in_flight,
            cycles_time: times[0],
            duration: times[1],
        }
    }

    /// Prints the one-line summary and writes this mode's entry.
    pub fn print_and_write(&self) {
        eprintln!(
            "crash campaign {}: {} cycles survived, {} kills ({} mid-job), {} acknowledged {} ({} not), {} transfers, {} bulk items \
             ({} retried), {} paid by the hub, {} IN_DOUBT after restarts, {} resolved by an operator (≤ {} in \
             flight, at most {} per kill), {:.1} s ({:.1} s of cycles), seed {}",
            self.mode,
            self.cycles_survived,
            self.kills,
            self.kills_mid_job,
            self.acknowledged,
            Value::Object(self.acknowledged_by_route.clone()),
            self.unacknowledged,
            self.transfers,
            self.bulk_items,
            self.retried_items,
            self.hub_paid,
            self.in_doubt_seen_after_restarts,
            self.resolved_by_operator,
            self.in_flight_at_kills,
            self.max_in_flight,
            self.duration.as_secs_f64(),
            self.cycles_time.as_secs_f64(),
            self.seed
        );
        let entry = json!({
            "cycles_survived": self.cycles_survived,
            "kills": self.kills,
            "kills_mid_job": self.kills_mid_job,
            "acknowledged_transfers": self.acknowledged,
            "acknowledged_by_route": self.acknowledged_by_route,
            "unacknowledged_requests": self.unacknowledged,
            "acknowledged_read_back_between_cycles": self.sampled,
            "transfers": self.transfers,
            "bulk_items": self.bulk_items,
            "bulk_items_retried": self.retried_items,
            "hub_payments": self.hub_paid,
            "in_doubt_after_restarts": self.in_doubt_seen_after_restarts,
            "in_doubt_resolved_by_operator": self.resolved_by_operator,
            "in_flight_at_kills": self.in_flight_at_kills,
            "max_in_flight": self.max_in_flight,
            "cycles_secs": tenths(self.cycles_time),
            "duration_secs": tenths(self.duration),
            "simulator_latency_ms": self.latency_ms,
            "seed": self.seed.to_string(),
            "date": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        });
        let _guard = lock(&FILE_LOCK);
        let dir = crate::report::bench_dir();
        std::fs::create_dir_all(&dir).expect("create the bench directory");
        let path = dir.join("crash.json");
        let mut all = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Map<String, Value>>(&text).ok())
            .unwrap_or_default();
        all.insert(self.mode.to_owned(), entry);
        all.insert("machine".to_owned(), crate::report::machine());
        let text = serde_json::to_string_pretty(&all).expect("JSON");
        std::fs::write(&path, text + "\n").expect("write crash.json");
    }
}

fn tenths(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}
