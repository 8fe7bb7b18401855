//! The outcome table of SPEC §4: what one SDK exchange means for our transfer.

use super::wire::{one_line, parse_reply, SdkReply};

/// What happened on the wire for one call.
#[derive(Clone, Debug)]
pub enum Exchange {
    /// The connection could not be made (DNS, refused, connect timeout): nothing was sent.
    NotConnected(String),
    /// The request may have been written, then the exchange failed (reset, our timeout…).
    Lost(String),
    /// An HTTP reply arrived.
    Replied {
        /// HTTP status.
        status: u16,
        /// Body bytes (bounded).
        body: Vec<u8>,
    },
}

/// The meaning of one exchange, before the mode and phase are taken into account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200, COMPLETED with `fulfil.body.transferState` COMMITTED.
    Completed,
    /// 200, ABORTED.
    Aborted,
    /// 200, WAITING_FOR_PARTY_ACCEPTANCE.
    WaitingParty,
    /// 200, WAITING_FOR_QUOTE_ACCEPTANCE.
    WaitingQuote,
    /// 200, WAITING_FOR_CONVERSION_ACCEPTANCE.
    WaitingConversion,
    /// 400: the SDK refused our request (our bug).
    Rejected(String),
    /// 500 with a four-digit FSPIOP code.
    Fspiop {
        /// The bare code, e.g. `"3204"`.
        code: String,
        /// Its description, one line.
        description: String,
    },
    /// 504 before the transfer stage: nothing moved.
    StageTimeout {
        /// `SDK_TIMEOUT_PARTY` or `SDK_TIMEOUT_QUOTE`.
        code: &'static str,
        /// The SDK's message.
        message: String,
    },
    /// Nothing was sent.
    Unreachable(String),
    /// 404/405 with a body that is not the SDK's: the base URL is wrong.
    ConfigError(String),
    /// Anything else: the money may or may not have moved.
    Doubt(String),
}

fn is_fspiop_code(code: &str) -> bool {
    code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) && !code.starts_with('0')
}

/// The `error_message` of a reply (SPEC §4): the FSPIOP description when present,
/// else the SDK's message, one line; the status only when neither says anything.
fn describe(status: u16, reply: &SdkReply) -> String {
    let text = [&reply.error_description, &reply.message].into_iter().flatten().find(|t| !t.trim().is_empty());
    match text {
        Some(text) => one_line(text),
        None => format!("HTTP {status} from the SDK"),
    }
}

/// Classifies one exchange. The parsed reply (ids, quote) is returned alongside.
pub fn classify(exchange: &Exchange) -> (Answer, Option<SdkReply>) {
    let (status, body) = match exchange {
        Exchange::NotConnected(detail) => return (Answer::Unreachable(one_line(detail)), None),
        Exchange::Lost(detail) => return (Answer::Doubt(one_line(&format!("no reply: {detail}"))), None),
        Exchange::Replied { status, body } => (*status, body),
    };
    let Some(reply) = parse_reply(body) else {
        let answer = if matches!(status, 404 | 405) {
            Answer::ConfigError(format!("HTTP {status} with a body that is not the SDK's: check MOJALOOP_SDK_URL"))
        } else {
            Answer::Doubt(format!("HTTP {status} with a body that is not JSON"))
        };
        return (answer, None);
    };
    (classify_reply(status, &reply), Some(reply))
}

fn classify_reply(status: u16, reply: &SdkReply) -> Answer {
    let state = reply.current_state.as_deref().unwrap_or("");
    match status {
        200 => match state {
            "COMPLETED" if reply.fulfil_state.as_deref() == Some("COMMITTED") => Answer::Completed,
            "ABORTED" => Answer::Aborted,
            "WAITING_FOR_PARTY_ACCEPTANCE" => Answer::WaitingParty,
            "WAITING_FOR_QUOTE_ACCEPTANCE" => Answer::WaitingQuote,
            "WAITING_FOR_CONVERSION_ACCEPTANCE" => Answer::WaitingConversion,
            other => {
                Answer::Doubt(one_line(&format!("HTTP 200 with state {other:?} and fulfil {:?}", reply.fulfil_state)))
            }
        },
        400 => Answer::Rejected(describe(status, reply)),
        500 => {
            let code = reply.status_code.as_deref().filter(|c| is_fspiop_code(c)).or(reply.error_code.as_deref());
            match code.filter(|c| is_fspiop_code(c)) {
                Some(code) => Answer::Fspiop { code: code.to_owned(), description: describe(status, reply) },
                None => Answer::Doubt(describe(status, reply)),
            }
        }
        504 if !reply.has_prepare => {
            let message = reply.message.clone().unwrap_or_default();
            if message.starts_with("Timeout resolving payee") {
                Answer::StageTimeout { code: "SDK_TIMEOUT_PARTY", message: one_line(&message) }
            } else if message.starts_with("Timeout requesting quote") {
                Answer::StageTimeout { code: "SDK_TIMEOUT_QUOTE", message: one_line(&message) }
            } else {
                Answer::Doubt(describe(status, reply))
            }
        }
        // The SDK's transfers routes never answer 404 or 405 themselves: unless the body
        // speaks of a transfer or carries an FSPIOP code, the path is wrong.
        404 | 405
            if !reply.about_transfer
                && ![&reply.status_code, &reply.error_code].into_iter().flatten().any(|c| is_fspiop_code(c)) =>
        {
            Answer::ConfigError(format!("HTTP {status}: the SDK has no such route: check MOJALOOP_SDK_URL"))
        }
        _ => Answer::Doubt(describe(status, reply)),
    }
}

