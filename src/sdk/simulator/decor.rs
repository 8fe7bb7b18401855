//! Decoration of replies: the payee persona, the mock hub's junk extension fields,
//! recorded HTTP headers, ILP condition/fulfilment and the text formats the SDK uses.
//! All of it derives from the transfer id, so one transfer always looks the same.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::flow::mix64;

/// Payees the mock hub answers with (the names of the captured examples).
const PERSONAS: &[(&str, &str, &str, &str)] = &[
    ("Daniel", "S", "Williams", "1964-12-20"),
    ("Maria", "G", "Jones", "1923-12-25"),
    ("Mark", "N", "Williams", "1953-01-15"),
    ("James", "N", "Johnson", "1965-12-08"),
    ("Mike", "G", "Smith", "1934-01-13"),
];

/// Words for junk values, like the mock hub's lorem ipsum.
#[rustfmt::skip]
const LOREM: &[&str] = &[
    "dolor", "veniam", "labore", "commodo", "occaecat", "consectetur", "pariatur", "eiusmod", "tempor", "culpa",
    "officia", "mollit", "aliquip", "nulla", "irure", "proident", "sint", "ullamco", "velit", "cillum",
];

/// The deterministic, per-transfer source of decoration.
pub(super) struct Decor {
    seed: u64,
    counter: u64,
}

