//! Adjustments (SPEC §3): a maker requests a correction of a wallet against
//! `SYS:CASH` or `SYS:SETTLEMENT`; a different checker approves it and it is posted as
//! a transfer with route ADJUSTMENT, or rejects it. This is how a wrong final transfer
//! is corrected.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::idempotency::{bind, request_hash, Scope, KEY_LIFETIME_MICROS};
use super::resolve::check_reason;
use super::{account_missing, existing_account, insufficient_funds, NewTransfer};
use crate::auth::audit::{self, Draft};
use crate::auth::Actor;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::ledger::{
    self, format_minor, parse_amount, AccountKey, Currency, Minor, Msisdn, Route, Timestamp, TransferStatus,
};
use crate::store::{IdempotencyRecord, OrderKey, Page, StoredReply, TreeId, WriteTx};

/// The system account on the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Counter {
    /// `SYS:CASH:<CUR>`.
    Cash,
    /// `SYS:SETTLEMENT:<CUR>`.
    Settlement,
}

/// Which way the wallet moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The wallet gains.
    Credit,
    /// The wallet loses.
    Debit,
}

/// Where an adjustment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdjustmentStatus {
    /// Waiting for a checker.
    AwaitingApproval,
    /// Approved and posted.
    Posted,
    /// Refused by a checker.
    Rejected,
}

impl AdjustmentStatus {
    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AdjustmentStatus::AwaitingApproval => "AWAITING_APPROVAL",
            AdjustmentStatus::Posted => "POSTED",
            AdjustmentStatus::Rejected => "REJECTED",
        }
    }
}

/// A requested correction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// Id.
    pub id: Uuid,
    /// Order key sequence.
    pub seq: u64,
    /// The wallet corrected.
    pub msisdn: Msisdn,
    /// Its currency.
    pub currency: Currency,
    /// The system account on the other side.
    pub counter: Counter,
    /// Credit or debit of the wallet.
    pub direction: Direction,
    /// Minor units.
    pub amount: Minor,
    /// Why.
    pub reason: String,
    /// The transfer being corrected, if any.
    pub refers_to: Option<Uuid>,
    /// Status.
    pub status: AdjustmentStatus,
    /// The maker.
    pub created_by: String,
    /// When requested.
    pub created_at: Timestamp,
    /// The checker who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Timestamp>,
    /// The checker's reason for a rejection.
    pub decision_reason: Option<String>,
    /// The ADJUSTMENT transfer, once posted.
    pub transfer_id: Option<Uuid>,
}

/// `POST /api/v1/adjustments/` body, parsed.
#[derive(Clone, Debug)]
pub struct AdjustmentRequest {
    /// Wallet.
    pub msisdn: Msisdn,
    /// Other side.
    pub counter: Counter,
    /// Direction.
    pub direction: Direction,
    /// Amount text.
    pub amount: String,
    /// Why.
    pub reason: String,
    /// Corrected transfer.
    pub refers_to: Option<Uuid>,
}

/// The JSON shape of an adjustment.
pub fn view(a: &Adjustment) -> Value {
    json!({
        "adjustment_id": a.id.to_string(),
        "msisdn": a.msisdn.to_string(),
        "currency": a.currency.code(),
        "counter": match a.counter { Counter::Cash => "CASH", Counter::Settlement => "SETTLEMENT" },
        "direction": match a.direction { Direction::Credit => "CREDIT", Direction::Debit => "DEBIT" },
        "amount": format_minor(a.amount, a.currency),
        "reason": a.reason,
        "refers_to": a.refers_to.map(|r| r.to_string()),
        "status": a.status.as_str(),
        "created_by": a.created_by,
        "created_at": a.created_at.to_string(),
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.map(|t| t.to_string()),
        "decision_reason": a.decision_reason,
        "transfer_id": a.transfer_id.map(|t| t.to_string()),
    })
}

/// 403 when a user would approve or reject what they created.
pub fn self_approval() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "SELF_APPROVAL",
        "nobody approves or rejects what they created; another checker must decide",
    )
}

fn load(tx: &WriteTx<'_>, id: Uuid) -> Result<Adjustment, Error> {
    tx.get(TreeId::Adjustments, id.as_bytes())?
        .ok_or_else(|| Error::not_found("ADJUSTMENT_NOT_FOUND", format!("no adjustment {id}")))
}

fn awaiting(a: &Adjustment) -> Result<(), Error> {
    if a.status != AdjustmentStatus::AwaitingApproval {
        return Err(Error::conflict("INVALID_STATE", format!("adjustment {} is {}", a.id, a.status.as_str()))
            .with_details(json!({ "status": a.status.as_str() })));
    }
    Ok(())
}

/// Loads an adjustment a checker may decide: awaiting approval, not their own.
fn decidable(tx: &WriteTx<'_>, id: Uuid, checker: &str) -> Result<Adjustment, Error> {
    let adj = load(tx, id)?;
    awaiting(&adj)?;
    if adj.created_by == checker {
        return Err(self_approval());
    }
    Ok(adj)
}

