//! Crash campaign (SPEC §10 "Fault tests"): the built server under mixed load (P2P
//! on-us and through the SDK, deposits, two bulk jobs) is SIGKILLed at random moments,
//! cycle after cycle (one of them right after the second job's upload), in
//! `accept_quote` and in `auto` mode, against a simulator child
//! with `--state` (the hub, alive for the whole run). After every kill `sysgp check`
//! passes and acknowledged transfers are still there; at the end every job is
//! COMPLETED, IN_DOUBT transfers without an SDK id (auto mode) are resolved as an
//! operator would and are no more than the SDK calls in flight at the kills, nothing
//! was paid twice, and wallets, settlement and reservations agree with the transfers.
//!
//! `SYSGP_CRASH_CYCLES` sets the cycles per mode (default 20), `SYSGP_CRASH_SEED`
//! repeats a run's choices; a summary goes to `target/bench/crash.json`.

mod bulk;
mod load;
#[path = "../common/report.rs"]
mod report;
mod summary;
mod verify;

// Shared with the API tests' crash scenarios; not every helper is used here.
#[allow(dead_code)]
#[path = "../api/procs.rs"]
mod procs;

/// What the process harness needs from the API tests' support module.
mod support {
    /// The servers' `SECRET_KEY`.
    pub const SECRET: &str = "test-secret-key-0123456789-abcdefghijklmnop";
}

use std::time::{Duration, Instant};

use serde_json::json;

use crate::bulk::{busy, count, finished, Job, LOCAL_WALLETS, SOURCE};
use crate::load::{Acked, Load, CLIENTS, WALLETS};
use crate::procs::{call, seed, Cluster, ClusterOptions, Rng, POLL};

/// Kill/restart cycles per mode unless `CYCLES_VAR` says otherwise (the CI size).
const CI_CYCLES: usize = 20;
const CYCLES_VAR: &str = "SYSGP_CRASH_CYCLES";
const SEED_VAR: &str = "SYSGP_CRASH_SEED";
/// `SYSGP_BULK_WORKERS` (the default): each may have an SDK call in flight at a kill.
const WORKERS: usize = 8;
/// Simulator latency per SDK call (random per run, inclusive): a kill lands mid-call.
const SIM_LATENCY_MS: (u64, u64) = (20, 50);
/// SDK lines per job and per cycle: the jobs run through most of the cycles.
const SDK_LINES_PER_CYCLE: usize = 25;
/// Items a restarted server must finish before it may be killed: it really resumed.
const PROGRESS_ITEMS: u64 = 4;
/// After that progress, a kill at a random moment comes this long later (ms).
const KILL_DELAY_MS: (u64, u64) = (0, 400);
/// Every this many cycles, the kill waits for an SDK call on its way instead.
const TARGETED_EVERY: usize = 3;
/// Progress between kills, or an SDK call to catch, takes less than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// Acknowledged transfers read after each restart: the newest, and as many at random.
const SAMPLE: usize = 8;
/// Deposited into each wallet: far more than the load and the jobs spend.
const FUNDS: i64 = 1_000_000_000;
const MAKER: &str = "campaign-maker";
const CHECKER: &str = "campaign-checker";
const PASSWORD: &str = "crash campaign password, not a secret";

#[test]
fn crash_campaign_in_accept_quote_mode_keeps_every_acknowledged_transfer_and_pays_every_line_once() {
    let s = run(Mode { name: "accept_quote", sdk_mode: "accept_quote", accept: "quote" });
    assert_eq!(s.resolved_by_operator, 0, "accept_quote: reconciliation settles every doubt");
}

#[test]
fn crash_campaign_in_auto_mode_leaves_no_more_doubts_than_calls_in_flight_and_pays_nothing_twice() {
    let s = run(Mode { name: "auto", sdk_mode: "auto", accept: "none" });
    assert!(s.resolved_by_operator <= s.in_flight_at_kills, "{s:?}");
}

/// `SYSGP_SDK_MODE` and the simulator's matching `--accept`.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    /// The summary's key.
    pub name: &'static str,
    sdk_mode: &'static str,
    accept: &'static str,
}

/// Counters of one run, for the checks and the summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// The simulator's latency per call in this run.
    pub latency_ms: u64,
    /// SIGKILLs sent.
    pub kills: usize,
    /// Kills while a job had lines to work on.
    pub kills_mid_job: usize,
    /// Cycles after which the store checked clean and the server came back.
    pub cycles_survived: usize,
    /// Client SDK requests that may have been cut off, summed over the kills.
    pub client_in_flight: usize,
    /// Bulk SDK calls that may have been cut off, summed over the kills.
    pub bulk_in_flight: usize,
    /// The most SDK calls that one kill may have cut off.
    pub max_in_flight: usize,
    /// IN_DOUBT P2P transfers found right after the restarts, summed.
    pub in_doubt_p2p_seen: usize,
    /// IN_DOUBT bulk items found right after the restarts, summed.
    pub in_doubt_items_seen: usize,
    /// IN_DOUBT P2P transfers and items without an SDK id after the last restart.
    pub without_id: (usize, usize),
    /// Acknowledged transfers read back between cycles.
    pub sampled: usize,
}

