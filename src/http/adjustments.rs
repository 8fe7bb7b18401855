//! Adjustments and cash approvals: a maker requests, a different checker decides.

use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::accounts::{bad_param, cursor, limit};
use super::bodies::{Empty, ReasonBody};
use super::request::Ctx;
use super::transfers::idempotency_key;
use super::{actor, response, views, AmountInput};
use crate::error::Error;
use crate::ledger::Msisdn;
use crate::transfers::adjust::{self, AdjustmentRequest, AdjustmentStatus, Counter, Direction};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    msisdn: String,
    counter: String,
    direction: String,
    amount: AmountInput,
    reason: String,
    refers_to: Option<String>,
}

/// `POST /api/v1/adjustments/`.
pub async fn create(ctx: &mut Ctx) -> Result<Response, Error> {
    let key = idempotency_key(ctx)?;
    let body: CreateBody = ctx.json().await?;
    let counter = match body.counter.as_str() {
        "CASH" => Counter::Cash,
        "SETTLEMENT" => Counter::Settlement,
        _ => return Err(Error::invalid_field("INVALID_FIELD", "counter", "counter must be CASH or SETTLEMENT")),
    };
    let direction = match body.direction.as_str() {
        "CREDIT" => Direction::Credit,
        "DEBIT" => Direction::Debit,
        _ => return Err(Error::invalid_field("INVALID_FIELD", "direction", "direction must be CREDIT or DEBIT")),
    };
    crate::ledger::check_amount_grammar(&body.amount.0).map_err(Error::from)?;
    let refers_to = body
        .refers_to
        .as_deref()
        .map(|r| {
            Uuid::parse_str(r)
                .map_err(|_| Error::invalid_field("TRANSFER_ID_FORMAT", "refers_to", "refers_to must be a transfer id"))
        })
        .transpose()?;
    let req = AdjustmentRequest {
        msisdn: Msisdn::parse(&body.msisdn)?,
        counter,
        direction,
        amount: body.amount.0,
        reason: body.reason,
        refers_to,
    };
    let engine = ctx.state.engine.clone();
    let actor = actor(ctx)?;
    let (status, body, replayed) = tokio::spawn(async move { engine.request_adjustment(&actor, key, req).await })
        .await
        .map_err(Error::internal)??;
    let reply = response::json(StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED), &body);
    Ok(if replayed { response::replayed(reply) } else { reply })
}

/// `GET /api/v1/adjustments/?status=&limit=&cursor=`.
pub async fn list(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["status", "limit", "cursor"])?;
    let status = match params.get("status").map(String::as_str) {
        None => None,
        Some("AWAITING_APPROVAL") => Some(AdjustmentStatus::AwaitingApproval),
        Some("POSTED") => Some(AdjustmentStatus::Posted),
        Some("REJECTED") => Some(AdjustmentStatus::Rejected),
        Some(_) => return Err(bad_param("status", "AWAITING_APPROVAL, POSTED or REJECTED")),
    };
    let page = ctx.state.engine.list_adjustments(status, limit(&params)?, cursor(&params)?)?;
    Ok(response::json(StatusCode::OK, &views::page(&page, adjust::view)))
}

/// `GET /api/v1/adjustments/{id}/`.
pub async fn get(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let id = ctx.uuid_param(0)?;
    Ok(response::json(StatusCode::OK, &adjust::view(&ctx.state.engine.adjustment(id)?)))
}

/// `POST /api/v1/adjustments/{id}/approve/` (empty body).
pub async fn approve(ctx: &mut Ctx) -> Result<Response, Error> {
    let id = ctx.uuid_param(0)?;
    let _: Empty = ctx.json_or_empty().await?;
    let engine = ctx.state.engine.clone();
    let actor = actor(ctx)?;
    let adj =
        tokio::spawn(async move { engine.approve_adjustment(&actor, id).await }).await.map_err(Error::internal)??;
    Ok(response::json(StatusCode::OK, &adjust::view(&adj)))
}

/// `POST /api/v1/adjustments/{id}/reject/` `{reason}`.
pub async fn reject(ctx: &mut Ctx) -> Result<Response, Error> {
    let id = ctx.uuid_param(0)?;
    let body: ReasonBody = ctx.json().await?;
    let adj = ctx.state.engine.reject_adjustment(&actor(ctx)?, id, body.reason).await?;
    Ok(response::json(StatusCode::OK, &adjust::view(&adj)))
}

/// `POST /api/v1/transfers/{id}/approve/` (empty body): a cash movement above the threshold.
pub async fn approve_cash(ctx: &mut Ctx) -> Result<Response, Error> {
    let id = ctx.uuid_param(0)?;
    let _: Empty = ctx.json_or_empty().await?;
    let engine = ctx.state.engine.clone();
    let actor = actor(ctx)?;
    let t = tokio::spawn(async move { engine.approve_cash(&actor, id).await }).await.map_err(Error::internal)??;
    Ok(response::json(StatusCode::OK, &views::transfer(&t)))
}

/// `POST /api/v1/transfers/{id}/reject/` `{reason}`.
pub async fn reject_cash(ctx: &mut Ctx) -> Result<Response, Error> {
    let id = ctx.uuid_param(0)?;
    let body: ReasonBody = ctx.json().await?;
    let t = ctx.state.engine.reject_cash(&actor(ctx)?, id, body.reason).await?;
    Ok(response::json(StatusCode::OK, &views::transfer(&t)))
}
