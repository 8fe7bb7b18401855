//! Bulk jobs over HTTP for the benches: payee files generated on disk a line at a
//! time, a stack with a funded source wallet and a checker, and the job's life (upload
//! streamed from the file, polls, approve, pause, paid to its end).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{json_exchange, json_post_as, scrape_metrics, upload_file, Conn, CpuSnapshot, Stack, StackOptions};

/// Every wallet's currency (no minor unit).
pub const CURRENCY: &str = "XOF";
/// The paying wallet of every job.
pub const SOURCE: &str = "22508000001";
/// Its deposit: more than any job pays (a million rows of at most 1,000).
pub const FUNDING: &str = "10000000000";
/// Job polls: fine enough for timing, negligible load.
const POLL: Duration = Duration::from_millis(10);
/// Longest wait for a job to change status: beyond it the bench reports a failure.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);

/// Line `i`'s payee: distinct, ends in 1 (never the simulator's 404 or 408 suffix).
pub fn payee(i: u64) -> String {
    format!("2250{:08}", i * 10 + 1)
}

/// Line `i`'s amount: 1 to 998, never a simulator amount trigger.
pub fn amount(i: u64) -> u64 {
    let a = 1 + (i * 7919) % 997;
    if [13, 408, 666].contains(&a) {
        a + 1
    } else {
        a
    }
}

/// Writes `rows` payees to `path` a line at a time (never the whole file in memory).
pub fn write_csv(path: &Path, rows: u64) -> std::io::Result<u64> {
    write_csv_tagged(path, rows, "bench")
}

