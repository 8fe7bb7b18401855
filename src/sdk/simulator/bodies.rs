//! Reply bodies shaped like the captured SDK 18.0.2 responses: the transfer state with
//! every stage record the SDK keeps (extra fields and hub junk included), the error
//! wrappers of 500/504 replies and the `GET /transfers/{id}` view.

use std::time::SystemTime;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::decor::{self, Decor};
use super::flow::{FspError, Live, Phase};

/// The HTTP status and body answering a POST or PUT in this transfer's current phase.
pub(super) fn transfer_reply(live: &Live) -> (u16, Value) {
    let id = live.id;
    let (status, message, code) = match live.phase {
        Phase::WaitingParty | Phase::WaitingQuote | Phase::Committed | Phase::Declined => {
            return (200, Value::Object(transfer_state(live)));
        }
        Phase::PartyFailed(e) => (500, hub_error_message("resolving party", e), e.code),
        Phase::QuoteFailed(e) => (500, hub_error_message("requesting quote", e), e.code),
        Phase::TransferFailed(e) => (500, hub_error_message("preparing transfer", e), e.code),
        Phase::PartyTimeout => (504, format!("Timeout resolving payee for transfer {id}"), "504"),
        Phase::CommittedUnseen => (504, format!("Timeout waiting for fulfil for transfer {id}"), "504"),
    };
    (status, json!({"message": message, "transferState": transfer_state(live), "statusCode": code}))
}

/// What the hub says about a transfer, for `GET /transfers/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HubState {
    /// Still waiting for the client: the hub holds nothing final.
    Reserved,
    /// Paid.
    Committed,
    /// Prepared and then refused: nothing paid.
    Aborted,
    /// Failed before prepare (party or quote): the SDK knows it, the hub has no transfer.
    Failed,
    /// The client declined.
    Declined,
}

/// The `GET /transfers/{id}` body (always a 200: the SDK knows every id it issued).
pub(super) fn get_reply(id: Uuid, initiated: SystemTime, completed: Option<SystemTime>, state: HubState) -> Value {
    let current_state = match state {
        HubState::Reserved | HubState::Committed | HubState::Aborted => "COMPLETED",
        HubState::Failed => "ERROR_OCCURRED",
        HubState::Declined => "ABORTED",
    };
    let mut body = json!({
        "transferId": id.to_string(),
        "currentState": current_state,
        "initiatedTimestamp": decor::timestamp(initiated),
        "direction": "OUTBOUND",
    });
    let transfer_state = match state {
        HubState::Reserved => "RESERVED",
        HubState::Committed => "COMMITTED",
        HubState::Aborted => "ABORTED",
        HubState::Failed | HubState::Declined => return body,
    };
    let mut decor = Decor::new(id);
    let mut fulfil = json!({"transferState": transfer_state});
    if let (Some(at), HubState::Committed | HubState::Aborted) = (completed, state) {
        fulfil["completedTimestamp"] = json!(decor::timestamp(at));
    }
    let extensions = decor.extensions();
    fulfil["extensionList"] = decor.with_junk(json!({"extension": extensions}));
    let headers = decor.inbound_headers("transfers", 347, SystemTime::now());
    body["fulfil"] = json!({"body": fulfil, "headers": headers});
    body
}

/// The 500 body for an id the SDK never issued (FSPIOP 3208 from the hub).
pub(super) fn unknown_transfer() -> Value {
    json!({"statusCode": "3208", "message": "Transfer ID not found"})
}

/// The SDK's own error body (400s carry a numeric `statusCode`, everything else a string).
pub(super) fn sdk_error(status: u16, message: &str) -> Value {
    if status == 400 {
        json!({"statusCode": 400, "message": message})
    } else {
        json!({"statusCode": status.to_string(), "message": message})
    }
}

fn hub_error_message(doing: &str, e: FspError) -> String {
    format!("Got an error response {doing}: {}", decor::inspect_error(e.code, e.description))
}

fn current_state(phase: Phase) -> &'static str {
    match phase {
        Phase::WaitingParty => "WAITING_FOR_PARTY_ACCEPTANCE",
        Phase::WaitingQuote => "WAITING_FOR_QUOTE_ACCEPTANCE",
        Phase::Committed => "COMPLETED",
        Phase::Declined => "ABORTED",
        Phase::PartyFailed(_)
        | Phase::PartyTimeout
        | Phase::QuoteFailed(_)
        | Phase::TransferFailed(_)
        | Phase::CommittedUnseen => "ERROR_OCCURRED",
    }
}

