//! Reads an SDK reply into a JSON value that keeps only the paths an outcome can depend
//! on. Real replies are ~10 KiB of quotes, party details and extensions; building all
//! of that as a `serde_json::Value` only to read a dozen fields cost more CPU than the
//! rest of the call. Everything else is still parsed, so a body is refused exactly
//! when `serde_json` would refuse it as a `Value` (syntax, trailing data, numbers out
//! of range, nesting depth), and a key given twice keeps its last value, as in a
//! `Value`.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The keys kept below one point of the reply.
pub struct Node(&'static [(&'static str, Node)]);

/// A value kept whole if it is a scalar (objects below it are kept empty).
const LEAF: Node = Node(&[]);
const MONEY: Node = Node(&[("amount", LEAF), ("currency", LEAF)]);
const QUOTE: Node = Node(&[(
    "body",
    Node(&[
        ("transferAmount", MONEY),
        ("payeeReceiveAmount", MONEY),
        ("payeeFspFee", MONEY),
        ("payeeFspCommission", MONEY),
        ("expiration", LEAF),
    ]),
)]);
const LAST_ERROR: Node =
    Node(&[("mojaloopError", Node(&[("errorInformation", Node(&[("errorCode", LEAF), ("errorDescription", LEAF)]))]))]);
const FULFIL: Node = Node(&[("body", Node(&[("transferState", LEAF)]))]);

/// Every path `wire::parse_reply` reads.
pub const REPLY: Node = Node(&[
    ("currentState", LEAF),
    ("transferId", LEAF),
    ("statusCode", LEAF),
    ("message", LEAF),
    ("prepare", LEAF),
    ("fulfil", FULFIL),
    ("lastError", LAST_ERROR),
    ("quoteResponse", QUOTE),
    (
        "transferState",
        Node(&[
            ("currentState", LEAF),
            ("transferId", LEAF),
            ("prepare", LEAF),
            ("fulfil", FULFIL),
            ("lastError", LAST_ERROR),
            ("quoteResponse", QUOTE),
        ]),
    ),
]);

/// Parses `body` keeping only the paths of `node`; `None` when it is not JSON.
pub fn parse(body: &[u8], node: &Node) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Keep(node).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// Builds the kept part of a value: scalars as they are, objects with only the
/// node's keys, arrays empty (no kept path goes through an array).
struct Keep<'n>(&'n Node);

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(Value::Array(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.0 .0.iter().find(|(name, _)| *name == key) {
                Some((_, child)) => {
                    let value = map.next_value_seed(Keep(child))?;
                    kept.insert(key, value);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Value::Object(kept))
    }
}

/// Parses a value and keeps nothing of it (numbers are still converted, so one out of
/// range is refused as in a `Value`).
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept value answers every path of `REPLY` as the whole value does.
    fn same_answers(body: &str) {
        let whole: Option<Value> = serde_json::from_str(body).ok();
        let kept = parse(body.as_bytes(), &REPLY);
        assert_eq!(whole.is_some(), kept.is_some(), "{body}");
        let (Some(whole), Some(kept)) = (whole, kept) else { return };
        let mut paths = Vec::new();
        collect(&REPLY, String::new(), &mut paths);
        for p in paths {
            let (w, k) = (whole.pointer(&p), kept.pointer(&p));
            let scalar = |v: Option<&Value>| v.filter(|v| !v.is_object() && !v.is_array()).cloned();
            assert_eq!(scalar(w), scalar(k), "{p} in {body}");
            assert_eq!(w.is_some_and(|v| !v.is_null()), k.is_some_and(|v| !v.is_null()), "{p} in {body}");
        }
        assert_eq!(whole.is_object(), kept.is_object());
    }

    fn collect(node: &Node, prefix: String, out: &mut Vec<String>) {
        for (name, child) in node.0 {
            let path = format!("{prefix}/{name}");
            collect(child, path.clone(), out);
            out.push(path);
        }
    }

    #[test]
    fn captured_replies_and_odd_bodies_read_as_whole_values_do() {
        let dir = format!("{}/tests/fixtures/sdk", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            same_answers(&std::fs::read_to_string(&path).expect("fixture"));
        }
        for body in [
            "",
            "[]",
            "null",
            "7",
            r#"{"currentState":"COMPLETED","currentState":"ABORTED"}"#,
            r#"{"transferState":"x","statusCode":4001,"message":null}"#,
            r#"{"transferState":{"prepare":null,"currentState":["COMPLETED"]}}"#,
            r#"{"quoteResponse":{"body":{"transferAmount":{"amount":1.50,"currency":"USD"}}},"x":[1e308,{"a":[]}]}"#,
            r#"{"big":1e400,"currentState":"COMPLETED"}"#,
            r#"{"currentState":"COMPLETED"} trailing"#,
            r#"{"s":"\u00e9\ud83d\ude00","transferId":"a\"b"}"#,
        ] {
            same_answers(body);
        }
        let deep = format!("{{\"currentState\":{}{}}}", "[".repeat(200), "]".repeat(200));
        same_answers(&deep);
        let deep_kept = format!("{}1{}", "{\"transferState\":".repeat(200), "}".repeat(200));
        same_answers(&deep_kept);
    }
}
