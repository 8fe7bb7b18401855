//! Reports of the test campaigns (faults, model, crash) for `BENCHMARKS.md`: where they
//! go and the machine they ran on. Included with `#[path]` by each test target.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// `<target>/bench`: `CARGO_TARGET_DIR` (relative to the package), else `target/`.
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    Path::new(env!("CARGO_MANIFEST_DIR")).join(target).join("bench")
}

/// Cores, CPU model, memory and kernel of this machine.
pub fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_owned())
    };
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": field(&read("/proc/cpuinfo"), "model name"),
        "mem_total_mb": field(&read("/proc/meminfo"), "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb / 1024),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}
