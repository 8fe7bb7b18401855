//! Crash: the built binary as a child process, SIGKILLed while transfers are in flight
//! and restarted, several times, against a simulator child process with `--state` (the
//! hub, which lives through the whole test). After every kill `sysgp check` passes; at
//! the end every acknowledged transfer exists and `/__sim/transfers` paid nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::procs::{agent, call, lock, seed, Cluster, ClusterOptions, Rng, POLL, READY_TIMEOUT, REQUEST_TIMEOUT};

/// Concurrent load clients: enough to keep several SDK transfers in flight at a kill.
const CLIENTS: usize = 8;
/// Kill/restart cycles per mode.
const KILLS: usize = 4;
/// Simulator latency per SDK call: long enough that a kill lands mid-call.
const SIM_LATENCY_MS: u64 = 30;
/// Load runs this long (random, ms) before each kill and after the last restart.
const LOAD_MS: (u64, u64) = (100, 600);
/// Reconciliation asks at 5 s, 15 s, 30 s after the doubt began; two attempts must do.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const ALICE: &str = "22507100001";
const BOB: &str = "22507100002";
/// Deposited into each wallet: far more than the load can spend.
const FUNDS: &str = "1000000000";
/// The load's user: a maker may create wallets, deposit and send.
const USER: &str = "crash-maker";
const PASSWORD: &str = "crash test password, not a secret";

#[test]
fn killing_the_server_mid_load_in_accept_quote_mode_leaves_every_transfer_final_and_pays_nothing_twice() {
    let summary = run(Mode { sdk_mode: "accept_quote", accept: "quote" });
    assert_eq!(summary.in_doubt, 0, "accept_quote: every transfer is final after reconciliation");
}

#[test]
fn killing_the_server_mid_load_in_auto_mode_leaves_at_most_the_in_flight_posts_in_doubt_and_pays_nothing_twice() {
    let summary = run(Mode { sdk_mode: "auto", accept: "none" });
    assert!(
        summary.in_doubt <= summary.in_flight_at_kills,
        "{} IN_DOUBT but only {} SDK requests were in flight at the kills",
        summary.in_doubt,
        summary.in_flight_at_kills
    );
}

/// `SYSGP_SDK_MODE` and the simulator's matching `--accept`.
#[derive(Clone, Copy, Debug)]
struct Mode {
    sdk_mode: &'static str,
    accept: &'static str,
}

/// What one run ended with.
#[derive(Debug)]
struct Summary {
    in_doubt: usize,
    in_flight_at_kills: usize,
}

/// The whole scenario for one mode: start, load, kill and restart `KILLS` times, settle, verify.
fn run(mode: Mode) -> Summary {
    let started = Instant::now();
    let seed = seed("CRASH_SEED");
    eprintln!("crash test {mode:?}: seed {seed} (set CRASH_SEED to repeat the choices)");
    let mut rng = Rng(seed);
    let mut crash = Crash::start(mode);
    crash.post_ok("/api/v1/accounts/", &json!({"msisdn": ALICE, "currency": "XOF"}));
    crash.post_ok("/api/v1/accounts/", &json!({"msisdn": BOB, "currency": "XOF"}));
    crash.post_ok(&format!("/api/v1/accounts/{ALICE}/deposit/"), &json!({"amount": FUNDS}));
    crash.post_ok(&format!("/api/v1/accounts/{BOB}/deposit/"), &json!({"amount": FUNDS}));
    let load = Load { base: Mutex::new(crash.cluster.base.clone()), token: crash.token.clone(), ..Load::default() };
    let mut in_flight = Vec::new();
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let (load, seed) = (&load, rng.next() ^ client as u64);
            s.spawn(move || load.client(seed));
        }
        for _ in 0..KILLS {
            load.run_for(rng.between(LOAD_MS));
            in_flight.push(crash.kill_server(&load));
            crash.cluster.check_store("after a SIGKILL");
            crash.cluster.start_server();
            *lock(&load.base) = crash.cluster.base.clone();
        }
        load.run_for(rng.between(LOAD_MS));
        load.stop.store(true, SeqCst);
    });
    let loaded = started.elapsed();
    let open = crash.wait_until_settled();
    let summary = Summary { in_doubt: open.len(), in_flight_at_kills: in_flight.iter().sum() };
    let paid = crash.verify(&load, &open);
    crash.cluster.stop_server();
    crash.cluster.check_store("after a graceful stop");
    let acked = lock(&load.acked);
    eprintln!(
        "crash test {mode:?}: {} acknowledged ({} SDK), {} not acknowledged; SDK requests in flight at the kills \
         {in_flight:?}; {} SDK transfers, {} paid by the hub; {} left IN_DOUBT, {} of them paid; \
         load and kills {loaded:?}, total {:?}",
        acked.len(),
        acked.iter().filter(|a| a.route == "SDK").count(),
        load.unacked.load(SeqCst),
        paid.sdk_transfers,
        paid.paid,
        summary.in_doubt,
        paid.in_doubt_paid,
        started.elapsed()
    );
    summary
}

