//! Shared by the custom-harness benchmarks (`benches/p2p.rs`, `benches/bulk.rs`,
//! `benches/soak.rs`): locating the release `sysgp` binary, starting the server and the
//! SDK simulator as separate processes on a fresh data directory (with more users when
//! asked), a bare warp baseline server (the bench executable re-executes itself), a
//! minimal keep-alive HTTP/1.1 client (with streamed multipart uploads from a file), the
//! closed-loop and open-loop load generators, `/proc` CPU, memory and disk accounting,
//! `/metrics` scraping and the report plumbing (percentiles, machine info,
//! `target/bench/*.json`); `jobs` drives bulk jobs.
//!
//! Each bench uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

pub mod jobs;

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

/// A raw HTTP/1.1 request.
pub fn request_bytes(method: &str, host: &SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    let _ = write!(out, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A JSON POST.
pub fn json_post(host: &SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    request_bytes("POST", host, path, &[("Content-Type", "application/json")], body)
}

/// A JSON POST with an optional `Authorization` header value.
pub fn json_post_as(host: &SocketAddr, path: &str, authorization: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = authorization {
        headers.push(("Authorization", a));
    }
    request_bytes("POST", host, path, &headers, body)
}

/// A reply: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// One keep-alive connection; reconnects when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections opened.
    pub connects: u64,
}

impl Conn {
    /// Not connected yet.
    pub fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None, buf: Vec::with_capacity(16 * 1024), connects: 0 }
    }

    /// Sends `raw` and reads the reply. A reused connection found closed is retried once
    /// on a new one (the server never saw the request).
    pub fn request(&mut self, raw: &[u8]) -> io::Result<Reply> {
        let reused = self.stream.is_some();
        match self.exchange(raw) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.stream = None;
                let stale = matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionAborted
                );
                if reused && stale && self.buf.is_empty() {
                    let r = self.exchange(raw);
                    if r.is_err() {
                        self.stream = None;
                    }
                    r
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Sends `head` (request line and headers, with the body's `Content-Length`), then
    /// copies `body` to the connection as it reads it, and reads the reply. Never
    /// retried: the body cannot be read twice.
    pub fn request_streaming(&mut self, head: &[u8], body: &mut dyn Read) -> io::Result<Reply> {
        let result = self.connect().and_then(|stream| {
            stream.write_all(head)?;
            io::copy(body, stream)?;
            Ok(())
        });
        match result.and_then(|()| self.read_reply()) {
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    fn connect(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            self.connects += 1;
            self.stream = Some(s);
        }
        self.stream.as_mut().ok_or_else(|| io::Error::other("not connected"))
    }

    fn exchange(&mut self, raw: &[u8]) -> io::Result<Reply> {
        self.connect()?.write_all(raw)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::other("not connected"))?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        // Headers.
        let header_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a reply"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|_| bad_reply("non-UTF-8 headers"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 =
            status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad_reply(status_line))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| bad_reply("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else if chunked {
            loop {
                if let Some(body) = dechunk(&self.buf[header_end..])? {
                    break body;
                }
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside a chunked body"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(len) = length {
            while self.buf.len() < header_end + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside the body"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            self.buf[header_end..header_end + len].to_vec()
        } else {
            close = true;
            stream.read_to_end(&mut self.buf)?;
            self.buf[header_end..].to_vec()
        };
        if close {
            self.stream = None;
        }
        self.buf.clear();
        Ok(Reply { status, body })
    }
}

fn bad_reply(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP reply: {what}"))
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a complete chunked message, or `None` if more bytes are needed.
fn dechunk(mut data: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else { return Ok(None) };
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| bad_reply("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad_reply("chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            return Ok(find(data, b"\r\n").map(|_| body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A `multipart/form-data` POST of `fields` then the file at `path` (as field `file`),
/// streamed from disk with a `Content-Length`: the client never holds the file.
pub fn upload_file(
    conn: &mut Conn,
    host: &SocketAddr,
    path: &str,
    authorization: Option<&str>,
    fields: &[(&str, &str)],
    file: &Path,
) -> io::Result<Reply> {
    // Not in any field or in a CSV of digits and commas.
    let boundary = "sysgp-bench-boundary-4b1f9e0c7a";
    let mut prefix = Vec::new();
    for (name, value) in fields {
        let _ = write!(prefix, "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
    }
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let _ = write!(
        prefix,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    let suffix = format!("\r\n--{boundary}--\r\n");
    let data = File::open(file)?;
    let length = prefix.len() as u64 + data.metadata()?.len() + suffix.len() as u64;
    let mut head = Vec::new();
    let _ = write!(
        head,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {length}\r\n"
    );
    if let Some(a) = authorization {
        let _ = write!(head, "Authorization: {a}\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut body =
        io::Cursor::new(prefix).chain(io::BufReader::with_capacity(256 * 1024, data)).chain(suffix.as_bytes());
    conn.request_streaming(&head, &mut body)
}

/// Sends `raw` on `conn` and parses the reply body as JSON (`Null` when it is not).
pub fn json_exchange(conn: &mut Conn, raw: &[u8]) -> Result<(u16, Value), String> {
    let reply = conn.request(raw).map_err(|e| format!("HTTP exchange: {e}"))?;
    Ok((reply.status, serde_json::from_slice(&reply.body).unwrap_or(Value::Null)))
}

/// `"code":"…"` of an error body, cheaply.
pub fn error_code(body: &[u8]) -> Option<String> {
    let at = find(body, b"\"code\":\"")? + 8;
    let len = body[at..].iter().position(|b| *b == b'"')?;
    Some(String::from_utf8_lossy(&body[at..at + len]).into_owned())
}

/// Accepts a 201 whose body says `"status":"COMPLETED"`; otherwise an error kind.
pub fn expect_201_completed(status: u16, body: &[u8]) -> Result<(), String> {
    if status != 201 {
        return Err(format!("HTTP {status} {}", error_code(body).unwrap_or_default()));
    }
    if find(body, b"\"status\":\"COMPLETED\"").is_some() {
        return Ok(());
    }
    let at = find(body, b"\"status\":\"").map(|i| i + 10);
    let got = at
        .and_then(|i| body[i..].iter().position(|b| *b == b'"').map(|n| String::from_utf8_lossy(&body[i..i + n])))
        .unwrap_or_default();
    Err(format!("201 with status {got}"))
}

// ---------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------

/// When in a run the observer is called (from the main thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Warm-up over, measured window starts.
    MeasureStart,
    /// Measured window over.
    MeasureEnd,
}

/// One kind of failed request.
#[derive(Clone, Debug, Default)]
pub struct ErrorKind {
    /// How many in the measured window.
    pub count: u64,
    /// One body, truncated.
    pub sample: String,
}

/// What a closed-loop run measured (completions inside the measured window).
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Clients.
    pub clients: usize,
    /// The measured window.
    pub measured: Duration,
    /// Successful requests completed in the window.
    pub ok: u64,
    /// Failed requests completed in the window.
    pub errors: u64,
    /// Failures by kind.
    pub error_kinds: BTreeMap<String, ErrorKind>,
    /// Latencies of the successful requests, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Connections opened (beyond one per client means the server closed some).
    pub connects: u64,
    /// Requests of the warm-up and window together, any outcome.
    pub total_requests: u64,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// The `p` percentile (0–100) of the successful latencies, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies_us, p).map(|us| f64::from(us) / 1000.0)
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

struct ClientOutcome {
    ok: u64,
    errors: BTreeMap<String, ErrorKind>,
    latencies: Vec<u32>,
    connects: u64,
    requests: u64,
}

/// Builds the raw request number `seq` of client `client`.
pub type RequestFn<'a> = dyn Fn(usize, u64) -> Vec<u8> + Sync + 'a;
/// Judges a reply (status, body): `Err(kind)` counts as an error of that kind.
pub type CheckFn<'a> = dyn Fn(u16, &[u8]) -> Result<(), String> + Sync + 'a;

/// Runs `clients` threads, each with its own keep-alive connection, sending
/// `request(client, seq)` back to back for `warmup + measure`; `check` judges each
/// reply. Counts completions inside the measured window; calls `observer` at the
/// window's start and end (for server-side snapshots).
pub fn run_load(
    addr: SocketAddr,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    request: &RequestFn<'_>,
    check: &CheckFn<'_>,
    observer: &mut dyn FnMut(Mark),
) -> LoadResult {
    let started = Instant::now() + Duration::from_millis(50);
    let window_start = started + warmup;
    let window_end = window_start + measure;
    let total = AtomicU64::new(0);
    let outcomes: Vec<ClientOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let total = &total;
                std::thread::Builder::new()
                    .name(format!("load-{client}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        let mut conn = Conn::new(addr);
                        let mut out = ClientOutcome {
                            ok: 0,
                            errors: BTreeMap::new(),
                            latencies: Vec::with_capacity(1 << 14),
                            connects: 0,
                            requests: 0,
                        };
                        sleep_until(started);
                        let mut seq = 0u64;
                        loop {
                            let sent = Instant::now();
                            if sent >= window_end {
                                break;
                            }
                            let raw = request(client, seq);
                            seq += 1;
                            let result = conn.request(&raw);
                            let done = Instant::now();
                            out.requests += 1;
                            let verdict = match &result {
                                Ok(reply) => check(reply.status, &reply.body),
                                Err(e) => Err(format!("io: {e}")),
                            };
                            if done >= window_start && done < window_end {
                                match verdict {
                                    Ok(()) => {
                                        out.ok += 1;
                                        let us = done.duration_since(sent).as_micros();
                                        out.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                                    }
                                    Err(kind) => {
                                        let e = out.errors.entry(kind).or_default();
                                        e.count += 1;
                                        if e.sample.is_empty() {
                                            e.sample = match &result {
                                                Ok(r) => String::from_utf8_lossy(&r.body).chars().take(300).collect(),
                                                Err(e) => e.to_string(),
                                            };
                                        }
                                    }
                                }
                            }
                            if result.is_err() {
                                // A dead or refusing server: do not spin.
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                        out.connects = conn.connects;
                        total.fetch_add(out.requests, Ordering::Relaxed);
                        out
                    })
                    .expect("spawn a load thread")
            })
            .collect();
        sleep_until(window_start);
        observer(Mark::MeasureStart);
        sleep_until(window_end);
        observer(Mark::MeasureEnd);
        handles.into_iter().map(|h| h.join().expect("load thread")).collect()
    });
    let mut result = LoadResult { clients, measured: measure, ..LoadResult::default() };
    for o in outcomes {
        result.ok += o.ok;
        result.connects += o.connects;
        result.latencies_us.extend_from_slice(&o.latencies);
        for (kind, e) in o.errors {
            result.errors += e.count;
            let mine = result.error_kinds.entry(kind).or_default();
            mine.count += e.count;
            if mine.sample.is_empty() {
                mine.sample = e.sample;
            }
        }
    }
    result.total_requests = total.load(Ordering::Relaxed);
    result.latencies_us.sort_unstable();
    result
}

/// Sleeps until `t` (returns at once when it has passed).
pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

// ---------------------------------------------------------------------------------
// Open-loop load generator
// ---------------------------------------------------------------------------------

/// What an open-loop run saw in one window; a request counts in the window it was due in.
#[derive(Clone, Debug, Default)]
pub struct WindowSeen {
    /// Requests that passed the check.
    pub ok: u64,
    /// The same, by the kind the request function named.
    pub ok_by_kind: BTreeMap<&'static str, u64>,
    /// 422 business refusals, by "kind code".
    pub refused: BTreeMap<String, u64>,
    /// Other failures by kind: count and one body or error, truncated.
    pub errors: BTreeMap<String, (u64, String)>,
    /// Latencies of the passed requests from when they were due, microseconds (sorted
    /// once `run_open_loop` returns).
    pub latencies_us: Vec<u32>,
    /// Longest wait between when a request was due and when a sender sent it.
    pub send_lag_max_us: u32,
}

impl WindowSeen {
    /// Adds `other`'s requests to these.
    pub fn merge(&mut self, other: WindowSeen) {
        self.ok += other.ok;
        for (k, n) in other.ok_by_kind {
            *self.ok_by_kind.entry(k).or_default() += n;
        }
        for (k, n) in other.refused {
            *self.refused.entry(k).or_default() += n;
        }
        for (k, (n, sample)) in other.errors {
            self.errors.entry(k).or_insert((0, sample)).0 += n;
        }
        self.latencies_us.extend(other.latencies_us);
        self.send_lag_max_us = self.send_lag_max_us.max(other.send_lag_max_us);
    }

    /// Failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// The `p` percentile (0–100) of the latencies, milliseconds (sorted latencies only).
    pub fn ms(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies_us, p).map(|us| round(f64::from(us) / 1000.0, 3))
    }
}

/// A fixed-rate schedule: request `k` is due at `start + k ÷ rate`, whatever became of
/// the earlier ones, for `duration`, counted in `windows` equal windows.
#[derive(Clone, Debug)]
pub struct OpenLoop {
    /// Server address.
    pub addr: SocketAddr,
    /// Sender threads, one keep-alive connection each.
    pub senders: usize,
    /// Requests per second.
    pub rate: f64,
    /// How long requests are sent.
    pub duration: Duration,
    /// Windows the duration is cut into.
    pub windows: usize,
    /// When request 0 is due.
    pub start: Instant,
}

/// Request number `k`: its kind (for the report) and its raw bytes.
pub type ScheduledFn<'a> = dyn Fn(u64) -> (&'static str, &'a [u8]) + Sync + 'a;

/// Sends the schedule's requests on `plan.senders` threads while `during` runs on this
/// thread; `check` judges each reply, except that a 422 counts as a business refusal.
/// Latencies count from when each request was due, so a stalled server shows as
/// latency, not as a lower offered rate.
pub fn run_open_loop<T>(
    plan: &OpenLoop,
    request: &ScheduledFn<'_>,
    check: &CheckFn<'_>,
    during: impl FnOnce() -> T,
) -> (Vec<WindowSeen>, T) {
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.senders)
            .map(|i| {
                let next = &next;
                std::thread::Builder::new()
                    .name(format!("open-loop-{i}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || open_loop_sender(plan, request, check, next))
                    .expect("spawn a sender thread")
            })
            .collect();
        let t = during();
        let mut seen = vec![WindowSeen::default(); plan.windows];
        for h in handles {
            for (mine, theirs) in seen.iter_mut().zip(h.join().expect("sender thread")) {
                mine.merge(theirs);
            }
        }
        seen.iter_mut().for_each(|s| s.latencies_us.sort_unstable());
        (seen, t)
    })
}

/// One sender: takes the next request number, waits until it is due, sends it.
fn open_loop_sender(
    plan: &OpenLoop,
    request: &ScheduledFn<'_>,
    check: &CheckFn<'_>,
    next: &AtomicU64,
) -> Vec<WindowSeen> {
    let mut conn = Conn::new(plan.addr);
    let mut seen = vec![WindowSeen::default(); plan.windows];
    let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let offset = Duration::from_secs_f64(k as f64 / plan.rate);
        if offset >= plan.duration {
            return seen;
        }
        let due = plan.start + offset;
        sleep_until(due);
        let (kind, raw) = request(k);
        let sent = Instant::now();
        let result = conn.request(raw);
        let done = Instant::now();
        let w = (offset.as_secs_f64() / plan.duration.as_secs_f64() * plan.windows as f64) as usize;
        let s = &mut seen[w.min(plan.windows - 1)];
        s.send_lag_max_us = s.send_lag_max_us.max(micros(sent.saturating_duration_since(due)));
        let failed = match &result {
            Ok(r) if r.status == 422 => {
                *s.refused.entry(format!("{kind} {}", error_code(&r.body).unwrap_or_default())).or_default() += 1;
                continue;
            }
            Ok(r) => check(r.status, &r.body).err().map(|e| (e, String::from_utf8_lossy(&r.body).into_owned())),
            Err(e) => Some((format!("io: {}", e.kind()), e.to_string())),
        };
        match failed {
            None => {
                s.ok += 1;
                *s.ok_by_kind.entry(kind).or_default() += 1;
                s.latencies_us.push(micros(done.duration_since(due)));
            }
            Some((e, sample)) => {
                s.errors.entry(format!("{kind}: {e}")).or_insert((0, sample.chars().take(300).collect())).0 += 1;
                if result.is_err() {
                    // A dead or refusing server: do not spin.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Runs `work(i)` for `i in 0..n` on up to `threads` threads; the first error wins.
pub fn parallel<T: Send>(
    n: usize,
    threads: usize,
    work: &(dyn Fn(usize) -> Result<T, String> + Sync),
) -> Result<Vec<T>, String> {
    let next = AtomicU64::new(0);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.clamp(1, n.max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= n {
                            break;
                        }
                        mine.push((i, work(i)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("setup thread")).collect::<Vec<_>>()
    });
    let mut ordered: Vec<(usize, Result<T, String>)> = results;
    ordered.sort_by_key(|(i, _)| *i);
    ordered.into_iter().map(|(_, r)| r).collect()
}

// ---------------------------------------------------------------------------------
// CPU accounting from /proc
// ---------------------------------------------------------------------------------

/// `USER_HZ`: 100 on every Linux architecture this runs on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a whole process (live and reaped threads), seconds.
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based, man proc).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SEC)
}

/// Scheduler seconds of each live thread of `pid`, summed by thread name, from
/// `schedstat` (ns): `(on CPU, runnable but waiting for a CPU)`.
pub fn threads_sched_secs(pid: u32) -> BTreeMap<String, (f64, f64)> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default().trim().to_owned();
        let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) else { continue };
        let mut f = stat.split_whitespace().map(|n| n.parse::<f64>().unwrap_or(0.0) / 1e9);
        let (run, wait) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
        let e = out.entry(comm).or_insert((0.0, 0.0));
        e.0 += run;
        e.1 += wait;
    }
    out
}

/// CPU seconds of every process on the machine: pid → (name, seconds).
pub fn all_processes_cpu_secs() -> BTreeMap<u32, (String, f64)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let name = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map(|(n, _)| n.to_owned());
        if let (Some(name), Some(secs)) = (name, process_cpu_secs(pid)) {
            out.insert(pid, (name, secs));
        }
    }
    out
}

/// Busy seconds of the whole machine (every CPU, all but idle and iowait), `/proc/stat`.
pub fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<f64> = cpu.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal …
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7).copied().unwrap_or(0.0);
    Some(busy / CLOCK_TICKS_PER_SEC)
}

