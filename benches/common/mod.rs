//! Shared by the custom-harness benchmarks (`benches/p2p.rs`, `benches/bulk.rs`,
//! `benches/soak.rs`): locating the release `sysgp` binary, starting the server and the
//! SDK simulator as separate processes on a fresh data directory (with more users when
//! asked), a bare warp baseline server (the bench executable re-executes itself), a
//! minimal keep-alive HTTP/1.1 client (with streamed multipart uploads from a file), the
//! closed-loop and open-loop load generators, `/proc` CPU, memory and disk accounting,
//! `/metrics` scraping and the report plumbing (percentiles, machine info,
//! `target/bench/*.json`); `jobs` drives bulk jobs. The client is in `http`, the load
//! generators in `load`, the accounting and reports in `system`.
//!
//! Each bench uses part of this module.
#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod http;
pub mod jobs;
mod load;
mod system;

pub use http::*;
pub use load::*;
pub use system::*;

/// A `SECRET_KEY` that passes the server's checks (≥ 32 characters, ≥ 10 distinct).
pub const BENCH_SECRET_KEY: &str = "bench-secret-key-0123456789-abcdefghijklmnopqrstuv";

/// The env var that turns the bench executable into a helper process.
const ROLE_VAR: &str = "SYSGP_BENCH_ROLE";
/// The listen address of a helper process.
const ROLE_BIND_VAR: &str = "SYSGP_BENCH_BIND";
/// Path served by the bare warp baseline.
pub const BARE_PATH: &str = "/bare";

// ---------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------

/// Run lengths and client counts, from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `SYSGP_BENCH_QUICK=1`: a smoke run for CI.
    pub quick: bool,
    /// Warm-up before each measured window.
    pub warmup: Duration,
    /// Measured window of each point (`SYSGP_BENCH_SECS`).
    pub measure: Duration,
    /// Client counts.
    pub clients: Vec<usize>,
}

impl Settings {
    /// Reads `SYSGP_BENCH_QUICK`, `SYSGP_BENCH_SECS`, `SYSGP_BENCH_WARMUP_SECS`.
    pub fn from_env() -> Settings {
        let quick = std::env::var("SYSGP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let secs = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(default)
        };
        let (measure, warmup) = if quick { (1.0, 0.5) } else { (5.0, 1.0) };
        Settings {
            quick,
            measure: Duration::from_secs_f64(secs("SYSGP_BENCH_SECS", measure)),
            warmup: Duration::from_secs_f64(secs("SYSGP_BENCH_WARMUP_SECS", warmup)),
            clients: if quick { vec![1, 16] } else { vec![1, 16, 64] },
        }
    }

    /// The largest client count of this run.
    pub fn max_clients(&self) -> usize {
        self.clients.iter().copied().max().unwrap_or(1)
    }
}

// ---------------------------------------------------------------------------------
// Binary, ports, processes
// ---------------------------------------------------------------------------------

/// The release `sysgp` binary: `SYSGP_BIN`, else `target/release/sysgp` next to this
/// bench executable (`target/release/deps/<bench>-<hash>`), built if missing.
pub fn sysgp_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SYSGP_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("bench executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join(format!("sysgp{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        println!("{} is missing: running `cargo build --release --bin sysgp`", bin.display());
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "sysgp"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --release --bin sysgp failed");
        assert!(bin.exists(), "{} still missing after the build (set SYSGP_BIN)", bin.display());
    }
    bin
}

/// A free loopback port (bound, read, released: the child binds it right after).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr")
}

/// A child process, killed and reaped on drop.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    /// The child.
    pub child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> io::Result<Proc> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
        let child = cmd.spawn()?;
        Ok(Proc { name: name.to_owned(), child, log: log.to_path_buf() })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the end of its log if it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited ({status}); log:\n{}", self.name, self.log_tail())),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// Polls `probe` every 20 ms until it returns true, the process dies, or 30 s pass.