/// The SDK's transfer state: the request echoed, then one record per stage reached.
fn transfer_state(live: &Live) -> Map<String, Value> {
    let now = SystemTime::now();
    let mut decor = Decor::new(live.id);
    let payee_extensions = decor.extensions();
    let mut state = live.request.body.clone();
    if live.phase.party_resolved() {
        state.insert("to".into(), enriched_payee(live, &decor, &payee_extensions));
    }
    state.insert("transferId".into(), json!(live.id.to_string()));
    state.insert("currentState".into(), json!(current_state(live.phase)));
    state.insert("initiatedTimestamp".into(), json!(decor::timestamp(live.initiated)));
    state.insert("direction".into(), json!("OUTBOUND"));
    state.insert("getPartiesRequest".into(), parties_request(live));
    match live.phase {
        Phase::PartyTimeout => {}
        Phase::PartyFailed(e) => {
            let headers = decor.inbound_headers("parties", 78, live.initiated);
            let body = json!({"errorInformation": {"errorCode": e.code, "errorDescription": e.description}});
            state.insert("getPartiesResponse".into(), json!({"headers": headers, "body": body}));
        }
        _ => {
            let response = parties_response(live, &mut decor, &payee_extensions);
            state.insert("getPartiesResponse".into(), response);
        }
    }
    if let Some(accepted) = live.accept_party {
        state.insert("acceptParty".into(), json!(accepted));
    }
    if live.quoted {
        add_quote(&mut state, live, &mut decor, &payee_extensions);
    }
    if let Some(accepted) = live.accept_quote {
        state.insert("acceptQuote".into(), json!(accepted));
    }
    if live.phase.prepared() {
        state.insert("prepare".into(), prepare(live));
    }
    if live.phase == Phase::Committed {
        state.insert("fulfil".into(), fulfil(live, &mut decor, now));
    }
    if let Some(error) = last_error(live.phase) {
        state.insert("lastError".into(), error);
    }
    state
}

/// `to` as the SDK rewrites it once the payee is resolved.
fn enriched_payee(live: &Live, decor: &Decor, extensions: &Value) -> Value {
    let (first, middle, last, birth) = decor.persona();
    let mut to = live.request.body.get("to").cloned().unwrap_or_else(|| json!({}));
    to["fspId"] = json!("switch");
    to["extensionList"] = extensions.clone();
    to["firstName"] = json!(first);
    to["middleName"] = json!(middle);
    to["lastName"] = json!(last);
    to["dateOfBirth"] = json!(birth);
    to
}

/// The record of a request the SDK sent to the hub.
fn outbound(resource: &str, method: &str, path: &str, at: SystemTime, body: Value) -> Value {
    let mut headers = json!({
        "content-type": format!("application/vnd.interoperability.{resource}+json;version=1.0"),
        "date": decor::http_date(at),
        "fspiop-source": "walletfsp",
        "accept": format!("application/vnd.interoperability.{resource}+json;version=1"),
    });
    if let Value::String(text) = &body {
        headers["fspiop-destination"] = json!("switch");
        headers["content-length"] = json!(text.len());
    }
    json!({"method": method, "host": "127.0.0.1", "port": "4040", "path": path, "headers": headers,
           "agent": "[REDACTED]", "body": body})
}

fn parties_request(live: &Live) -> Value {
    let path = format!("/parties/MSISDN/{}", live.request.payee_id);
    outbound("parties", "GET", &path, live.initiated, Value::Null)
}

fn parties_response(live: &Live, decor: &mut Decor, extensions: &Value) -> Value {
    let (first, middle, last, birth) = decor.persona();
    let id_info = json!({
        "partyIdType": "MSISDN", "partyIdentifier": live.request.payee_id, "fspId": "switch",
        "extensionList": decor.with_junk(json!({"extension": extensions})),
    });
    let party = json!({
        "partyIdInfo": id_info,
        "merchantClassificationCode": (decor.number() % 10_000).to_string(),
        "name": decor.junk_name(),
        "personalInfo": {"complexName": {"firstName": first, "middleName": middle, "lastName": last}, "dateOfBirth": birth},
    });
    let body = decor.with_junk(json!({"party": party}));
    // Content lengths are decoration: a plausible number, not the serialized size.
    let length = 560 + decor.number() as usize % 240;
    let headers = decor.inbound_headers("parties", length, live.initiated);
    json!({"headers": headers, "body": body})
}

fn money(live: &Live) -> Value {
    json!({"currency": live.request.currency, "amount": live.request.amount})
}

