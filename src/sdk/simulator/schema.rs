//! Request validation: the subset of the SDK's outbound schemas (api-snippets v2.1.0) that
//! `POST /transfers` and `PUT /transfers/{id}` use, checked the way the real SDK refuses
//! bodies: unknown fields, `null`s, bad patterns and enums are all a 400.
//!
//! The schema is written down as data ([`Rule`] trees) rather than as code so that it
//! can be read side by side with the JSON Schema it mirrors.

use serde_json::{Map, Value};

/// A valid `POST /transfers` body: the fields the simulator acts on, plus the whole
/// object so that replies can echo it like the SDK does.
#[derive(Clone, Debug)]
pub(super) struct TransferRequest {
    pub(super) home_transaction_id: String,
    /// `to.idValue`: the payee identifier the party triggers look at.
    pub(super) payee_id: String,
    pub(super) amount: String,
    pub(super) currency: String,
    pub(super) body: Map<String, Value>,
}

/// A valid `PUT /transfers/{id}` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Continuation {
    /// `{"acceptParty": bool}`
    AcceptParty(bool),
    /// `{"acceptQuote": bool}`
    AcceptQuote(bool),
}

/// Parses and validates a `POST /transfers` body; the error is the 400 message.
pub(super) fn transfer_request(raw: &[u8]) -> Result<TransferRequest, String> {
    let value = parse_json(raw)?;
    check(&value, &Rule::Object(&TRANSFER_REQUEST), BODY)?;
    let Value::Object(body) = value else {
        return Err(format!("{BODY} should be object"));
    };
    // The schema check above guarantees these are present strings.
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(TransferRequest {
        home_transaction_id: text(body.get("homeTransactionId")),
        payee_id: text(body.get("to").and_then(|to| to.get("idValue"))),
        amount: text(body.get("amount")),
        currency: text(body.get("currency")),
        body,
    })
}

/// Parses and validates a `PUT /transfers/{id}` body (one of the two continuation schemas).
pub(super) fn continuation(raw: &[u8]) -> Result<Continuation, String> {
    let value = parse_json(raw)?;
    let (obj, make): (&'static Obj, fn(bool) -> Continuation) = match &value {
        Value::Object(map) if map.contains_key("acceptQuote") => (&ACCEPT_QUOTE, Continuation::AcceptQuote),
        Value::Object(map) if map.contains_key("acceptParty") => (&ACCEPT_PARTY, Continuation::AcceptParty),
        Value::Object(_) => return Err(format!("{BODY} should have required property 'acceptParty' or 'acceptQuote'")),
        _ => return Err(format!("{BODY} should be object")),
    };
    check(&value, &Rule::Object(obj), BODY)?;
    let accepted = value.get(obj.required[0]).and_then(Value::as_bool).unwrap_or(false);
    Ok(make(accepted))
}

/// The path prefix of every message, like the openapi validator's.
const BODY: &str = "request.body";

fn parse_json(raw: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(raw).map_err(|e| format!("{BODY} is not valid JSON: {e}"))
}

