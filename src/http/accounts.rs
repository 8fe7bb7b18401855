//! Wallet routes: create, get, list/search, freeze/unfreeze, deposit, withdraw,
//! statement, system accounts.

use serde::Deserialize;
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;

use super::bodies::ReasonBody;
use super::request::Ctx;
use super::transfers::{list_transfers, money_reply};
use super::{actor, response, views, AmountInput};
use crate::accounts::CreateAccount;
use crate::error::Error;
use crate::ledger::{AccountKey, AccountStatus, Currency, Msisdn};
use crate::store::{AccountQuery, OrderKey};
use crate::transfers::cash::{CashDirection, CashRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    msisdn: String,
    currency: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CashBody {
    amount: AmountInput,
    reference: Option<String>,
    note: Option<String>,
}

fn path_msisdn(ctx: &Ctx) -> Result<Msisdn, Error> {
    Msisdn::parse(ctx.param(0)).map_err(Error::from)
}

/// `POST /api/v1/accounts/`.
pub async fn create(ctx: &mut Ctx) -> Result<Response, Error> {
    let body: CreateBody = ctx.json().await?;
    let req = CreateAccount {
        msisdn: Msisdn::parse(&body.msisdn)?,
        currency: Currency::parse(&body.currency)?,
        display_name: body.display_name,
    };
    let account = ctx.state.engine.create_account(&actor(ctx)?, req).await?;
    Ok(response::json(StatusCode::CREATED, &views::account(&account)))
}

/// `GET /api/v1/accounts/{msisdn}/`.
pub async fn get(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let msisdn = path_msisdn(ctx)?;
    let account = ctx
        .state
        .engine
        .store
        .account(&AccountKey::Wallet(msisdn))?
        .ok_or_else(|| Error::not_found("ACCOUNT_NOT_FOUND", format!("no wallet {msisdn}")))?;
    Ok(response::json(StatusCode::OK, &views::account(&account)))
}

/// `GET /api/v1/accounts/?q=&currency=&status=&limit=&cursor=`.
pub async fn list(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["q", "currency", "status", "limit", "cursor"])?;
    let status = match params.get("status") {
        Some(s) => Some(AccountStatus::parse(s).ok_or_else(|| bad_param("status", "ACTIVE or FROZEN"))?),
        None => None,
    };
    let q = AccountQuery {
        q: params.get("q").map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()),
        currency: params.get("currency").map(|c| Currency::parse(c)).transpose()?,
        status,
        limit: limit(&params)?,
        cursor: cursor(&params)?,
    };
    let page = ctx.state.engine.store.list_accounts(&q)?;
    Ok(response::json(StatusCode::OK, &views::page(&page, views::account)))
}

/// `POST …/freeze/` and `…/unfreeze/`.
pub async fn set_frozen(ctx: &mut Ctx, frozen: bool) -> Result<Response, Error> {
    let msisdn = path_msisdn(ctx)?;
    let body: ReasonBody = ctx.json().await?;
    let account = ctx.state.engine.set_frozen(&actor(ctx)?, msisdn, frozen, body.reason).await?;
    Ok(response::json(StatusCode::OK, &views::account(&account)))
}

/// `POST …/deposit/` and `…/withdraw/`.
pub async fn cash(ctx: &mut Ctx, direction: CashDirection) -> Result<Response, Error> {
    let msisdn = path_msisdn(ctx)?;
    let key = super::transfers::idempotency_key(ctx)?;
    let body: CashBody = ctx.json().await?;
    let req = CashRequest { amount: body.amount.0, reference: body.reference, note: body.note };
    let engine = ctx.state.engine.clone();
    let actor = actor(ctx)?;
    // Spawned so that a client hanging up cannot cancel a money movement half-way.
    let posted = tokio::spawn(async move { engine.cash(&actor, key, msisdn, direction, req).await })
        .await
        .map_err(Error::internal)??;
    Ok(money_reply(&ctx.state, posted))
}

/// `GET /api/v1/accounts/{msisdn}/transfers/`.
pub async fn statement(ctx: &mut Ctx) -> Result<Response, Error> {
    let msisdn = path_msisdn(ctx)?;
    if ctx.state.engine.store.account(&AccountKey::Wallet(msisdn))?.is_none() {
        return Err(Error::not_found("ACCOUNT_NOT_FOUND", format!("no wallet {msisdn}")));
    }
    list_transfers(ctx, Some(msisdn)).await
}

/// `GET /api/v1/system-accounts/`.
pub async fn system_accounts(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["limit", "cursor"])?;
    let after = match params.get("cursor") {
        Some(c) => Some(
            AccountKey::parse(c)
                .filter(AccountKey::is_system)
                .ok_or_else(|| bad_param("cursor", "a next_cursor value from an earlier page"))?,
        ),
        None => None,
    };
    let page = ctx.state.engine.store.system_accounts(after.as_ref(), limit(&params)?)?;
    let items: Vec<Value> = page.items.iter().map(views::system_account).collect();
    Ok(response::json(StatusCode::OK, &serde_json::json!({ "items": items, "next_cursor": page.next_cursor })))
}

/// 400 for a query parameter.
pub fn bad_param(name: &str, expected: &str) -> Error {
    Error::invalid("INVALID_PARAMETER", format!("query parameter {name:?} must be {expected}"))
        .with_details(serde_json::json!({ "parameter": name }))
}

/// `?limit=`: default 50, at most 500 (SPEC §6.1).
pub fn limit(params: &std::collections::BTreeMap<String, String>) -> Result<usize, Error> {
    /// Larger pages cost one request too much memory and time.
    const LIMIT_MAX: usize = 500;
    match params.get("limit") {
        None => Ok(50),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIMIT_MAX).contains(n))
            .ok_or_else(|| bad_param("limit", "a whole number from 1 to 500")),
    }
}

/// `?cursor=` as returned in `next_cursor`.
pub fn cursor(params: &std::collections::BTreeMap<String, String>) -> Result<Option<OrderKey>, Error> {
    params
        .get("cursor")
        .map(|c| {
            OrderKey::from_cursor(c).ok_or_else(|| bad_param("cursor", "a next_cursor value from an earlier page"))
        })
        .transpose()
}