/// CPU of the processes of interest at one instant.
#[derive(Clone, Debug, Default)]
pub struct CpuSnapshot {
    /// When.
    pub at: Option<Instant>,
    /// Process name → CPU seconds.
    pub processes: BTreeMap<String, f64>,
    /// Server thread name → on-CPU seconds.
    pub server_threads: BTreeMap<String, f64>,
    /// Server thread name → seconds runnable but waiting for a CPU.
    pub server_threads_wait: BTreeMap<String, f64>,
    /// Busy seconds of the whole machine.
    pub machine: Option<f64>,
    /// Every process: pid → (name, CPU seconds).
    pub everyone: BTreeMap<u32, (String, f64)>,
    /// Our pids (load generator and `others`), left out of the foreign list.
    pub ours: Vec<u32>,
}

impl CpuSnapshot {
    /// Reads this process (`load generator`), the named processes, the server's threads
    /// and the machine.
    pub fn take(others: &[(&str, u32)], server_pid: Option<u32>) -> CpuSnapshot {
        let mut processes = BTreeMap::new();
        if let Some(s) = process_cpu_secs(std::process::id()) {
            processes.insert("load generator".to_owned(), s);
        }
        for (name, pid) in others {
            if let Some(s) = process_cpu_secs(*pid) {
                processes.insert((*name).to_owned(), s);
            }
        }
        let sched = server_pid.map(threads_sched_secs).unwrap_or_default();
        CpuSnapshot {
            at: Some(Instant::now()),
            processes,
            server_threads: sched.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
            server_threads_wait: sched.iter().map(|(k, v)| (k.clone(), v.1)).collect(),
            machine: machine_busy_secs(),
            everyone: all_processes_cpu_secs(),
            ours: others.iter().map(|(_, pid)| *pid).chain([std::process::id()]).collect(),
        }
    }

