//! Crash during a bulk job (SPEC §5 "Crash safety"): the built binary as a child process
//! in `accept_quote` mode against a simulator child with `--accept quote`, a latency and
//! `--state`, SIGKILLed several times while a job is PROCESSING and restarted. After
//! every kill `sysgp check` passes; at the end the job is COMPLETED, every line was paid
//! exactly once (through `/__sim/transfers`, over all its attempts), local wallets were
//! credited once, and the source wallet paid exactly the total, with nothing reserved.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sysgp::bulk::model::item_transfer_id;
use uuid::Uuid;

use crate::procs::{seed, Cluster, ClusterOptions, Rng, POLL};

/// Lines paid through the SDK: at 8 workers and two SDK calls per line the job runs
/// for about ten seconds, longer than the kills take.
const SDK_LINES: usize = 1500;
/// Local wallets paid on-us, each on several lines.
const LOCAL_WALLETS: [&str; 2] = ["22507300001", "22507300002"];
/// Every this many lines, one goes to a local wallet.
const LOCAL_EVERY: usize = 97;
/// Kills per run (random, inclusive).
const KILLS: (u64, u64) = (3, 5);
/// Simulator latency per call (random per run, inclusive): a kill lands mid-call.
const SIM_LATENCY_MS: (u64, u64) = (20, 50);
/// Items this server must finish before it may be killed: it really resumed the job.
const PROGRESS_ITEMS: u64 = 8;
/// After that progress, a kill at a random moment comes this long later (ms).
const KILL_DELAY_MS: (u64, u64) = (0, 400);
/// Validation of the small file, or progress between kills, takes less than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// After the last restart: the rest of the job, plus reconciliation of the IN_DOUBT
/// items (first attempt 5 s after the doubt began, then at 15 s).
const FINISH_TIMEOUT: Duration = Duration::from_secs(45);
const SOURCE: &str = "22507300100";
/// Far more than the job pays.
const FUNDS: i64 = 1_000_000_000;
const MAKER: &str = "bulk-maker";
const CHECKER: &str = "bulk-checker";
const PASSWORD: &str = "bulk crash test password, not a secret";

#[test]
fn killing_the_server_while_a_bulk_job_is_processing_completes_the_job_and_pays_every_line_exactly_once() {
    let started = Instant::now();
    let seed = seed("BULK_CRASH_SEED");
    let mut rng = Rng(seed);
    let latency_ms = rng.between(SIM_LATENCY_MS);
    let kills = rng.between(KILLS);
    eprintln!("bulk crash test: seed {seed} (set BULK_CRASH_SEED to repeat), latency {latency_ms} ms, {kills} kills");
    let cluster =
        Cluster::start(&ClusterOptions { sdk_mode: "accept_quote", accept: "quote", latency_ms, server_env: &[] });
    let mut run = Run::set_up(cluster);
    let file = PayFile::new(&mut rng);
    let job = run.upload_and_approve(&file);
    let mut in_doubt_at_restarts = Vec::new();
    for kill in 0..kills {
        run.kill_mid_job(&job, kill, &mut rng);
        let after = run.job(&job);
        in_doubt_at_restarts.push(count(&after, "IN_DOUBT"));
    }
    let done = run.wait_for_completion(&job);
    let attempts = run.verify(&job, &done, &file);
    run.cluster.stop_server();
    run.cluster.check_store("after a graceful stop");
    let retried = attempts.values().filter(|a| **a > 0).count();
    let in_doubt: u64 = in_doubt_at_restarts.iter().sum();
    eprintln!(
        "bulk crash test: {} lines paid once; IN_DOUBT after each restart {in_doubt_at_restarts:?}; {retried} lines \
         re-queued (a kill before the acceptance); total {:?}",
        file.lines.len(),
        started.elapsed()
    );
    assert!(in_doubt + retried as u64 > 0, "no kill caught an item in flight: the test proved nothing");
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
    /// Ordinary payees (distinct, no trigger suffix) and trigger-free amounts, plus a
    /// local wallet every `LOCAL_EVERY` lines.
    fn new(rng: &mut Rng) -> PayFile {
        let mut lines = Vec::with_capacity(SDK_LINES + SDK_LINES / LOCAL_EVERY + 1);
        for i in 0..SDK_LINES {
            if i % LOCAL_EVERY == LOCAL_EVERY / 2 {
                let local = LOCAL_WALLETS[(i / LOCAL_EVERY) % LOCAL_WALLETS.len()];
                lines.push((local.to_owned(), rng.sdk_amount() as i64));
            }
            // Ends in 1: never the simulator's 404 or 408 suffix.
            lines.push((format!("22500{:06}", i * 10 + 1), rng.sdk_amount() as i64));
        }
        PayFile { lines }
    }

    fn csv(&self) -> String {
        let mut csv = String::from("msisdn,amount,reference\n");
        for (i, (msisdn, amount)) in self.lines.iter().enumerate() {
            csv.push_str(&format!("{msisdn},{amount},crash-{i}\n"));
        }
        csv
    }

    fn total(&self) -> i64 {
        self.lines.iter().map(|(_, a)| a).sum()
    }

    fn is_local(msisdn: &str) -> bool {
        LOCAL_WALLETS.contains(&msisdn)
    }
}

