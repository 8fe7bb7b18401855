//! `spawn_app()`: the real server on a free port with a temporary data directory,
//! talking to the real SDK simulator over HTTP; plus a small blocking HTTP client.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sysgp::app::{self, Server};
use sysgp::config::Config;
use sysgp::sdk::simulator::{self, Accept, SimulatorConfig, SimulatorHandle};

/// How the app under test is set up.
#[derive(Clone, Debug)]
pub struct Options {
    pub accept: Accept,
    pub sdk_mode: &'static str,
    pub latency_ms: u64,
    pub extra: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options { accept: Accept::None, sdk_mode: "auto", latency_ms: 0, extra: Vec::new() }
    }
}

pub struct TestApp {
    pub base: String,
    pub sim: SimulatorHandle,
    pub server: Option<Server>,
    pub rt: tokio::runtime::Runtime,
    /// Kept alive for the lifetime of the app.
    _dir: tempfile::TempDir,
    agent: ureq::Agent,
}

/// A reply: status, headers (lower-case names) and JSON body (Null if not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

pub const SECRET: &str = "test-secret-key-0123456789-abcdefghijklmnop";

pub fn spawn_app() -> TestApp {
    spawn_app_with(Options::default())
}

pub fn spawn_app_with(opts: Options) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let sim_config = SimulatorConfig { accept: opts.accept, latency_ms: opts.latency_ms, ..SimulatorConfig::default() };
    let sim = simulator::spawn("127.0.0.1:0".parse().expect("addr"), sim_config).expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut vars: HashMap<String, String> = [
        ("SECRET_KEY", SECRET.to_owned()),
        ("MOJALOOP_SDK_URL", sim.url()),
        ("SYSGP_BIND", "127.0.0.1:0".to_owned()),
        ("SYSGP_DATA_DIR", dir.path().display().to_string()),
        ("SYSGP_SDK_MODE", opts.sdk_mode.to_owned()),
        ("SYSGP_SDK_TIMEOUT_SECS", "20".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in &opts.extra {
        vars.insert((*k).to_owned(), v.clone());
    }
    let config = Config::from_vars(&vars).expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = rt.block_on(app::start(&config)).expect("server starts");
    let base = format!("http://{}", server.addr);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    TestApp { base, sim, server: Some(server), rt, _dir: dir, agent }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

fn to_reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = result.expect("HTTP exchange");
    let status = response.status().as_u16();
    let headers =
        response.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

impl TestApp {
    /// Stops the server (releasing the store) and returns the data directory.
    pub fn stop_server(&mut self) -> std::path::PathBuf {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
        self._dir.path().to_path_buf()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> Reply {
        to_reply(self.agent.get(&self.url(path)).call())
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.post_raw(path, &body.to_string(), "application/json", headers)
    }

    pub fn post_raw(&self, path: &str, body: &str, content_type: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(&self.url(path));
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        to_reply(req.send(body.to_owned()))
    }

    /// Creates a wallet and asserts 201.
    pub fn wallet(&self, msisdn: &str, currency: &str) -> Value {
        let r = self.post("/api/v1/accounts/", json!({"msisdn": msisdn, "currency": currency}));
        assert_eq!(r.status, 201, "create {msisdn}: {}", r.text);
        r.body
    }

    /// Creates a wallet holding `amount`.
    pub fn funded(&self, msisdn: &str, currency: &str, amount: &str) -> Value {
        self.wallet(msisdn, currency);
        let r = self.post(&format!("/api/v1/accounts/{msisdn}/deposit/"), json!({"amount": amount}));
        assert_eq!(r.status, 201, "deposit {msisdn}: {}", r.text);
        self.account(msisdn)
    }

    pub fn account(&self, msisdn: &str) -> Value {
        let r = self.get(&format!("/api/v1/accounts/{msisdn}/"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    pub fn transfer(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/v1/transfers/{id}/"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Sends a P2P transfer.
    pub fn send(&self, from: &str, to: &str, amount: &str) -> Reply {
        self.post("/api/v1/transfers/", json!({"sender_msisdn": from, "receiver_msisdn": to, "amount": amount}))
    }

    pub fn system_account(&self, name: &str) -> Value {
        let r = self.get("/api/v1/system-accounts/");
        r.body["items"].as_array().and_then(|a| a.iter().find(|x| x["account"] == name).cloned()).unwrap_or(Value::Null)
    }

    /// Everything the simulator committed.
    pub fn sim_paid(&self) -> Vec<Value> {
        let r = to_reply(self.agent.get(&format!("{}/__sim/transfers", self.sim.url())).call());
        r.body.as_array().cloned().unwrap_or_default()
    }

    /// How many times the simulator paid `home_transaction_id`.
    pub fn times_paid(&self, home_transaction_id: &str) -> usize {
        self.sim_paid().iter().filter(|t| t["homeTransactionId"] == home_transaction_id).count()
    }

    /// Every invariant holds (through the same code as `sysgp check`).
    pub fn assert_invariants(&self) {
        let server = self.server.as_ref().expect("running");
        let report = sysgp::check::check_store(&server.engine.store).expect("check runs");
        assert!(report.ok(), "invariants violated: {:?}", report.violations);
    }

    /// Polls `f` until it returns Some, failing after `timeout`.
    pub fn eventually<T>(&self, timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