    /// The processes other than ours that used the most CPU in between (cores).
    fn foreign_top(&self, later: &CpuSnapshot, wall: f64) -> Vec<(String, f64)> {
        let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, (name, secs)) in &later.everyone {
            if self.ours.contains(pid) {
                continue;
            }
            let before = self.everyone.get(pid).map(|(_, s)| *s).unwrap_or(0.0);
            *by_name.entry(name.clone()).or_insert(0.0) += secs - before;
        }
        let mut top: Vec<(String, f64)> =
            by_name.into_iter().map(|(n, s)| (n, round(s / wall, 3))).filter(|(_, c)| *c >= 0.01).collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(5);
        top
    }

    /// CPU used between `self` and `later`, as cores (CPU seconds ÷ wall seconds).
    pub fn cores_until(&self, later: &CpuSnapshot) -> Value {
        let wall = match (self.at, later.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-9),
            _ => return Value::Null,
        };
        let delta = |a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
            b.iter()
                .filter_map(|(k, v)| {
                    let d = (v - a.get(k).copied().unwrap_or(0.0)) / wall;
                    (d > 0.0005).then(|| (k.clone(), round(d, 3)))
                })
                .collect()
        };
        let machine = match (self.machine, later.machine) {
            (Some(a), Some(b)) => Some(round((b - a) / wall, 3)),
            _ => None,
        };
        let ours: f64 =
            later.processes.iter().map(|(k, v)| v - self.processes.get(k).copied().unwrap_or(0.0)).sum::<f64>() / wall;
        json!({
            "wall_s": round(wall, 3),
            "machine_busy_cores": machine,
            // Everything else on the machine (other jobs, and kernel work not charged to a process).
            "other_cores": machine.map(|m| round((m - ours).max(0.0), 3)),
            "other_top_cores": self.foreign_top(later, wall),
            "processes_cores": delta(&self.processes, &later.processes),
            "server_threads_cores": delta(&self.server_threads, &later.server_threads),
            "server_threads_runqueue_wait_cores": delta(&self.server_threads_wait, &later.server_threads_wait),
        })
    }
}

