//! The built binary as child processes, for the crash and graceful stop tests: a
//! simulator with `--state` (the hub, alive for the whole test) and a `sysgp serve` on a
//! data directory that is SIGKILLed or stopped with SIGTERM or SIGINT, checked with
//! `sysgp check` and restarted, with each start's log kept; plus a small blocking JSON
//! client (with a multipart upload and paging) and a seeded random source.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::SECRET;

/// The binary under test, built by cargo for integration tests.
const BIN: &str = env!("CARGO_BIN_EXE_sysgp");
/// A start-up (store open, recovery, invariant check) that takes longer is a failure.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A graceful stop with nothing in flight is quick.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Client-side timeout of one request (the server's SDK timeout is 20 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// The server's own SDK timeout: short, so that a stuck call cannot outlast a test.
const SDK_TIMEOUT_SECS: &str = "20";
/// Tries with a new port when a child cannot bind the free port it was given.
const PORT_ATTEMPTS: usize = 5;
/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(20);
/// Log lines shown per child when a test fails.
const LOG_TAIL_LINES: usize = 30;

/// The hub (a simulator child with `--state`), the server child and their directory.
pub struct Cluster {
    /// Client for the server and the simulator.
    pub agent: ureq::Agent,
    /// The simulator's base URL.
    pub sim_url: String,
    /// The current server's base URL (the port may change at a restart).
    pub base: String,
    port: u16,
    starts: usize,
    /// Variables of `sysgp serve` beyond the secret, the SDK URL, the bind and the data directory.
    server_env: Vec<(String, String)>,
    server: Option<Proc>,
    /// The hub: alive for the whole run, killed when the run ends.
    _sim: Proc,
    // Last, so that the children are gone before their directory is.
    dir: tempfile::TempDir,
}

/// A graceful stop that ended with status 0.
#[derive(Clone, Copy, Debug)]
pub struct Stopped {
    /// Just after the signal was sent.
    pub signalled_at: Instant,
    /// From the signal to the exit.
    pub took: Duration,
}

/// How the hub and the server are started.
#[derive(Clone, Debug)]
pub struct ClusterOptions<'a> {
    /// `SYSGP_SDK_MODE` of the server.
    pub sdk_mode: &'a str,
    /// The simulator's matching `--accept`.
    pub accept: &'a str,
    /// The simulator's `--latency-ms`.
    pub latency_ms: u64,
    /// More server variables.
    pub server_env: &'a [(&'a str, &'a str)],
}

impl Cluster {
    /// Starts the simulator (with a state file) and the server, and waits until both answer.
    pub fn start(opts: &ClusterOptions<'_>) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("simulator-state.jsonl");
        let (sim, sim_url) = start_child(dir.path(), "simulator", |port| {
            let mut cmd = sysgp(&["simulator", "--bind", &format!("127.0.0.1:{port}"), "--accept", opts.accept]);
            cmd.args(["--latency-ms", &opts.latency_ms.to_string()]).arg("--state").arg(&state);
            (cmd, format!("http://127.0.0.1:{port}"), "/".to_owned())
        });
        let mut server_env = vec![
            ("SYSGP_SDK_MODE".to_owned(), opts.sdk_mode.to_owned()),
            ("SYSGP_SDK_TIMEOUT_SECS".to_owned(), SDK_TIMEOUT_SECS.to_owned()),
        ];
        server_env.extend(opts.server_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut cluster = Cluster {
            agent: agent(REQUEST_TIMEOUT),
            sim_url,
            base: String::new(),
            port: free_port(),
            starts: 0,
            server_env,
            server: None,
            _sim: sim,
            dir,
        };
        cluster.start_server();
        cluster
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts `sysgp serve` on the data directory and waits until `/readyz` says 200.
    pub fn start_server(&mut self) {
        assert!(self.server.is_none(), "one server at a time");
        let data_dir = self.data_dir();
        let (sim_url, first_port, env) = (self.sim_url.clone(), self.port, self.server_env.clone());
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
                .envs(env.iter().map(|(k, v)| (k, v)));
            (cmd, format!("http://127.0.0.1:{port}"), "/readyz".to_owned())
        });
        self.port = base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        self.base = base;
        self.starts += 1;
        self.server = Some(server);
    }

    /// SIGKILL, then reap: the store lock is free once this returns.
    pub fn kill_server(&mut self) {
        let mut server = self.server.take().expect("a running server");
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reap");
    }

    /// SIGTERM: the graceful stop must finish in time with status 0.
    pub fn stop_server(&mut self) {
        self.stop_server_by("TERM");
    }

