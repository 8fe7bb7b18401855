//! The replies the proxy makes up: captured SDK errors re-addressed to the transfer at
//! hand, and timeouts.

use serde_json::{json, Value};

use super::{Shared, Stage, Target};

/// The transfer state of an SDK reply: the whole body of a 200, `transferState` of an error.
pub(super) fn transfer_state(body: &[u8]) -> Option<Value> {
    let reply: Value = serde_json::from_slice(body).ok()?;
    match reply.get("transferState") {
        Some(state) => Some(state.clone()),
        None => reply.get("transferId").is_some().then_some(reply),
    }
}

pub(super) fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/sdk/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The SDK transfer id a synthesized reply names: the path's, or a new one for a POST.
pub(super) fn reply_id(target: &Target, shared: &Shared) -> String {
    let id = target.sdk_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Some(home) = &target.home {
        shared.book().homes.insert(id.clone(), home.clone());
    }
    id
}

/// A captured FSPIOP error reply, re-addressed to this transfer.
pub(super) fn fspiop_body(code: &str, code_in_status: bool, target: &Target, shared: &Shared) -> Value {
    let name = match code {
        "3204" => "fail_party404.response.json",
        "5103" => "fail_quote666.response.json",
        "5105" => "fail_xfer13.response.json",
        "4001" => "fail_liq.response.json",
        other => panic!("no captured reply for FSPIOP {other}"),
    };
    let mut body = fixture(name);
    body["transferState"]["transferId"] = json!(reply_id(target, shared));
    body["transferState"]["homeTransactionId"] = json!(target.home);
    if !code_in_status {
        body["statusCode"] = json!("500");
    }
    body
}

/// The captured party-timeout 504, re-addressed (and re-worded for the quote stage).
pub(super) fn stage_timeout_body(stage: Stage, target: &Target, shared: &Shared) -> Value {
    let id = reply_id(target, shared);
    let mut body = fixture("fail_timeout.response.json");
    let doing = if stage == Stage::Party { "resolving payee" } else { "requesting quote" };
    body["message"] = json!(format!("Timeout {doing} for transfer {id}"));
    body["transferState"]["transferId"] = json!(id);
    body["transferState"]["homeTransactionId"] = json!(target.home);
    body
}

/// A fulfil timeout after the SDK prepared (and the hub settled) the forwarded transfer.
pub(super) fn fulfil_timeout_body(state: Option<Value>, shared: &Shared) -> Option<Value> {
    let mut state = state?;
    if state.get("prepare").is_none() {
        shared.problem(format!("a transfer-stage reply without prepare: {state}"));
    }
    let id = state["transferId"].as_str().unwrap_or_default().to_owned();
    state["currentState"] = json!("ERROR_OCCURRED");
    state["lastError"] = json!({"httpStatusCode": 504});
    Some(
        json!({"message": format!("Timeout waiting for fulfil for transfer {id}"), "transferState": state, "statusCode": "504"}),
    )
}