/// Whether a FAILED transfer with this FSPIOP code may be sent again: technical
/// (1xxx), server (2xxx) and hub liquidity (4001) errors are; payee and party
/// rejections are not.
pub fn fspiop_retryable(code: &str) -> bool {
    code.starts_with('1') || code.starts_with('2') || code == "4001"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replied(status: u16, body: &str) -> Answer {
        classify(&Exchange::Replied { status, body: body.as_bytes().to_vec() }).0
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/sdk/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_row_of_the_table_maps_as_specified() {
        assert_eq!(replied(200, &fixture("happy.response.json")), Answer::Completed);
        assert_eq!(replied(200, r#"{"currentState":"ABORTED"}"#), Answer::Aborted);
        assert_eq!(replied(200, &fixture("put1.response.json")), Answer::WaitingQuote);
        assert_eq!(replied(200, r#"{"currentState":"WAITING_FOR_PARTY_ACCEPTANCE"}"#), Answer::WaitingParty);
        assert_eq!(replied(200, r#"{"currentState":"WAITING_FOR_CONVERSION_ACCEPTANCE"}"#), Answer::WaitingConversion);
        assert!(matches!(replied(400, r#"{"statusCode":400,"message":"bad amount"}"#), Answer::Rejected(_)));
        assert_eq!(
            replied(500, &fixture("fail_party404.response.json")),
            Answer::Fspiop { code: "3204".into(), description: "Party not found".into() }
        );
        assert!(
            matches!(replied(500, &fixture("fail_liq.response.json")), Answer::Fspiop { code, .. } if code == "4001")
        );
        assert!(matches!(
            replied(504, &fixture("fail_timeout.response.json")),
            Answer::StageTimeout { code: "SDK_TIMEOUT_PARTY", .. }
        ));
        assert!(matches!(replied(404, "<html>nginx</html>"), Answer::ConfigError(_)));
        assert!(matches!(replied(405, "{}"), Answer::ConfigError(_)));
        // The SDK's own (or the simulator's) reply for a path it does not serve.
        let no_route = r#"{"statusCode":"404","message":"Not found"}"#;
        assert!(matches!(replied(404, no_route), Answer::ConfigError(_)), "a wrong base path is a config error");
        // error_message is the SDK's message itself, with no status prefix.
        let rejected = r#"{"statusCode":400,"message":"  .body.amount should\n match pattern "}"#;
        assert_eq!(replied(400, rejected), Answer::Rejected(".body.amount should match pattern".into()));
        let fulfil = r#"{"message":"Timeout waiting for fulfil","transferState":{"prepare":{}}}"#;
        assert_eq!(replied(504, fulfil), Answer::Doubt("Timeout waiting for fulfil".into()));
        let unreachable = classify(&Exchange::NotConnected("refused".into())).0;
        assert!(matches!(unreachable, Answer::Unreachable(_)));
    }

    #[test]
    fn everything_else_is_doubt() {
        let after_prepare = r#"{"message":"Timeout resolving payee","transferState":{"prepare":{},"transferId":"x"}}"#;
        for (status, body) in [
            (504, after_prepare),
            (504, r#"{"message":"Timeout waiting for fulfil"}"#),
            (500, r#"{"message":"boom"}"#),
            (500, r#"{"statusCode":"50"}"#),
            (502, "Bad gateway"),
            (503, "{}"),
            (200, r#"{"currentState":"COMPLETED","fulfil":{"body":{"transferState":"RESERVED"}}}"#),
            (200, "not json"),
            (404, r#"{"statusCode":"3208","message":"unknown"}"#),
            (404, r#"{"transferId":"x","message":"gone"}"#),
        ] {
            assert!(matches!(replied(status, body), Answer::Doubt(_)), "{status} {body}");
        }
        assert!(matches!(classify(&Exchange::Lost("reset".into())).0, Answer::Doubt(_)));
    }

    #[test]
    fn messages_from_odd_replies_are_one_bounded_line() {
        let long_state = format!(r#"{{"currentState":"WAIT{}ING"}}"#, "\\u007f\\n".repeat(400));
        let blank = r#"{"statusCode":"4001","message":" \n "}"#;
        for (status, body) in [(200, long_state.as_str()), (500, blank), (400, blank)] {
            let message = match replied(status, body) {
                Answer::Doubt(m) | Answer::Rejected(m) | Answer::Fspiop { description: m, .. } => m,
                other => panic!("{status} {body} → {other:?}"),
            };
            assert!(!message.trim().is_empty() && !message.contains(['\n', '\r']), "{message:?}");
            assert!(message.chars().count() <= 300, "{} characters", message.chars().count());
        }
    }

    #[test]
    fn doubtful_replies_keep_the_sdk_transfer_id() {
        let (_, reply) = classify(&Exchange::Replied {
            status: 504,
            body: br#"{"transferState":{"transferId":"abc","prepare":{}}}"#.to_vec(),
        });
        assert_eq!(reply.and_then(|r| r.transfer_id).as_deref(), Some("abc"));
    }
}
