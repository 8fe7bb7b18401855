//! `/healthz` (the process answers), `/readyz` (store open, recovery done,
//! invariants held; SDK status reported but not required), and the configuration
//! warnings shown on the dashboard.

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

use super::request::Ctx;
use super::response;
use crate::error::Error;

/// `GET /healthz`.
pub async fn healthz(_ctx: &mut Ctx) -> Result<Response, Error> {
    Ok(response::json(StatusCode::OK, &json!({ "status": "ok" })))
}

/// `GET /api/v1/config-warnings/`: what the configuration allows that an operator
/// should know about (approval turned off, unknown variables ignored), for the
/// dashboard.
pub async fn config_warnings(ctx: &mut Ctx) -> Result<Response, Error> {
    Ok(response::json(StatusCode::OK, &json!({ "warnings": ctx.state.config_warnings })))
}

/// `GET /readyz`.
pub async fn readyz(ctx: &mut Ctx) -> Result<Response, Error> {
    let engine = &ctx.state.engine;
    let ready = engine.is_ready();
    let sdk = engine.sdk_health.lock().map(|h| h.clone()).unwrap_or_default();
    let violations = engine.violations.lock().map(|v| v.clone()).unwrap_or_default();
    let body = json!({
        "ready": ready,
        "store": "open",
        "recovery": if ready || !violations.is_empty() { "done" } else { "running" },
        "invariants": { "ok": violations.is_empty(), "violations": violations },
        "sdk": sdk,
        "in_doubt_scheduled": engine.recon.len(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(response::json(status, &body))
}
