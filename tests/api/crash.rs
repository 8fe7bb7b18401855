//! Crash: the built binary as a child process, SIGKILLed while transfers are in flight
//! and restarted, several times, against a simulator child process with `--state` (the
//! hub, which lives through the whole test). After every kill `sysgp check` passes; at
//! the end every acknowledged transfer exists and `/__sim/transfers` paid nothing twice.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::support::SECRET;

/// The binary under test, built by cargo for integration tests.
const BIN: &str = env!("CARGO_BIN_EXE_sysgp");
/// Concurrent load clients: enough to keep several SDK transfers in flight at a kill.
const CLIENTS: usize = 8;
/// Kill/restart cycles per mode.
const KILLS: usize = 4;
/// Simulator latency per SDK call: long enough that a kill lands mid-call.
const SIM_LATENCY_MS: u64 = 30;
/// Load runs this long (random, ms) before each kill and after the last restart.
const LOAD_MS: (u64, u64) = (100, 600);
/// A start-up (store open, recovery, invariant check) that takes longer is a failure.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Reconciliation asks at 5 s, 15 s, 30 s after the doubt began; two attempts must do.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A graceful stop with nothing in flight is quick.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Client-side timeout of one request (the server's SDK timeout is 20 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// Tries with a new port when a child cannot bind the free port it was given.
const PORT_ATTEMPTS: usize = 5;
const POLL: Duration = Duration::from_millis(20);
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
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(time_seed);
    eprintln!("crash test {mode:?}: seed {seed} (set CRASH_SEED to repeat the choices)");
    let mut rng = Rng(seed);
    let mut crash = Crash::start(mode);
    crash.post_ok("/api/v1/accounts/", &json!({"msisdn": ALICE, "currency": "XOF"}));
    crash.post_ok("/api/v1/accounts/", &json!({"msisdn": BOB, "currency": "XOF"}));
    crash.post_ok(&format!("/api/v1/accounts/{ALICE}/deposit/"), &json!({"amount": FUNDS}));
    crash.post_ok(&format!("/api/v1/accounts/{BOB}/deposit/"), &json!({"amount": FUNDS}));
    let load = Load { base: Mutex::new(crash.base.clone()), token: crash.token.clone(), ..Load::default() };
    let mut in_flight = Vec::new();
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let (load, seed) = (&load, rng.next() ^ client as u64);
            s.spawn(move || load.client(seed));
        }
        for _ in 0..KILLS {
            load.run_for(rng.between(LOAD_MS));
            in_flight.push(crash.kill_server(&load));
            crash.check_store("after a SIGKILL");
            crash.start_server();
            *lock(&load.base) = crash.base.clone();
        }
        load.run_for(rng.between(LOAD_MS));
        load.stop.store(true, SeqCst);
    });
    let loaded = started.elapsed();
    let open = crash.wait_until_settled();
    let summary = Summary { in_doubt: open.len(), in_flight_at_kills: in_flight.iter().sum() };
    let paid = crash.verify(&load, &open);
    crash.stop_server();
    crash.check_store("after a graceful stop");
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

/// The simulator, the server and the data directory of one run.
struct Crash {
    mode: Mode,
    agent: ureq::Agent,
    sim_url: String,
    base: String,
    /// The maker's bearer token.
    token: String,
    port: u16,
    starts: usize,
    server: Option<Proc>,
    /// The hub: alive for the whole run, killed when the run ends.
    _sim: Proc,
    // Last, so that the children are gone before their directory is.
    dir: tempfile::TempDir,
}

impl Crash {
    fn start(mode: Mode) -> Crash {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("simulator-state.jsonl");
        let (sim, sim_url) = start_child(dir.path(), "simulator", |port| {
            let mut cmd = sysgp(&["simulator", "--bind", &format!("127.0.0.1:{port}"), "--accept", mode.accept]);
            cmd.args(["--latency-ms", &SIM_LATENCY_MS.to_string()]).arg("--state").arg(&state);
            (cmd, format!("http://127.0.0.1:{port}"), "/".to_owned())
        });
        let agent = agent(REQUEST_TIMEOUT);
        let mut crash = Crash {
            mode,
            agent,
            sim_url,
            base: String::new(),
            token: String::new(),
            port: free_port(),
            starts: 0,
            server: None,
            _sim: sim,
            dir,
        };
        crash.start_server();
        crash.add_user();
        let login = json!({"username": USER, "password": PASSWORD});
        let (status, reply) =
            call(&crash.agent, &format!("{}/api/v1/auth/login/", crash.base), "", Some(&login)).expect("login");
        assert_eq!(status, 200, "login: {reply}");
        crash.token = reply["token"].as_str().expect("token").to_owned();
        crash
    }

