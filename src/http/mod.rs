//! HTTP: the only code that names warp. One catch-all filter hands every request to
//! [`handle`], which matches the route table, checks readiness, dispatches to the
//! handler of the feature, and adds the headers every reply carries (request id,
//! CORS, security headers, `Cache-Control: no-store`), logging one line per request.

mod accounts;
mod adjustments;
mod assets;
mod audit;
mod auth;
mod bodies;
mod bulk;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod metrics;
pub mod openapi;
mod request;
mod response;
pub mod router;
mod transfers;
mod views;

use std::net::{IpAddr, SocketAddr};
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

use crate::auth::sessions::unauthenticated;
use crate::auth::{Actor, Principal, Rule};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::transfers::cash::CashDirection;
use request::{BodyStream, Ctx};
use router::{Handler, Matched};

/// What handlers share.
pub struct HttpState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// `CORS_ALLOWED_ORIGINS`.
    pub cors_allowed_origins: Vec<String>,
    /// `Config::warnings`, for the dashboard.
    pub config_warnings: Vec<String>,
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

/// The acting user of a signed-in route.
pub fn actor(ctx: &Ctx) -> Result<Actor, Error> {
    principal(ctx).map(|p| p.actor.clone())
}

/// The signed-in user (routes with a rule other than Public always have one).
pub fn principal(ctx: &Ctx) -> Result<&Principal, Error> {
    ctx.principal.as_ref().ok_or_else(unauthenticated)
}

/// The client address: the peer, or the last untrusted hop of `X-Forwarded-For` when
/// the peer is a trusted proxy (`SYSGP_TRUSTED_PROXIES`).
pub fn client_address(ctx: &Ctx) -> Option<IpAddr> {
    let peer = ctx.remote.map(|a| a.ip())?;
    let trusted = &ctx.state.engine.security.trusted_proxies;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = ctx.header("x-forwarded-for").unwrap_or("");
    forwarded
        .split(',')
        .rev()
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted.contains(ip))
        .or(Some(peer))
}

/// Checks the bearer token and the route's rule: 401 without a valid token, 403 with
/// the wrong role. Tokens are only ever read from the `Authorization` header.
fn authorize(state: &HttpState, headers: &HeaderMap, rule: Rule) -> Result<Option<Principal>, Error> {
    if rule == Rule::Public {
        return Ok(None);
    }
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(unauthenticated()),
    };
    let principal = state.engine.authenticate(token)?;
    if !rule.allows(principal.role) {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "FORBIDDEN",
            format!("the {} role may not do this", principal.role.as_str()),
        ));
    }
    Ok(Some(principal))
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
                let principal = match authorize(&state, &headers, route.rule) {
                    Ok(p) => p,
                    Err(e) => {
                        let mut reply = response::error(&e);
                        drain(body, &mut reply).await;
                        add_common_headers(&mut reply, &request_id, origin.as_deref().filter(|_| cors_ok));
                        log_request(&method, route.pattern, &reply, started, &request_id);
                        return reply;
                    }
                };
                let mut ctx = Ctx {
                    principal,
                    state: state.clone(),
                    method: method.clone(),
                    params,
                    query,
                    headers,
                    remote,
                    request_id: request_id.clone(),
                    body: Some(body),
                };
                let mut reply = match dispatch(route.handler, &mut ctx).await {
                    Ok(r) => r,
                    Err(e) => response::error(&e),
                };
                if let Some(unread) = ctx.body.take() {
                    drain(unread, &mut reply).await;
                }
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
    log_request(&method, pattern, &reply, started, &request_id);
    reply
}

/// Reads and discards a body the handler did not read, so the connection can carry
/// the next request; a body too large to be worth reading closes the connection.
async fn drain(mut body: BodyStream, reply: &mut Response) {
    /// Small bodies are cheaper to read than a new connection.
    const DRAIN_BYTES_MAX: usize = 64 * 1024;
    let mut seen = 0;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) if seen + c.len() <= DRAIN_BYTES_MAX => seen += c.len(),
            _ => {
                reply.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return;
            }
        }
    }
}

