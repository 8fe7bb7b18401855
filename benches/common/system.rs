//! What the machine did: `/proc` CPU, memory and disk accounting, `/metrics` scraping,
//! machine info and the report files in `target/bench/`.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::{bench_tempdir, request_bytes, Conn};
use serde_json::{json, Value};

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
