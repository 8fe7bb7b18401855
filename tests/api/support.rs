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
    /// The variables the server was started with (for restarts).
    pub vars: HashMap<String, String>,
    /// Bearer tokens by user name (created on first use).
    tokens: std::sync::Mutex<HashMap<String, String>>,
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

/// Every log line of every in-process server of this test run, so that a test can
/// prove no secret ever reaches the logs. `SYSGP_TEST_LOG=1` also prints them.
static CAPTURED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture {
    echo: bool,
}

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info || (m.target().starts_with("sysgp") && m.level() <= log::Level::Debug)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {} {}", record.level(), record.target(), record.args());
            if self.echo {
                eprintln!("{line}");
            }
            if let Ok(mut lines) = CAPTURED.lock() {
                lines.push(line);
            }
        }
    }

    fn flush(&self) {}
}

fn install_log_capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let echo = std::env::var("SYSGP_TEST_LOG").is_ok();
        if log::set_boxed_logger(Box::new(Capture { echo })).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}

/// The log lines captured so far.
pub fn captured_logs() -> Vec<String> {
    CAPTURED.lock().map(|l| l.clone()).unwrap_or_default()
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(Options::default())
}

pub fn spawn_app_with(opts: Options) -> TestApp {
    install_log_capture();
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
    let app = TestApp {
        vars,
        tokens: std::sync::Mutex::new(HashMap::new()),
        base,
        sim,
        server: Some(server),
        rt,
        _dir: dir,
        agent,
    };
    app.token_for("admin");
    app
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

/// Every reply the tests see is checked against the OpenAPI document.
fn checked(method: &str, path: &str, reply: Reply) -> Reply {
    crate::contract::check_reply(method, path, &reply);
    reply
}

fn to_reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = match result {
        Ok(r) => r,
        Err(e) => panic!("HTTP exchange failed: {e}"),
    };
    let status = response.status().as_u16();
    let headers =
        response.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

impl TestApp {
    /// A token for the user `name` (created with role `name` when it is a role name,
    /// e.g. "maker", or `maker2` → role maker), signing in on first use.
    pub fn token_for(&self, name: &str) -> String {
        if let Some(t) = self.tokens.lock().expect("tokens").get(name) {
            return t.clone();
        }
        let role_name = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let role = sysgp::auth::Role::parse(role_name).unwrap_or(sysgp::auth::Role::Viewer);
        self.create_user(name, role);
        let r = self.post_token("", "/api/v1/auth/login/", json!({"username": name, "password": PASSWORD}));
        assert_eq!(r.status, 200, "login {name}: {}", r.text);
        let token = r.body["token"].as_str().expect("token").to_owned();
        self.tokens.lock().expect("tokens").insert(name.to_owned(), token.clone());
        token
    }

    /// Creates a user directly through the engine (as the CLI would).
    pub fn create_user(&self, name: &str, role: sysgp::auth::Role) {
        let engine = self.server.as_ref().expect("running").engine.clone();
        let actor = sysgp::auth::Actor::new("cli:test");
        match self.rt.block_on(engine.add_user(&actor, name, role, PASSWORD.to_owned())) {
            Ok(_) => {}
            Err(e) if e.code == "USER_EXISTS" => {}
            Err(e) => panic!("user {name}: {e}"),
        }
    }

    /// Forgets a cached token (after logout or revocation).
    pub fn forget_token(&self, name: &str) {
        self.tokens.lock().expect("tokens").remove(name);
    }

    /// GET as user `name`.
    pub fn get_as(&self, name: &str, path: &str) -> Reply {
        self.get_token(&self.token_for(name), path)
    }

    /// POST JSON as user `name`.
    pub fn post_as(&self, name: &str, path: &str, body: Value) -> Reply {
        self.post_token(&self.token_for(name), path, body)
    }

    /// GET with an explicit token ("" for none).
    pub fn get_token(&self, token: &str, path: &str) -> Reply {
        let mut req = self.agent.get(&self.url(path));
        if !token.is_empty() {
            req = req.header("authorization", &format!("Bearer {token}"));
        }
        checked("GET", path, to_reply(req.call()))
    }

    /// POST JSON with an explicit token ("" for none).
    pub fn post_token(&self, token: &str, path: &str, body: Value) -> Reply {
        let mut req = self.agent.post(&self.url(path)).header("content-type", "application/json");
        if !token.is_empty() {
            req = req.header("authorization", &format!("Bearer {token}"));
        }
        checked("POST", path, to_reply(req.send(body.to_string())))
    }

    /// Restarts the server on the same data directory with some variables changed
    /// (the port may change; tokens are kept unless `SECRET_KEY` changes).
    pub fn restart_with(&mut self, changes: &[(&str, &str)]) -> Result<(), String> {
        self.stop_server();
        for (k, v) in changes {
            self.vars.insert((*k).to_owned(), (*v).to_owned());
            if *k == "SECRET_KEY" {
                self.tokens.lock().expect("tokens").clear();
            }
        }
        let config = Config::from_vars(&self.vars).map_err(|e| e.to_string())?;
        let server = self.rt.block_on(app::start(&config)).map_err(|e| e.to_string())?;
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
        Ok(())
    }

    /// Uploads a bulk file as user `name` (multipart: `file` plus text fields).
    pub fn upload(&self, name: &str, file_name: &str, csv: &[u8], fields: &[(&str, &str)]) -> Reply {
        let body = multipart(file_name, csv, fields);
        checked("POST", "/api/v1/bulk/upload/", to_reply(self.upload_request(name).send(&body[..])))
    }

    /// Polls a job until `done` says so.
    pub fn job_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.eventually(Duration::from_secs(60), what, || {
            let j = self.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
            done(&j).then_some(j)
        })
    }

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

    /// GET as the admin.
    pub fn get(&self, path: &str) -> Reply {
        self.get_as("admin", path)
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.post_raw(path, &body.to_string(), "application/json", headers)
    }

    /// POST raw bytes as the admin.
    pub fn post_raw(&self, path: &str, body: &str, content_type: &str, headers: &[(&str, &str)]) -> Reply {
        let token = self.token_for("admin");
        let mut req = self.agent.post(&self.url(path)).header("authorization", &format!("Bearer {token}"));
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        checked("POST", path, to_reply(req.send(body.to_owned())))
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

/// Bulk helpers shared by the bulk test modules.
impl TestApp {
    /// Uploads a bulk file as `name`, asserts `202` and returns the job id.
    pub fn upload_job(&self, name: &str, file_name: &str, csv: &[u8], fields: &[(&str, &str)]) -> String {
        let r = self.upload(name, file_name, csv, fields);
        assert_eq!(r.status, 202, "upload {file_name}: {}", r.text);
        r.body["job_id"].as_str().expect("job id").to_owned()
    }

    /// Waits until a job has left PENDING (its validation is over) and returns it.
    pub fn job_validated(&self, id: &str) -> Value {
        self.job_until(id, "validation", |j| j["status"] != "PENDING")
    }

    /// POSTs an operator action (`approve`, `pause`, …) on a job as `user`, empty JSON body.
    pub fn job_action(&self, user: &str, id: &str, action: &str) -> Reply {
        self.post_as(user, &format!("/api/v1/bulk/jobs/{id}/{action}/"), json!({}))
    }

    /// Every item of a job, all pages, in file order; only those of `status` if given.
    pub fn job_items(&self, id: &str, status: Option<&str>) -> Vec<Value> {
        let filter = status.map(|s| format!("&status={s}")).unwrap_or_default();
        self.pages(&format!("/api/v1/bulk/jobs/{id}/items/?limit=500{filter}"))
    }

    /// Every entry of a job's validation report, all pages.
    pub fn job_report(&self, id: &str) -> Vec<Value> {
        self.pages(&format!("/api/v1/bulk/jobs/{id}/report/?limit=500"))
    }

    /// Follows `next_cursor` through a list and returns every item (each page asserted 200).
    pub fn pages(&self, first: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{first}&cursor={c}"),
                None => first.to_owned(),
            };
            let r = self.get(&path);
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            out.extend(r.body["items"].as_array().cloned().unwrap_or_default());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Like [`TestApp::upload`], but sent with `Transfer-Encoding: chunked` and no
    /// Content-Length, as a streaming client would.
    pub fn upload_chunked(&self, name: &str, file_name: &str, csv: &[u8], fields: &[(&str, &str)]) -> Reply {
        let body = multipart(file_name, csv, fields);
        to_reply(self.upload_request(name).send(ureq::SendBody::from_owned_reader(std::io::Cursor::new(body))))
    }

    fn upload_request(&self, name: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .post(&self.url("/api/v1/bulk/upload/"))
            .header("authorization", &format!("Bearer {}", self.token_for(name)))
            .header("content-type", &format!("multipart/form-data; boundary={BOUNDARY}"))
    }

    /// Everything the simulator at `base_url` committed (for a simulator a test started itself).
    pub fn sim_paid_at(&self, base_url: &str) -> Vec<Value> {
        let r = to_reply(self.agent.get(&format!("{base_url}/__sim/transfers")).call());
        assert_eq!(r.status, 200, "{}", r.text);
        r.body.as_array().cloned().unwrap_or_default()
    }
}

const BOUNDARY: &str = "sysgp-test-boundary-7d2b1a3e";

/// A multipart upload body: the text `fields`, then the CSV as `file`.
fn multipart(file_name: &str, csv: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    body.extend(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(csv);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}
