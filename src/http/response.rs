//! Replies: JSON bodies, the one place that maps error kinds to statuses, and the
//! headers every response carries.

use serde_json::Value;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::error::{Error, ErrorKind};

/// The status of each error kind (SPEC §6).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::LengthRequired => StatusCode::LENGTH_REQUIRED,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON reply.
pub fn json(status: StatusCode, body: &Value) -> Response {
    raw_json(status, body.to_string())
}

/// A reply whose JSON text is already rendered (stored idempotent replies).
pub fn raw_json(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The JSON error reply of an error, with `Retry-After` when set.
pub fn error(e: &Error) -> Response {
    let mut r = json(status_of(e.kind), &e.body());
    if let Some(secs) = e.retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// Marks a reply as an idempotent replay.
pub fn replayed(mut r: Response) -> Response {
    r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}