/// As `write_csv`, with references `<tag>-<line>`: files with different tags differ,
/// so the server does not refuse a later one as a duplicate.
pub fn write_csv_tagged(path: &Path, rows: u64, tag: &str) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "msisdn,amount,reference")?;
    for i in 0..rows {
        writeln!(w, "{},{},{tag}-{i}", payee(i), amount(i))?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// A server + simulator with a funded source wallet and a checker.
pub struct Bench {
    pub stack: Stack,
    /// The checker's `Authorization` value.
    pub checker: String,
    conn: Conn,
}

impl Bench {
    pub fn start(bin: &Path, sim_latency_ms: u64, env: &[(&str, &str)]) -> Result<Bench, String> {
        let server_env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let stack = Stack::start(bin, &StackOptions { sim_latency_ms, server_env })?;
        let checker = stack.add_user("bench-checker", "checker")?;
        let mut bench = Bench { conn: Conn::new(stack.addr), stack, checker };
        bench.post_201("/api/v1/accounts/", &json!({ "msisdn": SOURCE, "currency": CURRENCY }))?;
        bench.post_201(&format!("/api/v1/accounts/{SOURCE}/deposit/"), &json!({ "amount": FUNDING }))?;
        Ok(bench)
    }

    pub fn post_201(&mut self, path: &str, body: &Value) -> Result<Value, String> {
        match json_exchange(&mut self.conn, &self.stack.json_post(path, body.to_string().as_bytes()))? {
            (201, v) => Ok(v),
            (status, v) => Err(format!("POST {path}: HTTP {status} {v}")),
        }
    }

    pub fn server_pid(&self) -> u32 {
        self.stack.server.pid()
    }

    pub fn snapshot(&self) -> (CpuSnapshot, Option<BTreeMap<String, f64>>) {
        let pids = [("server", self.stack.server.pid()), ("simulator", self.stack.sim.pid())];
        (CpuSnapshot::take(&pids, Some(self.server_pid())), scrape_metrics(self.stack.addr))
    }

    /// Streams the file up as the maker: the job id.
    pub fn upload(&mut self, csv: &Path) -> Result<String, String> {
        let auth = self.stack.authorization.clone();
        let reply = upload_file(
            &mut self.conn,
            &self.stack.addr,
            "/api/v1/bulk/upload/",
            auth.as_deref(),
            &[("source_msisdn", SOURCE)],
            csv,
        )
        .map_err(|e| format!("upload: {e}"))?;
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        match (reply.status, body["job_id"].as_str()) {
            (202, Some(id)) => Ok(id.to_owned()),
            _ => Err(format!("upload: HTTP {} {}", reply.status, String::from_utf8_lossy(&reply.body))),
        }
    }

    pub fn job(&mut self, id: &str) -> Result<Value, String> {
        match json_exchange(&mut self.conn, &self.stack.get(&format!("/api/v1/bulk/jobs/{id}/")))? {
            (200, job) => Ok(job),
            (status, v) => Err(format!("GET job {id}: HTTP {status} {v}")),
        }
    }

    /// Polls the job until `done`; fails on a status from which it cannot get there
    /// (a final one, or PAUSED by the circuit breaker).
    pub fn wait_job(&mut self, id: &str, what: &str, done: impl FnMut(&Value) -> bool) -> Result<Value, String> {
        self.wait_job_unless(id, what, done, &["FAILED", "PAUSED", "CANCELLED", "REJECTED"])
    }

    /// Polls the job until the pause is done: no item PROCESSING any more.
    pub fn wait_paused(&mut self, id: &str) -> Result<Value, String> {
        let idle = |j: &Value| j["status"] == "PAUSED" && count(j, "PROCESSING") == 0;
        self.wait_job_unless(id, "the pause", idle, &["FAILED", "CANCELLED", "REJECTED", "COMPLETED"])
    }

    fn wait_job_unless(
        &mut self,
        id: &str,
        what: &str,
        mut done: impl FnMut(&Value) -> bool,
        give_up: &[&str],
    ) -> Result<Value, String> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let job = self.job(id)?;
            if done(&job) {
                return Ok(job);
            }
            let status = job["status"].as_str().unwrap_or("");
            if give_up.contains(&status) || Instant::now() > deadline {
                return Err(format!("waiting for {what}: job is {status}: {job}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Upload, then validation: the job id once AWAITING_APPROVAL, and (upload, total) seconds.
    pub fn ingest(&mut self, csv: &Path) -> Result<(String, f64, f64), String> {
        let t0 = Instant::now();
        let id = self.upload(csv)?;
        let upload_s = t0.elapsed().as_secs_f64();
        let job = self.wait_job(&id, "validation", |j| j["status"] != "PENDING")?;
        let total_s = t0.elapsed().as_secs_f64();
        if job["status"] != "AWAITING_APPROVAL" {
            return Err(format!("validation ended {}: {job}", job["status"]));
        }
        Ok((id, upload_s, total_s))
    }

    /// Pauses the job as the maker (any operator may).
    pub fn pause(&mut self, id: &str) -> Result<(), String> {
        self.action(id, "pause")
    }

    /// Resumes a paused job as the maker.
    pub fn resume(&mut self, id: &str) -> Result<(), String> {
        self.action(id, "resume")
    }

    fn action(&mut self, id: &str, action: &str) -> Result<(), String> {
        let raw = self.stack.json_post(&format!("/api/v1/bulk/jobs/{id}/{action}/"), b"{}");
        match json_exchange(&mut self.conn, &raw)? {
            (200, _) => Ok(()),
            (status, v) => Err(format!("{action}: HTTP {status} {v}")),
        }
    }

    /// Uploads `csv`, approves the job and polls it every `poll` until COMPLETED, adding
    /// the items it finishes to `finished` as they go; fails on any other status or when
    /// `deadline` passes. The finished job.
    pub fn pay_job(
        &mut self,
        csv: &Path,
        poll: Duration,
        deadline: Instant,
        finished: &AtomicU64,
    ) -> Result<Value, String> {
        let (id, _, _) = self.ingest(csv)?;
        self.approve(&id)?;
        let before = finished.load(Ordering::Relaxed);
        loop {
            let job = self.job(&id)?;
            finished.store(before + count(&job, "COMPLETED") + count(&job, "FAILED"), Ordering::Relaxed);
            match job["status"].as_str().unwrap_or("") {
                "COMPLETED" => return Ok(job),
                "PROCESSING" if Instant::now() < deadline => std::thread::sleep(poll),
                other => return Err(format!("job {id} is {other}: {job}")),
            }
        }
    }

    pub fn approve(&mut self, id: &str) -> Result<(), String> {
        let raw =
            json_post_as(&self.stack.addr, &format!("/api/v1/bulk/jobs/{id}/approve/"), Some(&self.checker), b"{}");
        match json_exchange(&mut self.conn, &raw)? {
            (200, job) if job["status"] == "PROCESSING" => Ok(()),
            (status, v) => Err(format!("approve: HTTP {status} {v}")),
        }
    }
}

/// A job's counter for an item status.
pub fn count(job: &Value, status: &str) -> u64 {
    job["counts"][status].as_u64().unwrap_or(0)
}
