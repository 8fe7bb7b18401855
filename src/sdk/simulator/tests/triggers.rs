//! The deterministic triggers and `--fail-rate`: status, codes, `prepare` and what was paid.

use serde_json::{json, Value};

use super::*;

/// Asserts an error reply: HTTP status, string `statusCode`, state and `prepare` presence.
fn assert_error(reply: &(u16, Value), status: u16, code: &str, prepared: bool) {
    let (got, body) = reply;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["statusCode"], json!(code));
    let state = &body["transferState"];
    assert_eq!(state["currentState"], "ERROR_OCCURRED");
    assert_eq!(state.get("prepare").is_some(), prepared, "prepare presence for {code}");
    assert!(state.get("fulfil").is_none());
}

fn assert_fsp_error(reply: &(u16, Value), code: &str, description: &str, prepared: bool) {
    assert_error(reply, 500, code, prepared);
    let last = &reply.1["transferState"]["lastError"];
    assert_eq!(last["httpStatusCode"], 500);
    let info = &last["mojaloopError"]["errorInformation"];
    assert_eq!((&info["errorCode"], &info["errorDescription"]), (&json!(code), &json!(description)));
    assert!(reply.1["message"].as_str().expect("message").contains(description));
}

#[test]
fn a_payee_ending_in_404_is_not_found_at_the_party_stage_in_every_mode() {
    for accept in [Accept::None, Accept::Party, Accept::Quote, Accept::Both] {
        let sim = start_accepting(accept);
        let reply = post(&sim, &transfer("p404", "22500000404", "100"));
        assert_fsp_error(&reply, "3204", "Party not found", false);
        let id = transfer_id(&reply.1);
        let (status, view) = get(&sim, &format!("/transfers/{id}"));
        assert_eq!((status, &view["statusCode"]), (500, &json!("3208")), "failed before prepare: the hub never saw it");
        assert!(paid(&sim).is_empty());
    }
}

#[test]
fn a_payee_ending_in_408_times_out_at_the_party_stage() {
    let sim = start(SimulatorConfig::default());
    let reply = post(&sim, &transfer("p408", "22500000408", "100"));
    assert_error(&reply, 504, "504", false);
    let id = transfer_id(&reply.1);
    assert_eq!(reply.1["message"], json!(format!("Timeout resolving payee for transfer {id}")));
    assert_eq!(reply.1["transferState"]["lastError"], json!({"httpStatusCode": 504}));
    assert!(paid(&sim).is_empty());
}

#[test]
fn amount_666_is_refused_at_the_quote_stage() {
    let sim = start(SimulatorConfig::default());
    let reply = post(&sim, &transfer("q666", "22507000002", "666"));
    assert_fsp_error(&reply, "5103", "Payee FSP rejected quote", false);
    assert!(reply.1["transferState"].get("quoteResponse").is_none());
    assert!(paid(&sim).is_empty());
}

#[test]
fn amounts_13_and_4001_fail_after_prepare_and_the_hub_says_aborted() {
    let sim = start(SimulatorConfig::default());
    for (amount, code, description) in
        [("13", "5105", "Payee FSP rejected transaction"), ("4001", "4001", "Payer FSP insufficient liquidity")]
    {
        let reply = post(&sim, &transfer(&format!("t{amount}"), "22507000002", amount));
        assert_fsp_error(&reply, code, description, true);
        assert_eq!(hub_state(&sim, &transfer_id(&reply.1)), "ABORTED");
    }
    assert!(paid(&sim).is_empty());
    // The triggers compare the exact text: 13.5 is an ordinary amount.
    assert_eq!(post(&sim, &transfer("t13.5", "22507000002", "13.5")).0, 200);
}

#[test]
fn amount_408_commits_but_answers_a_fulfil_timeout() {
    let sim = start(SimulatorConfig::default());
    let reply = post(&sim, &transfer("a408", "22507000002", "408"));
    assert_error(&reply, 504, "504", true);
    let id = transfer_id(&reply.1);
    assert_eq!(reply.1["message"], json!(format!("Timeout waiting for fulfil for transfer {id}")));
    assert_eq!(paid(&sim), vec![("a408".to_owned(), id.clone())]);
    let (_, view) = get(&sim, &format!("/transfers/{id}"));
    assert_eq!(
        (&view["currentState"], &view["fulfil"]["body"]["transferState"]),
        (&json!("COMPLETED"), &json!("COMMITTED"))
    );
}

#[test]
fn amount_408_in_quote_mode_times_out_on_the_final_put() {
    let sim = start_accepting(Accept::Quote);
    let (status, waiting) = post(&sim, &transfer("a408q", "22507000002", "408"));
    assert_eq!((status, &waiting["currentState"]), (200, &json!("WAITING_FOR_QUOTE_ACCEPTANCE")));
    let id = transfer_id(&waiting);
    let reply = put(&sim, &id, &json!({"acceptQuote": true}));
    assert_error(&reply, 504, "504", true);
    assert_eq!(hub_state(&sim, &id), "COMMITTED");
}

#[test]
fn fail_rate_one_fails_every_transfer_with_5105_after_prepare() {
    let sim = start(SimulatorConfig { fail_rate: 1.0, ..SimulatorConfig::default() });
    for i in 0..5 {
        let reply = post(&sim, &transfer(&format!("f{i}"), "22507000002", "100"));
        assert_fsp_error(&reply, "5105", "Payee FSP rejected transaction", true);
    }
    assert!(paid(&sim).is_empty());
}

#[test]
fn the_same_seed_gives_the_same_failures() {
    let outcomes = |seed: u64| {
        let sim = start(SimulatorConfig { fail_rate: 0.5, seed, ..SimulatorConfig::default() });
        (0..32).map(|i| post(&sim, &transfer(&format!("s{i}"), "22507000002", "100")).0).collect::<Vec<u16>>()
    };
    let first = outcomes(42);
    assert_eq!(first, outcomes(42));
    assert!(first.contains(&200) && first.contains(&500), "{first:?}");
    assert_ne!(first, outcomes(43));
}
