//! Deposits and withdrawals: one posting against `SYS:CASH:<CUR>`, route CASH, with a
//! reference unique per wallet for 30 days.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::idempotency::{bind, find_replay, gate, request_hash, Scope};
use super::{
    account_frozen, audit_transfer, existing_account, insufficient_funds, normalize_note, NewTransfer, Posted,
};
use crate::auth::audit::AuditKey;
use crate::auth::Actor;
use crate::engine::{Engine, Limits};
use crate::error::Error;
use crate::ledger::{
    self, major_to_minor, parse_amount, Account, AccountKey, Minor, Msisdn, Resolution, Route, Transfer, TransferStatus,
};
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
        let job = CashJob { limits: self.limits, key: self.audit_key.clone(), scope, msisdn, direction };
        // A business rejection is the job's value, not its error: a failed job leaves no
        // trace, and the rejection must stay bound to the key so that it replays.
        self.store.writer.run(move |tx| job.run(tx, &req.amount, reference, note)).await?
    }
}

/// Everything a cash job needs besides the body fields.
struct CashJob {
    limits: Limits,
    key: Arc<AuditKey>,
    scope: Scope,
    msisdn: Msisdn,
    direction: CashDirection,
}

impl CashJob {
    fn run(
        self,
        tx: &mut WriteTx<'_>,
        amount_text: &str,
        reference: Option<String>,
        note: Option<String>,
    ) -> Result<Result<Posted, Error>, Error> {
        let (scope, msisdn, direction) = (&self.scope, self.msisdn, self.direction);
        let wallet_key = AccountKey::Wallet(msisdn);
        let wallet = tx
            .account(&wallet_key)?
            .ok_or_else(|| Error::not_found("ACCOUNT_NOT_FOUND", format!("no wallet {msisdn}")))?;
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
            return Ok(Ok(Posted::Replayed(replay)));
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
        let checked = cash_checks(self.limits, &wallet, direction, amount, amount_text);
        if let Err(rejection) = gate(tx, scope, hash, checked)? {
            return Ok(Err(rejection));
        }
        let id = Uuid::new_v4();
        let reference = reference.unwrap_or_else(|| id.to_string());
        let needs_approval =
            self.limits.cash_approval_above.is_some_and(|above| amount > major_to_minor(above, currency));
        let (sender, receiver) = match direction {
            CashDirection::Deposit => (AccountKey::Cash(currency), wallet_key),
            CashDirection::Withdraw => (wallet_key, AccountKey::Cash(currency)),
        };
        let status = if needs_approval { TransferStatus::AwaitingApproval } else { TransferStatus::Completed };
        let mut transfer = NewTransfer {
            id,
            sender,
            receiver,
            amount,
            currency,
            route: Route::Cash,
            status,
            note,
            reference: Some(reference.clone()),
            created_by: scope.actor.clone(),
            request_hash: hash,
        }
        .build(tx);
        if !needs_approval {
            post_cash(tx, &mut transfer)?;
        }
        tx.insert_transfer(&transfer)?;
        tx.put_reference(&wallet_key, &reference, &ReferenceRecord { transfer_id: id, created_at: tx.now() })?;
        bind(tx, scope, hash, Some(id), None)?;
        audit_transfer(tx, &self.key, &scope.actor, "TRANSFER_CREATED", &transfer)?;
        Ok(Ok(Posted::Created(Box::new(transfer))))
    }
}

/// The one posting of a cash transfer: `SYS:CASH` ↔ wallet.
fn post_cash(tx: &mut WriteTx<'_>, t: &mut Transfer) -> Result<(), Error> {
    let mut from = existing_account(tx, &t.sender)?;
    let mut to = existing_account(tx, &t.receiver)?;
    let posting = ledger::transfer(&mut from, &mut to, t.amount).map_err(|e| match e {
        ledger::LedgerError::InsufficientFunds { .. } => insufficient_funds(&from, t.amount),
        other => Error::internal(other),
    })?;
    tx.update_account(&from)?;
    tx.update_account(&to)?;
    t.postings.push(posting);
    Ok(())
}

