//! Graceful stop (SPEC §9): the built binary as a child process in `accept_quote` mode
//! against a simulator child with a latency and `--state`, stopped with SIGTERM and then
//! SIGINT while a bulk job is PROCESSING and clients send on-us and SDK transfers. Each
//! stop logs its lifecycle lines and exits 0 in time after finishing the SDK calls in
//! flight, so the next start has nothing to recover; `sysgp check` passes after each.
//! At the end the job is COMPLETED with every line paid once and never re-queued, every
//! acknowledged transfer is final, the hub paid nothing twice and the wallets add up.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sysgp::bulk::model::item_transfer_id;
use uuid::Uuid;

use crate::procs::{
    agent, call, lock, seed, Cluster, ClusterOptions, Rng, Stopped, POLL, READY_TIMEOUT, REQUEST_TIMEOUT,
};

/// Concurrent load clients: enough to keep SDK transfers in flight at each signal.
const CLIENTS: usize = 6;
/// Lines paid through the SDK: the job outlasts both stops and restarts.
const SDK_LINES: usize = 1200;
/// Local wallets paid on-us by the job, each on several lines.
const LOCAL_WALLETS: [&str; 2] = ["22507400001", "22507400002"];
/// Every this many lines, one goes to a local wallet.
const LOCAL_EVERY: usize = 97;
/// Simulator latency per call (random per run, inclusive): a signal lands mid-call.
const SIM_LATENCY_MS: (u64, u64) = (20, 30);
/// The stops, in order: systemd's SIGTERM, then Ctrl-C's SIGINT.
const SIGNALS: [&str; 2] = ["TERM", "INT"];
/// Items each server must finish before it is stopped: it really resumed the job.
const PROGRESS_ITEMS: u64 = 8;
/// Load runs this long (random, ms) before each stop and after the last restart.
const LOAD_MS: (u64, u64) = (100, 400);
/// Validation of the file, or progress between stops, takes less than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// After the last restart: the rest of the job.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// What a server logs when a stop begins and when it is done.
const STOP_LINES: [&str; 2] = [
    "stopping: no new requests or bulk items; finishing in-flight work",
    "stopped: every acknowledged change is durable",
];
/// What a stop that gave up on in-flight work logs.
const STOP_CUT_SHORT: &str = "exiting with work still in flight";
/// What the next start logs when the stop left no transfer half-done.
const NOTHING_TO_RECOVER: &str = "recovery done: 0 interrupted transfers failed, 0 in doubt, 0 scheduled";
const SOURCE: &str = "22507400100";
const ALICE: &str = "22507400201";
const BOB: &str = "22507400202";
/// Far more than the job or the load spends.
const FUNDS: i64 = 1_000_000_000;
const MAKER: &str = "graceful-maker";
const CHECKER: &str = "graceful-checker";
const PASSWORD: &str = "graceful stop test password, not a secret";

