//! `GET /metrics` parses as Prometheus text and its counters move with the traffic.

use serde_json::json;

use crate::support::{spawn_app, TestApp};

fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let r = app.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    let lines = r.text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_parse_and_the_counters_move_as_transfers_happen() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    let before = scrape(&app);
    assert_eq!(app.send("22507000001", "22507000002", "10").status, 201);
    assert_eq!(app.send("22507000001", "22500000777", "10").status, 201);
    app.post("/api/v1/accounts/22507000001/deposit/", json!({"amount": "5"}));
    let after = scrape(&app);
    let on_us = [("route", "ON_US"), ("status", "COMPLETED")];
    assert!(value(&after, "sysgp_transfers_total", &on_us) >= value(&before, "sysgp_transfers_total", &on_us) + 1.0);
    let sdk = [("route", "SDK"), ("status", "COMPLETED")];
    assert!(value(&after, "sysgp_transfers_total", &sdk) >= value(&before, "sysgp_transfers_total", &sdk) + 1.0);
    let posts = [("route", "/api/v1/transfers/"), ("status", "201")];
    assert!(
        value(&after, "sysgp_http_requests_total", &posts) >= value(&before, "sysgp_http_requests_total", &posts) + 2.0
    );
    assert!(value(&after, "sysgp_sdk_request_duration_seconds_count", &[("method", "POST")]) >= 1.0);
    assert!(value(&after, "sysgp_fsync_duration_seconds_count", &[]) >= 1.0);
    assert!(value(&after, "sysgp_audit_head_seq", &[]) >= 1.0);
    assert!((value(&after, "sysgp_ready", &[]) - 1.0).abs() < f64::EPSILON);
    assert!(value(&after, "sysgp_store_size_bytes", &[]) > 0.0);
}
