//! Transfer routes: create P2P, list with filters, detail with postings, resolve.

use std::collections::BTreeMap;

use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::accounts::{bad_param, cursor, limit};
use super::bodies::ResolveBody;
use super::request::Ctx;
use super::{actor, response, views, AmountInput, HttpState};
use crate::error::Error;
use crate::ledger::{Currency, Msisdn, Route, Timestamp, TransferStatus};
use crate::store::TransferQuery;
use crate::transfers::idempotency::check_key;
use crate::transfers::p2p::P2pRequest;
use crate::transfers::{Posted, Replay};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct P2pBody {
    sender_msisdn: String,
    receiver_msisdn: String,
    amount: AmountInput,
    currency: Option<String>,
    note: Option<String>,
    transfer_id: Option<String>,
}

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(ctx: &Ctx) -> Result<Option<String>, Error> {
    match ctx.headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| Error::invalid("IDEMPOTENCY_KEY_FORMAT", "Idempotency-Key must be visible ASCII"))?;
            check_key(key)?;
            Ok(Some(key.to_owned()))
        }
    }
}

/// 201 with the transfer, or the replay of the first answer.
pub fn money_reply(state: &HttpState, posted: Posted) -> Response {
    let _ = state;
    match posted {
        Posted::Created(t) => response::json(StatusCode::CREATED, &views::transfer(&t)),
        Posted::Replayed(Replay::Transfer(t)) => {
            response::replayed(response::json(StatusCode::CREATED, &views::transfer(&t)))
        }
        Posted::Replayed(Replay::Stored(reply)) => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            response::replayed(response::raw_json(status, reply.body))
        }
    }
}

fn parse_uuid(text: &str, field: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text)
        .map_err(|_| Error::invalid_field("TRANSFER_ID_FORMAT", field, format!("{field} must be a UUID")))
}

/// `POST /api/v1/transfers/`.
pub async fn create(ctx: &mut Ctx) -> Result<Response, Error> {
    let key = idempotency_key(ctx)?;
    let body: P2pBody = ctx.json().await?;
    let parse_msisdn = |text: &str, field: &str| {
        Msisdn::parse(text).map_err(|e| Error::invalid_field("MSISDN_FORMAT", field, format!("{field}: {e}")))
    };
    let req = P2pRequest {
        sender: parse_msisdn(&body.sender_msisdn, "sender_msisdn")?,
        receiver: parse_msisdn(&body.receiver_msisdn, "receiver_msisdn")?,
        amount: body.amount.0,
        currency: body.currency.as_deref().map(Currency::parse).transpose()?,
        note: body.note,
        transfer_id: body.transfer_id.as_deref().map(|t| parse_uuid(t, "transfer_id")).transpose()?,
    };
    crate::ledger::check_amount_grammar(&req.amount).map_err(Error::from)?;
    let engine = ctx.state.engine.clone();
    let actor = actor(ctx)?;
    // Spawned so that a client hanging up cannot cancel a money movement half-way.
    let posted =
        tokio::spawn(async move { engine.create_p2p(&actor, key, req).await }).await.map_err(Error::internal)??;
    Ok(money_reply(&ctx.state, posted))
}

/// `GET /api/v1/transfers/{id}/`.
pub async fn get(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let id = ctx.uuid_param(0)?;
    let store = &ctx.state.engine.store;
    let t = store.transfer(id)?.ok_or_else(|| Error::not_found("TRANSFER_NOT_FOUND", format!("no transfer {id}")))?;
    Ok(response::json(StatusCode::OK, &views::transfer_detail(&t, &t.postings)))
}

/// `GET /api/v1/transfers/` and a wallet's statement.
pub async fn list_transfers(ctx: &mut Ctx, wallet: Option<Msisdn>) -> Result<Response, Error> {
    let known: &[&str] = if wallet.is_some() {
        &["status", "route", "since", "until", "limit", "cursor"]
    } else {
        &["msisdn", "status", "route", "since", "until", "limit", "cursor"]
    };
    let params = ctx.query_params(known)?;
    let msisdn = match (wallet, params.get("msisdn")) {
        (Some(w), _) => Some(w),
        (None, Some(m)) => Some(Msisdn::parse(m)?),
        (None, None) => None,
    };
    let q = TransferQuery {
        msisdn,
        status: parse_enum(&params, "status", TransferStatus::parse, "a transfer status such as COMPLETED")?,
        route: parse_enum(&params, "route", Route::parse, "ON_US, SDK, CASH or ADJUSTMENT")?,
        since: parse_time(&params, "since")?,
        until: parse_time(&params, "until")?,
        limit: limit(&params)?,
        cursor: cursor(&params)?,
    };
    let page = ctx.state.engine.store.list_transfers(&q)?;
    Ok(response::json(StatusCode::OK, &views::page(&page, views::transfer)))
}

fn parse_enum<T>(
    params: &BTreeMap<String, String>,
    name: &str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, Error> {
    params.get(name).map(|v| parse(v).ok_or_else(|| bad_param(name, expected))).transpose()
}

fn parse_time(params: &BTreeMap<String, String>, name: &str) -> Result<Option<Timestamp>, Error> {
    params
        .get(name)
        .map(|v| {
            Timestamp::parse_rfc3339(v).ok_or_else(|| bad_param(name, "an RFC 3339 time such as 2026-11-25T13:50:47Z"))
        })
        .transpose()
}

/// `POST /api/v1/transfers/{id}/resolve/`.
pub async fn resolve(ctx: &mut Ctx) -> Result<Response, Error> {
    let id = ctx.uuid_param(0)?;
    let req = ctx.json::<ResolveBody>().await?.into_request()?;
    let engine = ctx.state.engine.clone();
    let actor = actor(ctx)?;
    let t = tokio::spawn(async move { engine.resolve(&actor, id, req).await }).await.map_err(Error::internal)??;
    Ok(response::json(StatusCode::OK, &views::transfer(&t)))
}
