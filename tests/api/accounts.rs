//! Wallets: create, get, list/search, freeze/unfreeze, system accounts; HTTP basics.

use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, Options};

#[test]
fn a_wallet_is_created_once_and_read_back() {
    let app = spawn_app();
    let a = app.wallet("+225 07 00 00 01", "XOF");
    assert_eq!(a["msisdn"], "22507000001");
    assert_eq!((a["status"].as_str(), a["balance"].as_str()), (Some("ACTIVE"), Some("0")));
    let r = app.post("/api/v1/accounts", json!({"msisdn": "22507000001", "currency": "XOF"}));
    assert_eq!((r.status, r.code()), (409, "ACCOUNT_EXISTS"));
    assert_eq!(app.get("/api/v1/accounts/22507000001").status, 200);
    assert_eq!(app.get("/api/v1/accounts/%2B22507000001/").status, 200);
    let r = app.get("/api/v1/accounts/22507000099/");
    assert_eq!((r.status, r.code()), (404, "ACCOUNT_NOT_FOUND"));
    let sys = app.get("/api/v1/system-accounts/");
    let names: Vec<_> = sys.body["items"].as_array().expect("items").iter().map(|a| a["account"].clone()).collect();
    assert_eq!(names, vec![json!("SYS:CASH:XOF"), json!("SYS:SETTLEMENT:XOF")]);
    // Paged like every list.
    let first = app.get("/api/v1/system-accounts/?limit=1");
    assert_eq!(first.body["items"][0]["account"], "SYS:CASH:XOF", "{}", first.text);
    let cursor = first.body["next_cursor"].as_str().expect("a second page");
    let second = app.get(&format!("/api/v1/system-accounts/?limit=1&cursor={cursor}"));
    assert_eq!(second.body["items"][0]["account"], "SYS:SETTLEMENT:XOF", "{}", second.text);
    assert_eq!(second.body["next_cursor"], Value::Null);
    for bad in ["?cursor=22507000001", "?cursor=SYS:CASH:QQQ", "?limit=0"] {
        let r = app.get(&format!("/api/v1/system-accounts/{bad}"));
        assert_eq!((r.status, r.code()), (400, "INVALID_PARAMETER"), "{bad}: {}", r.text);
    }
}

#[test]
fn wallets_are_listed_newest_first_and_searchable() {
    let app = spawn_app();
    for (m, name) in [("22507000001", "Awa Koné"), ("22507000002", "Kouassi Yao"), ("15550000001", "Maria Jones")] {
        let r = app.post("/api/v1/accounts/", json!({"msisdn": m, "currency": "XOF", "display_name": name}));
        assert_eq!(r.status, 201);
    }
    let r = app.get("/api/v1/accounts/?limit=2");
    let ids: Vec<_> = r.body["items"].as_array().expect("items").iter().map(|a| a["msisdn"].clone()).collect();
    assert_eq!(ids, vec![json!("15550000001"), json!("22507000002")]);
    let next = r.body["next_cursor"].as_str().expect("cursor");
    let r = app.get(&format!("/api/v1/accounts/?limit=2&cursor={next}"));
    assert_eq!(r.body["items"][0]["msisdn"], "22507000001");
    assert_eq!(r.body["next_cursor"], serde_json::Value::Null);
    let r = app.get("/api/v1/accounts/?q=kon%C3%A9");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let r = app.get("/api/v1/accounts/?q=2250700");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.get("/api/v1/accounts/?limit=501").code(), "INVALID_PARAMETER");
    assert_eq!(app.get("/api/v1/accounts/?colour=red").code(), "UNKNOWN_PARAMETER");
}

#[test]
fn a_frozen_wallet_neither_sends_nor_receives_until_unfrozen() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.funded("22507000002", "XOF", "1000");
    let r = app.post("/api/v1/accounts/22507000001/freeze/", json!({"reason": "fraud check"}));
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("FROZEN")));
    assert_eq!(app.post("/api/v1/accounts/22507000001/freeze", json!({"reason": "again"})).code(), "INVALID_STATE");
    for r in [
        app.send("22507000001", "22507000002", "1"),
        app.send("22507000002", "22507000001", "1"),
        app.post("/api/v1/accounts/22507000001/deposit/", json!({"amount": "1"})),
        app.post("/api/v1/accounts/22507000001/withdraw/", json!({"amount": "1"})),
    ] {
        assert_eq!((r.status, r.code()), (422, "ACCOUNT_FROZEN"), "{}", r.text);
    }
    assert_eq!(app.post("/api/v1/accounts/22507000001/unfreeze/", json!({"reason": "cleared"})).status, 200);
    assert_eq!(app.send("22507000001", "22507000002", "1").status, 201);
    let r = app.post("/api/v1/accounts/22507000001/freeze/", json!({"reason": " "}));
    assert_eq!((r.status, r.code()), (400, "REASON_REQUIRED"));
}

#[test]
fn every_response_has_a_request_id_and_api_responses_are_not_cached() {
    let app = spawn_app();
    let r = app.get("/api/v1/accounts/");
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let r = app.get("/nowhere");
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    assert!(r.header("x-request-id").is_some());
    assert_eq!(app.get("/healthz").status, 200);
    let ready = app.get("/readyz");
    assert_eq!((ready.status, ready.body["ready"].as_bool()), (200, Some(true)));
}

#[test]
fn cors_allows_exactly_the_configured_origins() {
    let app = spawn_app_with(Options {
        extra: vec![("CORS_ALLOWED_ORIGINS", "https://admin.example.com".into())],
        ..Options::default()
    });
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let preflight = |origin: &str| {
        agent
            .options(&app.url("/api/v1/transfers/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, idempotency-key")
            .call()
            .expect("exchange")
    };
    let ok = preflight("https://admin.example.com");
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(
        ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://admin.example.com")
    );
    let allow_headers = ok.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(allow_headers.contains("idempotency-key") && allow_headers.contains("authorization"));
    let denied = preflight("https://evil.example.com");
    assert_eq!(denied.status().as_u16(), 403);
    assert!(denied.headers().get("access-control-allow-origin").is_none());
    let get =
        agent.get(&app.url("/api/v1/accounts/")).header("origin", "https://admin.example.com").call().expect("get");
    let expose = get.headers().get("access-control-expose-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(
        expose.contains("x-request-id") && expose.contains("idempotent-replayed") && expose.contains("retry-after")
    );
}
