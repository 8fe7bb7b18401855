//! SDK wire format: the request body we send and a lenient reading of replies that
//! extracts only the fields that decide an outcome. Replies carry many fields the
//! schema does not list and junk the mock hub invents; none of it may break parsing.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::ledger::{format_minor, Currency, Minor, Msisdn, Quote, QuotedMoney};

/// One outbound payment.
#[derive(Clone, Debug)]
pub struct Payment {
    /// Our transfer id, sent as `homeTransactionId`.
    pub home_transaction_id: Uuid,
    /// Payer wallet.
    pub from: Msisdn,
    /// Payee at another provider.
    pub to: Msisdn,
    /// Minor units.
    pub amount: Minor,
    /// Currency of the amount.
    pub currency: Currency,
    /// Free text; sent only when non-empty.
    pub note: Option<String>,
}

/// `POST /transfers` body: no names (the SDK's ASCII-only check refuses accents), no
/// nulls, a canonical amount, `note` only when non-empty.
pub fn transfer_request(p: &Payment) -> Value {
    let mut body = Map::new();
    body.insert("homeTransactionId".into(), json!(p.home_transaction_id.to_string()));
    body.insert("from".into(), json!({"idType": "MSISDN", "idValue": p.from.to_string()}));
    body.insert("to".into(), json!({"idType": "MSISDN", "idValue": p.to.to_string()}));
    body.insert("amountType".into(), json!("SEND"));
    body.insert("currency".into(), json!(p.currency.code()));
    body.insert("amount".into(), json!(format_minor(p.amount, p.currency)));
    body.insert("transactionType".into(), json!("TRANSFER"));
    if let Some(note) = p.note.as_deref().filter(|n| !n.is_empty()) {
        body.insert("note".into(), json!(note));
    }
    Value::Object(body)
}

/// The deciding fields of an SDK reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdkReply {
    /// `currentState` (top level, or inside `transferState` on errors).
    pub current_state: Option<String>,
    /// The SDK's `transferId`.
    pub transfer_id: Option<String>,
    /// `fulfil.body.transferState`: COMMITTED, ABORTED, RESERVED, RECEIVED.
    pub fulfil_state: Option<String>,
    /// `statusCode`, a string or (on 400s) a number, as text.
    pub status_code: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `lastError.mojaloopError.errorInformation.errorCode`.
    pub error_code: Option<String>,
    /// `lastError.mojaloopError.errorInformation.errorDescription`.
    pub error_description: Option<String>,
    /// Whether `transferState.prepare` is present (the transfer stage began).
    pub has_prepare: bool,
    /// Quote details, when a quote came back.
    pub quote: Option<Quote>,
    /// Whether the body speaks of a transfer (`transferState`, `currentState` or
    /// `transferId`): a reply of the SDK's transfers API, not a router's "not found".
    pub about_transfer: bool,
}

