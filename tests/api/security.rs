//! SPEC §7: the role matrix over every route, login throttling, sessions, the audit
//! chain against tampering, maker-checker, and secrets kept out of the logs.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use sysgp::http::router::ROUTES;

use crate::support::{captured_logs, spawn_app, spawn_app_with, Options, TestApp, PASSWORD, SECRET};

/// Who may call each route: "public", or the roles among viewer/maker/checker/admin.
/// Written independently of the product's table: a route missing here fails the test.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "public"),
    ("GET", "/readyz", "public"),
    ("GET", "/metrics", "public"),
    ("GET", "/", "public"),
    ("GET", "/static/{file}", "public"),
    ("GET", "/api/v1/openapi.json", "public"),
    ("POST", "/api/v1/auth/login/", "public"),
    ("POST", "/api/v1/auth/logout/", "viewer maker checker admin"),
    ("GET", "/api/v1/auth/me/", "viewer maker checker admin"),
    ("POST", "/api/v1/auth/password/", "viewer maker checker admin"),
    ("POST", "/api/v1/accounts/", "maker admin"),
    ("GET", "/api/v1/accounts/", "viewer maker checker admin"),
    ("GET", "/api/v1/accounts/{msisdn}/", "viewer maker checker admin"),
    ("POST", "/api/v1/accounts/{msisdn}/freeze/", "checker admin"),
    ("POST", "/api/v1/accounts/{msisdn}/unfreeze/", "checker admin"),
    ("POST", "/api/v1/accounts/{msisdn}/deposit/", "maker admin"),
    ("POST", "/api/v1/accounts/{msisdn}/withdraw/", "maker admin"),
    ("GET", "/api/v1/accounts/{msisdn}/transfers/", "viewer maker checker admin"),
    ("GET", "/api/v1/system-accounts/", "viewer maker checker admin"),
    ("GET", "/api/v1/config-warnings/", "viewer maker checker admin"),
    ("POST", "/api/v1/transfers/", "maker admin"),
    ("GET", "/api/v1/transfers/", "viewer maker checker admin"),
    ("GET", "/api/v1/transfers/{id}/", "viewer maker checker admin"),
    ("POST", "/api/v1/transfers/{id}/resolve/", "checker admin"),
    ("POST", "/api/v1/transfers/{id}/approve/", "checker admin"),
    ("POST", "/api/v1/transfers/{id}/reject/", "checker admin"),
    ("POST", "/api/v1/adjustments/", "maker admin"),
    ("GET", "/api/v1/adjustments/", "viewer maker checker admin"),
    ("GET", "/api/v1/adjustments/{id}/", "viewer maker checker admin"),
    ("POST", "/api/v1/adjustments/{id}/approve/", "checker admin"),
    ("POST", "/api/v1/adjustments/{id}/reject/", "checker admin"),
    ("GET", "/api/v1/users/", "admin"),
    ("POST", "/api/v1/users/", "admin"),
    ("POST", "/api/v1/users/{username}/role/", "admin"),
    ("POST", "/api/v1/users/{username}/disable/", "admin"),
    ("POST", "/api/v1/users/{username}/enable/", "admin"),
    ("POST", "/api/v1/users/{username}/password/", "admin"),
    ("GET", "/api/v1/audit/", "admin"),
    ("GET", "/api/v1/audit/verify/", "admin"),
    ("POST", "/api/v1/bulk/upload/", "maker admin"),
    ("GET", "/api/v1/bulk/jobs/", "viewer maker checker admin"),
    ("GET", "/api/v1/bulk/jobs/{id}/", "viewer maker checker admin"),
    ("GET", "/api/v1/bulk/jobs/{id}/items/", "viewer maker checker admin"),
    ("GET", "/api/v1/bulk/jobs/{id}/report/", "viewer maker checker admin"),
    ("GET", "/api/v1/bulk/jobs/{id}/results.csv", "viewer maker checker admin"),
    ("GET", "/api/v1/bulk/jobs/{id}/errors.csv", "viewer maker checker admin"),
    ("GET", "/api/v1/bulk/jobs/{id}/events", "viewer maker checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/approve/", "checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/reject/", "checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/pause/", "maker checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/resume/", "maker checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/cancel/", "maker checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/retry/", "checker admin"),
    ("POST", "/api/v1/bulk/jobs/{id}/items/{line}/resolve/", "checker admin"),
];

const ROLES: [&str; 4] = ["viewer", "maker", "checker", "admin"];

