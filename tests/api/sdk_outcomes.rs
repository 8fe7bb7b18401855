//! Every simulator trigger ends as SPEC §4's table says; each accept mode completes.

use std::time::Duration;

use serde_json::Value;
use sysgp::sdk::simulator::Accept;

use crate::support::{spawn_app, spawn_app_with, Options, TestApp};

fn send_and_check(app: &TestApp, to: &str, amount: &str, status: &str, code: Option<&str>, retryable: bool) -> Value {
    let r = app.send("22507000001", to, amount);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], status, "{to} {amount}: {}", r.text);
    assert_eq!(r.body["error_code"].as_str(), code, "{to} {amount}: {}", r.text);
    assert_eq!(r.body["retryable"], retryable, "{to} {amount}");
    r.body
}

#[test]
fn business_failures_void_the_reservation() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "100000");
    let t = send_and_check(&app, "22500000404", "100", "FAILED", Some("3204"), false);
    assert_eq!(t["error_message"], "Party not found");
    send_and_check(&app, "22500000777", "13", "FAILED", Some("5105"), false);
    send_and_check(&app, "22500000777", "666", "FAILED", Some("5103"), false);
    send_and_check(&app, "22500000777", "4001", "FAILED", Some("4001"), true);
    let t = send_and_check(&app, "22500000408", "100", "FAILED", Some("SDK_TIMEOUT_PARTY"), true);
    assert!(t["error_message"].as_str().is_some_and(|m| m.starts_with("Timeout resolving payee")));
    let a = app.account("22507000001");
    assert_eq!(
        (a["available"].as_str(), a["reserved"].as_str()),
        (Some("100000"), Some("0")),
        "every failure gave the money back"
    );
    assert!(app.sim_paid().is_empty());
    assert_eq!(app.system_account("SYS:SETTLEMENT:XOF")["balance"], "0");
    app.assert_invariants();
}

#[test]
fn a_fulfil_timeout_is_in_doubt_with_funds_reserved_then_reconciled_once() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let t = send_and_check(&app, "22500000777", "408", "IN_DOUBT", Some("SDK_OUTCOME_UNKNOWN"), false);
    let id = t["transfer_id"].as_str().expect("id").to_owned();
    assert!(t["sdk_transfer_id"].as_str().is_some(), "the 504 body carried the SDK transfer id");
    let a = app.account("22507000001");
    assert_eq!(
        (a["available"].as_str(), a["reserved"].as_str(), a["balance"].as_str()),
        (Some("592"), Some("408"), Some("1000"))
    );
    app.assert_invariants();
    // Reconciliation asks the hub 5 s after the doubt began.
    let settled = app.eventually(Duration::from_secs(30), "reconciliation", || {
        let t = app.transfer(&id);
        (t["status"] != "IN_DOUBT").then_some(t)
    });
    assert_eq!(settled["status"], "COMPLETED");
    assert_eq!(settled["error_code"], Value::Null);
    let a = app.account("22507000001");
    assert_eq!(
        (a["available"].as_str(), a["reserved"].as_str(), a["balance"].as_str()),
        (Some("592"), Some("0"), Some("592"))
    );
    assert_eq!(app.system_account("SYS:SETTLEMENT:XOF")["balance"], "408");
    assert_eq!(app.times_paid(&id), 1);
    app.assert_invariants();
}

#[test]
fn each_accept_mode_completes() {
    for (accept, mode) in [
        (Accept::None, "auto"),
        (Accept::Party, "accept_party"),
        (Accept::Quote, "accept_quote"),
        (Accept::Both, "accept_quote"),
    ] {
        let app = spawn_app_with(Options { accept, sdk_mode: mode, ..Options::default() });
        app.funded("22507000001", "XOF", "1000");
        let r = app.send("22507000001", "22500000777", "250");
        assert_eq!(r.body["status"], "COMPLETED", "{accept:?}/{mode}: {}", r.text);
        let id = r.body["transfer_id"].as_str().expect("id");
        assert_eq!(app.times_paid(id), 1, "{accept:?}/{mode}");
        if mode == "accept_quote" {
            assert_eq!(r.body["quote"]["transfer_amount"]["amount"], "250", "the accepted quote is kept");
        }
        app.assert_invariants();
    }
}

#[test]
fn a_mode_the_sdk_contradicts_fails_without_paying() {
    let app = spawn_app_with(Options { accept: Accept::Quote, sdk_mode: "auto", ..Options::default() });
    app.funded("22507000001", "XOF", "1000");
    let r = app.send("22507000001", "22500000777", "250");
    assert_eq!(
        (r.body["status"].as_str(), r.body["error_code"].as_str()),
        (Some("FAILED"), Some("SDK_MODE_MISMATCH")),
        "{}",
        r.text
    );
    assert!(app.sim_paid().is_empty());
    assert_eq!(app.account("22507000001")["available"], "1000");
    let ready = app.get("/readyz");
    assert!(ready.body["sdk"]["error"].as_str().is_some_and(|e| e.contains("SDK_MODE_MISMATCH")), "{}", ready.text);
}