fn wait_until(proc_: &mut Proc, what: &str, mut probe: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if probe() {
            return Ok(());
        }
        proc_.check_alive()?;
        if Instant::now() > deadline {
            return Err(format!("{what} not ready after 30 s; log:\n{}", proc_.log_tail()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Options of a server + simulator stack.
#[derive(Clone, Debug, Default)]
pub struct StackOptions {
    /// `--latency-ms` of the simulator.
    pub sim_latency_ms: u64,
    /// Extra environment of `sysgp serve` (e.g. `SYSGP_BULK_WORKERS`).
    pub server_env: Vec<(String, String)>,
}

/// `sysgp simulator` + `sysgp serve` on a fresh temporary data directory.
/// Fields drop in order: server, simulator, then the directory.
pub struct Stack {
    /// The server.
    pub server: Proc,
    /// The simulator.
    pub sim: Proc,
    /// Server address.
    pub addr: SocketAddr,
    /// Simulator address.
    pub sim_addr: SocketAddr,
    /// `Authorization` header value when the server has users (`Bearer …`).
    pub authorization: Option<String>,
    /// Holds the data directory and the logs.
    pub dir: tempfile::TempDir,
    /// The binary, its environment and env file: for more `sysgp` commands on this server.
    bin: PathBuf,
    env: Vec<(String, String)>,
    env_file: PathBuf,
}

impl Stack {
    /// Starts the simulator, then the server, and waits for `GET /readyz` = 200.
    pub fn start(bin: &Path, opts: &StackOptions) -> Result<Stack, String> {
        let dir = bench_tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let sim_addr = free_addr();
        let mut cmd = base_command(bin);
        cmd.env("RUST_LOG", "warn").args([
            "simulator",
            "--bind",
            &sim_addr.to_string(),
            "--accept",
            "none",
            "--latency-ms",
            &opts.sim_latency_ms.to_string(),
        ]);
        let mut sim = Proc::spawn("simulator", cmd, &dir.path().join("simulator.log")).map_err(|e| e.to_string())?;
        wait_until(&mut sim, "simulator", || {
            Conn::new(sim_addr).request(&request_bytes("GET", &sim_addr, "/", &[], b"")).is_ok()
        })?;

        let addr = free_addr();
        let env_file = dir.path().join("empty.env");
        std::fs::write(&env_file, "").map_err(|e| e.to_string())?;
        let data_dir = dir.path().join("data");
        let mut env: Vec<(String, String)> = vec![
            ("RUST_LOG".into(), "warn".into()),
            ("SECRET_KEY".into(), BENCH_SECRET_KEY.into()),
            ("MOJALOOP_SDK_URL".into(), format!("http://{sim_addr}")),
            ("SYSGP_BIND".into(), addr.to_string()),
            ("SYSGP_DATA_DIR".into(), data_dir.display().to_string()),
        ];
        env.extend(opts.server_env.iter().cloned());
        let command = |args: &[&str]| {
            let mut cmd = base_command(bin);
            cmd.envs(env.iter().map(|(k, v)| (k, v))).arg("--env-file").arg(&env_file).args(args);
            cmd
        };
        let mut server = Proc::spawn("sysgp serve", command(&["serve"]), &dir.path().join("server.log"))
            .map_err(|e| e.to_string())?;
        let ready = request_bytes("GET", &addr, "/readyz", &[], b"");
        wait_until(&mut server, "sysgp serve", || Conn::new(addr).request(&ready).is_ok_and(|r| r.status == 200))?;
        // Through the running server's admin socket.
        let signed_in = add_user(command(&["user", "add", BENCH_USER, "--role", "maker"]), BENCH_USER)?;
        let authorization =
            if signed_in { Some(format!("Bearer {}", login(addr, BENCH_USER, BENCH_PASSWORD)?)) } else { None };
        Ok(Stack { server, sim, addr, sim_addr, authorization, dir, bin: bin.to_path_buf(), env, env_file })
    }

    /// Adds a user with `role` through the server's admin socket and signs in: the
    /// `Authorization` value (`Bearer …`).
    pub fn add_user(&self, name: &str, role: &str) -> Result<String, String> {
        let mut cmd = base_command(&self.bin);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v))).arg("--env-file").arg(&self.env_file);
        cmd.args(["user", "add", name, "--role", role]);
        add_user(cmd, name)?;
        Ok(format!("Bearer {}", login(self.addr, name, BENCH_PASSWORD)?))
    }

    /// A JSON POST to this server, signed in when the server has users.
    pub fn json_post(&self, path: &str, body: &[u8]) -> Vec<u8> {
        json_post_as(&self.addr, path, self.authorization.as_deref(), body)
    }

    /// A GET to this server, signed in when the server has users.
    pub fn get(&self, path: &str) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self.authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
        request_bytes("GET", &self.addr, path, &headers, b"")
    }
}

/// The user the bench acts as when the server has authentication (role maker).
pub const BENCH_USER: &str = "bench-maker";
/// The password of every bench user (given on stdin, never as an argument).
const BENCH_PASSWORD: &str = "bench password 0123456789 xyz";

