//! One request as handlers see it: path parameters, query, headers and a body that
//! is read only when asked for, with a size limit and strict JSON decoding.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use warp::http::{HeaderMap, Method};

use super::HttpState;
use crate::error::{Error, ErrorKind};

/// JSON bodies of this API are a few hundred bytes; 64 KiB leaves room for long
/// notes and reasons while bounding what one request can make us buffer.
pub const JSON_BODY_BYTES_MAX: usize = 64 * 1024;

/// The request body as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>;

/// Everything a handler needs about its request.
pub struct Ctx {
    /// Shared server state.
    pub state: Arc<HttpState>,
    /// Method.
    pub method: Method,
    /// Path parameters in pattern order.
    pub params: Vec<String>,
    /// Raw query string (without `?`).
    pub query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Peer address.
    pub remote: Option<SocketAddr>,
    /// This request's id (`X-Request-Id`).
    pub request_id: String,
    /// The signed-in user, for routes that need one.
    pub principal: Option<crate::auth::Principal>,
    /// The body, until read.
    pub body: Option<BodyStream>,
}

impl Ctx {
    /// Path parameter `i` (the router guarantees it exists).
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }

    /// Path parameter `i` as a UUID: 400 `ID_FORMAT` when it is not one (a malformed
    /// request, not a missing resource).
    pub fn uuid_param(&self, i: usize) -> Result<uuid::Uuid, Error> {
        uuid::Uuid::parse_str(self.param(i)).map_err(|_| {
            Error::invalid_field(
                "ID_FORMAT",
                "id",
                format!("the id in the path must be a UUID, got {:?}", self.param(i)),
            )
        })
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads the whole body, refusing more than `limit` bytes with 413.
    pub async fn body_bytes(&mut self, limit: usize) -> Result<Bytes, Error> {
        let too_large = || {
            Error::new(ErrorKind::TooLarge, "BODY_TOO_LARGE", format!("request bodies are limited to {limit} bytes"))
                .with_details(json!({ "limit_bytes": limit }))
        };
        if let Some(len) = self.header("content-length").and_then(|v| v.parse::<u64>().ok()) {
            if len > limit as u64 {
                return Err(too_large());
            }
        }
        let Some(mut body) = self.body.take() else { return Ok(Bytes::new()) };
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::invalid("BODY_READ", format!("the request body could not be read: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Decodes a JSON body strictly: `Content-Type: application/json`, unknown fields
    /// refused, every problem a 400 naming the field.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let content_type = self.header("content-type").unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(Error::new(
                ErrorKind::UnsupportedMedia,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as application/json",
            ));
        }
        let bytes = self.body_bytes(JSON_BODY_BYTES_MAX).await?;
        decode_json(&bytes)
    }

    /// For action POSTs that accept an empty body with no Content-Type, or a JSON body.
    pub async fn json_or_empty<T: DeserializeOwned + Default>(&mut self) -> Result<T, Error> {
        let has_type = self.header("content-type").is_some_and(|t| !t.trim().is_empty());
        if !has_type {
            let bytes = self.body_bytes(JSON_BODY_BYTES_MAX).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(T::default());
            }
            return Err(Error::new(
                ErrorKind::UnsupportedMedia,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as application/json",
            ));
        }
        let bytes = self.body_bytes(JSON_BODY_BYTES_MAX).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        decode_json(&bytes)
    }

    /// Parses the query string, refusing unknown and repeated parameters.
    pub fn query_params(&self, known: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        let mut out = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(self.query.as_bytes()) {
            if !known.contains(&k.as_ref()) {
                return Err(Error::invalid(
                    "UNKNOWN_PARAMETER",
                    format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
                )
                .with_details(json!({ "parameter": k })));
            }
            if out.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Error::invalid("DUPLICATE_PARAMETER", format!("query parameter {k:?} given twice")));
            }
        }
        Ok(out)
    }
}

/// Strict JSON decoding with the failing field named.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Error::invalid("INVALID_BODY", "the body must be a JSON object"),
            Err(e) => Error::invalid("MALFORMED_JSON", format!("the body is not valid JSON: {e}")),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => return Err(json_error(e)),
    };
    de.end().map_err(|_| Error::invalid("MALFORMED_JSON", "the body has data after the JSON value"))?;
    Ok(value)
}

fn between_backticks(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = inner.to_string();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return Error::invalid("MALFORMED_JSON", format!("the body is not valid JSON: {message}"));
    }
    let field_in = |name: String| if path == "." || path.is_empty() { name } else { format!("{path}.{name}") };
    if message.starts_with("unknown field") {
        // The path already ends with the unknown field.
        let field = if path == "." { between_backticks(&message).unwrap_or_default() } else { path };
        return Error::invalid("UNKNOWN_FIELD", format!("unknown field {field:?}"))
            .with_details(json!({ "field": field }));
    }
    if message.starts_with("missing field") {
        let field = field_in(between_backticks(&message).unwrap_or_default());
        return Error::invalid("MISSING_FIELD", format!("field {field:?} is required"))
            .with_details(json!({ "field": field }));
    }
    if message.starts_with("duplicate field") {
        // A field given twice: which value was meant cannot be known.
        let field = field_in(between_backticks(&message).unwrap_or_default());
        return Error::invalid("DUPLICATE_FIELD", format!("field {field:?} is given more than once"))
            .with_details(json!({ "field": field }));
    }
    let short = message.split(" at line ").next().unwrap_or(&message).to_owned();
    if path == "." {
        return Error::invalid("INVALID_BODY", format!("the body must be a JSON object: {short}"));
    }
    Error::invalid("INVALID_FIELD", format!("field {path:?}: {short}")).with_details(json!({ "field": path }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: String,
        note: Option<String>,
    }

    fn code(bytes: &str) -> (String, Option<serde_json::Value>) {
        let e = decode_json::<Body>(bytes.as_bytes()).expect_err(bytes);
        (e.code, e.details)
    }

    #[test]
    fn json_problems_are_named() {
        assert_eq!(code("{").0, "MALFORMED_JSON");
        assert_eq!(code("{\"amount\":\"1\"} x").0, "MALFORMED_JSON");
        assert_eq!(code("[]").0, "INVALID_BODY");
        let (c, d) = code(r#"{"amount":"1","fee":2}"#);
        assert_eq!((c.as_str(), d), ("UNKNOWN_FIELD", Some(json!({"field": "fee"}))));
        assert_eq!(code(r#"{"note":"x"}"#).0, "MISSING_FIELD");
        let (c, d) = code(r#"{"amount":5}"#);
        assert_eq!((c.as_str(), d), ("INVALID_FIELD", Some(json!({"field": "amount"}))));
    }

    /// Found by the `json_request` fuzz target: a field given twice was reported as
    /// "the body must be a JSON object".
    #[test]
    fn a_field_given_twice_is_named() {
        let (c, d) = code("\t{\"amount\":\"1\",\"note\":\"x\",\"amount\":\"2\"}");
        assert_eq!((c.as_str(), d), ("DUPLICATE_FIELD", Some(json!({"field": "amount"}))));
    }
}
