//! Bulk job controls over real HTTP with the real simulator (SPEC §5): progress events,
//! pause and resume, the breaker's rules, hub liquidity, retry, bad parameters, a line
//! paying its own source, an item requeued after a refused call, and cancel while items
//! are IN_DOUBT.

use std::time::Duration;

use serde_json::{json, Value};
use sysgp::sdk::simulator::{self, SimulatorConfig};

use crate::bulk_flows::{assert_snapshot_consistent, completed_job, no_500, st, units, validated_job};
use crate::support::{spawn_app, spawn_app_with, Options, TestApp};

/// The `data:` payloads of the `progress` events of a server-sent event stream.
fn progress_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l == "event: progress"))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")))
        .collect()
}

#[test]
fn the_events_stream_reports_progress_while_the_job_runs_and_ends_with_its_final_state() {
    let options = Options { latency_ms: 100, extra: vec![("SYSGP_BULK_WORKERS", "1".into())], ..Options::default() };
    let app = spawn_app_with(options);
    let source = "22507600001";
    app.funded(source, "XOF", "100000");
    let mut csv = String::from("msisdn,amount\n");
    for i in 0..25 {
        csv.push_str(&format!("2250760{i:04}1,100\n"));
    }
    let id = validated_job(&app, source, &csv);
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    let r = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/events")));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap_or("").starts_with("text/event-stream"), "{:?}", r.headers);
    let events = progress_events(&r.text);
    assert!(events.len() >= 2, "progress while running, then the end: {}", r.text);
    assert!(events.iter().all(|e| e["job_id"] == id.as_str()), "{}", r.text);
    let progress: Vec<f64> = events.iter().map(|e| e["progress"].as_f64().unwrap_or(-1.0)).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");
    let last = events.last().expect("final event");
    assert_eq!((st(last), last["progress"].as_f64()), ("COMPLETED", Some(100.0)), "{last}");

    // A finished job's stream gives its final state once and ends.
    let r = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/events")));
    let events = progress_events(&r.text);
    assert_eq!(events.len(), 1, "{}", r.text);
    assert_eq!((st(&events[0]), events[0]["counts"]["COMPLETED"].as_u64()), ("COMPLETED", Some(25)));
}