#[test]
fn stopping_the_server_by_signal_mid_job_and_mid_load_finishes_in_flight_work_exits_0_and_loses_nothing() {
    let started = Instant::now();
    let seed = seed("GRACEFUL_SEED");
    let mut rng = Rng(seed);
    let latency_ms = rng.between(SIM_LATENCY_MS);
    eprintln!("graceful stop test: seed {seed} (set GRACEFUL_SEED to repeat), latency {latency_ms} ms");
    let cluster =
        Cluster::start(&ClusterOptions { sdk_mode: "accept_quote", accept: "quote", latency_ms, server_env: &[] });
    let mut run = Run::set_up(cluster);
    let file = PayFile::new(&mut rng);
    let job = run.upload_and_approve(&file);
    let load = Load { base: Mutex::new(run.cluster.base.clone()), token: run.maker.clone(), ..Load::default() };
    let mut stops = Vec::new();
    std::thread::scope(|s| {
        // Stops the clients however this closure ends, so that a failed check fails the
        // test instead of leaving the scope waiting for them.
        let _clients_stop = StopOnDrop(&load.stop);
        for client in 0..CLIENTS {
            let (load, seed) = (&load, rng.next() ^ client as u64);
            s.spawn(move || load.client(seed));
        }
        for (start, signal) in SIGNALS.iter().enumerate() {
            load.run_for(rng.between(LOAD_MS));
            stops.push(run.stop_mid_job(&job, start, signal));
            *lock(&load.base) = run.cluster.base.clone();
        }
        load.run_for(rng.between(LOAD_MS));
    });
    let done = run.job_until(&job, FINISH_TIMEOUT, "completion after the last restart", |j| j["status"] == "COMPLETED");
    let transfers = run.verify(&job, &done, &file, &load);
    run.cluster.stop_server();
    run.cluster.check_store("after the last graceful stop");
    let acked = lock(&load.acked);
    let across: Vec<usize> = stops.iter().map(|stop| in_flight_at(&acked, stop)).collect();
    eprintln!(
        "graceful stop test: {} transfers acknowledged ({} SDK), {} refused while stopped; SDK transfers in flight \
         at each signal and acknowledged after it {across:?}; stops took {:?}; {transfers} transfers in the store; \
         total {:?}",
        acked.len(),
        acked.iter().filter(|a| a.route == "SDK").count(),
        load.refused.load(SeqCst),
        stops.iter().map(|s| s.took).collect::<Vec<_>>(),
        started.elapsed()
    );
    assert!(across.iter().sum::<usize>() > 0, "no SDK transfer was in flight at a signal: the test proved nothing");
}

/// The cluster and the two sessions of one run.
struct Run {
    cluster: Cluster,
    maker: String,
    checker: String,
}

/// The file: one `(payee, amount)` per line, in order (line = index + 2).
struct PayFile {
    lines: Vec<(String, i64)>,
}

impl PayFile {
    /// Distinct payees without a trigger suffix and trigger-free amounts, plus a local
    /// wallet every `LOCAL_EVERY` lines.
    fn new(rng: &mut Rng) -> PayFile {
        let mut lines = Vec::with_capacity(SDK_LINES + SDK_LINES / LOCAL_EVERY + 1);
        for i in 0..SDK_LINES {
            if i % LOCAL_EVERY == LOCAL_EVERY / 2 {
                let local = LOCAL_WALLETS[(i / LOCAL_EVERY) % LOCAL_WALLETS.len()];
                lines.push((local.to_owned(), rng.sdk_amount() as i64));
            }
            // Ends in 3: never the simulator's 404 or 408 suffix.
            lines.push((format!("22501{:06}", i * 10 + 3), rng.sdk_amount() as i64));
        }
        PayFile { lines }
    }

    fn csv(&self) -> String {
        let mut csv = String::from("msisdn,amount,reference\n");
        for (i, (msisdn, amount)) in self.lines.iter().enumerate() {
            csv.push_str(&format!("{msisdn},{amount},graceful-{i}\n"));
        }
        csv
    }

    fn total(&self) -> i64 {
        self.lines.iter().map(|(_, a)| a).sum()
    }
}

impl Run {
    /// Users (through the admin socket), the funded source and load wallets, the local wallets.
    fn set_up(cluster: Cluster) -> Run {
        cluster.add_user(MAKER, "maker", PASSWORD);
        cluster.add_user(CHECKER, "checker", PASSWORD);
        let (maker, checker) = (cluster.login(MAKER, PASSWORD), cluster.login(CHECKER, PASSWORD));
        let run = Run { cluster, maker, checker };
        for wallet in LOCAL_WALLETS.iter().chain(&[SOURCE, ALICE, BOB]) {
            run.cluster.post(&run.maker, "/api/v1/accounts/", &json!({"msisdn": wallet, "currency": "XOF"}), 201);
        }
        for wallet in [SOURCE, ALICE, BOB] {
            let deposit = json!({"amount": FUNDS.to_string()});
            run.cluster.post(&run.maker, &format!("/api/v1/accounts/{wallet}/deposit/"), &deposit, 201);
        }
        run
    }

