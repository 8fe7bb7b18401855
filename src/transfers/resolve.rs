//! Operator resolution of IN_DOUBT transfers (SPEC §3): with an SDK transfer id the
//! hub's answer is applied; without one, the operator's outcome is applied unless
//! the hub answers the contrary.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::settle::{settle, Settlement};
use crate::auth::Actor;
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{Resolution, Transfer, TransferStatus};
use crate::sdk::{HubState, Verdict};

/// Reasons are required and bounded (they end up in the record and the audit log).
pub const REASON_CHARS_MAX: usize = 500;

/// What the operator asks for.
#[derive(Clone, Debug)]
pub enum ResolveRequest {
    /// Ask the hub about this SDK transfer id and apply its answer.
    ByHub {
        /// The SDK's `transferId`.
        sdk_transfer_id: String,
        /// Why.
        reason: String,
    },
    /// Apply this outcome (when no id can be found).
    ByOperator {
        /// `true` for COMPLETED, `false` for FAILED.
        completed: bool,
        /// Why.
        reason: String,
    },
}

/// Checks a reason: trimmed, non-empty, bounded.
pub fn check_reason(reason: &str) -> Result<String, Error> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > REASON_CHARS_MAX {
        return Err(Error::invalid_field(
            "REASON_REQUIRED",
            "reason",
            format!("a reason of 1 to {REASON_CHARS_MAX} characters is required"),
        ));
    }
    Ok(r.to_owned())
}

impl Engine {
    /// `POST /api/v1/transfers/{id}/resolve/`.
    pub async fn resolve(self: &Arc<Self>, actor: &Actor, id: Uuid, req: ResolveRequest) -> Result<Transfer, Error> {
        let t = self
            .store
            .transfer(id)?
            .ok_or_else(|| Error::not_found("TRANSFER_NOT_FOUND", format!("no transfer {id}")))?;
        if t.status != TransferStatus::InDoubt {
            return Err(Error::conflict(
                "INVALID_STATE",
                format!("only IN_DOUBT transfers can be resolved; this one is {}", t.status.as_str()),
            )
            .with_details(json!({ "status": t.status.as_str() })));
        }
        let known_id = t.sdk.as_ref().and_then(|s| s.transfer_id.clone());
        let (lookup_id, reason) = match &req {
            ResolveRequest::ByHub { sdk_transfer_id, reason } => {
                check_sdk_id(
                    known_id.as_deref(),
                    sdk_transfer_id,
                    id,
                    self.store.transfer_of_sdk_id(sdk_transfer_id)?,
                )?;
                (Some(sdk_transfer_id.clone()), reason.clone())
            }
            ResolveRequest::ByOperator { reason, .. } => (known_id.clone(), reason.clone()),
        };
        let hub = match lookup_id.clone() {
            Some(sdk_id) => {
                let engine = self.clone();
                tokio::task::spawn_blocking(move || engine.sdk.lookup(&sdk_id)).await.map_err(Error::internal)?
            }
            None => HubState::Unavailable("no SDK transfer id".into()),
        };
        let verdict = decide(&req, &hub, known_id.is_some())?;
        let resolution = Resolution { by: actor.name.clone(), reason, at: crate::engine::now() };
        let sdk_transfer_id = match req {
            ResolveRequest::ByHub { sdk_transfer_id, .. } => Some(sdk_transfer_id),
            ResolveRequest::ByOperator { .. } => None,
        };
        let change = Settlement { verdict, sdk_transfer_id, quote: None, resolution: Some(resolution) };
        let key = self.audit_key.clone();
        let actor = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                // Checked again where it is written: another resolve may have claimed the id.
                if let Some(sdk_id) = &change.sdk_transfer_id {
                    let known = tx.transfer(id)?.and_then(|t| t.sdk.and_then(|s| s.transfer_id));
                    check_sdk_id(known.as_deref(), sdk_id, id, tx.transfer_of_sdk_id(sdk_id)?)?;
                }
                settle(tx, &key, &actor, id, TransferStatus::InDoubt, &change)
            })
            .await
    }
}

/// An SDK transfer id given by an operator must be the transfer's own when it has one,
/// and must not already settle another transfer: one hub transfer pays one of ours.
fn check_sdk_id(known: Option<&str>, given: &str, id: Uuid, owner: Option<Uuid>) -> Result<(), Error> {
    if let Some(known) = known.filter(|k| *k != given) {
        return Err(Error::conflict(
            "SDK_TRANSFER_ID_MISMATCH",
            format!("this transfer's SDK transfer id is {known}, not {given}"),
        )
        .with_details(json!({ "sdk_transfer_id": known })));
    }
    if let Some(other) = owner.filter(|o| *o != id) {
        return Err(Error::conflict(
            "SDK_TRANSFER_ID_IN_USE",
            format!("SDK transfer {given} belongs to transfer {other}"),
        )
        .with_details(json!({ "transfer_id": other })));
    }
    Ok(())
}

/// The verdict of a resolution. An operator's outcome for a transfer with an SDK id
/// needs the hub's word that it is not contrary: the hub must answer, and be final or
/// not know the transfer.
fn decide(req: &ResolveRequest, hub: &HubState, has_sdk_id: bool) -> Result<Verdict, Error> {
    let completed = Verdict::Completed;
    let failed = |why: &str| Verdict::Failed { code: "RESOLVED_FAILED".into(), message: why.into(), retryable: false };
    match (req, hub) {
        (ResolveRequest::ByHub { .. }, HubState::Committed) => Ok(completed),
        (ResolveRequest::ByHub { .. }, HubState::Aborted) => Ok(failed("the hub aborted the transfer")),
        (ResolveRequest::ByHub { .. }, HubState::InFlight(state)) => {
            Err(Error::conflict("HUB_NOT_FINAL", format!("the hub reports the transfer as {state}; try again later")))
        }
        (ResolveRequest::ByHub { .. }, HubState::Unknown) => {
            Err(Error::conflict("HUB_UNKNOWN_TRANSFER", "the hub does not know this SDK transfer id"))
        }
        (ResolveRequest::ByHub { .. }, HubState::Unavailable(why)) => {
            Err(Error::unavailable("SDK_UNAVAILABLE", format!("the SDK could not be asked: {why}")))
        }
        (ResolveRequest::ByOperator { completed: true, .. }, HubState::Aborted)
        | (ResolveRequest::ByOperator { completed: false, .. }, HubState::Committed) => Err(Error::conflict(
            "RESOLVE_CONTRADICTS_HUB",
            format!(
                "the hub reports this transfer as {}",
                if *hub == HubState::Committed { "COMMITTED" } else { "ABORTED" }
            ),
        )),
        (ResolveRequest::ByOperator { .. }, HubState::Unavailable(why)) if has_sdk_id => Err(Error::unavailable(
            "SDK_UNAVAILABLE",
            format!("the hub must be asked about this transfer's SDK id first, and the SDK could not be asked: {why}"),
        )),
        (ResolveRequest::ByOperator { .. }, HubState::InFlight(state)) => {
            Err(Error::conflict("HUB_NOT_FINAL", format!("the hub reports the transfer as {state}; try again later")))
        }
        (ResolveRequest::ByOperator { completed: true, .. }, _) => Ok(completed),
        (ResolveRequest::ByOperator { completed: false, .. }, _) => Ok(failed("resolved as failed by an operator")),
    }
}
