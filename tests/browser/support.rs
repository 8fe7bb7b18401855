//! The browser harness: the real server and simulator in-process on free ports (as in
//! `tests/api/support.rs`), users of every role created through the engine, a
//! chromedriver child process on a free port driving a headless Chromium with a
//! fresh profile, the browser log, screenshots under `target/screenshots/`.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use sysgp::app::{self, Server};
use sysgp::auth::{Actor, Role};
use sysgp::config::Config;
use sysgp::sdk::simulator::{self, SimulatorConfig, SimulatorHandle};

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

const SECRET: &str = "browser-test-secret-key-0123456789-abcdefghij";

/// How long one page condition may take before the test fails: long enough for a
/// loaded 2-core CI machine, short enough that a broken page fails quickly.
pub const UI_TIMEOUT: Duration = Duration::from_secs(20);

/// One browser test at a time: two Chromiums and two servers on 2 cores make every
/// timing slower without saving time.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Where the Chromium and chromedriver binaries are, if installed.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file()) {
            return Some(p);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
    };
    Some((
        find("SYSGP_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"])?,
        find("SYSGP_CHROMEDRIVER", &["chromedriver"])?,
    ))
}

/// The real server and simulator on free ports, with a user of every role.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` of the server.
    pub base: String,
    /// The runtime the server runs on; tests drive the browser on it too.
    pub rt: tokio::runtime::Runtime,
    server: Option<Server>,
    _sim: SimulatorHandle,
    _data: tempfile::TempDir,
    agent: ureq::Agent,
    tokens: HashMap<String, String>,
}