    /// `sysgp user add` (through the admin socket of the running server), password on stdin.
    fn add_user(&self) {
        let mut cmd = sysgp(&["user", "add", USER, "--role", "maker"]);
        cmd.env("SECRET_KEY", SECRET).env("SYSGP_DATA_DIR", self.dir.path().join("data"));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run sysgp user add");
        child.stdin.take().expect("stdin").write_all(format!("{PASSWORD}\n").as_bytes()).expect("password");
        let out = child.wait_with_output().expect("sysgp user add");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "sysgp user add: {}\n{text}", out.status);
    }

    /// Starts `sysgp serve` on the data directory and waits until `/readyz` says 200.
    fn start_server(&mut self) {
        assert!(self.server.is_none(), "one server at a time");
        let data_dir = self.dir.path().join("data");
        let (sim_url, sdk_mode, first_port) = (self.sim_url.clone(), self.mode.sdk_mode, self.port);
        let mut tries = 0;
        let (server, base) = start_child(self.dir.path(), &format!("serve-{}", self.starts), |port| {
            // The same port as before the kill when it is free again, another one otherwise.
            tries += 1;
            let port = if tries == 1 { first_port } else { port };
            let mut cmd = sysgp(&["serve"]);
            cmd.env("SECRET_KEY", SECRET)
                .env("MOJALOOP_SDK_URL", &sim_url)
                .env("SYSGP_BIND", format!("127.0.0.1:{port}"))
                .env("SYSGP_DATA_DIR", &data_dir)
                .env("SYSGP_SDK_MODE", sdk_mode)
                .env("SYSGP_SDK_TIMEOUT_SECS", "20");
            (cmd, format!("http://127.0.0.1:{port}"), "/readyz".to_owned())
        });
        self.port = base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        self.base = base;
        self.starts += 1;
        self.server = Some(server);
    }

    /// SIGKILLs the server mid-load and returns how many SDK requests may have been in
    /// flight: those open just before the signal plus those begun until the process died.
    fn kill_server(&mut self, load: &Load) -> usize {
        let server = self.server.take().expect("a running server");
        let (open, begun) = (load.sdk_in_flight.load(SeqCst), load.sdk_begun.load(SeqCst));
        server.kill();
        open + load.sdk_begun.load(SeqCst) - begun
    }

    /// SIGTERM: the graceful stop must finish in time with status 0.
    fn stop_server(&mut self) {
        let mut server = self.server.take().expect("a running server");
        let pid = server.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let status = server.wait_exit(STOP_TIMEOUT).unwrap_or_else(|| panic!("no exit {STOP_TIMEOUT:?} after SIGTERM"));
        assert!(status.success(), "graceful stop exited with {status}; see {}", server.log.display());
    }

    /// `sysgp check` on the data directory (the store must not be open elsewhere).
    fn check_store(&self, when: &str) {
        assert!(self.server.is_none(), "sled allows one process");
        let out = sysgp(&["check", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .stderr(Stdio::piped())
            .output()
            .expect("run sysgp check");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "sysgp check {when}: {}\n{text}", out.status);
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = call(&self.agent, &format!("{}{path}", self.base), &self.token, None).expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn post_ok(&self, path: &str, body: &Value) -> Value {
        let (status, reply) =
            call(&self.agent, &format!("{}{path}", self.base), &self.token, Some(body)).expect("POST");
        assert_eq!(status, 201, "POST {path}: {reply}");
        reply
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
            Some(sdk_id) => match call(&self.agent, &format!("{}/transfers/{sdk_id}", self.sim_url), "", None) {
                // RESERVED is the simulator's answer for a transfer still waiting for acceptance.
                Ok((status, body)) => {
                    format!("{status} {} {}", body["currentState"], body["fulfil"]["body"]["transferState"])
                }
                Err(e) => e.to_string(),
            },
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
            let (status, now) =
                call(&self.agent, &format!("{}/api/v1/transfers/{}/", self.base, acked.id), &self.token, None)
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
        let (status, paid) =
            call(&self.agent, &format!("{}/__sim/transfers", self.sim_url), "", None).expect("GET sim");
        assert_eq!(status, 200, "{paid}");
        let paid = paid.as_array().expect("list").clone();
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

impl Drop for Crash {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut logs: Vec<PathBuf> =
                std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten().map(|e| e.path()).collect();
            logs.sort();
            for path in logs {
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<_> = text.lines().rev().take(30).collect();
                    eprintln!("--- {} (last lines) ---", path.display());
                    tail.iter().rev().for_each(|l| eprintln!("{l}"));
                }
            }
        }
    }
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

/// A child process that is SIGKILLed and reaped when dropped, so a failing test leaves
/// nothing running; its stderr goes to `log`.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// SIGKILL, then reap (the store lock is free once this returns).
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sysgp ARGS` with a clean environment (no variable of the test process leaks in).
fn sysgp(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info,sysgp::http=warn");
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    cmd
}

/// Starts the child that `make(port)` describes (command, base URL, path answering 200
/// once it is up) and waits for it; tries another port if the child exits first.
fn start_child(dir: &Path, name: &str, mut make: impl FnMut(u16) -> (Command, String, String)) -> (Proc, String) {
    for attempt in 0..PORT_ATTEMPTS {
        let (mut cmd, base, probe) = make(free_port());
        let log = dir.join(format!("{name}-{attempt}.log"));
        cmd.stderr(File::create(&log).expect("log file"));
        let mut proc = Proc { child: cmd.spawn().expect("spawn sysgp"), log };
        let probe_agent = agent(Duration::from_secs(2));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if matches!(call(&probe_agent, &format!("{base}{probe}"), "", None), Ok((200, _))) {
                return (proc, base);
            }
            if let Some(status) = proc.child.try_wait().expect("try_wait") {
                eprintln!("{name} exited at start ({status}); trying another port; see {}", proc.log.display());
                break;
            }
            assert!(Instant::now() < deadline, "{name} not ready after {READY_TIMEOUT:?}; see {}", proc.log.display());
            std::thread::sleep(POLL);
        }
    }
    panic!("{name} could not start in {PORT_ATTEMPTS} attempts")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().new_agent()
}

/// GET (no body) or POST (JSON body), with a bearer token unless `token` is empty.
fn call(agent: &ureq::Agent, url: &str, token: &str, body: Option<&Value>) -> Result<(u16, Value), ureq::Error> {
    let bearer = format!("Bearer {token}");
    let mut response = match body {
        None if token.is_empty() => agent.get(url).call()?,
        None => agent.get(url).header("authorization", &bearer).call()?,
        Some(body) => {
            let mut req = agent.post(url).header("content-type", "application/json");
            if !token.is_empty() {
                req = req.header("authorization", &bearer);
            }
            req.send(body.to_string())?
        }
    };
    let text = response.body_mut().read_to_string()?;
    Ok((response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn time_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// splitmix64: small, seeded, good enough to pick kill moments and transfers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, (low, high): (u64, u64)) -> u64 {
        low + self.below(high - low + 1)
    }

    /// A payee that is no wallet here and avoids the simulator's msisdn triggers.
    fn payee(&mut self) -> String {
        loop {
            let msisdn = format!("2250000{:04}", self.below(10_000));
            if !msisdn.ends_with("404") && !msisdn.ends_with("408") {
                return msisdn;
            }
        }
    }

    /// An SDK amount that avoids the simulator's amount triggers.
    fn sdk_amount(&mut self) -> u64 {
        loop {
            let amount = 1 + self.below(500);
            if ![13, 408, 666, 4001].contains(&amount) {
                return amount;
            }
        }
    }
}
