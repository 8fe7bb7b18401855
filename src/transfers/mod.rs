//! Money movement use cases: P2P transfers (on-us and through the SDK), deposits and
//! withdrawals, settlement of SDK outcomes, reconciliation, resolution and start-up
//! recovery.

pub mod adjust;
pub mod cash;
pub mod idempotency;
pub mod p2p;
pub mod reconcile;
pub mod recovery;
pub mod resolve;
pub mod settle;
pub mod sweep;

use serde_json::json;
use uuid::Uuid;

use crate::auth::audit::{self, AuditKey, Draft};
use crate::error::Error;
use crate::ledger::{format_minor, Account, AccountKey, Currency, Minor, Msisdn, Route, Transfer, TransferStatus};
use crate::store::WriteTx;

pub use idempotency::{Replay, Scope};

/// What a money POST produced.
#[derive(Clone, Debug)]
pub enum Posted {
    /// A new transfer, in whatever status it reached.
    Created(Box<Transfer>),
    /// An earlier answer to the same request.
    Replayed(Replay),
}

/// Notes are trimmed and at most this many UTF-16 code units (the SDK's `Note` limit).
pub const NOTE_UTF16_MAX: usize = 128;

/// Trims a note; empty becomes `None`; too long or control characters are a 400.
pub fn normalize_note(note: Option<String>) -> Result<Option<String>, Error> {
    let Some(note) = note else { return Ok(None) };
    let trimmed = note.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.encode_utf16().count() > NOTE_UTF16_MAX {
        return Err(Error::invalid_field(
            "NOTE_TOO_LONG",
            "note",
            format!("note is limited to {NOTE_UTF16_MAX} UTF-16 code units"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid_field("NOTE_FORMAT", "note", "note may not contain control characters"));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Fields of a new transfer record.
pub(crate) struct NewTransfer {
    pub id: Uuid,
    pub sender: AccountKey,
    pub receiver: AccountKey,
    pub amount: Minor,
    pub currency: Currency,
    pub route: Route,
    pub status: TransferStatus,
    pub note: Option<String>,
    pub reference: Option<String>,
    pub created_by: String,
    pub request_hash: [u8; 32],
}

impl NewTransfer {
    /// Builds the record with a fresh order key.
    pub fn build(self, tx: &mut WriteTx<'_>) -> Transfer {
        let order = tx.next_order();
        Transfer {
            id: self.id,
            seq: order.seq,
            sender: self.sender,
            receiver: self.receiver,
            amount: self.amount,
            currency: self.currency,
            status: self.status,
            route: self.route,
            note: self.note,
            reference: self.reference,
            sdk: None,
            error: None,
            bulk: None,
            resolution: None,
            created_at: order.at,
            updated_at: order.at,
            created_by: self.created_by,
            approved_by: None,
            request_hash: self.request_hash,
            postings: Vec::new(),
        }
    }
}

/// What the audit log records about a transfer.
pub fn audit_details(t: &Transfer) -> serde_json::Value {
    json!({
        "route": t.route.as_str(),
        "status": t.status.as_str(),
        "amount": format_minor(t.amount, t.currency),
        "currency": t.currency.code(),
        "sender": t.sender.to_string(),
        "receiver": t.receiver.to_string(),
        "error_code": t.error.as_ref().map(|e| e.code.clone()),
        "sdk_transfer_id": t.sdk.as_ref().and_then(|s| s.transfer_id.clone()),
    })
}

/// Appends the audit entry of a transfer change.
pub(crate) fn audit_transfer(
    tx: &mut WriteTx<'_>,
    key: &AuditKey,
    actor: &str,
    action: &str,
    t: &Transfer,
) -> Result<(), Error> {
    crate::metrics::inc("sysgp_transfers_total", &[("route", t.route.as_str()), ("status", t.status.as_str())]);
    let draft = Draft {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: Some(t.id.to_string()),
        details: audit_details(t),
    };
    audit::append(tx, key, draft)?;
    Ok(())
}

/// 422 for an unknown wallet named in a body.
pub(crate) fn account_missing(msisdn: Msisdn) -> Error {
    Error::rejected("ACCOUNT_NOT_FOUND", format!("no wallet {msisdn}"))
        .with_details(json!({ "msisdn": msisdn.to_string() }))
}

/// 422 for a frozen wallet.
pub(crate) fn account_frozen(account: &Account) -> Error {
    Error::rejected("ACCOUNT_FROZEN", format!("wallet {} is frozen", account.key))
        .with_details(json!({ "msisdn": account.key.to_string() }))
}

/// 422 with the shortfall in `details`.
pub(crate) fn insufficient_funds(account: &Account, amount: Minor) -> Error {
    let c = account.currency;
    let shortfall = amount.saturating_sub(account.available);
    Error::rejected("INSUFFICIENT_FUNDS", format!("wallet {} lacks {} {c}", account.key, format_minor(shortfall, c)))
        .with_details(json!({
            "shortfall": format_minor(shortfall, c),
            "available": format_minor(account.available, c),
            "amount": format_minor(amount, c),
            "currency": c.code(),
        }))
}

/// 422 when an account holds another currency.
pub(crate) fn currency_mismatch(account: &Account, currency: Currency) -> Error {
    Error::rejected(
        "CURRENCY_MISMATCH",
        format!("wallet {} holds {}, not {currency}", account.key, account.currency),
    )
    .with_details(json!({ "msisdn": account.key.to_string(), "account_currency": account.currency.code(), "currency": currency.code() }))
}

/// Loads an account that the transfer's history guarantees (a missing one is a bug).
pub(crate) fn existing_account(tx: &WriteTx<'_>, key: &AccountKey) -> Result<Account, Error> {
    tx.account(key)?.ok_or_else(|| Error::internal(format!("account {key:?} is referenced but missing")))
}