/// `quoteId`, `quoteRequest` and, unless the quote was refused, `quoteResponse`.
fn add_quote(state: &mut Map<String, Value>, live: &Live, decor: &mut Decor, extensions: &Value) {
    let quote_id = decor::quote_id(live.id).to_string();
    let (first, middle, last, birth) = decor.persona();
    let mut request = json!({
        "quoteId": quote_id, "transactionId": live.id.to_string(), "amountType": "SEND", "amount": money(live),
        "expiration": decor::timestamp(decor::later(live.initiated, 60)),
        "payer": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": payer_id(live), "fspId": "walletfsp"}},
        "payee": {
            "partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": live.request.payee_id, "fspId": "switch",
                            "extensionList": {"extension": extensions}},
            "personalInfo": {"complexName": {"firstName": first, "middleName": middle, "lastName": last},
                             "dateOfBirth": birth},
        },
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
    });
    if let Some(note) = live.request.body.get("note") {
        request["note"] = note.clone();
    }
    let request = outbound("quotes", "POST", "/quotes", live.initiated, json!(request.to_string()));
    state.insert("quoteId".into(), json!(quote_id));
    state.insert("quoteRequest".into(), request);
    if matches!(live.phase, Phase::QuoteFailed(_)) {
        return;
    }
    let currency = live.request.currency.as_str();
    let (_, condition) = decor::fulfilment_and_condition(live.id);
    let body = json!({
        "transferAmount": decor.with_junk(money(live)),
        "payeeReceiveAmount": decor.with_junk(money(live)),
        "payeeFspFee": decor.with_junk(json!({"currency": currency, "amount": "0.2"})),
        "payeeFspCommission": decor.with_junk(json!({"currency": currency, "amount": "0.3"})),
        "expiration": decor::timestamp(decor::later(live.initiated, 86_400)),
        "geoCode": decor.with_junk(json!({"latitude": "90.000", "longitude": "180.000"})),
        "ilpPacket": ilp_packet(live),
        "condition": condition,
    });
    let length = 2100 + decor.number() as usize % 800;
    let headers = decor.inbound_headers("quotes", length, live.initiated);
    state.insert("quoteResponse".into(), json!({"headers": headers, "body": body}));
    state.insert("quoteResponseSource".into(), json!("switch"));
}

fn payer_id(live: &Live) -> &str {
    live.request.body.get("from").and_then(|f| f.get("idValue")).and_then(Value::as_str).unwrap_or_default()
}

/// A stand-in ILP packet: the transaction, base64url-encoded (nobody decodes it).
fn ilp_packet(live: &Live) -> String {
    let transaction = json!({
        "transactionId": live.id.to_string(), "quoteId": decor::quote_id(live.id).to_string(),
        "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": live.request.payee_id, "fspId": "switch"}},
        "payer": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": payer_id(live), "fspId": "walletfsp"}},
        "amount": money(live),
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
    });
    decor::base64url(transaction.to_string().as_bytes())
}

fn prepare(live: &Live) -> Value {
    let (_, condition) = decor::fulfilment_and_condition(live.id);
    let body = json!({
        "transferId": live.id.to_string(), "payeeFsp": "switch", "payerFsp": "walletfsp", "amount": money(live),
        "ilpPacket": ilp_packet(live), "condition": condition,
        "expiration": decor::timestamp(decor::later(live.initiated, 60)),
    });
    outbound("transfers", "POST", "/transfers", live.initiated, json!(body.to_string()))
}

fn fulfil(live: &Live, decor: &mut Decor, now: SystemTime) -> Value {
    let (fulfilment, _) = decor::fulfilment_and_condition(live.id);
    let completed = live.completed.unwrap_or(now);
    let body = json!({"fulfilment": fulfilment, "completedTimestamp": decor::timestamp(completed),
                      "transferState": "COMMITTED"});
    json!({"body": body, "headers": decor.inbound_headers("transfers", 136, completed)})
}

fn last_error(phase: Phase) -> Option<Value> {
    match phase {
        Phase::PartyFailed(e) | Phase::QuoteFailed(e) | Phase::TransferFailed(e) => Some(json!({
            "httpStatusCode": 500,
            "mojaloopError": {"errorInformation": {"errorCode": e.code, "errorDescription": e.description}},
        })),
        Phase::PartyTimeout | Phase::CommittedUnseen => Some(json!({"httpStatusCode": 504})),
        Phase::WaitingParty | Phase::WaitingQuote | Phase::Committed | Phase::Declined => None,
    }
}
