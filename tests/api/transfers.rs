//! Deposits, on-us and off-us transfers: balances, postings and statuses exactly right.

use serde_json::json;

use crate::support::spawn_app;

#[test]
fn deposit_credits_the_wallet_from_cash() {
    let app = spawn_app();
    app.wallet("22507000001", "XOF");
    let r = app.post("/api/v1/accounts/22507000001/deposit/", json!({"amount": "5000", "reference": "till-1"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((r.body["route"].as_str(), r.body["status"].as_str()), (Some("CASH"), Some("COMPLETED")));
    assert_eq!(r.body["sender_msisdn"], "SYS:CASH:XOF");
    assert_eq!(r.body["reference"], "till-1");
    let a = app.account("22507000001");
    assert_eq!(
        (a["available"].as_str(), a["reserved"].as_str(), a["balance"].as_str()),
        (Some("5000"), Some("0"), Some("5000"))
    );
    assert_eq!(app.system_account("SYS:CASH:XOF")["balance"], "-5000");
    let detail = app.transfer(r.body["transfer_id"].as_str().expect("id"));
    assert_eq!(detail["postings"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail["postings"][0]["from"]["account"], "SYS:CASH:XOF");
    app.assert_invariants();
}

#[test]
fn withdrawal_debits_the_wallet_into_cash_and_refuses_overdraft() {
    let app = spawn_app();
    app.funded("22507000001", "USD", "100");
    let r = app.post("/api/v1/accounts/22507000001/withdraw/", json!({"amount": "40.5"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["receiver_msisdn"], "SYS:CASH:USD");
    assert_eq!(app.account("22507000001")["available"], "59.5");
    let r = app.post("/api/v1/accounts/22507000001/withdraw", json!({"amount": "60"}));
    assert_eq!((r.status, r.code()), (422, "INSUFFICIENT_FUNDS"));
    assert_eq!(r.body["error"]["details"]["shortfall"], "0.5");
    assert_eq!(app.system_account("SYS:CASH:USD")["balance"], "-59.5");
    app.assert_invariants();
}

#[test]
fn a_reference_is_unique_per_wallet() {
    let app = spawn_app();
    app.wallet("22507000001", "XOF");
    app.wallet("22507000002", "XOF");
    let dep =
        |m: &str| app.post(&format!("/api/v1/accounts/{m}/deposit/"), json!({"amount": "10", "reference": "R-1"}));
    assert_eq!(dep("22507000001").status, 201);
    assert_eq!((dep("22507000001").status, dep("22507000001").code()), (409, "REFERENCE_EXISTS"));
    assert_eq!(dep("22507000002").status, 201, "another wallet may use the same reference");
    assert_eq!(app.account("22507000001")["balance"], "10");
}

#[test]
fn on_us_transfer_is_one_posting_between_wallets() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "10000");
    app.wallet("22507000002", "XOF");
    let r = app.send("+225 07 00 00 01", "22507000002", "2500");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((r.body["route"].as_str(), r.body["status"].as_str()), (Some("ON_US"), Some("COMPLETED")));
    assert_eq!(r.body["sender_msisdn"], "22507000001", "msisdn normalised");
    assert_eq!(app.account("22507000001")["balance"], "7500");
    assert_eq!(app.account("22507000002")["balance"], "2500");
    let detail = app.transfer(r.body["transfer_id"].as_str().expect("id"));
    let postings = detail["postings"].as_array().expect("postings");
    assert_eq!(postings.len(), 1);
    assert_eq!(postings[0]["kind"], "TRANSFER");
    assert_eq!(postings[0]["to"]["account"], "22507000002");
    assert!(app.sim_paid().is_empty(), "on-us never calls the SDK");
    app.assert_invariants();
}

#[test]
fn off_us_transfer_reserves_then_posts_to_settlement() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "10000");
    let r = app.send("22507000001", "22500000777", "1500");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((r.body["route"].as_str(), r.body["status"].as_str()), (Some("SDK"), Some("COMPLETED")));
    assert_eq!(r.body["sdk_phase"], "DONE");
    let id = r.body["transfer_id"].as_str().expect("id");
    assert!(r.body["sdk_transfer_id"].as_str().is_some_and(|s| !s.is_empty()));
    let a = app.account("22507000001");
    assert_eq!((a["available"].as_str(), a["reserved"].as_str()), (Some("8500"), Some("0")));
    assert_eq!(app.system_account("SYS:SETTLEMENT:XOF")["balance"], "1500");
    let kinds: Vec<_> =
        app.transfer(id)["postings"].as_array().expect("postings").iter().map(|p| p["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("RESERVE"), json!("POST")]);
    assert_eq!(app.times_paid(id), 1);
    app.assert_invariants();
}

#[test]
fn ten_and_a_half_goes_on_the_wire_as_10_5() {
    let app = spawn_app();
    app.funded("15550000001", "USD", "100");
    let r = app.send("15550000001", "15550000999", "10.50");
    assert_eq!((r.status, r.body["status"].as_str()), (201, Some("COMPLETED")), "{}", r.text);
    assert_eq!(r.body["amount"], "10.5");
    let paid = app.sim_paid();
    assert_eq!(paid.len(), 1);
    assert_eq!((paid[0]["amount"].as_str(), paid[0]["currency"].as_str()), (Some("10.5"), Some("USD")));
}

#[test]
fn a_name_with_accents_never_reaches_the_sdk() {
    let app = spawn_app();
    let r =
        app.post("/api/v1/accounts/", json!({"msisdn": "22507000001", "currency": "XOF", "display_name": "Awa Koné"}));
    assert_eq!(r.status, 201);
    app.post("/api/v1/accounts/22507000001/deposit/", json!({"amount": "100"}));
    // The simulator refuses non-ASCII names with 400 as the real SDK does.
    let r = app.send("22507000001", "22500000777", "10");
    assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
}

#[test]
fn statement_and_filters_list_newest_first_with_paging() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    for i in 1..=5 {
        assert_eq!(app.send("22507000001", "22507000002", &i.to_string()).status, 201);
    }
    let r = app.get("/api/v1/accounts/22507000002/transfers/?limit=2");
    assert_eq!(r.status, 200, "{}", r.text);
    let amounts: Vec<_> = r.body["items"].as_array().expect("items").iter().map(|t| t["amount"].clone()).collect();
    assert_eq!(amounts, vec![json!("5"), json!("4")]);
    let cursor = r.body["next_cursor"].as_str().expect("more pages").to_owned();
    let r = app.get(&format!("/api/v1/accounts/22507000002/transfers?limit=2&cursor={cursor}"));
    let amounts: Vec<_> = r.body["items"].as_array().expect("items").iter().map(|t| t["amount"].clone()).collect();
    assert_eq!(amounts, vec![json!("3"), json!("2")]);
    let r = app.get("/api/v1/transfers/?route=CASH");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["next_cursor"], serde_json::Value::Null);
    let r = app.get("/api/v1/transfers/?msisdn=22507000001&status=COMPLETED&limit=500");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(6));
    let r = app.get("/api/v1/transfers/?since=2100-01-01T00:00:00Z");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0));
    // RFC 3339 offsets (`+` escaped in the query).
    for (since, n) in
        [("2000-01-01T05:00:00%2B05:00", 6), ("2099-12-31T23:30:00-01:00", 0), ("2000-01-01t00:00:00z", 6)]
    {
        let r = app.get(&format!("/api/v1/transfers/?msisdn=22507000001&status=COMPLETED&since={since}"));
        assert_eq!(r.body["items"].as_array().map(Vec::len), Some(n), "{since}: {}", r.text);
    }
    let r = app.get("/api/v1/transfers/?status=BOGUS");
    assert_eq!((r.status, r.code()), (400, "INVALID_PARAMETER"));
}

#[test]
fn two_hundred_parallel_transfers_of_one_from_fifty_succeed_exactly_fifty_times() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "50");
    app.wallet("22507000002", "XOF");
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                s.spawn(|| {
                    let r = app.send("22507000001", "22507000002", "1");
                    (r.status, r.code().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let ok = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results.iter().filter(|(s, c)| *s == 422 && c == "INSUFFICIENT_FUNDS").count();
    assert_eq!((ok, refused), (50, 150), "{results:?}");
    let a = app.account("22507000001");
    assert_eq!((a["available"].as_str(), a["reserved"].as_str()), (Some("0"), Some("0")));
    assert_eq!(app.account("22507000002")["balance"], "50");
    app.assert_invariants();
}