impl Run {
    /// Users (through the admin socket), the funded source wallet and the local wallets.
    fn set_up(cluster: Cluster) -> Run {
        cluster.add_user(MAKER, "maker", PASSWORD);
        cluster.add_user(CHECKER, "checker", PASSWORD);
        let (maker, checker) = (cluster.login(MAKER, PASSWORD), cluster.login(CHECKER, PASSWORD));
        let run = Run { cluster, maker, checker };
        for wallet in LOCAL_WALLETS.iter().chain([&SOURCE]) {
            run.cluster.post(&run.maker, "/api/v1/accounts/", &json!({"msisdn": wallet, "currency": "XOF"}), 201);
        }
        let deposit = json!({"amount": FUNDS.to_string()});
        run.cluster.post(&run.maker, &format!("/api/v1/accounts/{SOURCE}/deposit/"), &deposit, 201);
        run
    }

    /// Uploads the file as the maker, waits for validation, approves as the checker.
    fn upload_and_approve(&self, file: &PayFile) -> String {
        let uploaded = self.upload(&file.csv());
        let id = uploaded["job_id"].as_str().expect("job_id").to_owned();
        let job = self.job_until(&id, STEP_TIMEOUT, "validation", |j| j["status"] != "PENDING");
        assert_eq!(job["status"], "AWAITING_APPROVAL", "{job}");
        assert_eq!(job["total_count"], file.lines.len(), "{job}");
        let approved = self.cluster.post(&self.checker, &format!("/api/v1/bulk/jobs/{id}/approve/"), &json!({}), 200);
        assert_eq!(approved["status"], "PROCESSING", "{approved}");
        assert_eq!(approved["reserved_remaining"], file.total().to_string(), "{approved}");
        id
    }

    /// `POST /api/v1/bulk/upload/` as multipart (`source_msisdn`, then `file`): 202.
    fn upload(&self, csv: &str) -> Value {
        let boundary = "sysgp-bulk-crash-5f0c2a";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"source_msisdn\"\r\n\r\n{SOURCE}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"crash.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        );
        let mut reply = self
            .cluster
            .agent
            .post(&self.cluster.url("/api/v1/bulk/upload/"))
            .header("authorization", &format!("Bearer {}", self.maker))
            .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
            .send(body.as_bytes())
            .expect("upload");
        let status = reply.status().as_u16();
        let text = reply.body_mut().read_to_string().expect("upload reply");
        assert_eq!(status, 202, "upload: {text}");
        serde_json::from_str(&text).expect("upload reply is JSON")
    }

    /// Waits until this server has finished a few items, then picks the moment: every
    /// other kill right after an item's FINAL_SENT (its acceptance is on the way: it
    /// must come back IN_DOUBT and be settled by the reconciler), the others at random
    /// (mostly before the acceptance: re-queued as a new attempt). SIGKILLs the server
    /// mid-job, checks the store and starts it again.
    fn kill_mid_job(&mut self, id: &str, kill: u64, rng: &mut Rng) {
        let before = finished(&self.job(id));
        self.job_until(id, STEP_TIMEOUT, "progress before a kill", |j| finished(j) >= before + PROGRESS_ITEMS);
        if kill % 2 == 1 {
            self.wait_for_final_sent();
        } else {
            // Not waiting for work: this picks the random moment of the kill.
            std::thread::sleep(Duration::from_millis(rng.between(KILL_DELAY_MS)));
        }
        let job = self.job(id);
        assert!(
            job["status"] == "PROCESSING" && count(&job, "PENDING") > 0,
            "kill {kill}: the job is no longer mid-way, so the kill would prove nothing (make it longer): {job}"
        );
        self.cluster.kill_server();
        self.cluster.check_store(&format!("after SIGKILL {kill}"));
        self.cluster.start_server();
    }

    /// Polls until a PENDING transfer has its SDK id: FINAL_SENT is recorded, the
    /// acceptance is being sent.
    fn wait_for_final_sent(&self) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let page = self.cluster.get(&self.maker, "/api/v1/transfers/?limit=50&status=PENDING");
            let items = page["items"].as_array().expect("items");
            if items.iter().any(|t| !t["sdk_transfer_id"].is_null()) {
                return;
            }
            assert!(Instant::now() < deadline, "no transfer reached FINAL_SENT in {STEP_TIMEOUT:?}");
        }
    }

    /// Waits for COMPLETED (the rest of the job, then reconciliation of its IN_DOUBT items).
    fn wait_for_completion(&self, id: &str) -> Value {
        self.job_until(id, FINISH_TIMEOUT, "completion after the last restart", |j| j["status"] == "COMPLETED")
    }

    /// Every line COMPLETED and paid once over all its attempts; wallets and job add up.
    /// Returns the attempts of each line.
    fn verify(&self, id: &str, job: &Value, file: &PayFile) -> HashMap<u32, u32> {
        let lines = file.lines.len() as u64;
        assert_eq!(count(job, "COMPLETED"), lines, "every line is COMPLETED: {job}");
        assert_eq!(job["amounts"]["COMPLETED"], file.total().to_string(), "{job}");
        assert_eq!(job["reserved_remaining"], "0", "{job}");
        let items = self.items(id);
        assert_eq!(items.len() as u64, lines, "one item per line");
        let paid = paid_once(&self.cluster.hub_paid());
        let job_id = Uuid::parse_str(id).expect("job id");
        let mut attempts = HashMap::new();
        let mut paid_to = HashMap::<String, i64>::new();
        for item in &items {
            let line = item["line"].as_u64().and_then(|l| u32::try_from(l).ok()).expect("line");
            let (msisdn, amount) = &file.lines[line as usize - 2];
            assert_eq!(item["status"], "COMPLETED", "{item}");
            assert_eq!(item["amount"], amount.to_string(), "{item}");
            let tries = item["attempts"].as_u64().and_then(|a| u32::try_from(a).ok()).expect("attempts");
            attempts.insert(line, tries);
            if PayFile::is_local(msisdn) {
                assert_eq!(item["route"], "ON_US", "{item}");
                *paid_to.entry(msisdn.clone()).or_default() += amount;
            } else {
                verify_paid_once(job_id, item, *amount, &paid);
            }
        }
        let sdk_lines = items.iter().filter(|i| i["route"] == "SDK").count();
        assert_eq!(paid.len(), sdk_lines, "the hub paid this job's SDK lines and nothing else");
        self.verify_wallets(&paid_to, file.total());
        self.verify_transfers_final();
        attempts
    }

    /// Local wallets got their lines once; the source paid the total; nothing is reserved.
    fn verify_wallets(&self, paid_to: &HashMap<String, i64>, total: i64) {
        for wallet in LOCAL_WALLETS {
            let account = self.cluster.get(&self.maker, &format!("/api/v1/accounts/{wallet}/"));
            let expected = paid_to.get(wallet).copied().unwrap_or(0);
            assert!(expected > 0, "the file pays {wallet}");
            assert_eq!(account["balance"], expected.to_string(), "credited once: {account}");
        }
        let source = self.cluster.get(&self.maker, &format!("/api/v1/accounts/{SOURCE}/"));
        let left = (FUNDS - total).to_string();
        assert_eq!((&source["balance"], &source["available"]), (&json!(left), &json!(left)), "{source}");
        assert_eq!(source["reserved"], "0", "{source}");
    }

    /// No transfer is left PENDING or IN_DOUBT (the earlier attempts of re-queued lines are FAILED).
    fn verify_transfers_final(&self) {
        for status in ["PENDING", "IN_DOUBT"] {
            let page = self.cluster.get(&self.maker, &format!("/api/v1/transfers/?limit=500&status={status}"));
            assert_eq!(page["items"], json!([]), "{status} transfers are left");
        }
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

    /// Every item of the job, following `next_cursor`.
    fn items(&self, id: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.cluster.get(&self.maker, &format!("/api/v1/bulk/jobs/{id}/items/?limit=500{cursor}"));
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return items,
            }
        }
    }
}

