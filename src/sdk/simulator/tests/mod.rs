//! Tests through the public surface: `spawn` a simulator on a free port and talk HTTP to it.

mod accept;
mod shapes;
mod triggers;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::{spawn, Accept, SimulatorConfig, SimulatorHandle};

/// A simulator on 127.0.0.1 with a free port.
fn start(config: SimulatorConfig) -> SimulatorHandle {
    spawn(SocketAddr::from(([127, 0, 0, 1], 0)), config).expect("simulator starts")
}

fn start_accepting(accept: Accept) -> SimulatorHandle {
    start(SimulatorConfig { accept, ..SimulatorConfig::default() })
}

/// A client that reads 4xx/5xx bodies instead of failing on them.
fn agent() -> ureq::Agent {
    let config =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(20))).build();
    ureq::Agent::new_with_config(config)
}

fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut response = response.expect("request completes");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON body ({e}): {text}")))
}

fn post_raw(sim: &SimulatorHandle, body: &str) -> (u16, Value) {
    let url = format!("{}/transfers", sim.url());
    read(agent().post(url).header("content-type", "application/json").send(body))
}

fn post(sim: &SimulatorHandle, body: &Value) -> (u16, Value) {
    post_raw(sim, &body.to_string())
}

fn put(sim: &SimulatorHandle, id: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/transfers/{id}", sim.url());
    read(agent().put(url).header("content-type", "application/json").send(body.to_string()))
}

fn get(sim: &SimulatorHandle, path: &str) -> (u16, Value) {
    read(agent().get(format!("{}{path}", sim.url())).call())
}

/// The request sysgp sends: no names, no nulls, a note.
fn transfer(home: &str, payee: &str, amount: &str) -> Value {
    json!({
        "homeTransactionId": home,
        "from": {"idType": "MSISDN", "idValue": "22507000001"},
        "to": {"idType": "MSISDN", "idValue": payee},
        "amountType": "SEND",
        "currency": "XOF",
        "amount": amount,
        "transactionType": "TRANSFER",
        "note": "P2P test",
    })
}

/// `GET /__sim/transfers` as (homeTransactionId, transferId) pairs.
fn paid(sim: &SimulatorHandle) -> Vec<(String, String)> {
    let (status, list) = get(sim, "/__sim/transfers");
    assert_eq!(status, 200);
    let text = |entry: &Value, key: &str| entry[key].as_str().expect(key).to_owned();
    list.as_array()
        .expect("array")
        .iter()
        .map(|entry| {
            assert_eq!(entry["state"], "COMMITTED");
            (text(entry, "homeTransactionId"), text(entry, "transferId"))
        })
        .collect()
}

fn transfer_id(body: &Value) -> String {
    let id = body.get("transferState").unwrap_or(body)["transferId"].as_str().expect("transferId");
    id.to_owned()
}

/// `fulfil.body.transferState` of `GET /transfers/{id}`.
fn hub_state(sim: &SimulatorHandle, id: &str) -> Value {
    let (status, body) = get(sim, &format!("/transfers/{id}"));
    assert_eq!(status, 200, "{body}");
    body["fulfil"]["body"]["transferState"].clone()
}

#[test]
fn a_transfer_completes_in_one_post_is_listed_and_get_says_committed() {
    let sim = start(SimulatorConfig::default());
    let (status, body) = post(&sim, &transfer("hx-0001", "22507000002", "1500"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["currentState"], "COMPLETED");
    assert_eq!(body["fulfil"]["body"]["transferState"], "COMMITTED");
    assert_eq!(
        (&body["homeTransactionId"], &body["amount"], &body["currency"]),
        (&json!("hx-0001"), &json!("1500"), &json!("XOF"))
    );
    assert_eq!(
        (&body["note"], &body["to"]["idValue"], &body["to"]["fspId"]),
        (&json!("P2P test"), &json!("22507000002"), &json!("switch"))
    );
    let id = transfer_id(&body);
    let parsed = uuid::Uuid::parse_str(&id).expect("uuid");
    assert_eq!((parsed.get_version_num(), parsed.to_string()), (4, id.clone()));
    assert_eq!(paid(&sim), vec![("hx-0001".to_owned(), id.clone())]);
    let (_, view) = get(&sim, &format!("/transfers/{id}"));
    assert_eq!((&view["currentState"], &view["direction"]), (&json!("COMPLETED"), &json!("OUTBOUND")));
    assert_eq!(hub_state(&sim, &id), "COMMITTED");
}

#[test]
fn the_same_home_transaction_id_posted_twice_is_paid_twice() {
    let sim = start(SimulatorConfig::default());
    let (first, second) =
        (post(&sim, &transfer("dup", "22507000002", "100")), post(&sim, &transfer("dup", "22507000002", "100")));
    assert_eq!((first.0, second.0), (200, 200));
    assert_ne!(transfer_id(&first.1), transfer_id(&second.1));
    let homes: Vec<String> = paid(&sim).into_iter().map(|(home, _)| home).collect();
    assert_eq!(homes, ["dup", "dup"]);
}

#[test]
fn invalid_requests_are_refused_with_a_numeric_400_and_nothing_is_paid() {
    let sim = start(SimulatorConfig::default());
    let with = |pointer: &str, value: Value| {
        let mut body = transfer("bad", "22507000002", "100");
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        body.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent").insert(key.into(), value);
        body.to_string()
    };
    let cases = [
        ("trailing zero", with("/amount", json!("10.50"))),
        ("unknown field", with("/extra", json!("x"))),
        ("null field", with("/note", Value::Null)),
        ("non-ASCII name", with("/to/displayName", json!("Awa Koné"))),
        ("unknown currency", with("/currency", json!("ABC"))),
        ("malformed JSON", "{\"homeTransactionId\": ".to_owned()),
    ];
    for (case, body) in cases {
        let (status, reply) = post_raw(&sim, &body);
        assert_eq!(status, 400, "{case}: {reply}");
        assert_eq!(reply["statusCode"], json!(400), "{case}: statusCode is a number");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}");
    }
    let (status, reply) = post_raw(&sim, &with("/amount", json!("10.50")));
    assert!(
        reply["message"].as_str().expect("message").contains("request.body.amount should match pattern"),
        "{status}"
    );
    assert!(paid(&sim).is_empty());
}