/// The whole campaign for one mode; returns its summary, already written.
fn run(mode: Mode) -> summary::Summary {
    let started = Instant::now();
    let cycles = std::env::var(CYCLES_VAR).ok().and_then(|s| s.parse().ok()).unwrap_or(CI_CYCLES).max(1);
    let seed = seed(SEED_VAR);
    eprintln!("crash campaign {}: seed {seed} (set {SEED_VAR} to repeat), {cycles} cycles ({CYCLES_VAR})", mode.name);
    let mut rng = Rng(seed);
    let latency_ms = rng.between(SIM_LATENCY_MS);
    eprintln!("crash campaign {}: simulator latency {latency_ms} ms", mode.name);
    let mut c = Campaign::start(mode, latency_ms);
    let first = Job::file(&mut rng, 0, cycles * SDK_LINES_PER_CYCLE);
    let mut second = Some(Job::file(&mut rng, 1, cycles * SDK_LINES_PER_CYCLE));
    c.start_job("first", first);
    let load = Load::new(c.cluster.base.clone(), c.maker.clone());
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let (load, seed) = (&load, rng.next() ^ client as u64);
            s.spawn(move || load.client(seed));
        }
        // Stops the clients however this scope ends, so that a failure cannot hang it.
        let _stop = StopOnDrop(&load);
        for cycle in 0..cycles {
            let upload = if cycle == cycles / 3 { second.take() } else { None };
            c.cycle(&load, cycle, &mut rng, upload);
        }
        load.wait_for_progress();
    });
    let cycled = started.elapsed();
    let done = verify::finish(&c, &load);
    c.cluster.stop_server();
    c.cluster.check_store("after a graceful stop");
    let s = summary::Summary::new(mode, seed, &c.stats, &load, &done, [cycled, started.elapsed()]);
    s.print_and_write();
    s
}

/// Stops the load when dropped.
struct StopOnDrop<'a>(&'a Load);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The hub, the server, the sessions and the jobs of one run.
pub struct Campaign {
    /// The SDK mode.
    pub mode: Mode,
    /// The processes.
    pub cluster: Cluster,
    /// The maker's token (load, uploads, reads).
    pub maker: String,
    /// The checker's token (approvals, resolutions).
    pub checker: String,
    /// The jobs started so far.
    pub jobs: Vec<Job>,
    /// What the cycles counted.
    pub stats: Stats,
}

impl Campaign {
    /// Processes, users (through the admin socket) and funded wallets.
    fn start(mode: Mode, latency_ms: u64) -> Campaign {
        let workers = WORKERS.to_string();
        let cluster = Cluster::start(&ClusterOptions {
            sdk_mode: mode.sdk_mode,
            accept: mode.accept,
            latency_ms,
            server_env: &[("SYSGP_BULK_WORKERS", &workers)],
        });
        cluster.add_user(MAKER, "maker", PASSWORD);
        cluster.add_user(CHECKER, "checker", PASSWORD);
        let (maker, checker) = (cluster.login(MAKER, PASSWORD), cluster.login(CHECKER, PASSWORD));
        for wallet in WALLETS.iter().chain(&LOCAL_WALLETS).chain([&SOURCE]) {
            cluster.post(&maker, "/api/v1/accounts/", &json!({"msisdn": wallet, "currency": "XOF"}), 201);
        }
        for wallet in WALLETS.iter().chain([&SOURCE]) {
            let deposit = json!({"amount": FUNDS.to_string()});
            cluster.post(&maker, &format!("/api/v1/accounts/{wallet}/deposit/"), &deposit, 201);
        }
        let stats = Stats { latency_ms, ..Stats::default() };
        Campaign { mode, cluster, maker, checker, jobs: Vec::new(), stats }
    }

    fn start_job(&mut self, name: &str, lines: Vec<(String, i64)>) {
        let job = Job::upload(&self.cluster, &self.maker, name, lines);
        self.jobs.push(job.approve(&self.cluster, &self.maker, &self.checker));
    }

    fn job(&self, job: &Job) -> serde_json::Value {
        self.cluster.get(&self.maker, &format!("/api/v1/bulk/jobs/{}/", job.id))
    }

    /// One cycle: progress from this server, a kill at a random (or a targeted) moment,
    /// the store check, a restart and the reads that prove nothing acknowledged was lost.
    /// With `upload`, the kill comes right after that file's 202, and the job is
    /// approved once the restarted server has validated it.
    fn cycle(&mut self, load: &Load, cycle: usize, rng: &mut Rng, upload: Option<Vec<(String, i64)>>) {
        self.wait_for_progress(load);
        let jobs_busy = self.jobs.iter().any(|j| busy(&self.job(j)));
        let uploaded = upload.map(|lines| Job::upload(&self.cluster, &self.maker, "second", lines));
        if uploaded.is_none() && cycle % TARGETED_EVERY == TARGETED_EVERY - 1 {
            self.wait_for_sdk_call();
        } else if uploaded.is_none() {
            // Not waiting for work: this picks the random moment of the kill.
            std::thread::sleep(Duration::from_millis(rng.between(KILL_DELAY_MS)));
        }
        let cluster = &mut self.cluster;
        let clients = load.kill(|| cluster.kill_server());
        let bulk = if jobs_busy { WORKERS } else { 0 };
        self.stats.kills += 1;
        self.stats.kills_mid_job += usize::from(jobs_busy);
        self.stats.client_in_flight += clients;
        self.stats.bulk_in_flight += bulk;
        self.stats.max_in_flight = self.stats.max_in_flight.max(clients + bulk);
        self.cluster.check_store(&format!("after SIGKILL {}", cycle + 1));
        self.cluster.start_server();
        load.set_base(&self.cluster.base);
        self.after_restart(load, rng, (clients, bulk));
        if let Some(job) = uploaded {
            self.jobs.push(job.approve(&self.cluster, &self.maker, &self.checker));
        }
        self.stats.cycles_survived += 1;
    }

