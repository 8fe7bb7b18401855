//! SDK replies (SPEC §4): `parse_reply` reads any body without panicking, and the
//! outcome table is total and only answers what the reply supports; every message is
//! one bounded line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sysgp::sdk::outcome::{classify, fspiop_retryable, Answer, Exchange};
use sysgp::sdk::wire::{parse_reply, SdkReply};

/// Statuses the table names, so that most inputs exercise a row of it.
const STATUSES: [u16; 8] = [200, 400, 404, 405, 500, 502, 503, 504];
/// `one_line`'s bound: error messages fit a list view.
const MESSAGE_CHARS_MAX: usize = 300;

fuzz_target!(|data: &[u8]| {
    let Some((&[how, code], body)) = data.split_first_chunk::<2>() else { return };
    let exchange = match how % 8 {
        0 => Exchange::NotConnected(String::from_utf8_lossy(body).into_owned()),
        1 => Exchange::Lost(String::from_utf8_lossy(body).into_owned()),
        2 => Exchange::Replied { status: u16::from(code) * 4, body: body.to_vec() },
        _ => Exchange::Replied { status: STATUSES[usize::from(code) % STATUSES.len()], body: body.to_vec() },
    };
    let (answer, reply) = classify(&exchange);
    let Exchange::Replied { status, body } = &exchange else {
        assert!(reply.is_none());
        match (&exchange, &answer) {
            // The detail is the transport's error text, which is never empty in practice.
            (Exchange::NotConnected(_), Answer::Unreachable(m)) | (Exchange::Lost(_), Answer::Doubt(m)) => {
                bounded_line(m)
            }
            _ => panic!("{exchange:?} → {answer:?}"),
        }
        return;
    };
    let parsed = check_reply(body);
    assert_eq!(reply, parsed, "classify reads the body as parse_reply does");
    check_answer(*status, reply.as_ref(), &answer);
});

/// `parse_reply` is `None` exactly for bodies that are not JSON, and empty for JSON
/// that is not an object.
fn check_reply(body: &[u8]) -> Option<SdkReply> {
    let reply = parse_reply(body);
    let value: Option<Value> = serde_json::from_slice(body).ok();
    assert_eq!(reply.is_some(), value.is_some(), "{:?}", String::from_utf8_lossy(body));
    if let (Some(reply), Some(value)) = (&reply, &value) {
        if !value.is_object() {
            assert_eq!(reply, &SdkReply::default());
        }
        let about_transfer = ["transferState", "currentState", "transferId"].iter().any(|k| value.get(k).is_some());
        assert_eq!(reply.about_transfer, about_transfer);
    }
    reply
}

/// Each answer only where the table allows it; the deterministic rows always.
fn check_answer(status: u16, reply: Option<&SdkReply>, answer: &Answer) {
    let state = reply.and_then(|r| r.current_state.as_deref());
    let fulfil = reply.and_then(|r| r.fulfil_state.as_deref());
    let committed = state == Some("COMPLETED") && fulfil == Some("COMMITTED");
    let expected_200 = match state {
        _ if committed => Some(Answer::Completed),
        Some("ABORTED") => Some(Answer::Aborted),
        Some("WAITING_FOR_PARTY_ACCEPTANCE") => Some(Answer::WaitingParty),
        Some("WAITING_FOR_QUOTE_ACCEPTANCE") => Some(Answer::WaitingQuote),
        Some("WAITING_FOR_CONVERSION_ACCEPTANCE") => Some(Answer::WaitingConversion),
        _ => None,
    };
    if let (200, Some(expected)) = (status, expected_200.as_ref().filter(|_| reply.is_some())) {
        assert_eq!(answer, expected);
    }
    match answer {
        Answer::Completed => assert!(status == 200 && committed),
        Answer::Aborted | Answer::WaitingParty | Answer::WaitingQuote | Answer::WaitingConversion => {
            assert_eq!((status, Some(answer)), (200, expected_200.as_ref()))
        }
        Answer::Rejected(m) => {
            assert!(status == 400 && reply.is_some());
            one_line(m);
        }
        Answer::Fspiop { code, description } => {
            let reply = reply.expect("a code comes from a reply");
            assert_eq!(status, 500);
            assert!(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) && !code.starts_with('0'), "{code}");
            let from = [&reply.status_code, &reply.error_code];
            assert!(from.iter().any(|c| c.as_deref() == Some(code.as_str())), "{code} is not in {reply:?}");
            let _ = fspiop_retryable(code);
            one_line(description);
        }
        Answer::StageTimeout { code, message } => {
            let reply = reply.expect("a timeout message comes from a reply");
            assert!(status == 504 && !reply.has_prepare, "{reply:?}");
            let prefix = match *code {
                "SDK_TIMEOUT_PARTY" => "Timeout resolving payee",
                "SDK_TIMEOUT_QUOTE" => "Timeout requesting quote",
                other => panic!("unexpected stage timeout code {other}"),
            };
            assert!(reply.message.as_deref().is_some_and(|m| m.starts_with(prefix)), "{reply:?}");
            one_line(message);
        }
        Answer::ConfigError(m) => {
            // Not JSON, or JSON that neither speaks of a transfer nor carries an FSPIOP code.
            let fspiop = |c: &String| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()) && !c.starts_with('0');
            let not_the_sdks =
                |r: &SdkReply| !r.about_transfer && ![&r.status_code, &r.error_code].into_iter().flatten().any(fspiop);
            assert!(matches!(status, 404 | 405) && reply.is_none_or(not_the_sdks), "{status} {reply:?}");
            one_line(m);
        }
        Answer::Doubt(m) => {
            assert!(status != 200 || expected_200.is_none() || reply.is_none(), "{status} {reply:?}");
            one_line(m);
        }
        Answer::Unreachable(m) => panic!("a reply arrived, yet unreachable: {m}"),
    }
}

/// Error messages are one non-empty line of bounded length (SPEC §4 `error_message`).
fn one_line(message: &str) {
    assert!(!message.trim().is_empty(), "empty message");
    bounded_line(message);
}

fn bounded_line(message: &str) {
    assert!(!message.contains(['\n', '\r']), "{message:?}");
    let chars = message.chars().count();
    assert!(chars <= MESSAGE_CHARS_MAX, "a message of {chars} characters");
}