impl Decor {
    /// Decoration for transfer `id`.
    pub(super) fn new(id: Uuid) -> Decor {
        let (hi, lo) = id.as_u64_pair();
        Decor { seed: mix64(hi ^ mix64(lo)), counter: 0 }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        mix64(self.seed.wrapping_add(self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// A junk number.
    pub(super) fn number(&mut self) -> u64 {
        self.next()
    }

    fn pick<T: Copy>(&mut self, list: &[T]) -> T {
        // Lists are short and never empty; the modulo bias is irrelevant for decoration.
        list[(self.next() % list.len() as u64) as usize]
    }

    fn words(&mut self, count: u64) -> String {
        let n = 1 + self.next() % count;
        (0..n).map(|_| self.pick(LOREM)).collect::<Vec<_>>().join(" ")
    }

    /// The payee's first, middle and last name and date of birth.
    pub(super) fn persona(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        PERSONAS[(self.seed % PERSONAS.len() as u64) as usize]
    }

    /// A few junk fields of random types, as the mock hub adds to every object.
    pub(super) fn junk(&mut self, into: &mut Map<String, Value>) {
        for _ in 0..self.next() % 4 {
            let key = format!("{}_{:x}", self.pick(LOREM), self.next() % 0xfff);
            let value = match self.next() % 3 {
                0 => json!(self.next() % 2 == 0),
                1 => json!((self.next() % 200_000_000) as i64 - 100_000_000),
                _ => json!(self.words(4)),
            };
            into.insert(key, value);
        }
    }

    /// An object with junk fields and then `fields` (which win on a clash).
    pub(super) fn with_junk(&mut self, fields: Value) -> Value {
        let mut map = Map::new();
        self.junk(&mut map);
        if let Value::Object(fields) = fields {
            map.extend(fields);
        }
        Value::Object(map)
    }

    /// The payee's extension list: two entries of key, value and junk.
    pub(super) fn extensions(&mut self) -> Value {
        let entries: Vec<Value> = (0..2)
            .map(|_| {
                let (key, value) = (self.words(4), self.words(5));
                self.with_junk(json!({"key": key, "value": value}))
            })
            .collect();
        Value::Array(entries)
    }

    /// Headers of a callback the hub sent to the SDK.
    pub(super) fn inbound_headers(&mut self, resource: &str, content_length: usize, at: SystemTime) -> Value {
        json!({
            "content-type": format!("application/vnd.interoperability.{resource}+json;version=1.1"),
            "date": http_date(at),
            "x-forwarded-for": self.words(5),
            "fspiop-source": "switch",
            "fspiop-destination": "walletfsp",
            "fspiop-encryption": self.words(4),
            "fspiop-signature": self.words(4),
            "fspiop-uri": self.words(5),
            "fspiop-http-method": self.words(5),
            "traceparent": format!("00-ccdd{:016x}{:010x}-0123456789abcdef0-00", self.next(), self.next() >> 24),
            "user-agent": "axios/1.11.0",
            "content-length": content_length,
            "accept-encoding": "gzip, compress, deflate, br",
            "host": "127.0.0.1:4000",
            "connection": "keep-alive",
        })
    }

    /// A junk name of the characters the mock hub draws from.
    pub(super) fn junk_name(&mut self) -> String {
        const CHARS: &[u8] = b"pLg{}MacC'-_.,= tkJdrenoPiu";
        let len = 1 + self.next() % 60;
        (0..len).map(|_| char::from(self.pick(CHARS))).collect()
    }
}

/// Mixed into the transfer id to derive the quote id ("QUOTE" in ASCII).
const QUOTE_SALT: u64 = 0x0051_554f_5445;

/// The quote id the SDK generates for a transfer (derived, so replies agree).
pub(super) fn quote_id(id: Uuid) -> Uuid {
    let (hi, lo) = id.as_u64_pair();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&mix64(hi ^ QUOTE_SALT).to_be_bytes());
    bytes[8..].copy_from_slice(&mix64(lo ^ QUOTE_SALT).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The ILP fulfilment of a transfer and its condition (SHA-256 of the fulfilment), as
/// base64url: the same relation the real hub checks.
pub(super) fn fulfilment_and_condition(id: Uuid) -> (String, String) {
    let preimage: [u8; 32] = Sha256::new().chain_update(id.as_bytes()).chain_update(b"fulfilment").finalize().into();
    let condition: [u8; 32] = Sha256::digest(preimage).into();
    (base64url(&preimage), base64url(&condition))
}

/// Unpadded base64url (RFC 4648 §5), as ILP uses.
pub(super) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// RFC 3339 with milliseconds, like the SDK's timestamps: `2026-11-25T13:49:58.099Z`.
pub(super) fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// `at + secs`, for expirations.
pub(super) fn later(at: SystemTime, secs: u64) -> SystemTime {
    at + Duration::from_secs(secs)
}

/// IMF-fixdate, as in HTTP `date` headers: `Wed, 25 Nov 2026 13:49:58 GMT`.
pub(super) fn http_date(at: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // `2026-11-25T13:49:58Z`: fixed positions for years 1970..=9999.
    let rfc = humantime::format_rfc3339_seconds(at).to_string();
    let month = rfc.get(5..7).and_then(|m| m.parse::<usize>().ok()).unwrap_or(1);
    let weekday = DAYS[((secs / 86_400) % 7) as usize];
    let (year, day, time) = (rfc.get(0..4).unwrap_or(""), rfc.get(8..10).unwrap_or(""), rfc.get(11..19).unwrap_or(""));
    format!("{weekday}, {day} {} {year} {time} GMT", MONTHS[month.clamp(1, 12) - 1])
}

/// The hub's error as Node's `util.inspect` prints it inside SDK messages: the inner
/// object stays on one line only while it fits Node's 80-column budget, which is why
/// the captured 3204 and 5103 messages are one-liners and 4001 and 5105 are not.
pub(super) fn inspect_error(code: &str, description: &str) -> String {
    let code_entry = format!("errorCode: '{code}'");
    let description_entry = format!("errorDescription: '{description}'");
    // Node: entries + separators + (indentation, braces and a margin of 10) <= 80.
    let fits = code_entry.len() + description_entry.len() + 2 + 15 <= 80;
    if fits {
        format!("{{\n  errorInformation: {{ {code_entry}, {description_entry} }}\n}}")
    } else {
        format!("{{\n  errorInformation: {{\n    {code_entry},\n    {description_entry}\n  }}\n}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        let cases = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")];
        for (plain, encoded) in cases {
            assert_eq!(base64url(plain.as_bytes()), encoded);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn http_date_is_imf_fixdate() {
        let at = humantime::parse_rfc3339("2026-11-25T13:49:58Z").expect("date");
        assert_eq!(http_date(at), "Wed, 25 Nov 2026 13:49:58 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn inspect_error_wraps_like_the_captured_messages() {
        assert_eq!(
            inspect_error("3204", "Party not found"),
            "{\n  errorInformation: { errorCode: '3204', errorDescription: 'Party not found' }\n}"
        );
        assert_eq!(
            inspect_error("5103", "Payee FSP rejected quote"),
            "{\n  errorInformation: { errorCode: '5103', errorDescription: 'Payee FSP rejected quote' }\n}"
        );
        assert_eq!(
            inspect_error("4001", "Payer FSP insufficient liquidity"),
            "{\n  errorInformation: {\n    errorCode: '4001',\n    errorDescription: 'Payer FSP insufficient liquidity'\n  }\n}"
        );
    }

    #[test]
    fn condition_is_the_sha256_of_the_fulfilment() {
        let id = Uuid::new_v4();
        let (fulfilment, condition) = fulfilment_and_condition(id);
        assert_eq!((fulfilment.len(), condition.len()), (43, 43));
        assert_eq!(fulfilment_and_condition(id), (fulfilment, condition));
        assert_ne!(quote_id(id), id);
        assert_eq!(quote_id(id), quote_id(id));
    }
}