/// One node of the schema subset the SDK's transfer API uses.
pub(super) enum Rule {
    /// A string of `min..=max` characters, optionally matching a pattern.
    Str { min: usize, max: usize, pattern: Option<&'static Pattern> },
    /// A string from a fixed list.
    Enum(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// An int32 of at least `min`.
    Int { min: i64 },
    /// An object with `additionalProperties: false`.
    Object(&'static Obj),
    /// An array of at most `max` items.
    Array { items: &'static Rule, max: usize },
}

/// An object schema: which properties must be there and what each must look like.
pub(super) struct Obj {
    required: &'static [&'static str],
    props: &'static [(&'static str, Rule)],
}

/// A regular expression of the schema, hand-compiled into a function (no regex crate).
pub(super) struct Pattern {
    source: &'static str,
    matches: fn(&str) -> bool,
}

/// Checks `value` against `rule`; the error names the first offending path.
fn check(value: &Value, rule: &Rule, path: &str) -> Result<(), String> {
    match rule {
        Rule::Str { min, max, pattern } => {
            let text = value.as_str().ok_or_else(|| format!("{path} should be string"))?;
            // JavaScript counts UTF-16 units; characters are close enough for the ASCII fields that matter.
            let len = text.chars().count();
            if len < *min {
                return Err(format!("{path} should NOT be shorter than {min} characters"));
            }
            if len > *max {
                return Err(format!("{path} should NOT be longer than {max} characters"));
            }
            match pattern {
                Some(p) if !(p.matches)(text) => Err(format!("{path} should match pattern \"{}\"", p.source)),
                _ => Ok(()),
            }
        }
        Rule::Enum(allowed) => {
            let text = value.as_str().ok_or_else(|| format!("{path} should be string"))?;
            if allowed.contains(&text) {
                Ok(())
            } else {
                Err(format!("{path} should be equal to one of the allowed values"))
            }
        }
        Rule::Bool => value.as_bool().map(|_| ()).ok_or_else(|| format!("{path} should be boolean")),
        Rule::Int { min } => check_int(value, *min, path),
        Rule::Object(obj) => check_object(value, obj, path),
        Rule::Array { items, max } => {
            let list = value.as_array().ok_or_else(|| format!("{path} should be array"))?;
            if list.len() > *max {
                return Err(format!("{path} should NOT have more than {max} items"));
            }
            list.iter().enumerate().try_for_each(|(i, item)| check(item, items, &format!("{path}[{i}]")))
        }
    }
}

fn check_int(value: &Value, min: i64, path: &str) -> Result<(), String> {
    // JSON has one number type: 5.0 is an integer to the JavaScript validator too.
    let n = match (value.as_i64(), value.as_f64()) {
        (Some(n), _) => n,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => f as i64,
        _ => return Err(format!("{path} should be integer")),
    };
    if n < min {
        return Err(format!("{path} should be >= {min}"));
    }
    if n > i64::from(i32::MAX) {
        return Err(format!("{path} should match format \"int32\""));
    }
    Ok(())
}

fn check_object(value: &Value, obj: &Obj, path: &str) -> Result<(), String> {
    let map = value.as_object().ok_or_else(|| format!("{path} should be object"))?;
    if let Some(missing) = obj.required.iter().find(|name| !map.contains_key(**name)) {
        return Err(format!("{path} should have required property '{missing}'"));
    }
    if let Some(extra) = map.keys().find(|key| !obj.props.iter().any(|(name, _)| name == key)) {
        return Err(format!("{path} should NOT have additional properties ('{extra}')"));
    }
    for (name, rule) in obj.props {
        if let Some(field) = map.get(*name) {
            check(field, rule, &format!("{path}.{name}"))?;
        }
    }
    Ok(())
}

// ----- the schemas -----------------------------------------------------------------

/// No limit: the schema gives none (JSON bodies are capped by the HTTP layer).
const UNBOUNDED: usize = usize::MAX;

const fn text(min: usize, max: usize) -> Rule {
    Rule::Str { min, max, pattern: None }
}

const fn matching(pattern: &'static Pattern) -> Rule {
    Rule::Str { min: 0, max: UNBOUNDED, pattern: Some(pattern) }
}

static EXTENSION: Obj =
    Obj { required: &["key", "value"], props: &[("key", text(1, UNBOUNDED)), ("value", text(1, 128))] };
static EXTENSION_ITEM: Rule = Rule::Object(&EXTENSION);
static CURRENCY_ITEM: Rule = Rule::Enum(CURRENCIES);

/// `transferParty` (used for both `from` and `to`).
static PARTY: Obj = Obj {
    required: &["idType", "idValue"],
    props: &[
        ("type", Rule::Enum(&["CONSUMER", "AGENT", "BUSINESS", "DEVICE"])),
        (
            "idType",
            Rule::Enum(&["MSISDN", "EMAIL", "PERSONAL_ID", "BUSINESS", "DEVICE", "ACCOUNT_ID", "IBAN", "ALIAS"]),
        ),
        ("idValue", text(1, 128)),
        ("idSubValue", text(1, 128)),
        ("displayName", matching(&NAME)),
        // The schema's first/middle/last name patterns use \p{..} classes; the SDK is
        // treated as ASCII-only for every name (sysgp never sends names at all).
        ("firstName", matching(&NAME)),
        ("middleName", matching(&NAME)),
        ("lastName", matching(&NAME)),
        ("dateOfBirth", matching(&DATE_OF_BIRTH)),
        ("merchantClassificationCode", matching(&MERCHANT_CODE)),
        ("fspId", text(1, 32)),
        ("supportedCurrencies", Rule::Array { items: &CURRENCY_ITEM, max: 16 }),
        ("kycInformation", text(1, 2048)),
        ("extensionList", Rule::Array { items: &EXTENSION_ITEM, max: 16 }),
    ],
};

/// `transferRequest`.
static TRANSFER_REQUEST: Obj = Obj {
    required: &["homeTransactionId", "from", "to", "amountType", "currency", "amount", "transactionType"],
    props: &[
        ("homeTransactionId", text(0, UNBOUNDED)),
        ("from", Rule::Object(&PARTY)),
        ("to", Rule::Object(&PARTY)),
        ("amountType", Rule::Enum(&["SEND", "RECEIVE"])),
        ("currency", Rule::Enum(CURRENCIES)),
        ("amount", matching(&AMOUNT)),
        ("transactionType", Rule::Enum(&["TRANSFER"])),
        ("subScenario", matching(&SUB_SCENARIO)),
        ("note", text(1, 128)),
        ("quoteRequestExtensions", Rule::Array { items: &EXTENSION_ITEM, max: 16 }),
        ("transferRequestExtensions", Rule::Array { items: &EXTENSION_ITEM, max: 16 }),
        ("skipPartyLookup", Rule::Bool),
        ("prepareExpirySeconds", Rule::Int { min: 1 }),
        ("fxPrepareExpirySeconds", Rule::Int { min: 1 }),
        ("quoteExpirySeconds", Rule::Int { min: 1 }),
        // Upstream says `minimum: "1s"` (a bug); patched to 1 like the README says.
        ("fxQuoteExpirySeconds", Rule::Int { min: 1 }),
    ],
};

/// `transferContinuationAcceptParty`.
static ACCEPT_PARTY: Obj = Obj { required: &["acceptParty"], props: &[("acceptParty", Rule::Bool)] };
/// `transferContinuationAcceptQuote`.
static ACCEPT_QUOTE: Obj = Obj { required: &["acceptQuote"], props: &[("acceptQuote", Rule::Bool)] };

/// The `Currency` enum of the v2.1.0 schema, verbatim.
pub(super) const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GGP", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS", "IMP", "INR",
    "IQD", "IRR", "ISK", "JEP", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRO", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR",
    "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLL", "SOS",
    "SPL", "SRD", "STD", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TVD", "TWD", "TZS",
    "UAH", "UGX", "USD", "UYU", "UZS", "VEF", "VND", "VUV", "WST", "XAF", "XCD", "XDR", "XOF", "XPF", "XTS", "XXX",
    "YER", "ZAR", "ZMW", "ZWD",
];