    /// Sends `signal` (`TERM` or `INT`): the graceful stop must finish in time with status 0.
    pub fn stop_server_by(&mut self, signal: &str) -> Stopped {
        let mut server = self.server.take().expect("a running server");
        let pid = server.child.id().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid}");
        let signalled_at = Instant::now();
        let status =
            server.wait_exit(STOP_TIMEOUT).unwrap_or_else(|| panic!("no exit {STOP_TIMEOUT:?} after SIG{signal}"));
        assert!(status.success(), "graceful stop (SIG{signal}) exited with {status}; see {}", server.log.display());
        Stopped { signalled_at, took: signalled_at.elapsed() }
    }

    /// The log (stderr) of the server's `start`-th start, counting from 0 (the attempt
    /// that bound its port).
    pub fn server_log(&self, start: usize) -> String {
        let prefix = format!("serve-{start}-");
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read the cluster directory")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)))
            .collect();
        // Attempts are single digits (`PORT_ATTEMPTS`), so the names sort by attempt.
        logs.sort();
        let last = logs.last().unwrap_or_else(|| panic!("no log of server start {start}"));
        std::fs::read_to_string(last).expect("read the server log")
    }

    /// `sysgp check` on the data directory (the store must not be open elsewhere).
    pub fn check_store(&self, when: &str) {
        assert!(self.server.is_none(), "sled allows one process");
        let out = sysgp(&["check", "--data-dir"])
            .arg(self.data_dir())
            .env("SECRET_KEY", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run sysgp check");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "sysgp check {when}: {}\n{text}", out.status);
    }

    /// `sysgp user add` (through the admin socket of the running server), password on stdin.
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let mut cmd = sysgp(&["user", "add", name, "--role", role]);
        cmd.env("SECRET_KEY", SECRET).env("SYSGP_DATA_DIR", self.data_dir());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run sysgp user add");
        child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("password");
        let out = child.wait_with_output().expect("sysgp user add");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "sysgp user add {name}: {}\n{text}", out.status);
    }

    /// Signs in and returns the bearer token.
    pub fn login(&self, name: &str, password: &str) -> String {
        let login = serde_json::json!({"username": name, "password": password});
        let (status, reply) = call(&self.agent, &self.url("/api/v1/auth/login/"), "", Some(&login)).expect("login");
        assert_eq!(status, 200, "login {name}: {reply}");
        reply["token"].as_str().expect("token").to_owned()
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET on the server, expecting 200.
    pub fn get(&self, token: &str, path: &str) -> Value {
        let (status, body) = call(&self.agent, &self.url(path), token, None).expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// JSON POST on the server, expecting `expected`.
    pub fn post(&self, token: &str, path: &str, body: &Value, expected: u16) -> Value {
        let (status, reply) = call(&self.agent, &self.url(path), token, Some(body)).expect("POST");
        assert_eq!(status, expected, "POST {path}: {reply}");
        reply
    }

    /// `POST /api/v1/bulk/upload/` as multipart (`source_msisdn`, then `file`), expecting 202.
    pub fn upload_csv(&self, token: &str, source: &str, csv: &str) -> Value {
        let boundary = "sysgp-bulk-upload-5f0c2a";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"source_msisdn\"\r\n\r\n{source}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"pay.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        );
        let mut reply = self
            .agent
            .post(&self.url("/api/v1/bulk/upload/"))
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
            .send(body.as_bytes())
            .expect("upload");
        let status = reply.status().as_u16();
        let text = reply.body_mut().read_to_string().expect("upload reply");
        assert_eq!(status, 202, "upload: {text}");
        serde_json::from_str(&text).expect("upload reply is JSON")
    }

    /// Every item of a list (`path` has a query with `limit`), following `next_cursor`.
    pub fn all_pages(&self, token: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(token, &format!("{path}{cursor}"));
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return items,
            }
        }
    }

    /// Every transfer the simulator committed (`GET /__sim/transfers`).
    pub fn hub_paid(&self) -> Vec<Value> {
        let (status, paid) =
            call(&self.agent, &format!("{}/__sim/transfers", self.sim_url), "", None).expect("GET sim");
        assert_eq!(status, 200, "{paid}");
        paid.as_array().expect("a list").clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut logs: Vec<PathBuf> =
                std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten().map(|e| e.path()).collect();
            logs.sort();
            for path in logs {
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<_> = text.lines().rev().take(LOG_TAIL_LINES).collect();
                    eprintln!("--- {} (last lines) ---", path.display());
                    tail.iter().rev().for_each(|l| eprintln!("{l}"));
                }
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

/// A client that returns every status as a reply, with an overall timeout per request.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().new_agent()
}

/// GET (no body) or POST (JSON body), with a bearer token unless `token` is empty.
pub fn call(agent: &ureq::Agent, url: &str, token: &str, body: Option<&Value>) -> Result<(u16, Value), ureq::Error> {
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

/// Locks, ignoring poisoning (a panicking client thread fails the test anyway).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The seed in variable `var` (to repeat a run), else one from the clock.
pub fn seed(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1))
}

/// splitmix64: small, seeded, good enough to pick kill moments, payees and amounts.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, (low, high): (u64, u64)) -> u64 {
        low + self.below(high - low + 1)
    }

    /// A payee that is no wallet here and avoids the simulator's msisdn triggers.
    pub fn payee(&mut self) -> String {
        loop {
            let msisdn = format!("2250000{:04}", self.below(10_000));
            if !msisdn.ends_with("404") && !msisdn.ends_with("408") {
                return msisdn;
            }
        }
    }

    /// An SDK amount that avoids the simulator's amount triggers.
    pub fn sdk_amount(&mut self) -> u64 {
        loop {
            let amount = 1 + self.below(500);
            if ![13, 408, 666, 4001].contains(&amount) {
                return amount;
            }
        }
    }
}