/// Bytes on disk under `path` (allocated blocks, as `du` counts them), files and
/// subdirectories; what cannot be read counts as nothing.
pub fn disk_usage_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => m.blocks() * 512 + disk_usage_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// A `/proc/<pid>/status` figure in kB (`VmHWM`: peak resident set; `VmRSS`: now).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

// ---------------------------------------------------------------------------------
// /metrics
// ---------------------------------------------------------------------------------

/// `GET /metrics` parsed as Prometheus text (`name{labels} value`), or `None` when the
/// server has no such endpoint.
pub fn scrape_metrics(addr: SocketAddr) -> Option<BTreeMap<String, f64>> {
    let reply = Conn::new(addr).request(&request_bytes("GET", &addr, "/metrics", &[], b"")).ok()?;
    if reply.status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&reply.body);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The value is the first field after the name (and its labels); a timestamp may follow.
        let (name, rest) = match line.find('{') {
            Some(open) if line[..open].bytes().all(|b| !b.is_ascii_whitespace()) => {
                let close = line.rfind('}')?;
                (&line[..=close], &line[close + 1..])
            }
            _ => line.split_once(char::is_whitespace)?,
        };
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            out.insert(name.to_owned(), v);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `after − before` for every series present in both.
pub fn metrics_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().filter_map(|(k, v)| before.get(k).map(|b| (k.clone(), v - b))).collect()
}

