//! The audit log and its verification (admin only).

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

use super::accounts::{bad_param, limit};
use super::request::Ctx;
use super::response;
use crate::auth::audit::{self, AuditEntry};
use crate::error::Error;
use crate::store::TreeId;

/// Entries examined per page before returning a short page with a cursor.
const SCAN_MAX: usize = 20_000;

fn view(e: &AuditEntry) -> serde_json::Value {
    json!({
        "seq": e.seq,
        "at": e.at.to_string(),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "details": serde_json::from_str::<serde_json::Value>(&e.details).unwrap_or(serde_json::Value::Null),
        "key_id": e.key_id,
        "mac": hex::encode(e.mac),
    })
}

/// `GET /api/v1/audit/?actor=&action=&limit=&cursor=`, newest first.
pub async fn list(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["actor", "action", "limit", "cursor"])?;
    let limit = limit(&params)?;
    let before = params
        .get("cursor")
        .map(|c| c.parse::<u64>().map_err(|_| bad_param("cursor", "a next_cursor value from an earlier page")))
        .transpose()?;
    let (actor, action) = (params.get("actor"), params.get("action"));
    let mut items = Vec::new();
    let mut next_cursor = None;
    for (scanned, entry) in ctx.state.engine.store.scan_back::<AuditEntry>(TreeId::Audit, before).enumerate() {
        let entry = entry?;
        let seq = entry.seq;
        if actor.is_none_or(|a| *a == entry.actor) && action.is_none_or(|a| *a == entry.action) {
            if items.len() == limit {
                next_cursor = Some(items.last().map_or(seq + 1, |e: &AuditEntry| e.seq).to_string());
                break;
            }
            items.push(entry);
        }
        if scanned + 1 >= SCAN_MAX {
            next_cursor = Some(seq.to_string());
            break;
        }
    }
    let items: Vec<_> = items.iter().map(view).collect();
    Ok(response::json(StatusCode::OK, &json!({ "items": items, "next_cursor": next_cursor })))
}

/// `GET /api/v1/audit/verify` → `{ok, entries, first_bad}`.
pub async fn verify(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let engine = ctx.state.engine.clone();
    let report = tokio::task::spawn_blocking(move || {
        let store = &engine.store;
        audit::verify(|| store.scan_forward::<AuditEntry>(TreeId::Audit), &engine.audit_key, None)
    })
    .await
    .map_err(Error::internal)??;
    Ok(response::json(StatusCode::OK, &serde_json::to_value(&report).map_err(Error::internal)?))
}