fn concrete(pattern: &str) -> String {
    pattern
        .replace("{msisdn}", "22507000001")
        .replace("{id}", "7d2b1a3e-2a43-4f7e-9d35-7e0c1c8f4b11")
        .replace("{username}", "nobody")
        .replace("{line}", "2")
        .replace("{file}", "app.js")
}

fn call(app: &TestApp, method: &str, path: &str, token: &str) -> u16 {
    match method {
        "GET" => app.get_token(token, path).status,
        _ => app.post_token(token, path, json!({})).status,
    }
}

#[test]
fn every_route_answers_each_role_exactly_as_the_table_says() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "100");
    let expected: HashMap<(&str, &str), &str> = EXPECTED.iter().map(|(m, p, r)| ((*m, *p), *r)).collect();
    for route in ROUTES {
        let rule = expected.get(&(route.method, route.pattern)).unwrap_or_else(|| {
            panic!("{} {} has no rule in this test's table: decide who may call it", route.method, route.pattern)
        });
        let path = concrete(route.pattern);
        let no_token = call(&app, route.method, &path, "");
        if *rule == "public" {
            assert_ne!(no_token, 401, "{} {path} is public", route.method);
            continue;
        }
        assert_eq!(no_token, 401, "{} {path} without a token", route.method);
        assert_eq!(call(&app, route.method, &path, "not-a-token"), 401, "{} {path} malformed token", route.method);
        assert_eq!(call(&app, route.method, &path, &"ab".repeat(32)), 401, "{} {path} unknown token", route.method);
        for role in ROLES {
            // Logging out revokes the token: use a throwaway user of the same role.
            let user = if route.pattern.ends_with("/logout/") { format!("{role}9") } else { role.to_owned() };
            let status = call(&app, route.method, &path, &app.token_for(&user));
            if rule.split(' ').any(|r| r == role) {
                assert!(status != 401 && status != 403, "{role} may call {} {path}, got {status}", route.method);
            } else {
                assert_eq!(status, 403, "{role} may not call {} {path}", route.method);
            }
        }
    }
    assert_eq!(EXPECTED.len(), ROUTES.len(), "the test table lists a route the product does not have");
}

#[test]
fn revoked_expired_and_foreign_tokens_are_refused() {
    let app = spawn_app_with(Options { extra: vec![("SYSGP_SESSION_TTL_SECS", "2".into())], ..Options::default() });
    let token = app.token_for("maker");
    assert_eq!(app.get_token(&token, "/api/v1/auth/me/").status, 200);
    assert_eq!(app.post_token(&token, "/api/v1/auth/logout", json!({})).status, 200);
    assert_eq!(app.get_token(&token, "/api/v1/auth/me/").status, 401, "logged out");
    app.forget_token("maker");
    let short = app.token_for("maker");
    app.eventually(Duration::from_secs(10), "the session to expire", || {
        (app.get_token(&short, "/api/v1/auth/me/").status == 401).then_some(())
    });
    app.forget_token("maker");
    // A password change revokes every session of the user (sessions last 2 s here).
    app.forget_token("admin");
    let before = app.token_for("maker");
    let r = app.post_as("admin", "/api/v1/users/maker/password/", json!({"password": "another long password"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get_token(&before, "/api/v1/auth/me/").status, 401, "password change revokes");
}

#[test]
fn a_token_made_under_another_secret_key_is_refused_after_rotation() {
    let mut app = spawn_app();
    let admin = app.token_for("admin");
    assert_eq!(app.get_token(&admin, "/api/v1/auth/me/").status, 200);
    let old_key = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(old_key.path(), SECRET).expect("write");
    let new_secret = "a-completely-different-secret-key-9876543210";
    app.stop_server();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sysgp"))
        .args(["audit", "rotate", "--old-key-file"])
        .arg(old_key.path())
        .env_clear()
        .env("SECRET_KEY", new_secret)
        .env("SYSGP_DATA_DIR", &app.vars["SYSGP_DATA_DIR"])
        .output()
        .expect("rotate runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.restart_with(&[("SECRET_KEY", new_secret)]).expect("restarts with the new key");
    assert_eq!(app.get_token(&admin, "/api/v1/auth/me/").status, 401, "new SECRET_KEY invalidates tokens");
    let verify = app.get("/api/v1/audit/verify");
    assert_eq!((verify.status, verify.body["ok"].as_bool()), (200, Some(true)), "{}", verify.text);
}

#[test]
fn a_changed_secret_key_without_rotation_refuses_to_start() {
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "10");
    let err = app.restart_with(&[("SECRET_KEY", "a-completely-different-secret-key-9876543210")]).expect_err("refused");
    assert!(err.contains("sysgp audit rotate"), "{err}");
}

#[test]
fn twenty_wrong_passwords_lock_the_user_but_not_the_address() {
    let app = spawn_app_with(Options { extra: vec![("SYSGP_LOGIN_WINDOW_SECS", "3".into())], ..Options::default() });
    app.token_for("maker");
    let login = |user: &str, password: &str| {
        app.post_token("", "/api/v1/auth/login/", json!({"username": user, "password": password}))
    };
    let statuses: Vec<u16> = (0..20).map(|i| login("maker", &format!("wrong password {i:02}")).status).collect();
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let locked = login("maker", PASSWORD);
    assert_eq!((locked.status, locked.code()), (429, "TOO_MANY_ATTEMPTS"), "even the right password waits");
    let retry: u64 = locked.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=3).contains(&retry), "{retry}");
    let unknown = login("nobody-at-all", "wrong password xx");
    let wrong = login("checker", "wrong password xx");
    assert_eq!(
        (unknown.status, unknown.code()),
        (wrong.status, wrong.code()),
        "one error for unknown user and wrong password"
    );
    app.token_for("checker");
    assert_eq!(login("checker", PASSWORD).status, 200, "another user logs in from the same address");
    app.eventually(Duration::from_secs(10), "the window to pass", || {
        (login("maker", PASSWORD).status == 200).then_some(())
    });
}