    /// Uploads the file as the maker, waits for validation, approves as the checker.
    fn upload_and_approve(&self, file: &PayFile) -> String {
        let uploaded = self.cluster.upload_csv(&self.maker, SOURCE, &file.csv());
        let id = uploaded["job_id"].as_str().expect("job_id").to_owned();
        let job = self.job_until(&id, STEP_TIMEOUT, "validation", |j| j["status"] != "PENDING");
        assert_eq!(job["status"], "AWAITING_APPROVAL", "{job}");
        assert_eq!(job["total_count"], file.lines.len(), "{job}");
        let approved = self.cluster.post(&self.checker, &format!("/api/v1/bulk/jobs/{id}/approve/"), &json!({}), 200);
        assert_eq!(approved["status"], "PROCESSING", "{approved}");
        id
    }

    /// Once this server has finished a few items, stops it with `signal` mid-job: it logs
    /// the stop, exits 0 in time, `sysgp check` passes, and the next start (server start
    /// `start + 1`) finds nothing half-done.
    fn stop_mid_job(&mut self, id: &str, start: usize, signal: &str) -> Stopped {
        let before = finished(&self.job(id));
        self.job_until(id, STEP_TIMEOUT, "progress before a stop", |j| finished(j) >= before + PROGRESS_ITEMS);
        let job = self.job(id);
        assert!(
            job["status"] == "PROCESSING" && count(&job, "PENDING") > 0,
            "SIG{signal}: the job is no longer mid-way, so the stop would prove nothing (make it longer): {job}"
        );
        let stopped = self.cluster.stop_server_by(signal);
        let log = self.cluster.server_log(start);
        for line in STOP_LINES {
            assert!(log.contains(line), "SIG{signal}: the log lacks {line:?}:\n{log}");
        }
        assert!(!log.contains(STOP_CUT_SHORT), "SIG{signal}: the stop gave up on in-flight work:\n{log}");
        self.cluster.check_store(&format!("after SIG{signal}"));
        self.cluster.start_server();
        let log = self.cluster.server_log(start + 1);
        assert!(log.contains(NOTHING_TO_RECOVER), "after SIG{signal}, the start found work half-done:\n{log}");
        stopped
    }

    /// The job paid every line once; acknowledged transfers are final; the hub paid
    /// nothing twice; wallets add up. Returns how many transfers the store has.
    fn verify(&self, id: &str, job: &Value, file: &PayFile, load: &Load) -> usize {
        let unexpected = lock(&load.unexpected);
        assert!(unexpected.is_empty(), "replies other than 201 or a refusal while stopped: {unexpected:?}");
        let lines = file.lines.len() as u64;
        assert_eq!(count(job, "COMPLETED"), lines, "every line is COMPLETED: {job}");
        assert_eq!(job["amounts"]["COMPLETED"], file.total().to_string(), "{job}");
        assert_eq!(job["reserved_remaining"], "0", "{job}");
        let transfers: HashMap<String, Value> = self
            .cluster
            .all_pages(&self.maker, "/api/v1/transfers/?limit=500")
            .into_iter()
            .map(|t| (t["transfer_id"].as_str().expect("transfer_id").to_owned(), t))
            .collect();
        for t in transfers.values() {
            assert!(["COMPLETED", "FAILED"].contains(&t["status"].as_str().expect("status")), "not final: {t}");
        }
        for acked in lock(&load.acked).iter() {
            let now = transfers.get(&acked.id).unwrap_or_else(|| panic!("acknowledged transfer {acked:?} is gone"));
            if ["COMPLETED", "FAILED"].contains(&acked.status.as_str()) {
                assert_eq!(now["status"], acked.status.as_str(), "a final status changed: {now}");
            }
        }
        let times = times_paid(&self.cluster.hub_paid());
        let job_sdk = self.verify_items(id, file, &times);
        let p2p_sdk = verify_p2p_payments(&transfers, &times);
        assert_eq!(
            times.len(),
            job_sdk + p2p_sdk,
            "the hub paid the job's SDK lines, the load's SDK transfers, no more"
        );
        self.verify_wallets(file, &transfers);
        transfers.len()
    }