// ----- the patterns ----------------------------------------------------------------

static AMOUNT: Pattern = Pattern { source: r"^([0]|([1-9][0-9]{0,17}))([.][0-9]{0,3}[1-9])?$", matches: is_amount };
static NAME: Pattern = Pattern { source: r"^(?!\s*$)[\w .,'-]{1,128}$", matches: is_name };
static SUB_SCENARIO: Pattern = Pattern { source: r"^[A-Z_]{1,32}$", matches: is_sub_scenario };
static MERCHANT_CODE: Pattern = Pattern { source: r"^[\d]{1,4}$", matches: is_merchant_code };
static DATE_OF_BIRTH: Pattern = Pattern {
    source: r"^(?:[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:[1-9]\d(?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)-02-29)$",
    matches: is_date_of_birth,
};

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// `^([0]|([1-9][0-9]{0,17}))([.][0-9]{0,3}[1-9])?$`: no sign, no leading zero, at most
/// 18 integer digits, 1 to 4 decimals of which the last is not 0.
pub(super) fn is_amount(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (s, None),
    };
    let int_ok = int == "0" || (!int.is_empty() && int.len() <= 18 && !int.starts_with('0') && all_digits(int));
    let frac_ok = match frac {
        None => true,
        Some(f) => (1..=4).contains(&f.len()) && all_digits(f) && !f.ends_with('0'),
    };
    int_ok && frac_ok
}

/// `^(?!\s*$)[\w .,'-]{1,128}$` with JavaScript's ASCII-only `\w`.
fn is_name(s: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '.' | ',' | '\'' | '-');
    let len = s.chars().count();
    (1..=128).contains(&len) && s.chars().all(allowed) && !s.chars().all(|c| c == ' ')
}