/// The hub, the server and the load's session of one run.
struct Crash {
    mode: Mode,
    cluster: Cluster,
    /// The maker's bearer token.
    token: String,
}

impl Crash {
    fn start(mode: Mode) -> Crash {
        let cluster = Cluster::start(&ClusterOptions {
            sdk_mode: mode.sdk_mode,
            accept: mode.accept,
            latency_ms: SIM_LATENCY_MS,
            server_env: &[],
        });
        cluster.add_user(USER, "maker", PASSWORD);
        let token = cluster.login(USER, PASSWORD);
        Crash { mode, cluster, token }
    }

    /// SIGKILLs the server mid-load and returns how many SDK requests may have been in
    /// flight: those open just before the signal plus those begun until the process died.
    fn kill_server(&mut self, load: &Load) -> usize {
        let (open, begun) = (load.sdk_in_flight.load(SeqCst), load.sdk_begun.load(SeqCst));
        self.cluster.kill_server();
        open + load.sdk_begun.load(SeqCst) - begun
    }

    fn get(&self, path: &str) -> Value {
        self.cluster.get(&self.token, path)
    }

    fn post_ok(&self, path: &str, body: &Value) -> Value {
        self.cluster.post(&self.token, path, body, 201)
    }

    /// Every transfer with `status`, following `next_cursor`.
    fn transfers(&self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(&format!("/api/v1/transfers/?limit=500{query}{cursor}"));
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return items,
            }
        }
    }

    /// Waits until nothing is PENDING and reconciliation has settled every IN_DOUBT
    /// transfer it can: all of them in accept_quote mode, all with an SDK id in auto mode.
    /// Returns the IN_DOUBT transfers left.
    fn wait_until_settled(&self) -> Vec<Value> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let pending = self.transfers("&status=PENDING");
            let in_doubt = self.transfers("&status=IN_DOUBT");
            let unsettled =
                in_doubt.iter().filter(|t| self.mode.sdk_mode != "auto" || !t["sdk_transfer_id"].is_null()).count();
            if pending.is_empty() && unsettled == 0 {
                return in_doubt;
            }
            if Instant::now() > deadline {
                let hub: Vec<_> = in_doubt.iter().map(|t| self.hub_view(t)).collect();
                panic!(
                    "after {SETTLE_TIMEOUT:?}: {} PENDING {pending:?}; {unsettled} IN_DOUBT not reconciled; \
                     the hub says {hub:?}",
                    pending.len()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A transfer's id, SDK id, and what the simulator answers about it.
    fn hub_view(&self, t: &Value) -> String {
        let answer = match t["sdk_transfer_id"].as_str() {
            Some(sdk_id) => {
                match call(&self.cluster.agent, &format!("{}/transfers/{sdk_id}", self.cluster.sim_url), "", None) {
                    // RESERVED is the simulator's answer for a transfer still waiting for acceptance.
                    Ok((status, body)) => {
                        format!("{status} {} {}", body["currentState"], body["fulfil"]["body"]["transferState"])
                    }
                    Err(e) => e.to_string(),
                }
            }
            None => "no SDK id".to_owned(),
        };
        format!("{} ({}): {answer}", t["transfer_id"], t["error_message"])
    }

    /// Every acknowledged transfer exists and kept its final status; in auto mode the
    /// IN_DOUBT ones left have no SDK id; the hub paid nothing twice.
    fn verify(&self, load: &Load, open: &[Value]) -> Paid {
        let unexpected = lock(&load.unexpected);
        assert!(unexpected.is_empty(), "replies other than 201 or a restart's 503: {unexpected:?}");
        for acked in lock(&load.acked).iter() {
            let (status, now) = call(
                &self.cluster.agent,
                &self.cluster.url(&format!("/api/v1/transfers/{}/", acked.id)),
                &self.token,
                None,
            )
            .expect("GET");
            assert_eq!(status, 200, "acknowledged transfer {} ({}) is gone: {now}", acked.id, acked.status);
            if ["COMPLETED", "FAILED"].contains(&acked.status.as_str()) {
                assert_eq!(now["status"], acked.status.as_str(), "a final status changed: {now}");
            }
        }
        for t in open {
            assert_eq!(t["sdk_transfer_id"], Value::Null, "auto mode: only a POST cut off by a kill is left: {t}");
        }
        self.verify_payments(open)
    }

    /// The hub paid every COMPLETED SDK transfer exactly once, no FAILED one, nothing
    /// twice, and nothing sysgp does not have as COMPLETED or IN_DOUBT, for its amount.
    fn verify_payments(&self, open: &[Value]) -> Paid {
        let paid = self.cluster.hub_paid();
        let mut times: HashMap<&str, usize> = HashMap::new();
        for p in &paid {
            *times.entry(p["homeTransactionId"].as_str().expect("homeTransactionId")).or_default() += 1;
        }
        let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "paid more than once: {twice:?}");
        let sdk: HashMap<String, Value> = self
            .transfers("&route=SDK")
            .into_iter()
            .map(|t| (t["transfer_id"].as_str().expect("id").to_owned(), t))
            .collect();
        for (id, t) in &sdk {
            let expected = match t["status"].as_str() {
                Some("COMPLETED") => 1,
                Some("FAILED") => 0,
                _ => continue,
            };
            assert_eq!(times.get(id.as_str()).copied().unwrap_or(0), expected, "times paid: {t}");
        }
        let in_doubt: HashSet<&str> = open.iter().filter_map(|t| t["transfer_id"].as_str()).collect();
        for p in &paid {
            let id = p["homeTransactionId"].as_str().expect("id");
            let t = sdk.get(id).unwrap_or_else(|| panic!("the hub paid a transfer sysgp does not have: {p}"));
            assert!(t["status"] == "COMPLETED" || in_doubt.contains(id), "paid but {}: {t}", t["status"]);
            assert_eq!((&p["amount"], &p["currency"]), (&t["amount"], &t["currency"]), "{p} for {t}");
        }
        let in_doubt_paid = in_doubt.iter().filter(|id| times.contains_key(**id)).count();
        Paid { sdk_transfers: sdk.len(), paid: paid.len(), in_doubt_paid }
    }
}