#[test]
fn health_unknown_paths_wrong_methods_and_unknown_ids_answer_like_the_sdk() {
    let sim = start(SimulatorConfig::default());
    assert_eq!(get(&sim, "/"), (200, json!({})));
    assert_eq!(get(&sim, "/nowhere"), (404, json!({"statusCode": "404", "message": "Not found"})));
    let (status, body) = read(agent().delete(format!("{}/transfers", sim.url())).call());
    assert_eq!((status, &body["statusCode"]), (405, &json!("405")));
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = get(&sim, &format!("/transfers/{id}"));
        assert_eq!(status, 500);
        assert_eq!(body["statusCode"], "3208");
        assert!(body["message"].as_str().expect("message").contains("Transfer ID not found"));
    }
}

#[test]
fn committed_transfers_survive_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SimulatorConfig { state_file: Some(dir.path().join("sim.jsonl")), ..SimulatorConfig::default() };
    let sim = start(config.clone());
    let first = transfer_id(&post(&sim, &transfer("r-1", "22507000002", "100")).1);
    let (status, unseen) = post(&sim, &transfer("r-2", "22507000002", "408"));
    assert_eq!(status, 504);
    post(&sim, &transfer("r-3", "22507000002", "13"));
    let before = paid(&sim);
    assert_eq!(before.len(), 2);
    sim.shutdown();

    let sim = start(config);
    assert_eq!(paid(&sim), before);
    assert_eq!(hub_state(&sim, &first), "COMMITTED");
    assert_eq!(hub_state(&sim, &transfer_id(&unseen)), "COMMITTED");
    let third = transfer_id(&post(&sim, &transfer("r-4", "22507000002", "100")).1);
    assert_eq!(paid(&sim).last(), Some(&("r-4".to_owned(), third)));
}

#[test]
fn latency_is_an_async_wait_so_concurrent_calls_overlap() {
    let sim = start(SimulatorConfig { latency_ms: 200, ..SimulatorConfig::default() });
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let sim = &sim;
                scope.spawn(move || {
                    let began = std::time::Instant::now();
                    let (status, _) = post(sim, &transfer(&format!("lat-{i}"), "22507000002", "100"));
                    (status, began.elapsed())
                })
            })
            .collect();
        for call in calls {
            let (status, took) = call.join().expect("client thread");
            assert_eq!(status, 200);
            assert!(took >= Duration::from_millis(200), "each call waits the latency: {took:?}");
        }
    });
    let total = started.elapsed();
    assert!(total < Duration::from_millis(1200), "8 calls of 200 ms overlap: {total:?}");
    // Health and the test listing are not delayed.
    let started = std::time::Instant::now();
    assert_eq!(paid(&sim).len(), 8);
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[test]
fn many_concurrent_clients_each_get_their_own_transfer() {
    let sim = start(SimulatorConfig::default());
    let (clients, each) = (64, 10);
    std::thread::scope(|scope| {
        for c in 0..clients {
            let sim = &sim;
            scope.spawn(move || {
                for i in 0..each {
                    let (status, body) = post(sim, &transfer(&format!("c{c}-{i}"), "22507000002", "100"));
                    assert_eq!((status, &body["currentState"]), (200, &json!("COMPLETED")));
                }
            });
        }
    });
    let list = paid(&sim);
    let ids: std::collections::HashSet<&String> = list.iter().map(|(_, id)| id).collect();
    assert_eq!((list.len(), ids.len()), (clients * each, clients * each));
}

#[test]
fn invalid_configurations_are_refused_at_start() {
    for config in [
        SimulatorConfig { fail_rate: 1.5, ..SimulatorConfig::default() },
        SimulatorConfig { fail_rate: f64::NAN, ..SimulatorConfig::default() },
        SimulatorConfig { latency_ms: 3_600_000, ..SimulatorConfig::default() },
    ] {
        let err = spawn(SocketAddr::from(([127, 0, 0, 1], 0)), config).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
    assert_eq!(Accept::parse("both"), Some(Accept::Both));
    assert_eq!(Accept::parse("BOTH"), None);
    assert!(["none", "party", "quote", "both"].iter().all(|s| Accept::parse(s).map(Accept::as_str) == Some(*s)));
}