/// Records a checker's decision and its audit entry.
fn record_decision(
    tx: &mut WriteTx<'_>,
    key: &crate::auth::audit::AuditKey,
    checker: String,
    mut adj: Adjustment,
    status: AdjustmentStatus,
    action: &str,
) -> Result<Adjustment, Error> {
    adj.status = status;
    adj.decided_by = Some(checker.clone());
    adj.decided_at = Some(tx.now());
    tx.put(TreeId::Adjustments, adj.id.as_bytes(), &adj)?;
    let draft = Draft { actor: checker, action: action.into(), target: Some(adj.id.to_string()), details: view(&adj) };
    audit::append(tx, key, draft)?;
    Ok(adj)
}

impl Engine {
    /// A maker requests an adjustment (idempotent with `Idempotency-Key`).
    pub async fn request_adjustment(
        self: &Arc<Self>,
        actor: &Actor,
        key: Option<String>,
        req: AdjustmentRequest,
    ) -> Result<(u16, Value, bool), Error> {
        let reason = check_reason(&req.reason)?;
        let scope = Scope { actor: actor.name.clone(), key, transfer_id: None };
        let _claim = self.claim(scope.claims())?;
        let audit_key = self.audit_key.clone();
        self.store
            .writer
            .run(move |tx| {
                let wallet = tx.account(&AccountKey::Wallet(req.msisdn))?.ok_or_else(|| account_missing(req.msisdn))?;
                let amount = parse_amount(&req.amount, wallet.currency, Minor::MAX)?;
                let hash = request_hash(&[
                    "adjustment",
                    &req.msisdn.to_string(),
                    &format!("{:?}{:?}", req.counter, req.direction),
                    &amount.to_string(),
                    &reason,
                ]);
                if let Some(k) = &scope.key {
                    if let Some(rec) = tx
                        .idempotency(&scope.actor, k)?
                        .filter(|r| tx.now().micros_since(r.created_at) < KEY_LIFETIME_MICROS)
                    {
                        return match (rec.request_hash == hash, rec.reply) {
                            (true, Some(reply)) => {
                                Ok(Ok((reply.status, serde_json::from_str(&reply.body).unwrap_or(Value::Null), true)))
                            }
                            _ => Err(Error::conflict(
                                "IDEMPOTENCY_KEY_REUSED",
                                "this idempotency key was already used for a different request",
                            )),
                        };
                    }
                }
                if let Some(t) = req.refers_to {
                    if tx.transfer(t)?.is_none() {
                        // A business rejection stays bound to the key (SPEC §3), so it is
                        // the job's value: a failed job would leave no trace.
                        let rejection = Error::rejected("TRANSFER_NOT_FOUND", format!("refers_to: no transfer {t}"));
                        bind(tx, &scope, hash, None, Some(&rejection))?;
                        return Ok(Err(rejection));
                    }
                }
                let order = tx.next_order();
                let adj = Adjustment {
                    id: Uuid::new_v4(),
                    seq: order.seq,
                    msisdn: req.msisdn,
                    currency: wallet.currency,
                    counter: req.counter,
                    direction: req.direction,
                    amount,
                    reason,
                    refers_to: req.refers_to,
                    status: AdjustmentStatus::AwaitingApproval,
                    created_by: scope.actor.clone(),
                    created_at: order.at,
                    decided_by: None,
                    decided_at: None,
                    decision_reason: None,
                    transfer_id: None,
                };
                tx.put(TreeId::Adjustments, adj.id.as_bytes(), &adj)?;
                tx.put_raw(TreeId::AdjustmentsOrder, &order.to_bytes(), adj.id.as_bytes());
                let body = view(&adj);
                if let Some(k) = &scope.key {
                    let reply = StoredReply { status: 201, body: body.to_string() };
                    tx.put_idempotency(
                        &scope.actor,
                        k,
                        &IdempotencyRecord {
                            request_hash: hash,
                            transfer_id: None,
                            reply: Some(reply),
                            created_at: tx.now(),
                        },
                    )?;
                }
                audit::append(
                    tx,
                    &audit_key,
                    Draft {
                        actor: scope.actor.clone(),
                        action: "ADJUSTMENT_REQUESTED".into(),
                        target: Some(adj.id.to_string()),
                        details: body.clone(),
                    },
                )?;
                Ok(Ok((201, body, false)))
            })
            .await?
    }