    /// Every item COMPLETED at its first attempt (no stop interrupted one); each SDK line
    /// paid once for its amount, each local line on-us. Returns the SDK lines.
    fn verify_items(&self, id: &str, file: &PayFile, times: &HashMap<String, (usize, Value)>) -> usize {
        let items = self.cluster.all_pages(&self.maker, &format!("/api/v1/bulk/jobs/{id}/items/?limit=500"));
        assert_eq!(items.len(), file.lines.len(), "one item per line");
        let job = Uuid::parse_str(id).expect("job id");
        let mut sdk_lines = 0;
        for item in &items {
            let line = item["line"].as_u64().and_then(|l| u32::try_from(l).ok()).expect("line");
            let (msisdn, amount) = &file.lines[line as usize - 2];
            assert_eq!((&item["status"], &item["amount"]), (&json!("COMPLETED"), &json!(amount.to_string())), "{item}");
            assert_eq!(item["attempts"], 0, "a graceful stop re-queues nothing: {item}");
            if LOCAL_WALLETS.contains(&msisdn.as_str()) {
                assert_eq!(item["route"], "ON_US", "{item}");
                continue;
            }
            sdk_lines += 1;
            let tid = item_transfer_id(job, line, 0).to_string();
            assert_eq!(item["transfer_id"], tid, "{item}");
            let (n, hub) = times.get(&tid).unwrap_or_else(|| panic!("line {line} is COMPLETED but never paid: {item}"));
            assert_eq!(*n, 1, "line {line} paid {n} times: {item}");
            assert_eq!(hub["amount"], amount.to_string(), "{hub} for {item}");
            assert_eq!(hub["transferId"], item["sdk_transfer_id"], "{hub} for {item}");
        }
        sdk_lines
    }

    /// Local wallets got their lines; the source paid exactly the total; the load's
    /// wallets lost exactly their COMPLETED SDK transfers; nothing is left reserved.
    fn verify_wallets(&self, file: &PayFile, transfers: &HashMap<String, Value>) {
        for wallet in LOCAL_WALLETS {
            let expected: i64 = file.lines.iter().filter(|(m, _)| m == wallet).map(|(_, a)| a).sum();
            let account = self.cluster.get(&self.maker, &format!("/api/v1/accounts/{wallet}/"));
            assert_eq!(account["balance"], expected.to_string(), "credited once: {account}");
        }
        let source = self.cluster.get(&self.maker, &format!("/api/v1/accounts/{SOURCE}/"));
        let left = (FUNDS - file.total()).to_string();
        assert_eq!((&source["balance"], &source["available"]), (&json!(left), &json!(left)), "{source}");
        assert_eq!(source["reserved"], "0", "{source}");
        let sent_out: i64 = transfers
            .values()
            .filter(|t| t["route"] == "SDK" && t["status"] == "COMPLETED" && t["bulk_job_id"].is_null())
            .map(|t| amount(&t["amount"]))
            .sum();
        let mut held = 0;
        for wallet in [ALICE, BOB] {
            let account = self.cluster.get(&self.maker, &format!("/api/v1/accounts/{wallet}/"));
            assert_eq!(account["reserved"], "0", "{account}");
            held += amount(&account["balance"]);
        }
        assert_eq!(held, 2 * FUNDS - sent_out, "the load's wallets lost exactly what the hub was paid");
    }

    fn job(&self, id: &str) -> Value {
        self.cluster.get(&self.maker, &format!("/api/v1/bulk/jobs/{id}/"))
    }

    /// Polls the job until `done` says so; fails after `timeout`.
    fn job_until(&self, id: &str, timeout: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "{what}: not after {timeout:?}: {job}");
            std::thread::sleep(POLL);
        }
    }
}

/// The load's SDK transfers (no bulk job): COMPLETED ones paid once, FAILED ones never.
/// Returns how many were paid.
fn verify_p2p_payments(transfers: &HashMap<String, Value>, times: &HashMap<String, (usize, Value)>) -> usize {
    let mut paid = 0;
    for (id, t) in transfers.iter().filter(|(_, t)| t["route"] == "SDK" && t["bulk_job_id"].is_null()) {
        let (n, hub) = times.get(id).map_or((0, &Value::Null), |(n, hub)| (*n, hub));
        let expected = usize::from(t["status"] == "COMPLETED");
        assert_eq!(n, expected, "times paid: {t}");
        if n == 1 {
            assert_eq!((&hub["amount"], &hub["currency"]), (&t["amount"], &t["currency"]), "{hub} for {t}");
            paid += 1;
        }
    }
    paid
}