impl SdkReply {
    /// Whether the reply shows the transfer stage under way or done (a prepare, a
    /// fulfil, or COMPLETED): money may have moved.
    pub fn shows_transfer_stage(&self) -> bool {
        self.has_prepare || self.fulfil_state.is_some() || self.current_state.as_deref() == Some("COMPLETED")
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(root: &Value, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|p| text(root.pointer(p)))
}

fn money(v: Option<&Value>) -> Option<QuotedMoney> {
    let v = v?;
    Some(QuotedMoney { amount: text(v.get("amount"))?, currency: text(v.get("currency"))? })
}

fn quote(root: &Value) -> Option<Quote> {
    let body = root.pointer("/quoteResponse/body").or_else(|| root.pointer("/transferState/quoteResponse/body"))?;
    Some(Quote {
        transfer_amount: money(body.get("transferAmount")),
        payee_receive_amount: money(body.get("payeeReceiveAmount")),
        payee_fsp_fee: money(body.get("payeeFspFee")),
        payee_fsp_commission: money(body.get("payeeFspCommission")),
        expiration: text(body.get("expiration")),
    })
}

/// Reads the deciding fields; `None` when the body is not JSON at all.
pub fn parse_reply(body: &[u8]) -> Option<SdkReply> {
    let root: Value = super::prune::parse(body, &super::prune::REPLY)?;
    if !root.is_object() {
        return Some(SdkReply::default());
    }
    let err = "/lastError/mojaloopError/errorInformation";
    let state_err = "/transferState/lastError/mojaloopError/errorInformation";
    let reply = SdkReply {
        current_state: first_text(&root, &["/currentState", "/transferState/currentState"]),
        transfer_id: first_text(&root, &["/transferId", "/transferState/transferId"]),
        fulfil_state: first_text(&root, &["/fulfil/body/transferState", "/transferState/fulfil/body/transferState"]),
        status_code: text(root.get("statusCode")),
        message: text(root.get("message")),
        error_code: first_text(&root, &[&format!("{state_err}/errorCode"), &format!("{err}/errorCode")]),
        error_description: first_text(
            &root,
            &[&format!("{state_err}/errorDescription"), &format!("{err}/errorDescription")],
        ),
        has_prepare: root.pointer("/transferState/prepare").is_some_and(|v| !v.is_null())
            || root.get("prepare").is_some_and(|v| !v.is_null()),
        quote: quote(&root),
        about_transfer: ["transferState", "currentState", "transferId"].iter().any(|k| root.get(k).is_some()),
    };
    Some(reply)
}

/// Collapses whitespace and bounds the length: error messages are one line.
pub fn one_line(text: &str) -> String {
    /// Long enough for any FSPIOP description, short enough for a list view.
    const MESSAGE_CHARS_MAX: usize = 300;
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(MESSAGE_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/sdk/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn request_has_no_names_no_nulls_and_a_canonical_amount() {
        let p = Payment {
            home_transaction_id: Uuid::nil(),
            from: Msisdn::parse("22507000001").expect("msisdn"),
            to: Msisdn::parse("22507000002").expect("msisdn"),
            amount: 1050,
            currency: Currency::parse("USD").expect("USD"),
            note: Some(String::new()),
        };
        let body = transfer_request(&p);
        assert_eq!(body["amount"], "10.5");
        assert!(body.get("note").is_none());
        let text = body.to_string();
        assert!(!text.contains("null") && !text.contains("Name"), "{text}");
    }

    #[test]
    fn the_captured_happy_reply_is_completed_and_committed() {
        let r = parse_reply(&fixture("happy.response.json")).expect("json");
        assert_eq!(r.current_state.as_deref(), Some("COMPLETED"));
        assert_eq!(r.fulfil_state.as_deref(), Some("COMMITTED"));
        assert_eq!(r.transfer_id.as_deref(), Some("4d6910fa-1a1b-4d94-8f1b-d22029c96d67"));
        assert!(r.quote.is_some());
    }

    #[test]
    fn captured_errors_yield_code_description_and_prepare() {
        let r = parse_reply(&fixture("fail_party404.response.json")).expect("json");
        assert_eq!((r.status_code.as_deref(), r.error_code.as_deref()), (Some("3204"), Some("3204")));
        assert_eq!(r.error_description.as_deref(), Some("Party not found"));
        assert!(!r.has_prepare);
        let r = parse_reply(&fixture("fail_xfer13.response.json")).expect("json");
        assert_eq!(r.error_code.as_deref(), Some("5105"));
        assert!(r.has_prepare);
        let r = parse_reply(&fixture("fail_timeout.response.json")).expect("json");
        assert!(r.message.as_deref().is_some_and(|m| m.starts_with("Timeout resolving payee")));
        assert_eq!(r.transfer_id.as_deref(), Some("3ef5d249-d0f7-4a22-a6b9-1a6565e7bc71"));
    }

    #[test]
    fn unexpected_types_are_ignored_not_fatal() {
        let r = parse_reply(br#"{"statusCode": 400, "currentState": 7, "fulfil": "x", "transferState": []}"#)
            .expect("json");
        assert_eq!(r.status_code.as_deref(), Some("400"));
        assert_eq!(r.current_state, Some("7".into()));
        assert_eq!(r.fulfil_state, None);
        assert!(parse_reply(b"<html>").is_none());
    }

    #[test]
    fn messages_become_one_bounded_line() {
        assert_eq!(one_line("a\n  b\t c"), "a b c");
        assert_eq!(one_line(&"x".repeat(1000)).len(), 300);
    }
}
