//! Bulk disbursement flows over real HTTP with the real simulator (SPEC §5): a large
//! mixed job paid exactly once, duplicates across uploads, maker-checker, the circuit
//! breaker when the SDK refuses connections, results and errors CSVs. Operator
//! controls and failure handling are in `bulk_controls.rs`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use sysgp::sdk::simulator::{self, SimulatorConfig};

use crate::support::{spawn_app, spawn_app_with, Options, Reply, TestApp};

pub(crate) fn st(j: &Value) -> &str {
    j["status"].as_str().unwrap_or("")
}

/// A decimal string of whole units (XOF) as a number.
pub(crate) fn units(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a whole amount: {v}"))
}

/// Fails the test on any server error.
pub(crate) fn no_500(r: Reply) -> Reply {
    assert!(r.status < 500, "server error {}: {}", r.status, r.text);
    r
}

/// Every item status, as the job's `counts` and `amounts` name them.
const ITEM_STATUSES: [&str; 7] = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "IN_DOUBT", "CANCELLED", "INVALID"];

/// Uploads `csv` for `source` as the maker and waits for AWAITING_APPROVAL.
pub(crate) fn validated_job(app: &TestApp, source: &str, csv: &str) -> String {
    let id = app.upload_job("maker", "payees.csv", csv.as_bytes(), &[("source_msisdn", source)]);
    let job = app.job_validated(&id);
    assert_eq!(st(&job), "AWAITING_APPROVAL", "{job}");
    id
}

/// Uploads, has a checker approve, and waits until the job is COMPLETED.
pub(crate) fn completed_job(app: &TestApp, source: &str, csv: &str) -> (String, Value) {
    let id = validated_job(app, source, csv);
    let r = no_500(app.job_action("checker", &id, "approve"));
    assert_eq!(r.status, 200, "{}", r.text);
    let job = app.job_until(&id, "completion", |j| st(j) == "COMPLETED");
    (id, job)
}