/// One line per request: method, route pattern (never the path: it may hold an
/// MSISDN), status, latency, request id.
fn log_request(method: &Method, pattern: &str, reply: &Response, started: Instant, request_id: &str) {
    let took = started.elapsed();
    let status = reply.status().as_u16().to_string();
    crate::metrics::inc(
        "sysgp_http_requests_total",
        &[("method", method.as_str()), ("route", pattern), ("status", &status)],
    );
    crate::metrics::observe("sysgp_http_request_duration_seconds", &[("route", pattern)], took);
    log::info!(
        target: "sysgp::http",
        "{method} {pattern} {} {:.1}ms id={request_id}",
        reply.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
}

async fn dispatch(handler: Handler, ctx: &mut Ctx) -> Result<Response, Error> {
    let always =
        matches!(handler, Handler::Healthz | Handler::Readyz | Handler::Metrics | Handler::Page | Handler::Asset);
    if !always && !ctx.state.engine.is_ready() {
        return Err(Error::unavailable(
            "NOT_READY",
            "the service is starting (recovery in progress) or unhealthy; see /readyz",
        )
        .with_retry_after(1));
    }
    match handler {
        Handler::Healthz => health::healthz(ctx).await,
        Handler::Readyz => health::readyz(ctx).await,
        Handler::ConfigWarnings => health::config_warnings(ctx).await,
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
        Handler::TransferApprove => adjustments::approve_cash(ctx).await,
        Handler::TransferReject => adjustments::reject_cash(ctx).await,
        Handler::AdjustmentCreate => adjustments::create(ctx).await,
        Handler::AdjustmentList => adjustments::list(ctx).await,
        Handler::AdjustmentGet => adjustments::get(ctx).await,
        Handler::AdjustmentApprove => adjustments::approve(ctx).await,
        Handler::AdjustmentReject => adjustments::reject(ctx).await,
        Handler::OpenApi => openapi::serve(ctx).await,
        Handler::Login => auth::login(ctx).await,
        Handler::Logout => auth::logout(ctx).await,
        Handler::Me => auth::me(ctx).await,
        Handler::OwnPassword => auth::own_password(ctx).await,
        Handler::UserList => auth::list(ctx).await,
        Handler::UserCreate => auth::create(ctx).await,
        Handler::UserRole => auth::change(ctx, "role").await,
        Handler::UserDisable => auth::change(ctx, "disable").await,
        Handler::UserEnable => auth::change(ctx, "enable").await,
        Handler::UserPassword => auth::change(ctx, "password").await,
        Handler::AuditList => audit::list(ctx).await,
        Handler::AuditVerify => audit::verify(ctx).await,
        Handler::BulkUpload => bulk::upload(ctx).await,
        Handler::JobList => bulk::list(ctx).await,
        Handler::JobGet => bulk::get(ctx).await,
        Handler::JobItems => bulk::items(ctx).await,
        Handler::JobReport => bulk::report(ctx).await,
        Handler::JobResults => bulk::download(ctx, false).await,
        Handler::JobErrors => bulk::download(ctx, true).await,
        Handler::JobEvents => bulk::events(ctx).await,
        Handler::JobApprove => bulk::action(ctx, "approve").await,
        Handler::JobReject => bulk::action(ctx, "reject").await,
        Handler::JobPause => bulk::action(ctx, "pause").await,
        Handler::JobResume => bulk::action(ctx, "resume").await,
        Handler::JobCancel => bulk::action(ctx, "cancel").await,
        Handler::JobRetry => bulk::action(ctx, "retry").await,
        Handler::JobItemResolve => bulk::resolve_item(ctx).await,
        Handler::Page => assets::page(ctx).await,
        Handler::Asset => assets::asset(ctx).await,
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
    if let Ok(methods) = HeaderValue::from_str(served_methods()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, idempotency-key"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// The methods of the route table (`GET, POST`), for preflights: a browser is told of
/// no method the API does not serve.
fn served_methods() -> &'static str {
    static METHODS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    METHODS.get_or_init(|| {
        let mut methods: Vec<&str> = router::ROUTES.iter().map(|r| r.method).collect();
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    })
}

fn add_common_headers(reply: &mut Response, request_id: &str, cors_origin: Option<&str>) {
    let h = reply.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    // The page's files say `no-cache` (revalidate with their ETag); everything else no-store.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
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