/// What the hub paid, as `verify_payments` found it.
struct Paid {
    sdk_transfers: usize,
    paid: usize,
    /// IN_DOUBT transfers the hub did pay (a POST that arrived just before a kill).
    in_doubt_paid: usize,
}

/// The load: clients sending on-us and SDK transfers, counting SDK requests in flight.
#[derive(Default)]
struct Load {
    base: Mutex<String>,
    /// The maker's session: it must survive every restart.
    token: String,
    stop: AtomicBool,
    sdk_in_flight: AtomicUsize,
    sdk_begun: AtomicUsize,
    acked: Mutex<Vec<Acked>>,
    unacked: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

/// A transfer the server answered 201 for.
#[derive(Debug)]
struct Acked {
    id: String,
    route: String,
    status: String,
}

impl Load {
    /// Lets the load run for `ms` after it has been answered again by the current server.
    fn run_for(&self, ms: u64) {
        let acked = lock(&self.acked).len();
        let deadline = Instant::now() + READY_TIMEOUT;
        while lock(&self.acked).len() < acked + CLIENTS {
            assert!(Instant::now() < deadline, "the load makes no progress");
            std::thread::sleep(POLL);
        }
        // Not waiting for work: this picks the random moment of the next kill.
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
            if to_sdk {
                self.sdk_in_flight.fetch_add(1, SeqCst);
                self.sdk_begun.fetch_add(1, SeqCst);
            }
            let reply = call(&agent, &url, &self.token, Some(&body));
            if to_sdk {
                self.sdk_in_flight.fetch_sub(1, SeqCst);
            }
            match reply {
                Ok((201, t)) => lock(&self.acked).push(Acked {
                    id: t["transfer_id"].as_str().unwrap_or_default().to_owned(),
                    route: t["route"].as_str().unwrap_or_default().to_owned(),
                    status: t["status"].as_str().unwrap_or_default().to_owned(),
                }),
                // Killed or restarting: not acknowledged (it may or may not exist).
                Ok((503, _)) | Err(_) => {
                    self.unacked.fetch_add(1, SeqCst);
                    std::thread::sleep(POLL);
                }
                Ok((status, reply)) => lock(&self.unexpected).push(format!("{status} {reply}")),
            }
        }
    }
}