/// The job's counter for an item status.
fn count(job: &Value, status: &str) -> u64 {
    job["counts"][status].as_u64().unwrap_or_else(|| panic!("counts.{status} in {job}"))
}

/// Items that reached a final status.
fn finished(job: &Value) -> u64 {
    count(job, "COMPLETED") + count(job, "FAILED")
}

/// The hub's payments by `homeTransactionId`, none of them twice.
fn paid_once(paid: &[Value]) -> HashMap<String, Value> {
    let mut once = HashMap::new();
    for p in paid {
        let id = p["homeTransactionId"].as_str().expect("homeTransactionId").to_owned();
        if let Some(first) = once.insert(id.clone(), p.clone()) {
            panic!("{id} paid more than once: {first} and {p}");
        }
    }
    once
}

/// An SDK line: the current attempt's transfer id (derived from job, line and attempt)
/// was paid once, for its amount, under the SDK id the item shows; no earlier attempt was.
fn verify_paid_once(job: Uuid, item: &Value, amount: i64, paid: &HashMap<String, Value>) {
    let line = item["line"].as_u64().and_then(|l| u32::try_from(l).ok()).expect("line");
    let tries = item["attempts"].as_u64().and_then(|a| u32::try_from(a).ok()).expect("attempts");
    assert_eq!(item["route"], "SDK", "{item}");
    let current = item_transfer_id(job, line, tries).to_string();
    assert_eq!(item["transfer_id"], current, "the current attempt's id: {item}");
    let hub =
        paid.get(&current).unwrap_or_else(|| panic!("line {line} is COMPLETED but the hub never paid it: {item}"));
    assert_eq!((&hub["amount"], &hub["currency"]), (&json!(amount.to_string()), &json!("XOF")), "{hub} for {item}");
    assert_eq!(hub["transferId"], item["sdk_transfer_id"], "{hub} for {item}");
    for earlier in 0..tries {
        let old = item_transfer_id(job, line, earlier).to_string();
        assert!(!paid.contains_key(&old), "line {line}: attempt {earlier} ({old}) was paid too: {item}");
    }
}
