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
    (
        "sysgp_fsync_duration_seconds",
        "histogram",
        "Duration of one durable flush of the store (its log writes and their fdatasync).",
    ),
    ("sysgp_store_wait_seconds", "histogram", "From submitting a change to the store until it is durable."),
    ("sysgp_login_attempts_total", "counter", "Login attempts by result."),
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Series by name, then by their label text (`k="v",…`): an observation looks its
/// series up with borrowed strings, so only a series' first observation allocates.
#[derive(Default)]
struct Registry {
    counters: BTreeMap<&'static str, BTreeMap<String, u64>>,
    histograms: BTreeMap<&'static str, BTreeMap<String, Histogram>>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Writes `k="v",…` into `out`, escaping `\` and `"` in values.
fn write_labels(out: &mut String, pairs: &[(&str, &str)]) {
    out.clear();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            if c == '\\' || c == '"' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// Runs `f` on the series `name{pairs}` of `family`, creating it on first use.
fn with_series<T: Default, R>(
    family: impl FnOnce(&mut Registry) -> &mut BTreeMap<&'static str, BTreeMap<String, T>>,
    name: &'static str,
    pairs: &[(&str, &str)],
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    thread_local! {
        static LABELS: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LABELS.with(|buffer| {
        let mut labels = buffer.try_borrow_mut().ok()?;
        write_labels(&mut labels, pairs);
        let mut r = registry().lock().ok()?;
        let by_labels = family(&mut r).entry(name).or_default();
        let value = match by_labels.get_mut(labels.as_str()) {
            Some(value) => value,
            None => by_labels.entry(labels.clone()).or_default(),
        };
        Some(f(value))
    })
}

/// Adds one to a counter.
pub fn inc(name: &'static str, pairs: &[(&str, &str)]) {
    with_series(|r| &mut r.counters, name, pairs, |v| *v += 1);
}

/// Records one observation of a histogram.
pub fn observe(name: &'static str, pairs: &[(&str, &str)], took: Duration) {
    let secs = took.as_secs_f64();
    with_series(
        |r| &mut r.histograms,
        name,
        pairs,
        |h: &mut Histogram| {
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        },
    );
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
        for (l, v) in r.counters.get(name).into_iter().flatten() {
            let _ = writeln!(out, "{} {v}", series(name, l, ""));
        }
        for (l, h) in r.histograms.get(name).into_iter().flatten() {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{} {}",
                    series(&format!("{name}_bucket"), l, &format!("le=\"{bound}\"")),
                    h.buckets[i]
                );
            }
            let _ = writeln!(out, "{} {}", series(&format!("{name}_bucket"), l, "le=\"+Inf\""), h.count);
            let _ = writeln!(out, "{} {}", series(&format!("{name}_sum"), l, ""), h.sum);
            let _ = writeln!(out, "{} {}", series(&format!("{name}_count"), l, ""), h.count);
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

    #[test]
    fn each_label_set_is_its_own_series_and_observations_add_up() {
        for _ in 0..3 {
            inc("sysgp_sdk_requests_total", &[("method", "UNIT"), ("outcome", "a")]);
        }
        inc("sysgp_sdk_requests_total", &[("method", "UNIT"), ("outcome", "b")]);
        observe("sysgp_sdk_request_duration_seconds", &[("method", "UNIT")], Duration::from_millis(30));
        observe("sysgp_sdk_request_duration_seconds", &[("method", "UNIT")], Duration::from_millis(70));
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("sysgp_sdk_requests_total{method=\"UNIT\",outcome=\"a\"} 3\n"), "{out}");
        assert!(out.contains("sysgp_sdk_requests_total{method=\"UNIT\",outcome=\"b\"} 1\n"), "{out}");
        assert!(out.contains("sysgp_sdk_request_duration_seconds_bucket{method=\"UNIT\",le=\"0.05\"} 1\n"), "{out}");
        assert!(out.contains("sysgp_sdk_request_duration_seconds_count{method=\"UNIT\"} 2\n"), "{out}");
    }
}
