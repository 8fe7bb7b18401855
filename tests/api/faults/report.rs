//! What the campaign prints and writes to `target/bench/faults.json`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::cases::rounds;
use super::{Mode, Outcome, MONEY_IDLE_MAX};
use crate::fault_proxy::FaultProxy;

/// Prints the faults injected per kind and how the transfers ended.
pub(super) fn report(mode: &Mode, proxy: &FaultProxy, outcomes: &[Outcome], elapsed: Duration) {
    let injected = proxy.injected();
    let mut ends: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for o in outcomes {
        *ends.entry(o.case.kind()).or_default().entry(o.ended.as_str()).or_default() += 1;
    }
    let total: usize = injected.values().sum();
    let lookups: usize = injected.iter().filter(|(k, _)| k.starts_with("lookup:")).map(|(_, n)| n).sum();
    let mut text = format!(
        "SDK fault campaign, mode {} ({} rounds): {} transfers, faults injected: {total} ({lookups} on \
         reconciliation lookups), {:.1} s\n",
        mode.name,
        rounds(),
        outcomes.len(),
        elapsed.as_secs_f64()
    );
    for (kind, how) in &ends {
        let how: Vec<String> = how.iter().map(|(end, n)| format!("{end} x{n}")).collect();
        let n = injected.get(*kind).copied().unwrap_or(0);
        text.push_str(&format!("  {kind:<32} {n:>4}  {}\n", how.join("; ")));
    }
    for (kind, n) in injected.iter().filter(|(k, _)| k.starts_with("lookup:")) {
        text.push_str(&format!("  {kind:<32} {n:>4}  the next reconciliation attempt settled it\n"));
    }
    let (reused, idle_max) = proxy.money_calls_reusing_connections();
    text.push_str(&format!(
        "  money calls on kept-alive connections: {reused}, longest idle before reuse {} ms (limit {} ms)\n",
        idle_max.as_millis(),
        MONEY_IDLE_MAX.as_millis()
    ));
    println!("{text}");
    write_summary(mode, &injected, &ends, elapsed);
}

/// The four modes run in parallel and share the summary file.
pub(super) static SUMMARY: Mutex<()> = Mutex::new(());

/// Adds this mode's figures to `<target>/bench/faults.json` (`CARGO_TARGET_DIR`, else
/// `target/` of the crate), keeping the other modes' latest ones.
pub(super) fn write_summary(
    mode: &Mode,
    injected: &BTreeMap<String, usize>,
    ends: &BTreeMap<&str, BTreeMap<&str, usize>>,
    elapsed: Duration,
) {
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for (end, n) in ends.values().flatten() {
        *outcomes.entry(end).or_default() += n;
    }
    let ended = |what: &str| outcomes.iter().filter(|(e, _)| e.contains(what)).map(|(_, n)| n).sum::<usize>();
    let by_kind: BTreeMap<&str, Value> = ends
        .iter()
        .map(|(kind, how)| (*kind, json!({ "injected": injected.get(*kind).copied().unwrap_or(0), "ended": how })))
        .collect();
    let figures = json!({
        "date": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "rounds": rounds(),
        "transfers": outcomes.values().sum::<usize>(),
        "faults_injected": injected.values().sum::<usize>(),
        "faults_by_kind": injected,
        "by_kind": by_kind,
        "outcomes": outcomes,
        "in_doubt_settled_by_reconciliation": ended("by reconciliation"),
        "in_doubt_resolved_by_an_operator": ended("by an operator"),
        "seconds": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    let dir = crate::report::bench_dir();
    let path = dir.join("faults.json");
    let _guard = SUMMARY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut summary: Value =
        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
    if !summary["modes"].is_object() {
        summary = json!({ "campaign": "faults", "modes": {} });
    }
    summary["date"] = figures["date"].clone();
    summary["command"] = json!("cargo test --release --test api faults");
    summary["machine"] = crate::report::machine();
    summary["modes"][mode.name] = figures;
    let text = serde_json::to_string_pretty(&summary).expect("a JSON value serialises");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text + "\n")) {
        println!("could not write {}: {e}", path.display());
    }
}
