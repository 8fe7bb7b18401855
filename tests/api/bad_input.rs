//! Bad input of every kind gets a 4xx with the right code, never a 500, and changes nothing.

use serde_json::json;

use crate::support::{spawn_app, TestApp};

fn snapshot(app: &TestApp) -> (String, String, usize) {
    let a = app.account("22507000001")["balance"].to_string();
    let b = app.account("22507000002")["balance"].to_string();
    let n = app.get("/api/v1/transfers/?limit=500").body["items"].as_array().map(Vec::len).unwrap_or(0);
    (a, b, n)
}

fn p2p_raw(amount: serde_json::Value) -> serde_json::Value {
    json!({"sender_msisdn": "22507000001", "receiver_msisdn": "22507000002", "amount": amount})
}

#[test]
fn malformed_bodies_are_400_and_change_nothing() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    let before = snapshot(&app);
    let cases: Vec<(&str, &str, u16, &str)> = vec![
        ("{", "application/json", 400, "MALFORMED_JSON"),
        ("", "application/json", 400, "MALFORMED_JSON"),
        ("[1,2]", "application/json", 400, "INVALID_BODY"),
        ("null", "application/json", 400, "INVALID_BODY"),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":"1"} trailing"#,
            "application/json",
            400,
            "MALFORMED_JSON",
        ),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":"1","fee":"1"}"#,
            "application/json",
            400,
            "UNKNOWN_FIELD",
        ),
        (r#"{"sender_msisdn":"22507000001","amount":"1"}"#, "application/json", 400, "MISSING_FIELD"),
        (
            r#"{"sender_msisdn":22507000001,"receiver_msisdn":"22507000002","amount":"1"}"#,
            "application/json",
            400,
            "INVALID_FIELD",
        ),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":true}"#,
            "application/json",
            400,
            "INVALID_FIELD",
        ),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":{"v":1}}"#,
            "application/json",
            400,
            "INVALID_FIELD",
        ),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":"1","note":5}"#,
            "application/json",
            400,
            "INVALID_FIELD",
        ),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":"1"}"#,
            "text/plain",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":"1"}"#,
            "",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ("\u{feff}{}", "application/json", 400, "MALFORMED_JSON"),
    ];
    for (body, content_type, status, code) in cases {
        let r = app.post_raw("/api/v1/transfers/", body, content_type, &[]);
        assert_eq!((r.status, r.code()), (status, code), "{body:?}: {}", r.text);
    }
    assert_eq!(snapshot(&app), before);
}

