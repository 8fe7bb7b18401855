//! Idempotency of money POSTs, every case of SPEC §3.

use serde_json::json;
use sysgp::sdk::simulator::Accept;

use crate::support::{spawn_app, spawn_app_with, Options};

fn p2p(to: &str, amount: &str) -> serde_json::Value {
    json!({"sender_msisdn": "22507000001", "receiver_msisdn": to, "amount": amount})
}

#[test]
fn same_key_same_body_replays_the_first_reply_and_pays_once() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let first = app.post_with("/api/v1/transfers/", p2p("22500000777", "100"), &[("idempotency-key", "k-1")]);
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app.post_with("/api/v1/transfers/", p2p("+225 00-00-07-77", "100.0"), &[("idempotency-key", "k-1")]);
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["transfer_id"], first.body["transfer_id"]);
    assert_eq!(again.body["status"], "COMPLETED");
    assert_eq!(app.sim_paid().len(), 1, "the simulator shows one payment");
    assert_eq!(app.account("22507000001")["balance"], "900");
}

#[test]
fn same_key_other_body_is_a_conflict() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    assert_eq!(app.post_with("/api/v1/transfers/", p2p("22507000002", "100"), &[("idempotency-key", "k")]).status, 201);
    let r = app.post_with("/api/v1/transfers/", p2p("22507000002", "101"), &[("idempotency-key", "k")]);
    assert_eq!((r.status, r.code()), (409, "IDEMPOTENCY_KEY_REUSED"));
    let r =
        app.post_with("/api/v1/accounts/22507000001/deposit/", json!({"amount": "100"}), &[("idempotency-key", "k")]);
    assert_eq!(
        (r.status, r.code()),
        (409, "IDEMPOTENCY_KEY_REUSED"),
        "a key is bound to one request, whatever the route"
    );
    assert_eq!(app.account("22507000002")["balance"], "100");
}

#[test]
fn a_parallel_duplicate_is_told_to_retry() {
    let app = spawn_app_with(Options { latency_ms: 400, ..Options::default() });
    app.funded("22507000001", "XOF", "1000");
    let (a, b) = std::thread::scope(|s| {
        let first =
            s.spawn(|| app.post_with("/api/v1/transfers/", p2p("22500000777", "100"), &[("idempotency-key", "dup")]));
        // The first request holds the key while the SDK call (400 ms) runs.
        app.eventually(std::time::Duration::from_secs(5), "the first request to reserve", || {
            (app.account("22507000001")["reserved"] == "100").then_some(())
        });
        let second = app.post_with("/api/v1/transfers/", p2p("22500000777", "100"), &[("idempotency-key", "dup")]);
        (first.join().expect("thread"), second)
    });
    assert_eq!(a.status, 201);
    assert_eq!((b.status, b.code()), (409, "IDEMPOTENCY_IN_PROGRESS"), "{}", b.text);
    assert_eq!(b.header("retry-after"), Some("1"));
    assert_eq!(app.sim_paid().len(), 1);
    let replay = app.post_with("/api/v1/transfers/", p2p("22500000777", "100"), &[("idempotency-key", "dup")]);
    assert_eq!((replay.status, replay.header("idempotent-replayed")), (201, Some("true")));
}

#[test]
fn a_business_rejection_replays_as_422_and_a_malformed_request_is_not_stored() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "10");
    app.wallet("22507000002", "XOF");
    let first = app.post_with("/api/v1/transfers/", p2p("22507000002", "100"), &[("idempotency-key", "poor")]);
    assert_eq!((first.status, first.code()), (422, "INSUFFICIENT_FUNDS"));
    app.post("/api/v1/accounts/22507000001/deposit/", json!({"amount": "1000"}));
    let again = app.post_with("/api/v1/transfers/", p2p("22507000002", "100"), &[("idempotency-key", "poor")]);
    assert_eq!((again.status, again.code()), (422, "INSUFFICIENT_FUNDS"), "replayed, not re-evaluated");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let bad = app.post_with("/api/v1/transfers/", p2p("22507000002", "1e3"), &[("idempotency-key", "fresh")]);
    assert_eq!((bad.status, bad.code()), (400, "AMOUNT_FORMAT"));
    let fixed = app.post_with("/api/v1/transfers/", p2p("22507000002", "100"), &[("idempotency-key", "fresh")]);
    assert_eq!(fixed.status, 201, "a 400 does not bind the key: {}", fixed.text);
}

#[test]
fn a_client_transfer_id_is_idempotent_forever() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let id = "0b7f6a6e-4b7e-4c1e-9a39-2f1d7f0e9c11";
    let mut body = p2p("22500000777", "100");
    body["transfer_id"] = json!(id);
    let first = app.post("/api/v1/transfers/", body.clone());
    assert_eq!((first.status, first.body["transfer_id"].as_str()), (201, Some(id)));
    let again = app.post("/api/v1/transfers/", body.clone());
    assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")));
    body["amount"] = json!("200");
    let other = app.post("/api/v1/transfers/", body);
    assert_eq!((other.status, other.code()), (409, "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(app.times_paid(id), 1);
}

#[test]
fn keys_are_checked_for_format() {
    let app = spawn_app_with(Options { accept: Accept::None, ..Options::default() });
    app.funded("22507000001", "XOF", "1000");
    let long = "x".repeat(256);
    for key in [long.as_str(), "has space"] {
        let r = app.post_with("/api/v1/transfers/", p2p("22500000777", "1"), &[("idempotency-key", key)]);
        assert_eq!((r.status, r.code()), (400, "IDEMPOTENCY_KEY_FORMAT"));
    }
}