impl Engine {
    /// A checker other than the maker approves a cash movement above the threshold.
    pub async fn approve_cash(self: &Arc<Self>, actor: &Actor, id: Uuid) -> Result<Transfer, Error> {
        let key = self.audit_key.clone();
        let checker = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                let mut t = awaiting_cash(tx, id, &checker)?;
                let wallet = if t.sender.is_system() { t.receiver } else { t.sender };
                let account = existing_account(tx, &wallet)?;
                if account.is_frozen() {
                    return Err(account_frozen(&account));
                }
                post_cash(tx, &mut t)?;
                t.set_status(TransferStatus::Completed, tx.now()).map_err(Error::internal)?;
                t.approved_by = Some(checker.clone());
                tx.update_transfer(TransferStatus::AwaitingApproval, &t)?;
                audit_transfer(tx, &key, &checker, "CASH_APPROVED", &t)?;
                Ok(t)
            })
            .await
    }

    /// A checker other than the maker rejects a cash movement; nothing moves.
    pub async fn reject_cash(self: &Arc<Self>, actor: &Actor, id: Uuid, reason: String) -> Result<Transfer, Error> {
        let reason = super::resolve::check_reason(&reason)?;
        let key = self.audit_key.clone();
        let checker = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                let mut t = awaiting_cash(tx, id, &checker)?;
                let now = tx.now();
                t.set_status(TransferStatus::Rejected, now).map_err(Error::internal)?;
                t.approved_by = Some(checker.clone());
                t.resolution = Some(Resolution { by: checker.clone(), reason, at: now });
                tx.update_transfer(TransferStatus::AwaitingApproval, &t)?;
                audit_transfer(tx, &key, &checker, "CASH_REJECTED", &t)?;
                Ok(t)
            })
            .await
    }
}

fn awaiting_cash(tx: &WriteTx<'_>, id: Uuid, checker: &str) -> Result<Transfer, Error> {
    let t = tx.transfer(id)?.ok_or_else(|| Error::not_found("TRANSFER_NOT_FOUND", format!("no transfer {id}")))?;
    if t.status != TransferStatus::AwaitingApproval {
        return Err(Error::conflict(
            "INVALID_STATE",
            format!("transfer {id} is {}, not AWAITING_APPROVAL", t.status.as_str()),
        )
        .with_details(json!({ "status": t.status.as_str() })));
    }
    if t.created_by == checker {
        return Err(super::adjust::self_approval());
    }
    Ok(t)
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
    // A withdrawal waiting for approval is checked again when approved.
    if direction == CashDirection::Withdraw && wallet.available < amount {
        return Err(insufficient_funds(wallet, amount));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::accounts::CreateAccount;
    use crate::ledger::Currency;
    use crate::sdk::{SdkClient, SdkMode};
    use crate::store::Store;
    use crate::transfers::Replay;

    /// An engine over a fresh store in `dir` (no SDK behind it).
    pub(crate) fn engine(dir: &std::path::Path) -> Arc<Engine> {
        engine_over(Store::open(dir, 16).expect("store"), Limits::default())
    }

    /// An engine over `store` with `limits` (no SDK behind it).
    pub(crate) fn engine_over(store: Store, limits: Limits) -> Arc<Engine> {
        let sdk = SdkClient::new("http://127.0.0.1:9", SdkMode::Auto, Duration::from_secs(1));
        let security = crate::auth::Security::new(
            crate::config::SecretKey::new("k3Jx9qLm2Vb7Wc5Zr8Tn4Ys6Ud1Ef0Gh".into()),
            crate::auth::throttle::LoginThrottle::new(Default::default()),
            Duration::from_secs(60),
            Vec::new(),
        )
        .expect("security");
        Engine::new(store, sdk, limits, security)
    }

    fn amount(text: &str) -> CashRequest {
        CashRequest { amount: text.into(), reference: None, note: None }
    }

    #[tokio::test]
    async fn a_refused_withdrawal_stays_bound_to_its_key_and_replays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        let maker = Actor::new("maker");
        let msisdn = Msisdn::parse("22507000100").expect("msisdn");
        let currency = Currency::parse("XOF").expect("XOF");
        engine.create_account(&maker, CreateAccount { msisdn, currency, display_name: None }).await.expect("wallet");
        let key = Some("k1".to_owned());
        let withdraw = CashDirection::Withdraw;
        let refused = engine.cash(&maker, key.clone(), msisdn, withdraw, amount("100")).await.expect_err("no funds");
        assert_eq!(refused.code, "INSUFFICIENT_FUNDS");
        engine.cash(&maker, None, msisdn, CashDirection::Deposit, amount("500")).await.expect("deposit");
        match engine.cash(&maker, key.clone(), msisdn, withdraw, amount("100")).await {
            Ok(Posted::Replayed(Replay::Stored(reply))) => {
                assert_eq!(reply.status, 422);
                assert!(reply.body.contains("INSUFFICIENT_FUNDS"), "{}", reply.body);
            }
            other => panic!("the stored 422 must replay, not {other:?}"),
        }
        let reused = engine.cash(&maker, key, msisdn, withdraw, amount("200")).await.expect_err("another body");
        assert_eq!(reused.code, "IDEMPOTENCY_KEY_REUSED");
        let wallet = engine.store.account(&AccountKey::Wallet(msisdn)).expect("read").expect("wallet");
        assert_eq!(wallet.available, 500, "neither retry moved money");
    }
}