/// Flips one byte of one stored value with sled directly, as an intruder with file access would.
fn tamper(dir: &str, seq: u64, action: impl FnOnce(&sled::Tree, &[u8])) {
    let db = sled::open(dir).expect("open store");
    let tree = db.open_tree("audit").expect("tree");
    action(&tree, &seq.to_be_bytes());
    db.flush().expect("flush");
}

#[test]
fn the_audit_chain_names_a_tampered_entry_and_a_deleted_one() {
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    for _ in 0..5 {
        assert_eq!(app.send("22507000001", "22507000002", "1").status, 201);
    }
    let v = app.get("/api/v1/audit/verify");
    assert_eq!(v.body["ok"], true, "{}", v.text);
    let entries = v.body["entries"].as_u64().expect("entries");
    assert!(entries >= 10, "{entries}");
    let dir = app.vars["SYSGP_DATA_DIR"].clone();
    app.stop_server();
    let mut original = Vec::new();
    tamper(&dir, 6, |tree, key| {
        let mut value = tree.get(key).expect("read").expect("entry 6").to_vec();
        original = value.clone();
        let i = value.len() / 2;
        value[i] ^= 0x01;
        tree.insert(key, value).expect("write");
    });
    app.restart_with(&[]).expect("restart");
    let v = app.get("/api/v1/audit/verify/");
    assert_eq!((v.body["ok"].as_bool(), v.body["first_bad"]["seq"].as_u64()), (Some(false), Some(6)), "{}", v.text);
    app.stop_server();
    tamper(&dir, 6, |tree, key| {
        tree.insert(key, original).expect("restore");
    });
    tamper(&dir, 4, |tree, key| {
        tree.remove(key).expect("delete");
    });
    app.restart_with(&[]).expect("restart");
    let v = app.get("/api/v1/audit/verify/");
    assert_eq!((v.body["ok"].as_bool(), v.body["first_bad"]["seq"].as_u64()), (Some(false), Some(5)), "{}", v.text);
}

#[test]
fn the_audit_log_records_who_did_what() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let r = app.get("/api/v1/audit/?action=TRANSFER_CREATED");
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!((items[0]["actor"].as_str(), items[0]["details"]["route"].as_str()), (Some("admin"), Some("CASH")));
    let r = app.get("/api/v1/audit/?actor=admin&limit=1");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert!(r.body["next_cursor"].is_string());
    assert_eq!(app.get_as("checker", "/api/v1/audit/").status, 403);
}

