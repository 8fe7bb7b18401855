//! Strict JSON decoding of every request body of the API (SPEC §6): a body is either
//! an object with only the route's fields, or a 400 with a stable code that names the
//! field when one is at fault.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sysgp::error::ErrorKind;
use sysgp::http::fuzzing::RequestKind;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let kind = RequestKind::ALL[usize::from(pick) % RequestKind::ALL.len()];
    let fields = kind.fields();
    // Valid JSON by a plain parser (numbers that overflow an f64 are not, for it).
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let e = match kind.decode(body) {
        Ok(()) => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            assert_eq!(first, Some(&b'{'), "{kind:?} accepted a body that is not an object");
            if let Some(Value::Object(map)) = &parsed {
                for key in map.keys() {
                    assert!(fields.contains(&key.as_str()), "{kind:?} accepted the unknown field {key:?}");
                }
            }
            return;
        }
        Err(e) => e,
    };
    assert_eq!(e.kind, ErrorKind::Invalid, "{kind:?}: {e:?}");
    assert!(!e.message.is_empty(), "{e:?}");
    let field = e.details.as_ref().and_then(|d| d.get("field")).and_then(Value::as_str);
    match e.code.as_str() {
        "MALFORMED_JSON" => assert!(parsed.is_none(), "{kind:?}: valid JSON reported as malformed: {e:?}"),
        "INVALID_BODY" => assert!(!matches!(parsed, Some(Value::Object(_))), "{kind:?}: an object: {e:?}"),
        "UNKNOWN_FIELD" => {
            let field = field.unwrap_or_else(|| panic!("{kind:?}: no field named: {e:?}"));
            assert!(!fields.contains(&field), "{kind:?}: a known field called unknown: {e:?}");
        }
        "MISSING_FIELD" | "INVALID_FIELD" | "DUPLICATE_FIELD" => {
            let field = field.unwrap_or_else(|| panic!("{kind:?}: no field named: {e:?}"));
            assert!(fields.contains(&field), "{kind:?}: {field:?} is not a field of the body: {e:?}");
        }
        other => panic!("{kind:?}: unexpected code {other}: {e:?}"),
    }
});