/// Starts the server with `extra` variables; users admin, maker, checker and viewer
/// are created through the engine (as the CLI would), all with [`PASSWORD`].
pub fn spawn_server(extra: &[(&str, &str)]) -> TestServer {
    let sim = simulator::spawn("127.0.0.1:0".parse().expect("addr"), SimulatorConfig::default()).expect("simulator");
    let data = tempfile::tempdir().expect("data dir");
    let mut vars: HashMap<String, String> = [
        ("SECRET_KEY", SECRET.to_owned()),
        ("MOJALOOP_SDK_URL", sim.url()),
        ("SYSGP_BIND", "127.0.0.1:0".to_owned()),
        ("SYSGP_DATA_DIR", data.path().display().to_string()),
        ("SYSGP_SDK_TIMEOUT_SECS", "20".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_vars(&vars).expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = rt.block_on(app::start(&config)).expect("server starts");
    for (name, role) in
        [("admin", Role::Admin), ("maker", Role::Maker), ("checker", Role::Checker), ("viewer", Role::Viewer)]
    {
        rt.block_on(server.engine.add_user(&Actor::new("cli:test"), name, role, PASSWORD.to_owned()))
            .unwrap_or_else(|e| panic!("user {name}: {e}"));
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    TestServer {
        base: format!("http://{}", server.addr),
        rt,
        server: Some(server),
        _sim: sim,
        _data: data,
        agent,
        tokens: HashMap::new(),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

/// The server of one test and the browser driving it.
pub struct BrowserApp {
    /// The browser session.
    pub client: Client,
    /// Where downloads land.
    pub downloads: PathBuf,
    /// The server (dropped after the browser).
    pub server: TestServer,
    /// `http://127.0.0.1:PORT` of the server.
    pub base: String,
    driver: Child,
    driver_port: u16,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    _serial: std::sync::MutexGuard<'static, ()>,
    /// Browser log entries read so far.
    log: Vec<Value>,
    started: Instant,
}

/// Starts the server and a browser, or says why the browser tests did not run and
/// returns None. `SYSGP_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.
pub fn start(extra: &[(&str, &str)]) -> Option<BrowserApp> {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        let required = std::env::var("SYSGP_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(!required, "SYSGP_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed");
        // Written straight to stderr: the test harness captures print! and eprint!.
        let _ = writeln!(std::io::stderr(), "browser tests did not run: chromium/chromedriver not found");
        return None;
    };
    let serial = ONE_BROWSER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let server = spawn_server(extra);
    let profile = tempfile::tempdir().expect("profile dir");
    let downloads = tempfile::tempdir().expect("downloads dir");
    let driver_port = free_port();
    let mut driver = Command::new(&chromedriver)
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    if let Err(e) = wait_for_driver(&server.agent, driver_port) {
        let _ = driver.kill();
        let _ = driver.wait();
        panic!("{e}");
    }
    let caps = capabilities(&chromium, profile.path(), downloads.path());
    let session = server.rt.block_on(Client::with_capabilities_and_connector(
        &format!("http://127.0.0.1:{driver_port}"),
        &caps,
        hyper_util::client::legacy::connect::HttpConnector::new(),
    ));
    let client = match session {
        Ok(c) => c,
        Err(e) => {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("no browser session: {e}");
        }
    };
    Some(BrowserApp {
        client,
        downloads: downloads.path().to_path_buf(),
        base: server.base.clone(),
        server,
        driver,
        driver_port,
        _dirs: (profile, downloads),
        _serial: serial,
        log: Vec::new(),
        started: Instant::now(),
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn wait_for_driver(agent: &ureq::Agent, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + UI_TIMEOUT;
    loop {
        let ready = agent
            .get(&format!("http://127.0.0.1:{port}/status"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|v| v["value"]["ready"] == true);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("chromedriver did not start on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Headless Chromium with the flags this machine needs (no network beyond loopback),
/// a fresh profile, downloads without a prompt, and every browser log entry kept.
fn capabilities(chromium: &Path, profile: &Path, downloads: &Path) -> serde_json::Map<String, Value> {
    let caps = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        },
    });
    caps.as_object().cloned().expect("an object")
}

impl Drop for BrowserApp {
    fn drop(&mut self) {
        let client = self.client.clone();
        let close = async move { tokio::time::timeout(Duration::from_secs(5), client.close()).await };
        let _ = self.server.rt.block_on(close);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let took = self.started.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stderr(), "browser flow took {took:.1} s");
    }
}

impl BrowserApp {
    /// The server's runtime, on which a test drives the browser.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.server.rt.handle().clone()
    }
}

/// The directory for screenshots: `<target>/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// API calls for setting up what a flow does not do through the page.
impl TestServer {
    fn token(&mut self, user: &str) -> String {
        if let Some(t) = self.tokens.get(user) {
            return t.clone();
        }
        let r = self.call("POST", "/api/v1/auth/login/", "", Some(json!({"username": user, "password": PASSWORD})));
        let token = r["token"].as_str().unwrap_or_else(|| panic!("login {user}: {r}")).to_owned();
        self.tokens.insert(user.to_owned(), token.clone());
        token
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {token}");
        let reply = match body {
            Some(b) => {
                let mut req = self.agent.post(&url).header("content-type", "application/json");
                if !token.is_empty() {
                    req = req.header("authorization", &auth);
                }
                req.send(b.to_string())
            }
            None => {
                assert_eq!(method, "GET");
                let mut req = self.agent.get(&url);
                if !token.is_empty() {
                    req = req.header("authorization", &auth);
                }
                req.call()
            }
        };
        let mut reply = reply.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// GET as `user`.
    pub fn api_get(&mut self, user: &str, path: &str) -> Value {
        let token = self.token(user);
        self.call("GET", path, &token, None)
    }

    /// POST JSON as `user`.
    pub fn api_post(&mut self, user: &str, path: &str, body: Value) -> Value {
        let token = self.token(user);
        self.call("POST", path, &token, Some(body))
    }

    /// The plain HTTP client (for header checks).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// A wallet holding `amount`, made through the API by the admin.
    pub fn funded_wallet(&mut self, msisdn: &str, currency: &str, amount: &str) {
        let a = self.api_post("admin", "/api/v1/accounts/", json!({"msisdn": msisdn, "currency": currency}));
        assert_eq!(a["msisdn"], msisdn, "{a}");
        let t = self.api_post("admin", &format!("/api/v1/accounts/{msisdn}/deposit/"), json!({"amount": amount}));
        assert_eq!(t["status"], "COMPLETED", "{t}");
    }
}

/// Page helpers: every wait polls with a deadline.
impl BrowserApp {
    /// Opens `path` (e.g. `/#/accounts`).
    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("navigate");
    }

    /// Waits for an element and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(UI_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Whether an element is on the page now.
    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.expect("find_all").is_empty()
    }

    /// Types into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear");
        el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until the text of `css` satisfies `ok`, and returns it.
    pub async fn text_until(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + UI_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if ok(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} in {css}; last text: {last:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in through the form, by keyboard only: the user name field has focus,
    /// Tab moves to the password, Enter submits.
    pub async fn sign_in(&self, user: &str) {
        self.find("#login-form input[name=username]").await;
        let active = self.client.active_element().await.expect("focused element");
        assert_eq!(active.attr("name").await.expect("name").as_deref(), Some("username"), "the user name has focus");
        active.send_keys(user).await.expect("type user");
        active.send_keys("\u{e004}").await.expect("tab");
        let active = self.client.active_element().await.expect("focused element");
        assert_eq!(active.attr("name").await.expect("name").as_deref(), Some("password"), "Tab reaches the password");
        active.send_keys(&format!("{PASSWORD}\u{e007}")).await.expect("type password and Enter");
        self.text_until("#who", "the signed-in user", |t| t.contains(user)).await;
    }

    /// Signs out with the top bar's button.
    pub async fn sign_out(&self) {
        self.click("#logout").await;
        self.find("#login-form").await;
    }

    /// Saves a screenshot of the viewport at `width` px wide as `<name>-<width>.png`.
    pub async fn screenshot(&self, name: &str, width: u32) -> PathBuf {
        self.client.set_window_size(width, if width < 600 { 780 } else { 900 }).await.expect("resize");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = screenshot_dir().join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Reads the browser log since the last read (chromedriver's log endpoint) and keeps it.
    pub fn read_log(&mut self, session_id: &str) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/session/{session_id}/se/log", self.driver_port);
        let request = self.server.agent.post(&url).header("content-type", "application/json");
        let mut reply = request.send(json!({"type": "browser"}).to_string()).expect("read the browser log");
        let text = reply.body_mut().read_to_string().expect("log text");
        let body: Value = serde_json::from_str(&text).expect("log json");
        let entries = body["value"].as_array().cloned().unwrap_or_default();
        self.log.extend(entries.iter().cloned());
        entries
    }

    /// Fails on any console error or CSP report in the browser log, except network
    /// errors for the statuses this flow provokes on purpose (the API's 4xx answers
    /// that the page then shows in words); each of those must be there, which also
    /// proves the log is being read.
    pub async fn assert_clean_console(&mut self, expected_statuses: &[u16]) {
        let session = self.client.session_id().await.expect("session id").expect("a session");
        self.read_log(&session);
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        for entry in &self.log {
            let message = entry["message"].as_str().unwrap_or("");
            let level = entry["level"].as_str().unwrap_or("");
            let source = entry["source"].as_str().unwrap_or("");
            if is_csp_report(message) {
                problems.push(format!("CSP: {message}"));
                continue;
            }
            let expected = expected_statuses.iter().find(|s| message.contains(&format!("status of {s}")));
            match expected {
                Some(status) if source == "network" => seen.push(*status),
                _ if level == "SEVERE" => problems.push(format!("{source}: {message}")),
                _ => {}
            }
        }
        assert!(problems.is_empty(), "browser console errors: {problems:#?}");
        for status in expected_statuses {
            assert!(seen.contains(status), "the browser log shows no {status} answer: {:#?}", self.log);
        }
    }

    /// The CSP reports in the browser log since the last read.
    pub async fn csp_reports(&mut self) -> Vec<String> {
        let session = self.client.session_id().await.expect("session id").expect("a session");
        let entries = self.read_log(&session);
        entries.iter().filter_map(|e| e["message"].as_str()).filter(|m| is_csp_report(m)).map(str::to_owned).collect()
    }
}

fn is_csp_report(message: &str) -> bool {
    message.contains("Content Security Policy") || message.contains("Content-Security-Policy")
}