/// The first series whose name (without labels) is one of `names`, summed over labels.
pub fn metric_sum(metrics: &BTreeMap<String, f64>, names: &[&str]) -> Option<f64> {
    for name in names {
        let mut found = false;
        let mut sum = 0.0;
        for (k, v) in metrics {
            if k.split('{').next() == Some(*name) {
                found = true;
                sum += v;
            }
        }
        if found {
            return Some(sum);
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Report plumbing
// ---------------------------------------------------------------------------------

/// Machine facts for the JSON report.
pub fn machine_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned());
    let mem_total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
    });
    let data_dir = bench_tempdir().ok();
    let fs_type = data_dir.as_ref().and_then(|d| filesystem_of(d.path()));
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "mem_total_mb": mem_total_kb.map(|k| k / 1024),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "data_dir_filesystem": fs_type,
    })
}

/// The filesystem type of the mount holding `path` (longest matching mount point).
pub fn filesystem_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((PathBuf::from(f.get(1)?), f.get(2)?.to_string()))
        })
        .filter(|(mount, _)| path.starts_with(mount))
        .max_by_key(|(mount, _)| mount.as_os_str().len())
        .map(|(_, fs)| fs)
}

/// Now, RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// `$CARGO_TARGET_DIR/bench` (default `<crate>/target/bench`), created.
pub fn bench_output_dir() -> io::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    // A relative CARGO_TARGET_DIR is relative to where cargo ran: the package root for `cargo bench`.
    let target = if target.is_relative() { std::env::current_dir()?.join(target) } else { target };
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `report` as pretty JSON to `<bench dir>/<name>.json` and returns the path.
pub fn write_report(name: &str, report: &Value) -> io::Result<PathBuf> {
    let path = bench_output_dir()?.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}