#[test]
fn an_operator_pauses_a_running_job_and_resume_finishes_it_paying_each_line_once() {
    let options = Options { latency_ms: 50, extra: vec![("SYSGP_BULK_WORKERS", "2".into())], ..Options::default() };
    let app = spawn_app_with(options);
    let source = "22507650001";
    app.funded(source, "XOF", "100000");
    let mut csv = String::from("msisdn,amount\n");
    for i in 0..60 {
        csv.push_str(&format!("2250765{i:04}1,100\n"));
    }
    let id = validated_job(&app, source, &csv);
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    let job = app.job_until(&id, "a few lines paid", |j| j["counts"]["COMPLETED"].as_u64() >= Some(4));
    assert!(job["rate_per_sec"].as_f64() > Some(0.0), "a running job has a rate: {job}");
    assert_eq!(no_500(app.job_action("viewer", &id, "pause")).status, 403, "a viewer cannot pause");
    let r = no_500(app.job_action("maker", &id, "pause"));
    assert_eq!((r.status, st(&r.body)), (200, "PAUSED"), "{}", r.text);
    assert_eq!(r.body["reason"], "paused by maker", "{}", r.text);
    let job = app.job_until(&id, "in-flight items to settle", |j| j["counts"]["PROCESSING"] == 0);
    assert_eq!(st(&job), "PAUSED", "{job}");
    assert!(job["counts"]["PENDING"].as_u64() > Some(0), "paused before the end: {job}");
    assert_eq!((job["rate_per_sec"].as_f64(), &job["eta_seconds"]), (Some(0.0), &Value::Null), "{job}");
    assert_snapshot_consistent(&job);
    // The events stream of a paused job gives its state and ends.
    let events = progress_events(&no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/events"))).text);
    assert_eq!(events.iter().map(st).collect::<Vec<_>>(), ["PAUSED"]);
    let r = no_500(app.job_action("maker", &id, "pause"));
    assert_eq!((r.status, r.code()), (409, "INVALID_STATE"), "{}", r.text);

    let r = no_500(app.job_action("checker", &id, "resume"));
    assert_eq!((r.status, st(&r.body), &r.body["reason"]), (200, "PROCESSING", &Value::Null), "{}", r.text);
    let job = app.job_until(&id, "completion", |j| st(j) == "COMPLETED");
    assert_eq!(job["counts"]["COMPLETED"], 60, "{job}");
    let paid = app.sim_paid();
    assert_eq!(paid.len(), 60);
    for item in app.job_items(&id, None) {
        assert_eq!(paid.iter().filter(|t| t["homeTransactionId"] == item["transfer_id"]).count(), 1, "{item}");
    }
    app.assert_invariants();
}

#[test]
fn a_hub_liquidity_error_pauses_the_job_at_once_and_cancel_releases_the_rest() {
    let app = spawn_app();
    let source = "22507700001";
    app.funded(source, "XOF", "1000000");
    let mut csv = String::from("msisdn,amount\n22507700101,4001\n");
    for i in 0..300 {
        csv.push_str(&format!("2250770{i:04}2,{}\n", 100 + i % 50));
    }
    let total: i64 = 4001 + (0..300).map(|i| 100 + i % 50).sum::<i64>();
    let id = validated_job(&app, source, &csv);
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    let job = app.job_until(&id, "the pause", |j| st(j) != "PROCESSING" && j["counts"]["PROCESSING"] == 0);
    assert_eq!(st(&job), "PAUSED", "{job}");
    let reason = job["reason"].as_str().unwrap_or("");
    assert!(reason.contains("4001") && reason.contains("liquidity"), "{reason}");
    assert!(job["counts"]["PENDING"].as_u64() > Some(200), "paused at once, most lines unsent: {job}");
    let failed = app.job_items(&id, Some("FAILED"));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!((failed[0]["line"].as_u64(), failed[0]["error_code"].as_str()), (Some(2), Some("4001")));
    assert_snapshot_consistent(&job);
    let paid = units(&job["amounts"]["COMPLETED"]);
    let payer = app.account(source);
    assert_eq!(units(&payer["reserved"]), units(&job["reserved_remaining"]), "{payer}");
    assert_eq!(units(&payer["available"]), 1_000_000 - total + 4001, "the failed line is released: {payer}");

    let r = no_500(app.job_action("maker", &id, "cancel"));
    assert_eq!((r.status, st(&r.body)), (200, "CANCELLED"), "{}", r.text);
    assert_eq!((r.body["counts"]["PENDING"].as_u64(), r.body["reserved_remaining"].as_str()), (Some(0), Some("0")));
    let job = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
    assert_eq!(job["reserved_remaining"], "0", "{job}");
    assert_eq!(units(&job["amounts"]["CANCELLED"]), total - 4001 - paid, "{job}");
    let payer = app.account(source);
    assert_eq!((units(&payer["available"]), units(&payer["reserved"])), (1_000_000 - paid, 0), "{payer}");
    assert_eq!(app.sim_paid().len() as u64, job["counts"]["COMPLETED"].as_u64().unwrap_or(0));
    app.assert_invariants();
}

#[test]
fn retry_requeues_only_retryable_failures_as_new_attempts_after_reserving_their_total() {
    let app = spawn_app();
    let source = "22507800001";
    app.funded(source, "XOF", "10000");
    let csv = "msisdn,amount\n22507800408,1000\n22507801408,1000\n22507800404,500\n22507800101,1000\n22507802408,1000\n22507800102,1000\n";
    let (id, job) = completed_job(&app, source, csv);
    assert_eq!((job["counts"]["COMPLETED"].as_u64(), job["counts"]["FAILED"].as_u64()), (Some(2), Some(4)), "{job}");
    let before = app.job_items(&id, Some("FAILED"));
    let timeouts: Vec<&Value> = before.iter().filter(|i| i["error_code"] == "SDK_TIMEOUT_PARTY").collect();
    assert_eq!(timeouts.len(), 3, "{before:?}");
    assert_eq!(app.account(source)["available"], "8000");

    // The wallet cannot fund the retry: 422, nothing changes.
    let r = app.post(&format!("/api/v1/accounts/{source}/withdraw/"), json!({"amount": "6000"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = no_500(app.job_action("checker", &id, "retry"));
    assert_eq!((r.status, r.code()), (422, "INSUFFICIENT_FUNDS"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["shortfall"], "1000", "{}", r.text);
    assert_eq!(app.job_items(&id, Some("FAILED")), before, "the failed items are untouched");
    assert_eq!(st(&app.get(&format!("/api/v1/bulk/jobs/{id}/")).body), "COMPLETED");
    assert_eq!(no_500(app.job_action("maker", &id, "retry")).status, 403, "retry is a checker's");

    let r = app.post(&format!("/api/v1/accounts/{source}/deposit/"), json!({"amount": "5000"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = no_500(app.job_action("checker", &id, "retry"));
    assert_eq!(r.status, 200, "{}", r.text);
    let job = app.job_until(&id, "the retry to finish", |j| st(j) == "COMPLETED");
    assert_eq!((job["retries"].as_u64(), job["counts"]["FAILED"].as_u64()), (Some(1), Some(4)), "{job}");
    let audit = app.get("/api/v1/audit/?action=JOB_RETRIED").body;
    assert_eq!(audit["items"][0]["details"]["reserved"], "3000", "the retried total was reserved first: {audit}");
    for old in &before {
        let line = old["line"].as_u64().expect("line");
        let now = app.job_items(&id, None).into_iter().find(|i| i["line"].as_u64() == Some(line)).expect("item");
        if old["error_code"] == "SDK_TIMEOUT_PARTY" {
            assert_eq!(now["attempts"], 1, "{now}");
            assert_ne!(now["transfer_id"], old["transfer_id"], "a new attempt has a new transfer id: {now}");
            assert_eq!(app.transfer(old["transfer_id"].as_str().unwrap_or(""))["status"], "FAILED");
            let retried = app.transfer(now["transfer_id"].as_str().unwrap_or(""));
            assert_eq!((st(&retried), retried["error_code"].as_str()), ("FAILED", Some("SDK_TIMEOUT_PARTY")));
        } else {
            assert_eq!(&now, old, "a payee rejection (3204) is not retried");
        }
    }
    let payer = app.account(source);
    assert_eq!((payer["available"].as_str(), payer["reserved"].as_str()), (Some("7000"), Some("0")), "{payer}");
    assert_eq!(app.sim_paid().len(), 2);
    app.assert_invariants();
}

#[test]
fn infrastructure_failures_trip_the_breaker_but_payee_rejections_never_do() {
    let app = spawn_app();
    let source = "22507900001";
    app.funded(source, "XOF", "100000");
    let rows = |ending: &str| -> String {
        let mut csv = String::from("msisdn,amount\n");
        for i in 0..40 {
            csv.push_str(&format!("22509{i:03}{ending},100\n"));
        }
        csv
    };
    // 40 payees unknown at the hub (3204): a payee problem, the job runs to the end.
    let (_, job) = completed_job(&app, source, &rows("404"));
    assert_eq!((job["counts"]["FAILED"].as_u64(), job["reason"].as_str()), (Some(40), None), "{job}");

    // 40 party timeouts (infrastructure): paused after the breaker's minimum of 20 attempts.
    let id = validated_job(&app, source, &rows("408"));
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    let job = app.job_until(&id, "the breaker", |j| st(j) != "PROCESSING" && j["counts"]["PROCESSING"] == 0);
    assert_eq!(st(&job), "PAUSED", "{job}");
    let reason = job["reason"].as_str().unwrap_or("");
    assert!(reason.contains("circuit breaker") && reason.contains("infrastructure"), "{reason}");
    let failed = job["counts"]["FAILED"].as_u64().unwrap_or(0);
    assert!((20..40).contains(&failed), "paused once 20 attempts had failed: {job}");
    assert!(app.job_items(&id, Some("FAILED")).iter().all(|i| i["error_code"] == "SDK_TIMEOUT_PARTY"));
    assert_snapshot_consistent(&job);
    app.assert_invariants();
}

#[test]
fn unknown_jobs_and_bad_parameters_are_4xx_errors() {
    let app = spawn_app();
    let unknown = "0b7e7a34-5a0e-4c57-9d7c-2f0c8a4b9c11";
    for path in ["/", "/items/", "/report/", "/results.csv", "/errors.csv", "/events"] {
        let r = no_500(app.get(&format!("/api/v1/bulk/jobs/{unknown}{path}")));
        assert_eq!((r.status, r.code()), (404, "JOB_NOT_FOUND"), "{path}: {}", r.text);
        let r = no_500(app.get(&format!("/api/v1/bulk/jobs/not-a-uuid{path}")));
        assert_eq!((r.status, r.code()), (400, "ID_FORMAT"), "{path}: {}", r.text);
    }
    for action in ["approve", "reject", "pause", "resume", "cancel", "retry"] {
        let r = no_500(app.post(&format!("/api/v1/bulk/jobs/{unknown}/{action}/"), json!({"reason": "x"})));
        assert!((400..500).contains(&r.status), "{action}: {} {}", r.status, r.text);
    }
    app.funded("22507950001", "XOF", "1000");
    let id = validated_job(&app, "22507950001", "msisdn,amount\n22507000001,100\n");
    for query in ["items/?status=PAID", "items/?cursor=x", "items/?limit=0", "report/?cursor=x"] {
        let r = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/{query}")));
        assert_eq!(r.status, 400, "{query}: {}", r.text);
    }
    let r = no_500(app.get("/api/v1/bulk/jobs/?status=DONE"));
    assert_eq!(r.status, 400, "{}", r.text);
    let r = no_500(app.post(&format!("/api/v1/bulk/jobs/{id}/approve/"), json!({"acknowledge": true})));
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.text);
    let r = no_500(app.post_raw(&format!("/api/v1/bulk/jobs/{id}/reject/"), "{not json", "application/json", &[]));
    assert_eq!(r.status, 400, "{}", r.text);
    let r = no_500(
        app.post(&format!("/api/v1/bulk/jobs/{id}/items/2/resolve/"), json!({"outcome": "COMPLETED", "reason": "x"})),
    );
    assert_eq!((r.status, r.code()), (409, "INVALID_STATE"), "only IN_DOUBT items are resolved: {}", r.text);
    let r = no_500(
        app.post(&format!("/api/v1/bulk/jobs/{id}/items/9/resolve/"), json!({"outcome": "COMPLETED", "reason": "x"})),
    );
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(app.get_token("", &format!("/api/v1/bulk/jobs/{id}/")).status, 401);
}

#[test]
fn a_line_paying_the_source_wallet_itself_is_refused_and_no_money_is_lost() {
    let app = spawn_app();
    let source = "22507960001";
    app.funded(source, "XOF", "10000");
    let csv = format!("msisdn,amount\n22507960101,100\n{source},300\n");
    let (id, job) = completed_job(&app, source, &csv);
    app.assert_invariants();
    let payer = app.account(source);
    assert_eq!((payer["balance"].as_str(), payer["reserved"].as_str()), (Some("9900"), Some("0")), "{payer}");
    let items = app.job_items(&id, None);
    assert_eq!(st(&items[1]), "FAILED", "sender = receiver is refused (SPEC §3): {items:?}");
    assert_eq!(items[1]["error_code"], "SAME_ACCOUNT", "{items:?}");
    assert_eq!(job["counts"]["COMPLETED"], 1, "{job}");
}

/// An app whose SDK sits behind a fault proxy, with a breaker that does not pause jobs
/// while the proxy refuses connections.
fn app_behind_a_proxy() -> (simulator::SimulatorHandle, crate::fault_proxy::FaultProxy, TestApp) {
    let sim = simulator::spawn("127.0.0.1:0".parse().expect("addr"), SimulatorConfig::default()).expect("simulator");
    let proxy = crate::fault_proxy::FaultProxy::start(sim.addr(), Duration::from_secs(1));
    let extra = vec![
        ("MOJALOOP_SDK_URL", proxy.url()),
        ("SYSGP_BREAKER_UNREACHABLE", "10000".into()),
        ("SYSGP_BREAKER_MIN_ATTEMPTS", "100000".into()),
    ];
    let app = spawn_app_with(Options { extra, ..Options::default() });
    (sim, proxy, app)
}

#[test]
fn an_item_whose_sdk_call_was_refused_is_paid_on_a_next_attempt_without_waiting_for_a_rescan() {
    let (sim, proxy, app) = app_behind_a_proxy();
    let source = "22507410001";
    app.funded(source, "XOF", "10000");
    let id = validated_job(&app, source, "msisdn,amount\n2250741000201,250\n");
    proxy.set_listening(false);
    let r = no_500(app.job_action("checker", &id, "approve"));
    assert_eq!(r.status, 200, "{}", r.text);
    app.eventually(Duration::from_secs(15), "a refused attempt", || {
        app.job_items(&id, None).into_iter().find(|i| i["attempts"].as_u64() > Some(0))
    });
    proxy.set_listening(true);
    // The item was handed out, so its job had nothing left to hand out: the requeue
    // must wake the dispatcher (its safety-net listing comes only every 30 s).
    let job = app.eventually(Duration::from_secs(15), "a later attempt to complete the job", || {
        let j = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
        (st(&j) == "COMPLETED").then_some(j)
    });
    assert_eq!(job["counts"]["COMPLETED"], 1, "{job}");
    let item = &app.job_items(&id, None)[0];
    assert_eq!(item["status"], "COMPLETED", "{item}");
    assert!(item["attempts"].as_u64() >= Some(1), "{item}");
    assert_eq!(app.sim_paid_at(&sim.url()).len(), 1, "paid once");
    assert_eq!(units(&app.account(source)["balance"]), 10_000 - 250);
    app.assert_invariants();
}

/// A job of `doubtful` lines paid with the simulator's IN_DOUBT trigger (amount 408,
/// committed but unseen, later reconciled), then 30 lines of 100, approved; returns once
/// the doubtful lines are IN_DOUBT, while most lines are still PENDING.
fn job_with_items_in_doubt(app: &TestApp, source: &str, doubtful: usize) -> String {
    app.funded(source, "XOF", "100000");
    let prefix = &source[..7];
    let mut csv = String::from("msisdn,amount\n");
    for i in 0..doubtful + 30 {
        let amount = if i < doubtful { 408 } else { 100 };
        csv.push_str(&format!("{prefix}{i:04}1,{amount}\n"));
    }
    let id = validated_job(app, source, &csv);
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    let job = app.job_until(&id, "the doubtful lines", |j| j["counts"]["IN_DOUBT"] == doubtful);
    assert!(job["counts"]["PENDING"].as_u64() > Some(0), "cancelled before the end: {job}");
    id
}

/// The reply of a cancel of a job with items IN_DOUBT: still running, nothing PENDING.
fn assert_cancel_requested(job: &Value, in_doubt: u64) {
    assert_eq!(st(job), "PROCESSING", "a job stays PROCESSING while an item is IN_DOUBT: {job}");
    assert_eq!((job["counts"]["PENDING"].as_u64(), job["counts"]["IN_DOUBT"].as_u64()), (Some(0), Some(in_doubt)));
    assert!(job["counts"]["CANCELLED"].as_u64() > Some(0), "{job}");
    assert_eq!(job["finished_at"], Value::Null, "not final yet: {job}");
    assert!(units(&job["reserved_remaining"]) >= 408 * in_doubt as i64, "{job}");
    assert_snapshot_consistent(job);
}

/// Every unit agrees once the job is over: the payer paid exactly the COMPLETED items,
/// each once, and holds nothing reserved.
fn assert_cancelled_and_settled(app: &TestApp, id: &str, source: &str) -> Value {
    let job = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
    assert_eq!((st(&job), job["reserved_remaining"].as_str()), ("CANCELLED", Some("0")), "{job}");
    assert!(job["finished_at"].is_string(), "{job}");
    for open in ["PENDING", "PROCESSING", "IN_DOUBT"] {
        assert_eq!(job["counts"][open], 0, "{open}: {job}");
    }
    let completed = job["counts"]["COMPLETED"].as_u64().expect("count");
    assert_eq!(
        completed + job["counts"]["CANCELLED"].as_u64().expect("count"),
        job["total_count"].as_u64().expect("n")
    );
    let payer = app.account(source);
    let paid = units(&job["amounts"]["COMPLETED"]);
    assert_eq!((units(&payer["available"]), units(&payer["reserved"])), (100_000 - paid, 0), "{payer}");
    for item in app.job_items(id, Some("COMPLETED")) {
        assert_eq!(app.times_paid(item["transfer_id"].as_str().expect("id")), 1, "paid once: {item}");
    }
    assert_eq!(app.sim_paid().len() as u64, completed, "nothing cancelled was paid");
    app.assert_invariants();
    job
}

#[test]
fn cancel_while_items_are_in_doubt_keeps_the_job_processing_until_they_are_resolved_or_reconciled() {
    let options = Options { latency_ms: 100, extra: vec![("SYSGP_BULK_WORKERS", "1".into())], ..Options::default() };
    let app = spawn_app_with(options);
    let source = "22507670001";
    let id = job_with_items_in_doubt(&app, source, 3);
    let r = no_500(app.job_action("maker", &id, "cancel"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_cancel_requested(&r.body, 3);
    assert_eq!(r.body["reason"], "cancelled by maker", "{}", r.text);
    // Nothing more is sent and the cancel is not undone; a second cancel is refused.
    for action in ["cancel", "pause", "resume", "retry"] {
        let r = no_500(app.job_action("admin", &id, action));
        assert_eq!((r.status, r.code()), (409, "INVALID_STATE"), "{action}: {}", r.text);
    }
    let r = no_500(app.job_action("admin", &id, "pause"));
    assert_eq!(r.body["error"]["details"]["cancel_requested"], true, "{}", r.text);

    // One IN_DOUBT item is resolved by an operator, the others by reconciliation.
    let line = app.job_items(&id, Some("IN_DOUBT"))[0]["line"].as_u64().expect("line");
    let path = format!("/api/v1/bulk/jobs/{id}/items/{line}/resolve/");
    let r = no_500(app.post(&path, json!({"outcome": "COMPLETED", "reason": "the hub shows it committed"})));
    assert_eq!((r.status, st(&r.body)), (200, "COMPLETED"), "{}", r.text);
    let job = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
    assert_eq!((st(&job), job["counts"]["IN_DOUBT"].as_u64()), ("PROCESSING", Some(2)), "{job}");
    app.eventually(Duration::from_secs(60), "reconciliation of the other items", || {
        let j = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/"))).body;
        assert_snapshot_consistent(&j);
        (st(&j) != "PROCESSING").then_some(j)
    });
    let job = assert_cancelled_and_settled(&app, &id, source);
    assert!(job["counts"]["COMPLETED"].as_u64() >= Some(3), "the doubtful lines were paid: {job}");
    let r = no_500(app.job_action("admin", &id, "cancel"));
    assert_eq!((r.status, r.body["error"]["details"]["status"].as_str()), (409, Some("CANCELLED")), "{}", r.text);
}

#[test]
fn cancel_of_a_paused_job_with_items_in_doubt_ends_cancelled_once_the_last_is_resolved() {
    let options = Options { latency_ms: 100, extra: vec![("SYSGP_BULK_WORKERS", "1".into())], ..Options::default() };
    let app = spawn_app_with(options);
    let source = "22507680001";
    let id = job_with_items_in_doubt(&app, source, 2);
    let r = no_500(app.job_action("maker", &id, "pause"));
    assert_eq!((r.status, st(&r.body)), (200, "PAUSED"), "{}", r.text);
    let job = app.job_until(&id, "the item in flight to settle", |j| j["counts"]["PROCESSING"] == 0);
    assert_eq!((st(&job), job["counts"]["IN_DOUBT"].as_u64()), ("PAUSED", Some(2)), "{job}");
    let r = no_500(app.job_action("maker", &id, "cancel"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_cancel_requested(&r.body, 2);

    // Resolved by asking the hub: the last resolve ends the job in the same step.
    let doubtful = app.job_items(&id, Some("IN_DOUBT"));
    for (n, item) in doubtful.iter().enumerate() {
        let (line, sdk_id) = (item["line"].as_u64().expect("line"), item["sdk_transfer_id"].as_str().expect("sdk id"));
        let path = format!("/api/v1/bulk/jobs/{id}/items/{line}/resolve/");
        let r = no_500(app.post(&path, json!({"sdk_transfer_id": sdk_id, "reason": "checked with the hub"})));
        assert_eq!((r.status, st(&r.body)), (200, "COMPLETED"), "{}", r.text);
        let job = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
        let want = if n + 1 < doubtful.len() { "PROCESSING" } else { "CANCELLED" };
        assert_eq!(st(&job), want, "after {} resolve(s): {job}", n + 1);
    }
    let job = assert_cancelled_and_settled(&app, &id, source);
    assert_eq!(units(&job["amounts"]["CANCELLED"]), units(&job["total_amount"]) - units(&job["amounts"]["COMPLETED"]));
}

#[test]
fn the_reply_of_cancel_and_reject_shows_the_items_cancelled() {
    let app = spawn_app();
    let source = "22507690001";
    app.funded(source, "XOF", "100000");
    let csv = |n: u32| format!("msisdn,amount\n2250769{n:04}1,100\n2250769{n:04}2,250\n2250769{n:04}3,50\n");
    let cancelled = validated_job(&app, source, &csv(1));
    let r = no_500(app.job_action("maker", &cancelled, "cancel"));
    let rejected = validated_job(&app, source, &csv(2));
    let path = format!("/api/v1/bulk/jobs/{rejected}/reject/");
    let r2 = no_500(app.post_as("checker", &path, json!({"reason": "wrong month"})));
    for (r, status, id) in [(r, "CANCELLED", &cancelled), (r2, "REJECTED", &rejected)] {
        assert_eq!((r.status, st(&r.body)), (200, status), "{}", r.text);
        let counts = &r.body["counts"];
        assert_eq!((counts["PENDING"].as_u64(), counts["CANCELLED"].as_u64()), (Some(0), Some(3)), "{}", r.text);
        assert_eq!(
            (r.body["amounts"]["CANCELLED"].as_str(), r.body["reserved_remaining"].as_str()),
            (Some("400"), Some("0"))
        );
        assert!(r.body["finished_at"].is_string(), "{}", r.text);
        let now = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
        assert_eq!((&now["status"], &now["counts"], &now["amounts"]), (&r.body["status"], counts, &r.body["amounts"]));
        assert!(app.job_items(id, None).iter().all(|i| st(i) == "CANCELLED"), "{id}");
    }
    let payer = app.account(source);
    assert_eq!((payer["available"].as_str(), payer["reserved"].as_str()), (Some("100000"), Some("0")), "{payer}");
    app.assert_invariants();
}

#[test]
fn cancel_while_the_sdk_refuses_connections_cancels_items_requeued_in_flight_and_releases_everything() {
    let (sim, proxy, app) = app_behind_a_proxy();
    let source = "22507420001";
    app.funded(source, "XOF", "100000");
    let mut csv = String::from("msisdn,amount\n");
    for i in 0..40 {
        csv.push_str(&format!("2250742{i:04}1,{}\n", 100 + i));
    }
    let id = validated_job(&app, source, &csv);
    proxy.set_listening(false);
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    // Items go round PENDING → PROCESSING → PENDING while the workers keep trying.
    app.eventually(Duration::from_secs(15), "refused attempts", || {
        let items = app.job_items(&id, None);
        (items.iter().filter(|i| i["attempts"].as_u64() > Some(0)).count() > 10).then_some(())
    });
    let r = no_500(app.job_action("maker", &id, "cancel"));
    assert_eq!((r.status, r.body["counts"]["PENDING"].as_u64()), (200, Some(0)), "{}", r.text);
    let job = app.job_until(&id, "the attempts in flight to end", |j| st(j) != "PROCESSING");
    assert_eq!((st(&job), job["reserved_remaining"].as_str()), ("CANCELLED", Some("0")), "{job}");
    assert_eq!((job["counts"]["CANCELLED"].as_u64(), job["amounts"]["CANCELLED"].as_str()), (Some(40), Some("4780")));
    let items = app.job_items(&id, None);
    assert!(items.iter().all(|i| st(i) == "CANCELLED"), "{items:?}");
    // An attempt refused after the cancel is the item's last: its transfer exists, FAILED.
    let in_flight: Vec<&Value> = items.iter().filter(|i| i["error_code"] == "SDK_UNREACHABLE").collect();
    let tried = in_flight.iter().filter(|i| {
        let r = app.get(&format!("/api/v1/transfers/{}/", i["transfer_id"].as_str().unwrap_or("")));
        r.status == 200 && st(&r.body) == "FAILED"
    });
    assert!(tried.count() > 0, "the workers were busy: some attempts were in flight at the cancel");
    let payer = app.account(source);
    assert_eq!((payer["available"].as_str(), payer["reserved"].as_str()), (Some("100000"), Some("0")), "{payer}");
    assert_eq!(app.sim_paid_at(&sim.url()).len(), 0);
    app.assert_invariants();
}
