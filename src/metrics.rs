//! Process-wide counters and histograms for `GET /metrics` (Prometheus text format
//! 0.0.4). Labelled series are created on first use; values only grow.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of every latency histogram, in seconds: from sub-millisecond store
/// syncs to the SDK's 100 s timeout.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0];

/// Help text of every series this process exports, by name.
const HELP: &[(&str, &str, &str)] = &[
    ("sysgp_http_requests_total", "counter", "HTTP requests by method, route pattern and status."),
    ("sysgp_http_request_duration_seconds", "histogram", "HTTP request latency by route pattern."),
    ("sysgp_transfers_total", "counter", "Transfer outcomes by route and status (each status a transfer reached)."),
    ("sysgp_sdk_requests_total", "counter", "SDK calls by method and outcome (HTTP status class, unreachable, lost)."),
    ("sysgp_sdk_request_duration_seconds", "histogram", "SDK call latency by method."),
    ("sysgp_fsync_duration_seconds", "histogram", "Duration of one fdatasync round of the store."),
    ("sysgp_store_wait_seconds", "histogram", "From submitting a change to the store until it is durable."),
    ("sysgp_login_attempts_total", "counter", "Login attempts by result."),
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    inner.join(",")
}

/// Adds one to a counter.
pub fn inc(name: &'static str, pairs: &[(&str, &str)]) {
    if let Ok(mut r) = registry().lock() {
        *r.counters.entry((name, labels(pairs))).or_default() += 1;
    }
}

/// Records one observation of a histogram.
pub fn observe(name: &'static str, pairs: &[(&str, &str)], took: Duration) {
    let secs = took.as_secs_f64();
    if let Ok(mut r) = registry().lock() {
        let h = r.histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }
}

fn series(name: &str, labels: &str, extra: &str) -> String {
    match (labels.is_empty(), extra.is_empty()) {
        (true, true) => name.to_owned(),
        (true, false) => format!("{name}{{{extra}}}"),
        (false, true) => format!("{name}{{{labels}}}"),
        (false, false) => format!("{name}{{{labels},{extra}}}"),
    }
}

/// Appends every series in the text format.
pub fn render(out: &mut String) {
    let Ok(r) = registry().lock() else { return };
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for ((n, l), v) in r.counters.iter().filter(|((n, _), _)| n == name) {
            let _ = writeln!(out, "{} {v}", series(n, l, ""));
        }
        for ((n, l), h) in r.histograms.iter().filter(|((n, _), _)| n == name) {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ =
                    writeln!(out, "{} {}", series(&format!("{n}_bucket"), l, &format!("le=\"{bound}\"")), h.buckets[i]);
            }
            let _ = writeln!(out, "{} {}", series(&format!("{n}_bucket"), l, "le=\"+Inf\""), h.count);
            let _ = writeln!(out, "{} {}", series(&format!("{n}_sum"), l, ""), h.sum);
            let _ = writeln!(out, "{} {}", series(&format!("{n}_count"), l, ""), h.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        inc("sysgp_login_attempts_total", &[("result", "ok\"x")]);
        observe("sysgp_fsync_duration_seconds", &[], Duration::from_millis(3));
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("sysgp_login_attempts_total{result=\"ok\\\"x\"} "), "{out}");
        assert!(out.contains("sysgp_fsync_duration_seconds_bucket{le=\"0.005\"}"), "{out}");
        assert!(out.contains("# TYPE sysgp_fsync_duration_seconds histogram"));
    }
}