    /// The load is answered again, and every job with lines left finishes a few more.
    fn wait_for_progress(&self, load: &Load) {
        let before: Vec<_> = self.jobs.iter().map(|j| self.job(j)).collect();
        load.wait_for_progress();
        for (job, was) in self.jobs.iter().zip(before) {
            let wanted = finished(&was) + PROGRESS_ITEMS.min(count(&was, "PENDING"));
            let deadline = Instant::now() + STEP_TIMEOUT;
            loop {
                let now = self.job(job);
                if finished(&now) >= wanted {
                    break;
                }
                assert!(Instant::now() < deadline, "job {} makes no progress after a restart: {now}", job.id);
                std::thread::sleep(POLL);
            }
        }
    }

    /// Polls until an SDK transfer is under way: in accept_quote, its acceptance is on
    /// the way (FINAL_SENT with the SDK id), so the kill leaves it IN_DOUBT with an id;
    /// in auto mode its POST is, so the kill leaves it IN_DOUBT without one.
    fn wait_for_sdk_call(&self) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let page = self.cluster.get(&self.maker, "/api/v1/transfers/?limit=50&status=PENDING&route=SDK");
            let items = page["items"].as_array().expect("items");
            if items.iter().any(|t| self.mode.sdk_mode == "auto" || !t["sdk_transfer_id"].is_null()) {
                return;
            }
            assert!(Instant::now() < deadline, "no SDK transfer reached its final call in {STEP_TIMEOUT:?}");
            std::thread::sleep(POLL);
        }
    }

    /// The newest acknowledged transfers (at most risk from the kill) and a random
    /// sample of older ones exist and kept their final status; the kill added no more
    /// doubts without an SDK id than it cut calls off (`in_flight`: clients, bulk), and
    /// none in accept_quote mode, where the id is recorded before the final call; the
    /// jobs still run.
    fn after_restart(&mut self, load: &Load, rng: &mut Rng, in_flight: (usize, usize)) {
        let acked = load.acked();
        let newest = acked.iter().rev().take(SAMPLE);
        let older = acked.len().saturating_sub(SAMPLE) as u64;
        let random = (0..SAMPLE.min(older as usize)).map(|_| &acked[rng.below(older) as usize]);
        for a in newest.chain(random) {
            self.check_acked(a);
            self.stats.sampled += 1;
        }
        let in_doubt = verify::transfers(&self.cluster, &self.maker, "&status=IN_DOUBT");
        let (p2p, items): (Vec<_>, Vec<_>) = in_doubt.iter().partition(|t| t["bulk_job_id"].is_null());
        self.stats.in_doubt_p2p_seen += p2p.len();
        self.stats.in_doubt_items_seen += items.len();
        let without_id = |list: &[&serde_json::Value]| list.iter().filter(|t| t["sdk_transfer_id"].is_null()).count();
        let now = (without_id(&p2p), without_id(&items));
        let was = self.stats.without_id;
        let kill = self.stats.kills;
        assert!(
            now.0 >= was.0 && now.1 >= was.1 && now.0 <= was.0 + in_flight.0 && now.1 <= was.1 + in_flight.1,
            "kill {kill}: IN_DOUBT without an SDK id (P2P, items) went from {was:?} to {now:?} with {in_flight:?} \
             SDK calls in flight"
        );
        if self.mode.sdk_mode != "auto" {
            assert_eq!(now, (0, 0), "kill {kill}: IN_DOUBT without an SDK id in accept_quote: {in_doubt:?}");
        }
        self.stats.without_id = now;
        for job in &self.jobs {
            let now = self.job(job);
            assert!(["PROCESSING", "COMPLETED"].contains(&now["status"].as_str().unwrap_or_default()), "{now}");
        }
    }

    fn check_acked(&self, a: &Acked) {
        let url = self.cluster.url(&format!("/api/v1/transfers/{}/", a.id));
        let (status, now) = call(&self.cluster.agent, &url, &self.maker, None).expect("GET");
        assert_eq!(status, 200, "acknowledged transfer {a:?} is gone: {now}");
        if ["COMPLETED", "FAILED"].contains(&a.status.as_str()) {
            assert_eq!(now["status"], a.status.as_str(), "a final status changed: {now}");
        }
    }
}