#[test]
fn every_lenient_amount_form_is_refused() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    let before = snapshot(&app);
    for text in ["1e3", "1E3", "1_000", "+5", "-5", ".5", "5.", "0012", "1,5", " 1", "1 ", "١٢", "0x10", "", "1.2.3"]
    {
        let r = app.post("/api/v1/transfers/", p2p_raw(json!(text)));
        assert_eq!((r.status, r.code()), (400, "AMOUNT_FORMAT"), "{text:?}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["field"], "amount");
    }
    for raw in ["1e3", "-5", "1.5e2"] {
        let body = format!(r#"{{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":{raw}}}"#);
        let r = app.post_raw("/api/v1/transfers/", &body, "application/json", &[]);
        assert_eq!((r.status, r.code()), (400, "AMOUNT_FORMAT"), "number {raw}: {}", r.text);
    }
    let cases = [
        ("1.234", 400, "TOO_MANY_DECIMALS"),
        ("0.5", 400, "TOO_MANY_DECIMALS"),
        ("0", 400, "AMOUNT_ZERO"),
        ("0.000", 400, "AMOUNT_ZERO"),
        ("1000000000001", 422, "AMOUNT_TOO_LARGE"),
    ];
    for (text, status, code) in cases {
        let r = app.post("/api/v1/transfers/", p2p_raw(json!(text)));
        assert_eq!((r.status, r.code()), (status, code), "{text:?}: {}", r.text);
    }
    assert_eq!(snapshot(&app), before);
    let r = app.post_raw(
        "/api/v1/transfers/",
        r#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":7}"#,
        "application/json",
        &[],
    );
    assert_eq!(r.status, 201, "an integer JSON number is taken by its text: {}", r.text);
}

#[test]
fn bad_numbers_currencies_and_parties_are_refused() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    app.funded("15550000001", "USD", "10");
    let before = snapshot(&app);
    let send = |from: &str, to: &str, extra: serde_json::Value| {
        let mut body = json!({"sender_msisdn": from, "receiver_msisdn": to, "amount": "1"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        app.post("/api/v1/transfers/", body)
    };
    let cases = [
        (send("0225070000", "22507000002", json!({})), 400, "MSISDN_FORMAT"),
        (send("22507000001", "2250700000a", json!({})), 400, "MSISDN_FORMAT"),
        (send("22507000001", "2.25e10", json!({})), 400, "MSISDN_FORMAT"),
        (send("22507000001", "22507000002", json!({"currency": "xof"})), 400, "CURRENCY_UNKNOWN"),
        (send("22507000001", "22507000002", json!({"currency": "XXX"})), 400, "CURRENCY_UNKNOWN"),
        (send("22507000001", "22507000002", json!({"currency": "USD"})), 422, "CURRENCY_MISMATCH"),
        (send("22507000001", "15550000001", json!({})), 422, "CURRENCY_MISMATCH"),
        (send("22507000009", "22507000002", json!({})), 422, "ACCOUNT_NOT_FOUND"),
        (send("22507000001", "22507000001", json!({})), 422, "SAME_ACCOUNT"),
        (send("22507000001", "22507000002", json!({"amount": "5000"})), 422, "INSUFFICIENT_FUNDS"),
        (send("22507000001", "22507000002", json!({"note": "x".repeat(129)})), 400, "NOTE_TOO_LONG"),
        (send("22507000001", "22507000002", json!({"transfer_id": "not-a-uuid"})), 400, "TRANSFER_ID_FORMAT"),
    ];
    for (r, status, code) in cases {
        assert_eq!((r.status, r.code()), (status, code), "{}", r.text);
    }
    let r = app.post("/api/v1/accounts/", json!({"msisdn": "22507000003", "currency": "XTS"}));
    assert_eq!((r.status, r.code()), (400, "CURRENCY_UNKNOWN"));
    let r = app.post("/api/v1/accounts/", json!({"msisdn": "12345", "currency": "XOF"}));
    assert_eq!((r.status, r.code()), (400, "MSISDN_FORMAT"));
    assert_eq!(snapshot(&app), before);
    let emoji_note = "🙂".repeat(64);
    assert_eq!(
        send("22507000001", "22507000002", json!({"note": emoji_note})).status,
        201,
        "64 emoji are 128 UTF-16 units"
    );
}

#[test]
fn oversized_bodies_are_413_and_wrong_methods_405() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let big = format!(
        r#"{{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":"1","note":"{}"}}"#,
        "x".repeat(70_000)
    );
    let r = app.post_raw("/api/v1/transfers/", &big, "application/json", &[]);
    assert_eq!((r.status, r.code()), (413, "BODY_TOO_LARGE"));
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let r = agent.delete(&app.url("/api/v1/transfers/")).call().expect("exchange");
    assert_eq!(r.status().as_u16(), 405);
    let allow = r.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(allow.contains("GET") && allow.contains("HEAD") && allow.contains("POST"), "{allow}");
    // HEAD is GET without a body: the admin page and the API's readable routes.
    let page = agent.head(&app.url("/")).call().expect("exchange");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/html")));
    let (_, body) = page.into_parts();
    assert!(body.into_with_config().read_to_vec().expect("body").is_empty(), "a HEAD reply has no body");
    assert_eq!(agent.head(&app.url("/healthz")).call().expect("exchange").status().as_u16(), 200);
    // A malformed id is a malformed request; a well-formed unknown one is not found.
    for path in ["/api/v1/transfers/not-a-uuid/", "/api/v1/adjustments/zzz/"] {
        let r = app.get(path);
        assert_eq!((r.status, r.code()), (400, "ID_FORMAT"), "{path}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["field"], "id");
    }
    let r = app.post("/api/v1/transfers/zzz/resolve/", serde_json::json!({"outcome": "FAILED", "reason": "x"}));
    assert_eq!((r.status, r.code()), (400, "ID_FORMAT"), "{}", r.text);
    let r = app.get("/api/v1/transfers/0b7e7a34-5a0e-4c57-9d7c-2f0c8a4b9c11/");
    assert_eq!((r.status, r.code()), (404, "TRANSFER_NOT_FOUND"));
    assert!(r.body["error"]["details"].is_object(), "details are always present: {}", r.text);
    assert_eq!(app.account("22507000001")["balance"], "1000");
}
