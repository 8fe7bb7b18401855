//! Deposits and withdrawals: one posting against `SYS:CASH:<CUR>`, route CASH, with a
//! reference unique per wallet for 30 days.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::idempotency::{bind, find_replay, gate, request_hash, Scope};
use super::{account_frozen, existing_account, insufficient_funds, normalize_note, NewTransfer, Posted};
use crate::auth::Actor;
use crate::engine::{Engine, Limits};
use crate::error::Error;
use crate::ledger::{self, parse_amount, Account, AccountKey, Minor, Msisdn, Route, TransferStatus};
use crate::store::{ReferenceRecord, WriteTx};

/// References are unique per wallet for this long.
pub const REFERENCE_LIFETIME_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;
/// Longest reference (SPEC §3).
pub const REFERENCE_CHARS_MAX: usize = 64;

/// Which way cash moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CashDirection {
    /// Cash in: `SYS:CASH` → wallet.
    Deposit,
    /// Cash out: wallet → `SYS:CASH`.
    Withdraw,
}

impl CashDirection {
    fn name(&self) -> &'static str {
        match self {
            CashDirection::Deposit => "deposit",
            CashDirection::Withdraw => "withdraw",
        }
    }
}

/// `{amount, reference?, note?}`.
#[derive(Clone, Debug)]
pub struct CashRequest {
    /// Amount text in the wallet's currency.
    pub amount: String,
    /// Caller's reference; defaults to the transfer id.
    pub reference: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// Checks a reference: trimmed, 1–64 characters, no control characters.
pub fn check_reference(reference: Option<String>) -> Result<Option<String>, Error> {
    let Some(r) = reference else { return Ok(None) };
    let r = r.trim();
    if r.is_empty() || r.chars().count() > REFERENCE_CHARS_MAX || r.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "REFERENCE_FORMAT",
            "reference",
            format!("reference must be 1 to {REFERENCE_CHARS_MAX} printable characters"),
        ));
    }
    Ok(Some(r.to_owned()))
}

impl Engine {
    /// `POST /api/v1/accounts/{msisdn}/deposit/` and `…/withdraw/`.
    pub async fn cash(
        self: &Arc<Self>,
        actor: &Actor,
        key: Option<String>,
        msisdn: Msisdn,
        direction: CashDirection,
        req: CashRequest,
    ) -> Result<Posted, Error> {
        let note = normalize_note(req.note.clone())?;
        let reference = check_reference(req.reference.clone())?;
        let scope = Scope { actor: actor.name.clone(), key, transfer_id: None };
        let _claim = self.claim(scope.claims())?;
        let limits = self.limits;
        self.store
            .writer
            .run(move |tx| cash_job(tx, limits, &scope, msisdn, direction, &req.amount, reference, note))
            .await
    }
}

#[allow(clippy::too_many_arguments)]
fn cash_job(
    tx: &mut WriteTx<'_>,
    limits: Limits,
    scope: &Scope,
    msisdn: Msisdn,
    direction: CashDirection,
    amount_text: &str,
    reference: Option<String>,
    note: Option<String>,
) -> Result<Posted, Error> {
    let wallet_key = AccountKey::Wallet(msisdn);
    let wallet =
        tx.account(&wallet_key)?.ok_or_else(|| Error::not_found("ACCOUNT_NOT_FOUND", format!("no wallet {msisdn}")))?;
    let currency = wallet.currency;
    let amount = parse_amount(amount_text, currency, Minor::MAX)?;
    let hash = request_hash(&[
        direction.name(),
        &msisdn.to_string(),
        &amount.to_string(),
        currency.code(),
        reference.as_deref().unwrap_or(""),
        note.as_deref().unwrap_or(""),
    ]);
    if let Some(replay) = find_replay(tx, scope, &hash)? {
        return Ok(Posted::Replayed(replay));
    }
    if let Some(r) = &reference {
        let used = tx
            .reference(&wallet_key, r)?
            .filter(|rec| tx.now().micros_since(rec.created_at) < REFERENCE_LIFETIME_MICROS);
        if let Some(rec) = used {
            return Err(Error::conflict(
                "REFERENCE_EXISTS",
                format!("reference {r:?} was already used on this wallet"),
            )
            .with_details(json!({ "transfer_id": rec.transfer_id.to_string() })));
        }
    }
    let checked = cash_checks(limits, &wallet, direction, amount, amount_text);
    gate(tx, scope, hash, checked)??;
    let id = Uuid::new_v4();
    let reference = reference.unwrap_or_else(|| id.to_string());
    let mut wallet = wallet;
    let mut cash = existing_account(tx, &AccountKey::Cash(currency))?;
    let (posting, sender, receiver) = match direction {
        CashDirection::Deposit => (ledger::transfer(&mut cash, &mut wallet, amount), cash.key, wallet.key),
        CashDirection::Withdraw => (ledger::transfer(&mut wallet, &mut cash, amount), wallet.key, cash.key),
    };
    let posting = posting.map_err(Error::internal)?;
    let transfer = NewTransfer {
        id,
        sender,
        receiver,
        amount,
        currency,
        route: Route::Cash,
        status: TransferStatus::Completed,
        note,
        reference: Some(reference.clone()),
        created_by: scope.actor.clone(),
        request_hash: hash,
    }
    .build(tx);
    tx.update_account(&wallet)?;
    tx.update_account(&cash)?;
    tx.put_posting(id, 0, &posting)?;
    tx.insert_transfer(&transfer)?;
    tx.put_reference(&wallet_key, &reference, &ReferenceRecord { transfer_id: id, created_at: tx.now() })?;
    bind(tx, scope, hash, Some(id), None)?;
    Ok(Posted::Created(Box::new(transfer)))
}

fn cash_checks(
    limits: Limits,
    wallet: &Account,
    direction: CashDirection,
    amount: Minor,
    amount_text: &str,
) -> Result<(), Error> {
    parse_amount(amount_text, wallet.currency, limits.amount_max_minor(wallet.currency))?;
    if wallet.is_frozen() {
        return Err(account_frozen(wallet));
    }
    if direction == CashDirection::Withdraw && wallet.available < amount {
        return Err(insufficient_funds(wallet, amount));
    }
    Ok(())
}
