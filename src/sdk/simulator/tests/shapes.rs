//! Reply shapes against the captured SDK 18.0.2 responses in `tests/fixtures/sdk/`: the
//! same fields at the same places (the mock hub's random junk aside).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::*;

fn fixture(name: &str) -> Value {
    let text = match name {
        "happy" => include_str!("../../../../tests/fixtures/sdk/happy.response.json"),
        "fail_party404" => include_str!("../../../../tests/fixtures/sdk/fail_party404.response.json"),
        "fail_timeout" => include_str!("../../../../tests/fixtures/sdk/fail_timeout.response.json"),
        "fail_quote666" => include_str!("../../../../tests/fixtures/sdk/fail_quote666.response.json"),
        "fail_xfer13" => include_str!("../../../../tests/fixtures/sdk/fail_xfer13.response.json"),
        "fail_liq" => include_str!("../../../../tests/fixtures/sdk/fail_liq.response.json"),
        "get" => include_str!("../../../../tests/fixtures/sdk/get.response.json"),
        "put1" => include_str!("../../../../tests/fixtures/sdk/put1.response.json"),
        "put2" => include_str!("../../../../tests/fixtures/sdk/put2.response.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixture is JSON")
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|map| map.keys().cloned().collect()).unwrap_or_default()
}

/// The same keys at every path where neither side has hub junk.
fn assert_same_shape(ours: &Value, theirs: &Value, paths: &[&str]) {
    for path in paths {
        let (a, b) = (ours.pointer(path).unwrap_or(&Value::Null), theirs.pointer(path).unwrap_or(&Value::Null));
        assert_eq!(keys(a), keys(b), "keys at {path:?}\nours: {a}");
    }
}

/// Paths whose keys are fixed in a transfer state (no junk), relative to the state.
const STATE_PATHS: &[&str] = &[
    "",
    "/to",
    "/from",
    "/getPartiesRequest",
    "/getPartiesRequest/headers",
    "/quoteRequest",
    "/prepare",
    "/fulfil",
    "/fulfil/body",
    "/lastError",
];

fn under(prefix: &str) -> Vec<String> {
    STATE_PATHS.iter().map(|p| format!("{prefix}{p}")).collect()
}

#[test]
fn the_happy_reply_has_the_captured_shape() {
    let sim = start(SimulatorConfig::default());
    let (_, ours) = post(&sim, &transfer("hx-0001", "22507000002", "1500"));
    let mut theirs = fixture("happy");
    // The capture sent a displayName; sysgp never does.
    theirs["from"].as_object_mut().expect("from").remove("displayName");
    let paths = under("");
    assert_same_shape(&ours, &theirs, &paths.iter().map(String::as_str).collect::<Vec<_>>());
    let quote = &ours["quoteResponse"]["body"];
    for field in [
        "transferAmount",
        "payeeReceiveAmount",
        "payeeFspFee",
        "payeeFspCommission",
        "expiration",
        "ilpPacket",
        "condition",
    ] {
        assert!(quote.get(field).is_some(), "{field}");
    }
    let request: Value =
        serde_json::from_str(ours["quoteRequest"]["body"].as_str().expect("string body")).expect("JSON");
    assert_eq!(
        keys(&request),
        keys(&serde_json::from_str::<Value>(theirs["quoteRequest"]["body"].as_str().expect("body")).expect("JSON"))
    );
}

#[test]
fn error_replies_have_the_captured_shapes() {
    let sim = start(SimulatorConfig::default());
    for (name, payee, amount) in [
        ("fail_party404", "22500000404", "100"),
        ("fail_timeout", "22500000408", "100"),
        ("fail_quote666", "22507000002", "666"),
        ("fail_xfer13", "22507000002", "13"),
        ("fail_liq", "22507000002", "4001"),
    ] {
        let mut request = transfer(name, payee, amount);
        request.as_object_mut().expect("object").remove("note");
        let (_, ours) = post(&sim, &request);
        let theirs = fixture(name);
        let mut paths = vec!["".to_owned(), "/transferState/lastError/mojaloopError/errorInformation".to_owned()];
        paths.extend(under("/transferState"));
        assert_same_shape(&ours, &theirs, &paths.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(ours["statusCode"], theirs["statusCode"], "{name}");
        if name != "fail_timeout" {
            assert_eq!(ours["message"], theirs["message"], "{name}: the message is Node's rendering of the hub error");
        }
    }
}

#[test]
fn two_step_replies_have_the_captured_shapes() {
    let sim = start_accepting(Accept::Both);
    let mut request = transfer("m-1", "22507000002", "500");
    request.as_object_mut().expect("object").remove("note");
    let (_, first) = post(&sim, &request);
    let id = transfer_id(&first);
    let (_, ours1) = put(&sim, &id, &json!({"acceptParty": true}));
    let (_, ours2) = put(&sim, &id, &json!({"acceptQuote": true}));
    let paths = under("");
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    assert_same_shape(&ours1, &fixture("put1"), &paths);
    assert_same_shape(&ours2, &fixture("put2"), &paths);
}

#[test]
fn the_get_reply_has_the_captured_shape() {
    let sim = start(SimulatorConfig::default());
    let id = transfer_id(&post(&sim, &transfer("g", "22507000002", "100")).1);
    let (_, ours) = get(&sim, &format!("/transfers/{id}"));
    assert_same_shape(&ours, &fixture("get"), &["", "/fulfil", "/fulfil/headers"]);
    for field in ["completedTimestamp", "transferState", "extensionList"] {
        assert!(ours["fulfil"]["body"].get(field).is_some(), "{field}");
    }
}