/// `sysgp user add` (password on stdin). `Ok(false)` when this build has no users (no
/// such subcommand): then the API needs no sign-in.
fn add_user(mut cmd: Command, name: &str) -> Result<bool, String> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("sysgp user add: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A build without the subcommand exits before reading: ignore a broken pipe.
        let _ = writeln!(stdin, "{BENCH_PASSWORD}");
    }
    let out = child.wait_with_output().map_err(|e| format!("sysgp user add: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(true)
    } else if text.contains("unrecognized subcommand") {
        Ok(false)
    } else {
        Err(format!("sysgp user add {name} failed ({}): {}", out.status, text.trim()))
    }
}

/// Signs in and returns the bearer token.
fn login(addr: SocketAddr, name: &str, password: &str) -> Result<String, String> {
    let body = json!({ "username": name, "password": password }).to_string();
    let reply = Conn::new(addr)
        .request(&json_post(&addr, "/api/v1/auth/login/", body.as_bytes()))
        .map_err(|e| format!("login: {e}"))?;
    let value: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    match value["token"].as_str() {
        Some(token) if reply.status == 200 => Ok(token.to_owned()),
        _ => Err(format!("login as {name}: HTTP {} {}", reply.status, String::from_utf8_lossy(&reply.body))),
    }
}

/// A temporary directory under `SYSGP_BENCH_DIR` (default: the system temp dir).
pub fn bench_tempdir() -> io::Result<tempfile::TempDir> {
    match std::env::var_os("SYSGP_BENCH_DIR") {
        Some(dir) => tempfile::Builder::new().prefix("sysgp-bench-").tempdir_in(dir),
        None => tempfile::Builder::new().prefix("sysgp-bench-").tempdir(),
    }
}

// ---------------------------------------------------------------------------------
// Bare warp baseline (the bench executable re-executed)
// ---------------------------------------------------------------------------------

/// Call first in `main`: if this process was started as a helper, run it and return true.
pub fn run_role_if_asked() -> bool {
    match std::env::var(ROLE_VAR).as_deref() {
        Ok("bare-warp") => {
            let bind: SocketAddr = std::env::var(ROLE_BIND_VAR)
                .ok()
                .and_then(|b| b.parse().ok())
                .expect("SYSGP_BENCH_BIND=host:port for the bare-warp role");
            bare_warp_server(bind);
            true
        }
        Ok(other) => panic!("unknown {ROLE_VAR}={other:?}"),
        Err(_) => false,
    }
}

/// The request body the baseline parses: the P2P request's shape.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BareBody {
    sender_msisdn: String,
    receiver_msisdn: String,
    amount: String,
    #[serde(default)]
    note: Option<String>,
}

/// A minimal warp 0.4 server on a 2-worker runtime: `POST /bare` parses a small JSON
/// body and answers a small JSON 201; the same shape of work as a P2P minus the ledger.
fn bare_warp_server(bind: SocketAddr) {
    use warp::Filter;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind).await.expect("bind bare-warp");
        let route = warp::post()
            .and(warp::path("bare"))
            .and(warp::path::end())
            .and(warp::body::content_length_limit(64 * 1024))
            .and(warp::body::json())
            .map(|b: BareBody| {
                let reply = json!({
                    "transfer_id": uuid::Uuid::new_v4().to_string(),
                    "sender_msisdn": b.sender_msisdn,
                    "receiver_msisdn": b.receiver_msisdn,
                    "amount": b.amount,
                    "note": b.note,
                    "status": "COMPLETED",
                });
                warp::reply::with_status(warp::reply::json(&reply), warp::http::StatusCode::CREATED)
            });
        warp::serve(route).incoming(listener).run().await;
    });
}

/// The bare warp baseline as a separate process.
pub struct BareWarp {
    /// The process.
    pub proc_: Proc,
    /// Its address.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl BareWarp {
    /// Re-executes this bench as the baseline server and waits until it answers 201.
    pub fn start(sample_body: &[u8]) -> Result<BareWarp, String> {
        let dir = bench_tempdir().map_err(|e| e.to_string())?;
        let addr = free_addr();
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = base_command(&exe);
        cmd.env(ROLE_VAR, "bare-warp").env(ROLE_BIND_VAR, addr.to_string());
        let mut proc_ = Proc::spawn("bare warp", cmd, &dir.path().join("bare.log")).map_err(|e| e.to_string())?;
        let req = json_post(&addr, BARE_PATH, sample_body);
        wait_until(&mut proc_, "bare warp", || Conn::new(addr).request(&req).is_ok_and(|r| r.status == 201))?;
        Ok(BareWarp { proc_, addr, _dir: dir })
    }
}

// ---------------------------------------------------------------------------------
// Minimal HTTP/1.1 client
// ---------------------------------------------------------------------------------