/// The SDK auto-accepts while sysgp expects to accept the quote: its first reply already
/// shows the transfer stage. What it says moved is booked as moved, never released.
#[test]
fn a_reply_showing_the_transfer_stage_before_the_final_call_is_never_released() {
    let app = spawn_app_with(Options { accept: Accept::None, sdk_mode: "accept_quote", ..Options::default() });
    app.funded("22507000001", "XOF", "1000");
    let paid = send_and_check(&app, "22500000777", "250", "COMPLETED", None, false);
    assert_eq!(app.times_paid(paid["transfer_id"].as_str().expect("id")), 1);
    // Amount 408: a 504 after the simulator committed, with the prepare in the body.
    let t = send_and_check(&app, "22500000777", "408", "IN_DOUBT", Some("SDK_OUTCOME_UNKNOWN"), false);
    let id = t["transfer_id"].as_str().expect("id").to_owned();
    assert!(t["sdk_transfer_id"].as_str().is_some(), "{t}");
    assert_eq!(app.account("22507000001")["reserved"], "408", "the money stays reserved");
    let ready = app.get("/readyz");
    assert!(ready.body["sdk"]["error"].as_str().is_some_and(|e| e.contains("SDK_MODE_MISMATCH")), "{}", ready.text);
    let settled = app.eventually(Duration::from_secs(30), "reconciliation", || {
        let t = app.transfer(&id);
        (t["status"] != "IN_DOUBT").then_some(t)
    });
    assert_eq!(settled["status"], "COMPLETED", "the hub committed it");
    assert_eq!(app.times_paid(&id), 1);
    let a = app.account("22507000001");
    assert_eq!((a["balance"].as_str(), a["reserved"].as_str()), (Some("342"), Some("0")));
    app.assert_invariants();
}

#[test]
fn an_unreachable_sdk_fails_retryably_and_moves_nothing() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    // Point the app at a closed port.
    let app2 = spawn_app_with(Options {
        extra: vec![("MOJALOOP_SDK_URL", format!("http://127.0.0.1:{port}"))],
        ..Options::default()
    });
    app2.funded("22507000001", "XOF", "1000");
    let r = app2.send("22507000001", "22500000777", "100");
    assert_eq!(
        (r.body["status"].as_str(), r.body["error_code"].as_str()),
        (Some("FAILED"), Some("SDK_UNREACHABLE")),
        "{}",
        r.text
    );
    assert_eq!(r.body["retryable"], true);
    assert_eq!(app2.account("22507000001")["available"], "1000");
    app2.assert_invariants();
}

#[test]
fn an_in_doubt_transfer_is_resolved_by_asking_the_hub() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let t = app.send("22507000001", "22500000777", "408").body;
    let id = t["transfer_id"].as_str().expect("id");
    let sdk_id = t["sdk_transfer_id"].as_str().expect("sdk id");
    let r = app.post(
        &format!("/api/v1/transfers/{id}/resolve/"),
        serde_json::json!({"outcome": "FAILED", "reason": "customer says no"}),
    );
    assert_eq!((r.status, r.code()), (409, "RESOLVE_CONTRADICTS_HUB"), "the hub committed it: {}", r.text);
    let r = app.post(
        &format!("/api/v1/transfers/{id}/resolve/"),
        serde_json::json!({"sdk_transfer_id": sdk_id, "reason": "checked with the hub"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "COMPLETED");
    assert_eq!(r.body["resolution"]["reason"], "checked with the hub");
    let r = app.post(
        &format!("/api/v1/transfers/{id}/resolve/"),
        serde_json::json!({"outcome": "COMPLETED", "reason": "again"}),
    );
    assert_eq!((r.status, r.code()), (409, "INVALID_STATE"));
    assert_eq!(app.account("22507000001")["balance"], "592");
    app.assert_invariants();
}

/// An operator cannot settle a transfer that has an SDK id without the hub's word, nor
/// with another SDK transfer's id.
#[test]
fn an_operator_cannot_settle_a_transfer_with_an_sdk_id_blind_or_with_another_id() {
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let a = send_and_check(&app, "22500000777", "408", "IN_DOUBT", Some("SDK_OUTCOME_UNKNOWN"), false);
    let b = send_and_check(&app, "22500000778", "408", "IN_DOUBT", Some("SDK_OUTCOME_UNKNOWN"), false);
    // The SDK goes away before reconciliation could settle them.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    app.restart_with(&[("MOJALOOP_SDK_URL", &dead_url)]).expect("restart");
    let path = format!("/api/v1/transfers/{}/resolve/", a["transfer_id"].as_str().expect("id"));
    let r = app.post(&path, serde_json::json!({"sdk_transfer_id": b["sdk_transfer_id"], "reason": "wrong id"}));
    assert_eq!((r.status, r.code()), (409, "SDK_TRANSFER_ID_MISMATCH"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["sdk_transfer_id"], a["sdk_transfer_id"]);
    for outcome in ["FAILED", "COMPLETED"] {
        let r = app.post(&path, serde_json::json!({"outcome": outcome, "reason": "the SDK is down"}));
        assert_eq!((r.status, r.code()), (503, "SDK_UNAVAILABLE"), "{outcome}: {}", r.text);
    }
    let t = app.transfer(a["transfer_id"].as_str().expect("id"));
    assert_eq!(t["status"], "IN_DOUBT", "nothing was settled");
    let w = app.account("22507000001");
    assert_eq!((w["balance"].as_str(), w["reserved"].as_str()), (Some("1000"), Some("816")));
    app.assert_invariants();
}