fn is_sub_scenario(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

fn is_merchant_code(s: &str) -> bool {
    (1..=4).contains(&s.len()) && all_digits(s)
}

/// `YYYY-MM-DD`, year 1000..=9999, a real Gregorian date (the schema's long regex says
/// exactly that, leap years included).
fn is_date_of_birth(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || b[0] == b'0' {
        return false;
    }
    let (year, month, day) = (&s[0..4], &s[5..7], &s[8..10]);
    if !(all_digits(year) && all_digits(month) && all_digits(day)) {
        return false;
    }
    let parse = |t: &str| t.parse::<u32>().unwrap_or(0);
    let (year, month, day) = (parse(year), parse(month), parse(day));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> Value {
        json!({"homeTransactionId": "h1", "from": {"idType": "MSISDN", "idValue": "22507000001"},
               "to": {"idType": "MSISDN", "idValue": "22507000002"}, "amountType": "SEND",
               "currency": "XOF", "amount": "1500", "transactionType": "TRANSFER", "note": "rent"})
    }

    fn validate(v: &Value) -> Result<TransferRequest, String> {
        transfer_request(v.to_string().as_bytes())
    }

    #[test]
    fn amount_pattern_refuses_trailing_zeros_signs_and_leading_zeros() {
        for ok in ["0", "1", "10", "10.5", "0.0001", "1.2345", "999999999999999999", "1.05"] {
            assert!(is_amount(ok), "{ok} should pass");
        }
        for bad in ["", "10.50", "10.", ".5", "01", "-1", "+1", "1e3", "1.23456", "1000000000000000000", "1,5", " 1"] {
            assert!(!is_amount(bad), "{bad} should fail");
        }
    }

    #[test]
    fn names_are_ascii_word_characters_and_not_blank() {
        assert!(is_name("Awa Kone"));
        assert!(is_name("O'Neil-Smith, Jr."));
        assert!(!is_name("Awa Koné"));
        assert!(!is_name("   "));
        assert!(!is_name(""));
        assert!(!is_name(&"a".repeat(129)));
    }

    #[test]
    fn dates_of_birth_follow_the_gregorian_calendar() {
        for ok in ["1964-12-20", "2000-02-29", "2024-02-29", "1999-04-30", "1000-01-01"] {
            assert!(is_date_of_birth(ok), "{ok}");
        }
        for bad in ["1900-02-29", "2023-02-29", "1999-04-31", "0999-01-01", "1999-13-01", "1999-1-01", "1999-00-10"] {
            assert!(!is_date_of_birth(bad), "{bad}");
        }
    }

    #[test]
    fn a_minimal_valid_request_is_accepted_and_its_fields_extracted() {
        let r = validate(&request()).expect("valid");
        assert_eq!((r.home_transaction_id.as_str(), r.payee_id.as_str()), ("h1", "22507000002"));
        assert_eq!((r.amount.as_str(), r.currency.as_str()), ("1500", "XOF"));
    }

    #[test]
    fn unknown_null_missing_and_enum_violations_name_the_field() {
        let cases: [(&str, Value, &str); 6] = [
            ("/extra", json!(1), "request.body should NOT have additional properties ('extra')"),
            ("/note", Value::Null, "request.body.note should be string"),
            ("/to/displayName", json!("Awa Koné"), "request.body.to.displayName should match pattern"),
            ("/from/nickname", json!("x"), "request.body.from should NOT have additional properties ('nickname')"),
            ("/currency", json!("ABC"), "request.body.currency should be equal to one of the allowed values"),
            ("/amount", json!("10.50"), "request.body.amount should match pattern"),
        ];
        for (pointer, value, message) in cases {
            let mut body = request();
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            body.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent").insert(key.into(), value);
            let err = validate(&body).expect_err(pointer);
            assert!(err.starts_with(message), "{pointer}: {err}");
        }
        let mut body = request();
        body.as_object_mut().expect("object").remove("amount");
        assert_eq!(validate(&body).expect_err("missing"), "request.body should have required property 'amount'");
    }

    #[test]
    fn malformed_json_is_refused() {
        assert!(transfer_request(b"{\"amount\": ").expect_err("bad json").contains("not valid JSON"));
        assert!(transfer_request(b"[]").expect_err("array").ends_with("should be object"));
    }

    #[test]
    fn continuations_accept_exactly_one_boolean() {
        assert_eq!(continuation(br#"{"acceptParty": true}"#), Ok(Continuation::AcceptParty(true)));
        assert_eq!(continuation(br#"{"acceptQuote": false}"#), Ok(Continuation::AcceptQuote(false)));
        assert!(continuation(br#"{"acceptQuote": null}"#).is_err());
        assert!(continuation(br#"{"acceptQuote": true, "acceptParty": true}"#).is_err());
        assert!(continuation(br#"{"acceptQuote": true, "x": 1}"#).is_err());
        assert!(continuation(br#"{}"#).is_err());
    }

    #[test]
    fn currency_list_is_the_schema_enum_sorted_and_complete() {
        // 164 codes in the v2.1.0 `Currency` enum, alphabetical and without duplicates.
        assert_eq!(CURRENCIES.len(), 164);
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(["XOF", "XAF", "USD", "EUR", "GHS", "KES"].iter().all(|c| CURRENCIES.contains(c)));
    }
}
