//! P2P transfers: the checks of SPEC §3 in order, then either one on-us posting, or a
//! durable reservation followed by the SDK call and its settlement.

use std::sync::Arc;

use uuid::Uuid;

use super::idempotency::{bind, find_replay, gate, request_hash, Scope};
use super::{
    account_frozen, account_missing, audit_transfer, currency_mismatch, insufficient_funds, normalize_note,
    NewTransfer, Posted,
};
use crate::auth::audit::AuditKey;
use crate::auth::Actor;
use crate::engine::{Engine, Limits};
use crate::error::Error;
use crate::ledger::{
    self, parse_amount, AccountKey, Currency, Minor, Msisdn, Route, SdkPhase, SdkState, Transfer, TransferStatus,
};
use crate::sdk::SdkMode;
use crate::store::WriteTx;

/// A P2P request, parsed at the edge.
#[derive(Clone, Debug)]
pub struct P2pRequest {
    /// Paying wallet.
    pub sender: Msisdn,
    /// Receiving wallet (here) or payee (elsewhere).
    pub receiver: Msisdn,
    /// Amount text (grammar checked again here with the currency).
    pub amount: String,
    /// Currency; defaults to the sender's.
    pub currency: Option<Currency>,
    /// Free text.
    pub note: Option<String>,
    /// Client-chosen transfer id (global idempotency).
    pub transfer_id: Option<Uuid>,
}

/// What the writer job decided.
enum Step {
    Done(Box<Transfer>),
    Reserved(Box<Transfer>),
    Replay(super::Replay),
    Rejected(Error),
}

impl Engine {
    /// `POST /api/v1/transfers/`.
    pub async fn create_p2p(
        self: &Arc<Self>,
        actor: &Actor,
        key: Option<String>,
        req: P2pRequest,
    ) -> Result<Posted, Error> {
        let note = normalize_note(req.note.clone())?;
        let scope = Scope { actor: actor.name.clone(), key, transfer_id: req.transfer_id };
        let _claim = self.claim(scope.claims())?;
        let limits = self.limits;
        let key = self.audit_key.clone();
        // In auto mode the POST is the final call and nothing is learnt before it, so
        // the reservation is recorded as FINAL_SENT in the same durable write.
        let first_phase = if self.sdk.mode() == SdkMode::Auto { SdkPhase::FinalSent } else { SdkPhase::Reserved };
        // An SDK transfer goes from the reservation's durable reply straight to a
        // blocking thread for the SDK call, and from the outcome's durable reply straight
        // back here: no thread waits between the steps, each a hand-off fewer.
        let (reply_to, reply) = tokio::sync::oneshot::channel::<Result<Posted, Error>>();
        let engine = self.clone();
        let runtime = tokio::runtime::Handle::current();
        let after_job = move |step: Result<Step, Error>| match step {
            Ok(Step::Reserved(t)) => {
                runtime.spawn_blocking(move || {
                    engine.pay_reserved_then(*t, move |result| {
                        let _ = reply_to.send(result.map(|t| Posted::Created(Box::new(t))));
                    })
                });
            }
            Ok(Step::Done(t)) => {
                let _ = reply_to.send(Ok(Posted::Created(t)));
            }
            Ok(Step::Replay(r)) => {
                let _ = reply_to.send(Ok(Posted::Replayed(r)));
            }
            Ok(Step::Rejected(e)) | Err(e) => {
                let _ = reply_to.send(Err(e));
            }
        };
        let job = move |tx: &mut WriteTx<'_>| p2p_job(tx, limits, &key, &scope, &req, note, first_phase);
        self.store.writer.submit(job, after_job).await?;
        reply.await.map_err(|_| Error::internal("the transfer's store or SDK task stopped before replying"))?
    }
}

fn p2p_job(
    tx: &mut WriteTx<'_>,
    limits: Limits,
    key: &AuditKey,
    scope: &Scope,
    req: &P2pRequest,
    note: Option<String>,
    first_phase: SdkPhase,
) -> Result<Step, Error> {
    let sender = tx.account(&AccountKey::Wallet(req.sender))?;
    let currency = req.currency.or(sender.as_ref().map(|a| a.currency)).ok_or_else(|| account_missing(req.sender))?;
    let amount = parse_amount(&req.amount, currency, Minor::MAX)?;
    let hash = request_hash(&[
        "p2p",
        &req.sender.to_string(),
        &req.receiver.to_string(),
        &amount.to_string(),
        currency.code(),
        note.as_deref().unwrap_or(""),
    ]);
    if let Some(replay) = find_replay(tx, scope, &hash)? {
        return Ok(Step::Replay(replay));
    }
    let checked = checks(tx, limits, req, sender, currency, amount);
    let (mut sender, receiver) = match gate(tx, scope, hash, checked)? {
        Ok(parties) => parties,
        Err(rejection) => return Ok(Step::Rejected(rejection)),
    };
    let id = req.transfer_id.unwrap_or_else(Uuid::new_v4);
    let route = if receiver.is_some() { Route::OnUs } else { Route::Sdk };
    let status = if receiver.is_some() { TransferStatus::Completed } else { TransferStatus::Pending };
    let mut transfer = NewTransfer {
        id,
        sender: sender.key,
        receiver: AccountKey::Wallet(req.receiver),
        amount,
        currency,
        route,
        status,
        note,
        reference: None,
        created_by: scope.actor.clone(),
        request_hash: hash,
    }
    .build(tx);
    let posting = match receiver {
        Some(mut receiver) => {
            let p = ledger::transfer(&mut sender, &mut receiver, amount).map_err(Error::internal)?;
            tx.update_account(&receiver)?;
            p
        }
        None => {
            transfer.sdk = Some(SdkState {
                transfer_id: None,
                phase: first_phase,
                quote: None,
                recon: Default::default(),
                resume_final: false,
            });
            ledger::reserve(&mut sender, amount).map_err(Error::internal)?
        }
    };
    tx.update_account(&sender)?;
    transfer.postings.push(posting);
    tx.insert_transfer(&transfer)?;
    bind(tx, scope, hash, Some(id), None)?;
    audit_transfer(tx, key, &scope.actor, "TRANSFER_CREATED", &transfer)?;
    Ok(if route == Route::OnUs { Step::Done(Box::new(transfer)) } else { Step::Reserved(Box::new(transfer)) })
}

type Parties = (ledger::Account, Option<ledger::Account>);

/// SPEC §3 checks after format: limit, sender, sameness, receiver, funds.
fn checks(
    tx: &WriteTx<'_>,
    limits: Limits,
    req: &P2pRequest,
    sender: Option<ledger::Account>,
    currency: Currency,
    amount: Minor,
) -> Result<Parties, Error> {
    parse_amount(&req.amount, currency, limits.amount_max_minor(currency))?;
    let sender = sender.ok_or_else(|| account_missing(req.sender))?;
    if sender.is_frozen() {
        return Err(account_frozen(&sender));
    }
    if sender.currency != currency {
        return Err(currency_mismatch(&sender, currency));
    }
    if req.sender == req.receiver {
        return Err(Error::rejected("SAME_ACCOUNT", "sender and receiver are the same wallet"));
    }
    let receiver = tx.account(&AccountKey::Wallet(req.receiver))?;
    if let Some(r) = &receiver {
        if r.is_frozen() {
            return Err(account_frozen(r));
        }
        if r.currency != currency {
            return Err(currency_mismatch(r, currency));
        }
    }
    if sender.available < amount {
        return Err(insufficient_funds(&sender, amount));
    }
    Ok((sender, receiver))
}