/// Rounds to `digits` decimals for the report.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Server threads by kind (`sysgp-bulk-7` → `sysgp-bulk-*`), the busiest first.
pub fn thread_groups(cpu: &Value) -> String {
    let mut groups: BTreeMap<String, f64> = BTreeMap::new();
    for (name, cores) in cpu["server_threads_cores"].as_object().into_iter().flatten() {
        let kind = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let kind = if kind.len() < name.len() { format!("{kind}*") } else { kind.to_owned() };
        *groups.entry(kind).or_default() += cores.as_f64().unwrap_or(0.0);
    }
    let mut list: Vec<_> = groups.into_iter().filter(|(_, c)| *c >= 0.01).collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1));
    list.iter().take(6).map(|(n, c)| format!("{n} {c:.2}")).collect::<Vec<_>>().join(", ")
}

/// CPU used by other processes (and unattributed kernel work) above which a
/// measurement is flagged as made on a busy machine.
pub const NOISE_CORES: f64 = 0.3;

/// Says so when other processes used the machine during a measurement.
pub fn noise_note(name: &str, cpu: &Value) {
    let other = cpu["other_cores"].as_f64().unwrap_or(0.0);
    if other > NOISE_CORES {
        let top: Vec<String> = cpu["other_top_cores"]
            .as_array()
            .map(|a| a.iter().map(|p| format!("{} {}", p[0].as_str().unwrap_or("?"), p[1])).collect())
            .unwrap_or_default();
        let top = if top.is_empty() { "kernel work not charged to a process".to_owned() } else { top.join(", ") };
        println!("  note: {name}: {other:.2} cores used outside the bench's processes (top: {top})");
    }
}