#[test]
fn a_maker_cannot_approve_their_own_adjustment_and_a_checker_posts_it() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let body = json!({"msisdn": "22507000001", "counter": "CASH", "direction": "DEBIT", "amount": "300", "reason": "duplicate deposit"});
    let r = app.post_as("maker", "/api/v1/adjustments/", body.clone());
    assert_eq!((r.status, r.body["status"].as_str()), (201, Some("AWAITING_APPROVAL")), "{}", r.text);
    let id = r.body["adjustment_id"].as_str().expect("id").to_owned();
    assert_eq!(app.post_as("maker", &format!("/api/v1/adjustments/{id}/approve/"), json!({})).status, 403);
    // An admin who requested an adjustment may not approve it either.
    let own = app.post_as("admin", "/api/v1/adjustments/", body).body["adjustment_id"].as_str().expect("id").to_owned();
    let r = app.post_as("admin", &format!("/api/v1/adjustments/{own}/approve/"), json!({}));
    assert_eq!((r.status, r.code()), (403, "SELF_APPROVAL"));
    let r = app.post_as("checker", &format!("/api/v1/adjustments/{id}/approve/"), json!({}));
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("POSTED")), "{}", r.text);
    assert_eq!(r.body["decided_by"], "checker");
    let t = app.transfer(r.body["transfer_id"].as_str().expect("transfer"));
    assert_eq!(
        (t["route"].as_str(), t["created_by"].as_str(), t["approved_by"].as_str()),
        (Some("ADJUSTMENT"), Some("maker"), Some("checker"))
    );
    assert_eq!(app.account("22507000001")["balance"], "700");
    assert_eq!(
        app.post_as("checker", &format!("/api/v1/adjustments/{id}/approve/"), json!({})).code(),
        "INVALID_STATE"
    );
    let r = app.post_as("checker", &format!("/api/v1/adjustments/{own}/reject/"), json!({"reason": "not needed"}));
    assert_eq!(r.body["status"], "REJECTED");
    app.assert_invariants();
}

#[test]
fn cash_above_the_threshold_waits_for_another_checker() {
    let app =
        spawn_app_with(Options { extra: vec![("SYSGP_CASH_APPROVAL_ABOVE", "1000".into())], ..Options::default() });
    app.wallet("22507000001", "XOF");
    let small = app.post_as("maker", "/api/v1/accounts/22507000001/deposit/", json!({"amount": "1000"}));
    assert_eq!(small.body["status"], "COMPLETED");
    let big = app.post_as("maker", "/api/v1/accounts/22507000001/deposit/", json!({"amount": "5000"}));
    assert_eq!(big.body["status"], "AWAITING_APPROVAL", "{}", big.text);
    assert_eq!(app.account("22507000001")["balance"], "1000", "nothing moved yet");
    let id = big.body["transfer_id"].as_str().expect("id");
    let r = app.post_as("checker", &format!("/api/v1/transfers/{id}/approve"), json!({}));
    assert_eq!(
        (r.status, r.body["status"].as_str(), r.body["approved_by"].as_str()),
        (200, Some("COMPLETED"), Some("checker"))
    );
    assert_eq!(app.account("22507000001")["balance"], "6000");
    let own = app.post_as("admin", "/api/v1/accounts/22507000001/withdraw/", json!({"amount": "2000"}));
    let own_id = own.body["transfer_id"].as_str().expect("id");
    assert_eq!(
        app.post_as("admin", &format!("/api/v1/transfers/{own_id}/approve/"), json!({})).code(),
        "SELF_APPROVAL"
    );
    let r = app.post_as("checker", &format!("/api/v1/transfers/{own_id}/reject/"), json!({"reason": "no ID shown"}));
    assert_eq!(r.body["status"], "REJECTED");
    assert_eq!(app.account("22507000001")["balance"], "6000");
    app.assert_invariants();
}

#[test]
fn the_last_admin_cannot_be_disabled_or_demoted() {
    let app = spawn_app();
    let r = app.post_as("admin", "/api/v1/users/admin/disable/", json!({}));
    assert_eq!((r.status, r.code()), (409, "LAST_ADMIN"));
    let r = app.post_as("admin", "/api/v1/users/admin/role/", json!({"role": "viewer"}));
    assert_eq!((r.status, r.code()), (409, "LAST_ADMIN"));
    let r = app.post_as("admin", "/api/v1/users/", json!({"username": "Eve", "role": "maker", "password": "eve"}));
    assert_eq!((r.status, r.code()), (400, "PASSWORD_POLICY"));
    let r = app.post_as(
        "admin",
        "/api/v1/users/",
        json!({"username": "Eve", "role": "maker", "password": "a good long password"}),
    );
    assert_eq!((r.status, r.body["username"].as_str()), (201, Some("eve")));
    assert!(!r.text.contains("argon2"), "hashes are never shown");
}

#[test]
fn logs_never_contain_passwords_tokens_secrets_or_whole_msisdns() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.send("22507000001", "22500000404", "10");
    app.send("22507000001", "22500000777", "408");
    app.post_token("", "/api/v1/auth/login/", json!({"username": "admin", "password": "wrong password here"}));
    let token = app.token_for("maker");
    let logs = captured_logs().join("\n");
    assert!(!logs.is_empty());
    for needle in [PASSWORD, "wrong password here", SECRET, token.as_str(), "22507000001", "22500000404", "22500000777"]
    {
        assert!(!logs.contains(needle), "the logs contain {needle:?}");
    }
}