    /// A checker other than the maker approves: the adjustment is posted.
    pub async fn approve_adjustment(self: &Arc<Self>, actor: &Actor, id: Uuid) -> Result<Adjustment, Error> {
        let audit_key = self.audit_key.clone();
        let checker = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                let mut adj = decidable(tx, id, &checker)?;
                let wallet_key = AccountKey::Wallet(adj.msisdn);
                let counter_key = match adj.counter {
                    Counter::Cash => AccountKey::Cash(adj.currency),
                    Counter::Settlement => AccountKey::Settlement(adj.currency),
                };
                let mut wallet = existing_account(tx, &wallet_key)?;
                let mut counter = existing_account(tx, &counter_key)?;
                let (sender, receiver) = match adj.direction {
                    Direction::Credit => (counter_key, wallet_key),
                    Direction::Debit => (wallet_key, counter_key),
                };
                if adj.direction == Direction::Debit && wallet.available < adj.amount {
                    return Err(insufficient_funds(&wallet, adj.amount));
                }
                let posting = match adj.direction {
                    Direction::Credit => ledger::transfer(&mut counter, &mut wallet, adj.amount),
                    Direction::Debit => ledger::transfer(&mut wallet, &mut counter, adj.amount),
                }
                .map_err(Error::internal)?;
                let transfer_id = Uuid::new_v4();
                let mut t = NewTransfer {
                    id: transfer_id,
                    sender,
                    receiver,
                    amount: adj.amount,
                    currency: adj.currency,
                    route: Route::Adjustment,
                    status: TransferStatus::Completed,
                    note: Some(adj.reason.chars().take(super::NOTE_UTF16_MAX / 2).collect()),
                    reference: Some(adj.id.to_string()),
                    created_by: adj.created_by.clone(),
                    request_hash: [0; 32],
                }
                .build(tx);
                t.approved_by = Some(checker.clone());
                tx.update_account(&wallet)?;
                tx.update_account(&counter)?;
                t.postings.push(posting);
                tx.insert_transfer(&t)?;
                adj.transfer_id = Some(transfer_id);
                record_decision(tx, &audit_key, checker, adj, AdjustmentStatus::Posted, "ADJUSTMENT_APPROVED")
            })
            .await
    }

    /// A checker other than the maker rejects.
    pub async fn reject_adjustment(
        self: &Arc<Self>,
        actor: &Actor,
        id: Uuid,
        reason: String,
    ) -> Result<Adjustment, Error> {
        let reason = check_reason(&reason)?;
        let audit_key = self.audit_key.clone();
        let checker = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                let mut adj = decidable(tx, id, &checker)?;
                adj.decision_reason = Some(reason);
                record_decision(tx, &audit_key, checker, adj, AdjustmentStatus::Rejected, "ADJUSTMENT_REJECTED")
            })
            .await
    }

    /// One adjustment.
    pub fn adjustment(&self, id: Uuid) -> Result<Adjustment, Error> {
        self.store
            .record(TreeId::Adjustments, id.as_bytes())?
            .ok_or_else(|| Error::not_found("ADJUSTMENT_NOT_FOUND", format!("no adjustment {id}")))
    }

    /// A page of adjustments, newest first.
    pub fn list_adjustments(
        &self,
        status: Option<AdjustmentStatus>,
        limit: usize,
        cursor: Option<OrderKey>,
    ) -> Result<Page<Adjustment>, Error> {
        Ok(self.store.list_by_order(
            TreeId::AdjustmentsOrder,
            TreeId::Adjustments,
            limit,
            cursor,
            |a: &Adjustment| status.is_none_or(|s| s == a.status),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::CreateAccount;

    fn request(amount: &str) -> AdjustmentRequest {
        AdjustmentRequest {
            msisdn: Msisdn::parse("22507000100").expect("msisdn"),
            counter: Counter::Cash,
            direction: Direction::Credit,
            amount: amount.into(),
            reason: "correction".into(),
            refers_to: Some(Uuid::from_u128(7)),
        }
    }

    #[tokio::test]
    async fn a_refused_request_stays_bound_to_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = crate::transfers::cash::tests::engine(dir.path());
        let maker = Actor::new("maker");
        let currency = Currency::parse("XOF").expect("XOF");
        let msisdn = request("1").msisdn;
        engine.create_account(&maker, CreateAccount { msisdn, currency, display_name: None }).await.expect("wallet");
        let key = Some("k1".to_owned());
        let refused =
            engine.request_adjustment(&maker, key.clone(), request("100")).await.expect_err("unknown refers_to");
        assert_eq!(refused.code, "TRANSFER_NOT_FOUND");
        let (status, body, replayed) =
            engine.request_adjustment(&maker, key.clone(), request("100")).await.expect("the stored reply");
        assert_eq!((status, body["error"]["code"].as_str(), replayed), (422, Some("TRANSFER_NOT_FOUND"), true));
        let other = AdjustmentRequest { refers_to: None, ..request("200") };
        let reused = engine.request_adjustment(&maker, key, other).await.expect_err("another body");
        assert_eq!(reused.code, "IDEMPOTENCY_KEY_REUSED");
        assert!(engine.list_adjustments(None, 10, None).expect("list").items.is_empty(), "nothing was requested");
    }
}