/// The payer/reserved/job money always agree: what the job holds is what its open
/// items are worth, and a job with an IN_DOUBT item is not COMPLETED.
pub(crate) fn assert_snapshot_consistent(job: &Value) {
    let open: i64 = ["PENDING", "PROCESSING", "IN_DOUBT"].iter().map(|s| units(&job["amounts"][*s])).sum();
    if st(job) == "PROCESSING" || st(job) == "PAUSED" || st(job) == "COMPLETED" {
        assert_eq!(units(&job["reserved_remaining"]), open, "the job holds exactly its open items: {job}");
    }
    if job["counts"]["IN_DOUBT"] != 0 {
        assert_ne!(st(job), "COMPLETED", "a job stays PROCESSING while an item is IN_DOUBT: {job}");
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Paid,
    PaidOnUs(usize),
    /// Paid after an IN_DOUBT reply (amount 408): reconciled to COMPLETED.
    PaidAfterDoubt,
    Failed(&'static str),
}

#[test]
fn a_thousand_line_job_with_triggers_and_local_payees_is_paid_exactly_once_and_every_unit_agrees() {
    let app = spawn_app();
    let source = "22507100001";
    app.funded(source, "XOF", "1000000");
    let locals = ["22507770001", "22507770002"];
    for l in locals {
        app.wallet(l, "XOF");
    }
    let mut csv = String::from("msisdn,amount,reference\n");
    let mut expected: Vec<(i64, Expect)> = Vec::new();
    for i in 0..1000u32 {
        let normal = 100 + i64::from(i % 37) * 5; // 100..=280: no trigger amount
        let (msisdn, amount, expect) = match i {
            _ if i % 100 == 7 => (format!("22502{i:03}404"), 150, Expect::Failed("3204")),
            _ if i % 100 == 23 => (format!("2250100{i:04}1"), 13, Expect::Failed("5105")),
            _ if i % 100 == 41 => (format!("2250100{i:04}1"), 666, Expect::Failed("5103")),
            _ if i % 200 == 59 => (format!("22503{i:03}408"), normal, Expect::Failed("SDK_TIMEOUT_PARTY")),
            _ if i % 250 == 99 => (format!("2250100{i:04}1"), 408, Expect::PaidAfterDoubt),
            _ if i % 50 == 17 => {
                let k = (i / 50) as usize % 2;
                (locals[k].to_owned(), normal, Expect::PaidOnUs(k))
            }
            _ => (format!("2250100{i:04}1"), normal, Expect::Paid),
        };
        csv.push_str(&format!("{msisdn},{amount},REF-{i}\n"));
        expected.push((amount, expect));
    }
    let mut want_counts: HashMap<&str, (u64, i64)> = HashMap::new();
    for (amount, expect) in &expected {
        let status = if matches!(expect, Expect::Failed(_)) { "FAILED" } else { "COMPLETED" };
        let e = want_counts.entry(status).or_default();
        e.0 += 1;
        e.1 += amount;
    }
    let paid_total = want_counts["COMPLETED"].1;
    let total: i64 = expected.iter().map(|(a, _)| a).sum();
    let off_us_paid: i64 =
        expected.iter().filter(|(_, e)| matches!(e, Expect::Paid | Expect::PaidAfterDoubt)).map(|(a, _)| a).sum();
    let local_paid =
        |k: usize| -> i64 { expected.iter().filter(|(_, e)| *e == Expect::PaidOnUs(k)).map(|(a, _)| a).sum() };

    let id = validated_job(&app, source, &csv);
    let job = app.get(&format!("/api/v1/bulk/jobs/{id}/")).body;
    assert_eq!((job["total_count"].as_u64(), units(&job["total_amount"])), (Some(1000), total), "{job}");
    let r = no_500(app.job_action("checker", &id, "approve"));
    assert_eq!((r.status, st(&r.body)), (200, "PROCESSING"), "{}", r.text);
    assert_eq!(units(&r.body["reserved_remaining"]), total, "approval reserves the whole total: {}", r.text);
    let mut most_in_doubt = 0;
    let job = app.eventually(Duration::from_secs(90), "the job to complete", || {
        let j = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/"))).body;
        assert_snapshot_consistent(&j);
        most_in_doubt = most_in_doubt.max(j["counts"]["IN_DOUBT"].as_u64().unwrap_or(0));
        (st(&j) == "COMPLETED").then_some(j)
    });
    assert!(most_in_doubt > 0, "the amount-408 lines were IN_DOUBT before reconciliation");

    for s in ITEM_STATUSES {
        let (count, amount) = want_counts.get(s).copied().unwrap_or_default();
        assert_eq!(job["counts"][s].as_u64(), Some(count), "count of {s}: {job}");
        assert_eq!(units(&job["amounts"][s]), amount, "amount of {s}: {job}");
    }
    assert_eq!(job["reserved_remaining"], "0", "{job}");
    let payer = app.account(source);
    assert_eq!((units(&payer["available"]), units(&payer["reserved"])), (1_000_000 - paid_total, 0), "{payer}");
    assert_eq!(units(&app.system_account("SYS:SETTLEMENT:XOF")["balance"]), off_us_paid);
    for (k, l) in locals.iter().enumerate() {
        let wallet = app.account(l);
        assert_eq!((units(&wallet["balance"]), units(&wallet["reserved"])), (local_paid(k), 0), "{l}: {wallet}");
    }

    let items = app.job_items(&id, None);
    assert_eq!(items.len(), 1000);
    let mut sim_times: HashMap<String, usize> = HashMap::new();
    let paid = app.sim_paid();
    for t in &paid {
        *sim_times.entry(t["homeTransactionId"].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    let mut sdk_completed = 0;
    for (item, (amount, expect)) in items.iter().zip(&expected) {
        let tid = item["transfer_id"].as_str().expect("transfer id");
        let times = sim_times.get(tid).copied().unwrap_or(0);
        assert_eq!(units(&item["amount"]), *amount, "{item}");
        match expect {
            Expect::Paid | Expect::PaidAfterDoubt => {
                assert_eq!((st(item), item["route"].as_str()), ("COMPLETED", Some("SDK")), "{item}");
                assert_eq!(times, 1, "paid once: {item}");
                sdk_completed += 1;
            }
            Expect::PaidOnUs(_) => {
                assert_eq!((st(item), item["route"].as_str()), ("COMPLETED", Some("ON_US")), "{item}");
                assert_eq!(times, 0, "on-us lines never reach the SDK: {item}");
            }
            Expect::Failed(code) => {
                assert_eq!((st(item), item["error_code"].as_str()), ("FAILED", Some(*code)), "{item}");
                assert_eq!(times, 0, "a FAILED line was not paid: {item}");
            }
        }
        if *expect == Expect::PaidAfterDoubt {
            assert_eq!(app.transfer(tid)["status"], "COMPLETED", "reconciled: {item}");
        }
    }
    assert_eq!(paid.len(), sdk_completed, "the simulator paid nothing else");
    app.assert_invariants();
}

#[test]
fn the_same_content_twice_is_refused_naming_the_first_job_unless_allowed_with_an_audited_reason() {
    let app = spawn_app();
    let source = "22507200001";
    app.funded(source, "XOF", "100000");
    let csv = "msisdn,amount,reference\n22507000001,100,a\n22507000002,250,b\n";
    let first = validated_job(&app, source, csv);

    let r = no_500(app.upload("maker", "again.csv", csv.as_bytes(), &[("source_msisdn", source)]));
    assert_eq!((r.status, r.code()), (409, "DUPLICATE_FILE"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["job_id"], first.as_str(), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap_or("").contains(&first), "{}", r.text);

    // The same rows in another encoding: found after parsing.
    let reencoded = "Reference;AMOUNT;msisdn\r\na;100;+225 07 000 001\r\nb;250.0;225-07-000-002\r\n";
    let id = app.upload_job("maker", "again.csv", reencoded.as_bytes(), &[("source_msisdn", source)]);
    let job = app.job_validated(&id);
    assert_eq!(st(&job), "FAILED", "{job}");
    let reason = job["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("DUPLICATE_FILE:") && reason.contains(&first), "{reason}");

    // Another wallet may pay the same content.
    app.funded("22507200002", "XOF", "1000");
    validated_job(&app, "22507200002", csv);

    // Allowed with a reason, both ways; the reason is audited.
    let why = "second run approved by finance, ticket 4411";
    let allow = [("source_msisdn", source), ("allow_duplicate", "true"), ("reason", why)];
    let same = app.upload_job("maker", "again.csv", csv.as_bytes(), &allow);
    assert_eq!(st(&app.job_validated(&same)), "AWAITING_APPROVAL");
    let other = app.upload_job("maker", "again2.csv", reencoded.as_bytes(), &allow);
    let job = app.job_validated(&other);
    assert_eq!((st(&job), job["allow_duplicate"].as_bool()), ("AWAITING_APPROVAL", Some(true)), "{job}");
    let audit = no_500(app.get("/api/v1/audit/?action=JOB_UPLOADED&limit=500"));
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entry = |job: &str| -> Value {
        audit.body["items"].as_array().expect("entries").iter().find(|e| e["target"] == job).cloned().expect(job)
    };
    for job in [&same, &other] {
        let e = entry(job);
        assert_eq!((e["actor"].as_str(), e["details"]["allow_duplicate"].as_bool()), (Some("maker"), Some(true)));
        assert_eq!(e["details"]["duplicate_reason"], why, "{e}");
    }
    assert_eq!(entry(&first)["details"]["allow_duplicate"], false);
    assert_eq!(app.get_as("maker", "/api/v1/audit/?action=JOB_UPLOADED").status, 403);

    // Paying the content twice needs the checker to acknowledge it.
    let r = no_500(app.job_action("checker", &first, "approve"));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = no_500(app.job_action("checker", &same, "approve"));
    assert_eq!((r.status, r.code()), (409, "DUPLICATES_NOT_ACKNOWLEDGED"), "{}", r.text);
    assert!(r.text.contains(&first), "the warning names the earlier job: {}", r.text);
    let r =
        app.post_as("checker", &format!("/api/v1/bulk/jobs/{same}/approve/"), json!({"acknowledge_duplicates": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    for job in [&first, &same] {
        app.job_until(job, "completion", |j| st(j) == "COMPLETED");
    }
    assert_eq!(app.sim_paid().len(), 4, "both acknowledged jobs paid their two lines");
    app.assert_invariants();
}

#[test]
fn only_someone_other_than_the_uploader_approves_and_actions_in_the_wrong_state_are_409() {
    let app = spawn_app();
    let source = "22507300001";
    app.funded(source, "XOF", "100000");
    let csv = |n: u32| format!("msisdn,amount\n2250730{n:04}1,100\n2250730{n:04}2,200\n");

    // The uploader (a maker) cannot approve; neither can a viewer; a checker can.
    let made = validated_job(&app, source, &csv(1));
    for user in ["maker", "viewer"] {
        let r = no_500(app.job_action(user, &made, "approve"));
        assert_eq!(r.status, 403, "{user}: {}", r.text);
    }
    let r = no_500(app.job_action("checker", &made, "approve"));
    assert_eq!((r.status, st(&r.body), r.body["approved_by"].as_str()), (200, "PROCESSING", Some("checker")));
    app.job_until(&made, "completion", |j| st(j) == "COMPLETED");
    for action in ["pause", "resume", "cancel", "approve"] {
        let r = no_500(app.job_action("admin", &made, action));
        assert_eq!((r.status, r.code()), (409, "INVALID_STATE"), "{action} a COMPLETED job: {}", r.text);
        assert_eq!(r.body["error"]["details"]["status"], "COMPLETED", "{}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap_or("").contains("COMPLETED"), "{}", r.text);
    }
    let r = no_500(app.job_action("checker", &made, "retry"));
    assert_eq!((r.status, r.code()), (409, "NOTHING_TO_RETRY"), "{}", r.text);

    // An admin who uploaded can neither approve nor reject it.
    let id = app.upload_job("admin", "payees.csv", csv(2).as_bytes(), &[("source_msisdn", source)]);
    assert_eq!(st(&app.job_validated(&id)), "AWAITING_APPROVAL");
    let r = no_500(app.job_action("admin", &id, "approve"));
    assert_eq!((r.status, r.code()), (403, "SELF_APPROVAL"), "{}", r.text);
    let r = no_500(app.post(&format!("/api/v1/bulk/jobs/{id}/reject/"), json!({"reason": "mine"})));
    assert_eq!((r.status, r.code()), (403, "SELF_APPROVAL"), "{}", r.text);
    let r = no_500(app.job_action("checker", &id, "approve"));
    assert_eq!(r.status, 200, "{}", r.text);

    // Reject by a checker: REJECTED, reason kept, no further action.
    let rejected = validated_job(&app, source, &csv(3));
    let r = no_500(app.job_action("checker", &rejected, "reject"));
    assert_eq!(r.status, 400, "reject needs a reason: {}", r.text);
    let path = format!("/api/v1/bulk/jobs/{rejected}/reject/");
    let r = no_500(app.post_as("checker", &path, json!({"reason": "wrong month"})));
    assert_eq!(
        (r.status, st(&r.body), r.body["reason"].as_str()),
        (200, "REJECTED", Some("wrong month")),
        "{}",
        r.text
    );
    for action in ["approve", "cancel", "resume"] {
        let r = no_500(app.job_action("checker", &rejected, action));
        assert_eq!((r.status, r.code()), (409, "INVALID_STATE"), "{action}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["status"], "REJECTED", "{}", r.text);
    }

    // Cancel before approval: only the uploader (or an admin).
    let cancelled = validated_job(&app, source, &csv(4));
    for user in ["maker2", "checker"] {
        let r = no_500(app.job_action(user, &cancelled, "cancel"));
        assert_eq!(r.status, 403, "{user} may not cancel another's unapproved job: {}", r.text);
    }
    for action in ["pause", "resume", "retry"] {
        let r = no_500(app.job_action("checker", &cancelled, action));
        assert_eq!((r.status, r.code()), (409, "INVALID_STATE"), "{action}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["status"], "AWAITING_APPROVAL", "{}", r.text);
    }
    let r = no_500(app.job_action("maker", &cancelled, "cancel"));
    assert_eq!((r.status, st(&r.body)), (200, "CANCELLED"), "{}", r.text);
    let r = no_500(app.job_action("checker", &cancelled, "approve"));
    assert_eq!(
        (r.status, r.code(), r.body["error"]["details"]["status"].as_str()),
        (409, "INVALID_STATE", Some("CANCELLED"))
    );
    let job = app.job_until(&cancelled, "items cancelled", |j| j["counts"]["CANCELLED"] == 2);
    assert_eq!(job["reserved_remaining"], "0", "{job}");

    // Approval that the wallet cannot fund: 422 with the shortfall, nothing changes.
    app.funded("22507300002", "XOF", "250");
    let poor = validated_job(&app, "22507300002", &csv(5));
    let r = no_500(app.job_action("checker", &poor, "approve"));
    assert_eq!((r.status, r.code()), (422, "INSUFFICIENT_FUNDS"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["shortfall"], "50", "{}", r.text);
    assert_eq!(st(&app.get(&format!("/api/v1/bulk/jobs/{poor}/")).body), "AWAITING_APPROVAL");
    let wallet = app.account("22507300002");
    assert_eq!((wallet["available"].as_str(), wallet["reserved"].as_str()), (Some("250"), Some("0")));

    // An action POST with no body and no Content-Type works.
    let bare = validated_job(&app, source, &csv(6));
    let r = no_500(app.post_raw(&format!("/api/v1/bulk/jobs/{bare}/cancel/"), "", "", &[]));
    assert_eq!((r.status, st(&r.body)), (200, "CANCELLED"), "{}", r.text);

    for (action, actor) in [("JOB_APPROVED", "checker"), ("JOB_REJECTED", "checker"), ("JOB_CANCELLED", "maker")] {
        let audit = app.get(&format!("/api/v1/audit/?action={action}")).body;
        let actors: Vec<&str> =
            audit["items"].as_array().expect("entries").iter().filter_map(|e| e["actor"].as_str()).collect();
        assert!(actors.contains(&actor), "{action} by {actor} audited: {audit}");
    }
    app.assert_invariants();
}

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn when_the_sdk_refuses_connections_the_breaker_pauses_the_job_and_resume_finishes_it_once_it_answers() {
    let port = free_port();
    let extra = vec![("MOJALOOP_SDK_URL", format!("http://127.0.0.1:{port}"))];
    let app = spawn_app_with(Options { extra, ..Options::default() });
    let source = "22507400001";
    app.funded(source, "XOF", "100000");
    let mut csv = String::from("msisdn,amount\n");
    for i in 0..40 {
        csv.push_str(&format!("2250740{i:04}1,{}\n", 100 + i));
    }
    let total: i64 = (0..40).map(|i| 100 + i).sum();
    let id = validated_job(&app, source, &csv);
    let r = no_500(app.job_action("checker", &id, "approve"));
    assert_eq!(r.status, 200, "{}", r.text);
    let job =
        app.job_until(&id, "the breaker to pause the job", |j| st(j) == "PAUSED" && j["counts"]["PROCESSING"] == 0);
    let reason = job["reason"].as_str().unwrap_or("");
    assert!(reason.contains("circuit breaker") && reason.contains("could not reach the SDK"), "{reason}");
    assert_eq!((job["counts"]["PENDING"].as_u64(), job["counts"]["FAILED"].as_u64()), (Some(40), Some(0)), "{job}");
    assert_eq!(units(&job["reserved_remaining"]), total, "{job}");
    let items = app.job_items(&id, None);
    assert!(items.iter().all(|i| st(i) == "PENDING"), "unsent items are PENDING again: {items:?}");
    let tried: Vec<&Value> = items.iter().filter(|i| i["attempts"].as_u64() > Some(0)).collect();
    assert!(tried.len() >= 5, "at least the breaker's 5 attempts: {items:?}");
    assert!(tried.iter().all(|i| i["error_code"] == "SDK_UNREACHABLE"), "{tried:?}");
    let payer = app.account(source);
    assert_eq!((units(&payer["available"]), units(&payer["reserved"])), (100_000 - total, total), "{payer}");
    app.assert_invariants();

    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let sim = simulator::spawn(addr, SimulatorConfig::default()).expect("simulator on the freed port");
    let r = no_500(app.job_action("maker", &id, "resume"));
    assert_eq!((r.status, st(&r.body)), (200, "PROCESSING"), "{}", r.text);
    let job = app.job_until(&id, "completion", |j| st(j) == "COMPLETED");
    assert_eq!((job["counts"]["COMPLETED"].as_u64(), job["reserved_remaining"].as_str()), (Some(40), Some("0")));
    let paid = app.sim_paid_at(&sim.url());
    assert_eq!(paid.len(), 40, "each line paid once");
    for item in app.job_items(&id, None) {
        let n = paid.iter().filter(|t| t["homeTransactionId"] == item["transfer_id"]).count();
        assert_eq!(n, 1, "{item}");
    }
    let payer = app.account(source);
    assert_eq!((units(&payer["available"]), units(&payer["reserved"])), (100_000 - total, 0), "{payer}");
    assert_eq!(units(&app.system_account("SYS:SETTLEMENT:XOF")["balance"]), total);
    app.assert_invariants();
}

/// Rows of a CSV download, header first.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn results_csv_has_a_row_per_line_and_errors_csv_fixed_and_uploaded_again_pays_only_those_rows() {
    let app = spawn_app();
    let source = "22507500001";
    app.funded(source, "XOF", "100000");
    // (msisdn, amount, name, expected status, error code)
    let lines = [
        ("22507500101", "100", "Awa", "COMPLETED", ""),
        ("22507500404", "110", "=cmd|' /C calc'!A0", "FAILED", "3204"),
        ("22507500102", "120", "Koffi, Jr", "COMPLETED", ""),
        ("22507500103", "13", "Ama", "FAILED", "5105"),
        ("22507500104", "abc", "Yao", "INVALID", "AMOUNT_FORMAT"),
        ("22507500105", "150", "Kouassi", "COMPLETED", ""),
        ("22507501404", "160", "Adjoua", "FAILED", "3204"),
        ("22507500106", "170", "", "COMPLETED", ""),
    ];
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["msisdn", "amount", "reference", "name"]).expect("header");
    for (i, (msisdn, amount, name, _, _)) in lines.iter().enumerate() {
        writer.write_record([*msisdn, *amount, &format!("R{i}"), *name]).expect("row");
    }
    let csv = writer.into_inner().expect("csv");
    let fields = [("source_msisdn", source), ("skip_invalid", "true")];
    let id = app.upload_job("maker", "payroll.csv", &csv, &fields);
    assert_eq!(st(&app.job_validated(&id)), "AWAITING_APPROVAL");
    assert_eq!(no_500(app.job_action("checker", &id, "approve")).status, 200);
    app.job_until(&id, "completion", |j| st(j) == "COMPLETED");

    let results = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/results.csv")));
    assert_eq!(results.status, 200, "{}", results.text);
    assert!(results.header("content-type").unwrap_or("").starts_with("text/csv"), "{:?}", results.headers);
    let rows = csv_rows(&results.text);
    let header = ["msisdn", "amount", "reference", "name", "status", "error_code", "error_message"];
    assert_eq!(rows[0][..7], header, "{}", results.text);
    assert_eq!(rows[0][7..], ["transfer_id", "sdk_transfer_id", "completed_at"]);
    assert_eq!(rows.len(), 1 + lines.len(), "one row per line: {}", results.text);
    let items = app.job_items(&id, None);
    for ((row, (msisdn, amount, name, status, code)), item) in rows[1..].iter().zip(&lines).zip(&items) {
        assert_eq!((row[0].as_str(), row[1].as_str()), (*msisdn, *amount), "{row:?}");
        let safe_name = if name.starts_with('=') { format!("'{name}") } else { (*name).to_owned() };
        assert_eq!(row[3], safe_name, "formula cells are neutralised: {row:?}");
        assert_eq!((row[4].as_str(), row[5].as_str()), (*status, *code), "{row:?}");
        assert_eq!(row[7], item["transfer_id"].as_str().unwrap_or(""), "{row:?}");
        let paid = *status == "COMPLETED";
        assert_eq!(!row[8].is_empty() && !row[9].is_empty(), paid, "sdk id and completion time when paid: {row:?}");
        assert_eq!(row[6].is_empty(), paid, "a message exactly when not paid: {row:?}");
    }

    let errors = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/errors.csv")));
    let rows = csv_rows(&errors.text);
    assert_eq!(rows[0], ["msisdn", "amount", "reference", "name"], "upload format: {}", errors.text);
    let want: Vec<&str> = lines.iter().filter(|l| l.3 != "COMPLETED").map(|l| l.0).collect();
    let got: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(got, want, "INVALID and FAILED rows only: {}", errors.text);

    // Fix the rows and upload them again: only they are paid.
    let paid_before = app.sim_paid();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&rows[0]).expect("header");
    for (n, row) in rows[1..].iter().enumerate() {
        let mut row = row.clone();
        if row[0].ends_with("404") {
            row[0] = format!("2250750090{n}");
        }
        if row[1] == "13" || row[1] == "abc" {
            row[1] = "15".into();
        }
        writer.write_record(&row).expect("row");
    }
    let fixed = writer.into_inner().expect("csv");
    let again = app.upload_job("maker", "errors-fixed.csv", &fixed, &[("source_msisdn", source)]);
    let job = app.job_validated(&again);
    assert_eq!(
        (st(&job), job["total_count"].as_u64(), job["total_amount"].as_str()),
        ("AWAITING_APPROVAL", Some(4), Some("300"))
    );
    assert_eq!(no_500(app.job_action("checker", &again, "approve")).status, 200);
    let job = app.job_until(&again, "completion", |j| st(j) == "COMPLETED");
    assert_eq!(job["counts"]["COMPLETED"], 4, "{job}");
    let paid_after = app.sim_paid();
    assert_eq!(paid_after.len(), paid_before.len() + 4, "only the fixed rows were paid");
    let new_ids: Vec<&Value> = paid_after.iter().skip(paid_before.len()).map(|t| &t["homeTransactionId"]).collect();
    for item in app.job_items(&again, None) {
        assert_eq!(new_ids.iter().filter(|t| ***t == item["transfer_id"]).count(), 1, "{item}");
    }
    let payer = app.account(source);
    assert_eq!((payer["available"].as_str(), payer["reserved"].as_str()), (Some("99160"), Some("0")), "{payer}");
    app.assert_invariants();
}
