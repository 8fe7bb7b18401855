//! The use-case error: a kind that the HTTP layer maps to a status in one place, a
//! stable upper-case code, a public message, optional details, and (for internal
//! errors) a cause that is logged but never shown to clients.

use serde_json::{json, Value};

use crate::ledger::{AmountError, CurrencyError, MsisdnError};
use crate::store::StoreError;

/// Broad classes of failure; `http::error` maps each to exactly one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed input (400).
    Invalid,
    /// No valid credentials (401).
    Unauthenticated,
    /// Valid credentials, not allowed (403).
    Forbidden,
    /// The resource does not exist (404).
    NotFound,
    /// Conflicts with the current state (409).
    Conflict,
    /// A body is required but its length is unknown (411).
    LengthRequired,
    /// Too large (413).
    TooLarge,
    /// Unsupported media type (415).
    UnsupportedMedia,
    /// A business rule refused it (422).
    Rejected,
    /// Too many attempts (429).
    TooMany,
    /// Not ready or a dependency is down (503).
    Unavailable,
    /// A bug or an IO failure (500).
    Internal,
}

/// An error with everything a client and an operator need.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// Class.
    pub kind: ErrorKind,
    /// Stable upper-case code.
    pub code: String,
    /// Human-readable, safe to show.
    pub message: String,
    /// Structured details (shortfall, field, current state…).
    pub details: Option<Value>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias for use cases.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, code: &str, message: impl Into<String>) -> Error {
        Error { kind, code: code.to_owned(), message: message.into(), details: None, retry_after: None }
    }

    /// 400.
    pub fn invalid(code: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, code, message)
    }

    /// 400 naming a field.
    pub fn invalid_field(code: &str, field: &str, message: impl Into<String>) -> Error {
        Error::invalid(code, message).with_details(json!({ "field": field }))
    }

    /// 404.
    pub fn not_found(code: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, code, message)
    }

    /// 409.
    pub fn conflict(code: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, code, message)
    }

    /// 422.
    pub fn rejected(code: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Rejected, code, message)
    }

    /// 503.
    pub fn unavailable(code: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, code, message)
    }

    /// 500: logs `cause` once, shows a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Error {
        log::error!("internal error: {cause}");
        Error::new(ErrorKind::Internal, "INTERNAL", "an internal error occurred; it has been logged")
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Error {
        self.details = Some(details);
        self
    }

    /// Adds `Retry-After`.
    pub fn with_retry_after(mut self, seconds: u64) -> Error {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON error body of SPEC §6 (`details` always present, `{}` when none).
    pub fn body(&self) -> Value {
        let details = self.details.clone().unwrap_or_else(|| json!({}));
        json!({ "error": { "code": self.code, "message": self.message, "details": details } })
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::WriterGone => {
                Error::unavailable("STORE_UNAVAILABLE", "the store is not accepting writes (shutting down)")
            }
            other => Error::internal(other),
        }
    }
}

impl From<MsisdnError> for Error {
    fn from(e: MsisdnError) -> Error {
        Error::invalid("MSISDN_FORMAT", e.to_string())
    }
}

impl From<CurrencyError> for Error {
    fn from(e: CurrencyError) -> Error {
        Error::invalid("CURRENCY_UNKNOWN", e.to_string())
    }
}

impl From<AmountError> for Error {
    fn from(e: AmountError) -> Error {
        let kind = match e {
            AmountError::TooLarge { .. } => ErrorKind::Rejected,
            _ => ErrorKind::Invalid,
        };
        Error::new(kind, e.code(), e.to_string()).with_details(json!({ "field": "amount" }))
    }
}