/// The hub's payments by `homeTransactionId`: how many times, and the last one.
fn times_paid(paid: &[Value]) -> HashMap<String, (usize, Value)> {
    let mut times: HashMap<String, (usize, Value)> = HashMap::new();
    for p in paid {
        let id = p["homeTransactionId"].as_str().expect("homeTransactionId").to_owned();
        let entry = times.entry(id).or_insert((0, Value::Null));
        entry.0 += 1;
        entry.1 = p.clone();
    }
    let twice: HashSet<&String> = times.iter().filter(|(_, (n, _))| *n > 1).map(|(id, _)| id).collect();
    assert!(twice.is_empty(), "paid more than once: {twice:?}");
    times
}

/// An amount in whole XOF, as the API writes it.
fn amount(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("an amount: {v}"))
}

/// The job's counter for an item status.
fn count(job: &Value, status: &str) -> u64 {
    job["counts"][status].as_u64().unwrap_or_else(|| panic!("counts.{status} in {job}"))
}

/// Items that reached a final status.
fn finished(job: &Value) -> u64 {
    count(job, "COMPLETED") + count(job, "FAILED")
}

/// SDK transfers sent before the signal and acknowledged after it: the stop waited for them.
fn in_flight_at(acked: &[Acked], stop: &Stopped) -> usize {
    acked.iter().filter(|a| a.route == "SDK" && a.sent < stop.signalled_at && a.answered > stop.signalled_at).count()
}

/// Sets its flag when dropped, also while a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// The load: clients sending on-us and SDK transfers between two wallets.
#[derive(Default)]
struct Load {
    base: Mutex<String>,
    /// The maker's session: it must survive every restart.
    token: String,
    stop: AtomicBool,
    acked: Mutex<Vec<Acked>>,
    /// Requests refused (connection refused or closed, 503) while a server stopped or started.
    refused: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

/// A transfer the server answered 201 for.
#[derive(Debug)]
struct Acked {
    id: String,
    route: String,
    status: String,
    sent: Instant,
    answered: Instant,
}

impl Load {
    /// Lets the load run for `ms` after the current server has answered every client again.
    fn run_for(&self, ms: u64) {
        let acked = lock(&self.acked).len();
        let deadline = Instant::now() + READY_TIMEOUT;
        while lock(&self.acked).len() < acked + CLIENTS {
            assert!(Instant::now() < deadline, "the load makes no progress");
            std::thread::sleep(POLL);
        }
        // Not waiting for work: this picks the random moment of the next stop.
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// One client: random on-us and SDK transfers until told to stop.
    fn client(&self, seed: u64) {
        let agent = agent(REQUEST_TIMEOUT);
        let mut rng = Rng(seed);
        while !self.stop.load(SeqCst) {
            let (from, other) = if rng.below(2) == 0 { (ALICE, BOB) } else { (BOB, ALICE) };
            let to_sdk = rng.below(10) < 6;
            let (to, amount) =
                if to_sdk { (rng.payee(), rng.sdk_amount()) } else { (other.to_owned(), 1 + rng.below(100)) };
            let body = json!({"sender_msisdn": from, "receiver_msisdn": to, "amount": amount.to_string()});
            let url = format!("{}/api/v1/transfers/", lock(&self.base));
            let sent = Instant::now();
            match call(&agent, &url, &self.token, Some(&body)) {
                Ok((201, t)) => lock(&self.acked).push(Acked {
                    id: t["transfer_id"].as_str().unwrap_or_default().to_owned(),
                    route: t["route"].as_str().unwrap_or_default().to_owned(),
                    status: t["status"].as_str().unwrap_or_default().to_owned(),
                    sent,
                    answered: Instant::now(),
                }),
                // Stopped, stopping or starting: refused, not acknowledged.
                Ok((503, _)) | Err(_) => {
                    self.refused.fetch_add(1, SeqCst);
                    std::thread::sleep(POLL);
                }
                Ok((status, reply)) => lock(&self.unexpected).push(format!("{status} {reply}")),
            }
        }
    }
}
