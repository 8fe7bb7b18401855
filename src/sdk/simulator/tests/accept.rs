//! The accept modes: stops at WAITING_FOR_*_ACCEPTANCE, continuations by PUT, declines
//! and PUTs that do not fit the stage.

use serde_json::{json, Value};

use super::*;

fn waiting(reply: &(u16, Value), state: &str) -> String {
    assert_eq!((reply.0, &reply.1["currentState"]), (200, &json!(state)), "{}", reply.1);
    transfer_id(&reply.1)
}

fn completed(reply: &(u16, Value)) {
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1["currentState"], "COMPLETED");
    assert_eq!(reply.1["fulfil"]["body"]["transferState"], "COMMITTED");
}

#[test]
fn party_mode_stops_at_the_party_and_accepting_it_runs_to_the_end() {
    let sim = start_accepting(Accept::Party);
    let reply = post(&sim, &transfer("m-p", "22507000002", "500"));
    let id = waiting(&reply, "WAITING_FOR_PARTY_ACCEPTANCE");
    assert_eq!(reply.1["getPartiesResponse"]["body"]["party"]["partyIdInfo"]["partyIdentifier"], "22507000002");
    assert!(reply.1.get("quoteId").is_none());
    let (status, view) = get(&sim, &format!("/transfers/{id}"));
    assert_eq!((status, &view["statusCode"]), (500, &json!("3208")), "the hub has not seen a transfer still waiting");
    assert!(paid(&sim).is_empty());
    completed(&put(&sim, &id, &json!({"acceptParty": true})));
    assert_eq!(paid(&sim), vec![("m-p".to_owned(), id)]);
}

#[test]
fn quote_mode_stops_at_the_quote_with_the_amount_and_accepting_it_pays() {
    let sim = start_accepting(Accept::Quote);
    let reply = post(&sim, &transfer("m-q", "22507000002", "500.25"));
    let id = waiting(&reply, "WAITING_FOR_QUOTE_ACCEPTANCE");
    let quote = &reply.1["quoteResponse"]["body"];
    assert_eq!(
        (&quote["transferAmount"]["amount"], &quote["transferAmount"]["currency"]),
        (&json!("500.25"), &json!("XOF"))
    );
    for field in ["payeeReceiveAmount", "payeeFspFee", "payeeFspCommission", "expiration"] {
        assert!(quote.get(field).is_some(), "{field}");
    }
    completed(&put(&sim, &id, &json!({"acceptQuote": true})));
    assert_eq!(paid(&sim).len(), 1);
    // Finished: a second acceptance does not fit any more.
    let (status, again) = put(&sim, &id, &json!({"acceptQuote": true}));
    assert_eq!((status, &again["statusCode"]), (400, &json!(400)));
    assert_eq!(paid(&sim).len(), 1);
}

#[test]
fn both_mode_stops_at_the_party_then_at_the_quote() {
    let sim = start_accepting(Accept::Both);
    let id = waiting(&post(&sim, &transfer("m-b", "22507000002", "500")), "WAITING_FOR_PARTY_ACCEPTANCE");
    let (status, mismatch) = put(&sim, &id, &json!({"acceptQuote": true}));
    assert_eq!((status, &mismatch["statusCode"]), (400, &json!(400)));
    let reply = put(&sim, &id, &json!({"acceptParty": true}));
    assert_eq!(waiting(&reply, "WAITING_FOR_QUOTE_ACCEPTANCE"), id);
    assert_eq!(reply.1["acceptParty"], true);
    let done = put(&sim, &id, &json!({"acceptQuote": true}));
    completed(&done);
    assert_eq!((&done.1["acceptParty"], &done.1["acceptQuote"]), (&json!(true), &json!(true)));
    assert_eq!(paid(&sim), vec![("m-b".to_owned(), id.clone())]);
    assert_eq!(hub_state(&sim, &id), "COMMITTED");
}

#[test]
fn declining_the_quote_or_the_party_aborts_and_pays_nothing() {
    let sim = start_accepting(Accept::Both);
    let id = waiting(&post(&sim, &transfer("d-p", "22507000002", "500")), "WAITING_FOR_PARTY_ACCEPTANCE");
    let (status, body) = put(&sim, &id, &json!({"acceptParty": false}));
    assert_eq!((status, &body["currentState"]), (200, &json!("ABORTED")));

    let id = waiting(&post(&sim, &transfer("d-q", "22507000002", "500")), "WAITING_FOR_PARTY_ACCEPTANCE");
    waiting(&put(&sim, &id, &json!({"acceptParty": true})), "WAITING_FOR_QUOTE_ACCEPTANCE");
    let (status, body) = put(&sim, &id, &json!({"acceptQuote": false}));
    assert_eq!((status, &body["currentState"]), (200, &json!("ABORTED")));
    assert!(body.get("prepare").is_none());
    let (status, view) = get(&sim, &format!("/transfers/{id}"));
    assert_eq!((status, &view["statusCode"]), (500, &json!("3208")), "a declined transfer never reached the hub");
    assert!(paid(&sim).is_empty());
}

#[test]
fn triggers_fire_at_their_own_stage_after_a_continuation() {
    let sim = start_accepting(Accept::Party);
    let id = waiting(&post(&sim, &transfer("t-666", "22507000002", "666")), "WAITING_FOR_PARTY_ACCEPTANCE");
    let (status, body) = put(&sim, &id, &json!({"acceptParty": true}));
    assert_eq!((status, &body["statusCode"]), (500, &json!("5103")));

    let sim = start_accepting(Accept::Quote);
    let id = waiting(&post(&sim, &transfer("t-13", "22507000002", "13")), "WAITING_FOR_QUOTE_ACCEPTANCE");
    let (status, body) = put(&sim, &id, &json!({"acceptQuote": true}));
    assert_eq!((status, &body["statusCode"]), (500, &json!("5105")));
    assert!(body["transferState"].get("prepare").is_some());
}

#[test]
fn puts_for_unknown_ids_or_with_bad_bodies_are_400s() {
    let sim = start_accepting(Accept::Quote);
    let id = waiting(&post(&sim, &transfer("bad-put", "22507000002", "500")), "WAITING_FOR_QUOTE_ACCEPTANCE");
    let unknown = uuid::Uuid::new_v4().to_string();
    for (target, body) in [
        (unknown.as_str(), json!({"acceptQuote": true})),
        ("not-a-uuid", json!({"acceptQuote": true})),
        (id.as_str(), json!({"acceptQuote": true, "extra": 1})),
        (id.as_str(), json!({"acceptQuote": null})),
        (id.as_str(), json!({"acceptParty": true})),
        (id.as_str(), json!({})),
    ] {
        let (status, reply) = put(&sim, target, &body);
        assert_eq!((status, &reply["statusCode"]), (400, &json!(400)), "{target} {body}: {reply}");
    }
    // None of that disturbed the waiting transfer.
    completed(&put(&sim, &id, &json!({"acceptQuote": true})));
}
