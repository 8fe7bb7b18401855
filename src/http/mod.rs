//! HTTP: the only code that names warp. One catch-all filter hands every request to
//! [`handle`], which matches the route table, checks readiness, dispatches to the
//! handler of the feature, and adds the headers every reply carries (request id,
//! CORS, security headers, `Cache-Control: no-store`), logging one line per request.

mod accounts;
mod health;
mod metrics;
mod request;
mod response;
pub mod router;
mod transfers;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use futures_util::StreamExt;
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::value::RawValue;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Filter;

use crate::auth::Actor;
use crate::engine::Engine;
use crate::error::Error;
use crate::transfers::cash::CashDirection;
use request::{BodyStream, Ctx};
use router::{Handler, Matched};

/// What handlers share.
pub struct HttpState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// `CORS_ALLOWED_ORIGINS`.
    pub cors_allowed_origins: Vec<String>,
}

/// An amount as sent: a JSON string, or the raw text of a JSON number (never a float).
pub struct AmountInput(pub String);

impl<'de> Deserialize<'de> for AmountInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(D::Error::custom)?;
            Ok(AmountInput(s))
        } else if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            Ok(AmountInput(text.to_owned()))
        } else {
            Err(D::Error::custom("invalid type: expected a decimal string such as \"12.5\""))
        }
    }
}

/// The acting user. Until sessions exist every request acts as `api`.
pub fn actor(_ctx: &Ctx) -> Result<Actor, Error> {
    Ok(Actor::new("api"))
}

/// The warp filter serving everything.
pub fn filter(
    state: Arc<HttpState>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(move |method, path: warp::path::FullPath, query, headers, remote, body| {
            handle(state.clone(), method, path.as_str().to_owned(), query, headers, remote, boxed_body(body))
        })
}

fn boxed_body<S, B>(body: S) -> BodyStream
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(body.map(|chunk| chunk.map(|mut b| b.copy_to_bytes(b.remaining()))))
}

fn new_request_id(incoming: Option<&str>) -> String {
    match incoming {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_owned()
        }
        _ => uuid::Uuid::new_v4().simple().to_string(),
    }
}

async fn handle(
    state: Arc<HttpState>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: BodyStream,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id(headers.get("x-request-id").and_then(|v| v.to_str().ok()));
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cors_ok = origin.as_ref().is_some_and(|o| state.cors_allowed_origins.iter().any(|a| a == o));
    let (pattern, mut reply) = if method == Method::OPTIONS && headers.contains_key("access-control-request-method") {
        ("preflight", preflight(cors_ok))
    } else {
        match router::find(&method, &path) {
            Matched::Found(route, params) => {
                let mut ctx = Ctx {
                    state: state.clone(),
                    method: method.clone(),
                    params,
                    query,
                    headers,
                    remote,
                    request_id: request_id.clone(),
                    body: Some(body),
                };
                let reply = match dispatch(route.handler, &mut ctx).await {
                    Ok(r) => r,
                    Err(e) => response::error(&e),
                };
                (route.pattern, reply)
            }
            Matched::WrongMethod(allowed) => {
                let mut r = response::error(&Error::new(
                    crate::error::ErrorKind::Invalid,
                    "METHOD_NOT_ALLOWED",
                    format!("{method} is not allowed here"),
                ));
                *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
                ("unmatched", r)
            }
            Matched::NotFound => ("unmatched", response::error(&Error::not_found("NOT_FOUND", "no such route"))),
        }
    };
    add_common_headers(&mut reply, &request_id, origin.as_deref().filter(|_| cors_ok));
    log::info!(
        target: "sysgp::http",
        "{method} {pattern} {} {:.1}ms id={request_id}",
        reply.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    reply
}

async fn dispatch(handler: Handler, ctx: &mut Ctx) -> Result<Response, Error> {
    if !matches!(handler, Handler::Healthz | Handler::Readyz | Handler::Metrics) && !ctx.state.engine.is_ready() {
        return Err(Error::unavailable(
            "NOT_READY",
            "the service is starting (recovery in progress) or unhealthy; see /readyz",
        )
        .with_retry_after(1));
    }
    match handler {
        Handler::Healthz => health::healthz(ctx).await,
        Handler::Readyz => health::readyz(ctx).await,
        Handler::Metrics => metrics::metrics(ctx).await,
        Handler::AccountCreate => accounts::create(ctx).await,
        Handler::AccountList => accounts::list(ctx).await,
        Handler::AccountGet => accounts::get(ctx).await,
        Handler::AccountFreeze => accounts::set_frozen(ctx, true).await,
        Handler::AccountUnfreeze => accounts::set_frozen(ctx, false).await,
        Handler::AccountDeposit => accounts::cash(ctx, CashDirection::Deposit).await,
        Handler::AccountWithdraw => accounts::cash(ctx, CashDirection::Withdraw).await,
        Handler::AccountStatement => accounts::statement(ctx).await,
        Handler::SystemAccounts => accounts::system_accounts(ctx).await,
        Handler::TransferCreate => transfers::create(ctx).await,
        Handler::TransferList => transfers::list_transfers(ctx, None).await,
        Handler::TransferGet => transfers::get(ctx).await,
        Handler::TransferResolve => transfers::resolve(ctx).await,
    }
}

/// CORS preflight: allowed origins get the methods and headers of SPEC §6.
fn preflight(origin_allowed: bool) -> Response {
    if !origin_allowed {
        return response::error(&Error::new(
            crate::error::ErrorKind::Forbidden,
            "CORS_ORIGIN_DENIED",
            "this origin is not in CORS_ALLOWED_ORIGINS",
        ));
    }
    let mut r = Response::new(warp::hyper::body::Bytes::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, idempotency-key"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

fn add_common_headers(reply: &mut Response, request_id: &str, cors_origin: Option<&str>) {
    let h = reply.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Some(origin) = cors_origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, retry-after, idempotent-replayed"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}
