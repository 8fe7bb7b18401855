//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every route, built from
//! the route table — each handler must say here what it takes and returns (the match
//! is exhaustive, so a new route cannot be left out).

use serde_json::{json, Map, Value};
use warp::http::StatusCode;
use warp::reply::Response;

use super::request::Ctx;
use super::response;
use super::router::{Handler, Route, ROUTES};
use crate::error::Error;

/// What one operation takes and returns.
struct Op {
    summary: &'static str,
    query: &'static [&'static str],
    body: Body,
    ok: (u16, Value),
    errors: &'static [u16],
}

enum Body {
    None,
    Empty,
    Json(Value),
    Multipart,
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page(item: &str) -> Value {
    json!({ "type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": { "type": "array", "items": r(item) }, "next_cursor": { "type": ["string", "null"] } } })
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props, "additionalProperties": false })
}

const READ: &[u16] = &[400, 401, 403, 404];
const WRITE: &[u16] = &[400, 401, 403, 404, 409, 413, 415, 422, 503];
const ACTION: &[u16] = &[400, 401, 403, 404, 409, 415, 422];

fn op(h: Handler) -> Op {
    use Handler::*;
    let s = json!({ "type": "string" });
    let amount = json!({ "description": "decimal string such as \"12.5\"", "type": ["string", "number"] });
    let reason = obj(&["reason"], json!({ "reason": s }));
    let o = |summary, query, body, ok: (u16, Value), errors| Op { summary, query, body, ok, errors };
    match h {
        Healthz => o("The process is alive.", &[], Body::None, (200, json!({ "type": "object" })), &[]),
        Readyz => o(
            "Store open, recovery done, invariants held; SDK probe status.",
            &[],
            Body::None,
            (200, r("Ready")),
            &[503],
        ),
        ConfigWarnings => o(
            "Configuration warnings for operators (approval turned off, unknown variables).",
            &[],
            Body::None,
            (200, obj(&["warnings"], json!({ "warnings": { "type": "array", "items": s } }))),
            READ,
        ),
        Metrics => o("Prometheus text format.", &[], Body::None, (200, json!({ "type": "string" })), &[]),
        Page => o("The admin page.", &[], Body::None, (200, json!({ "type": "string" })), &[]),
        Asset => o("A file of the admin page.", &[], Body::None, (200, json!({ "type": "string" })), &[404]),
        OpenApi => o("This document.", &[], Body::None, (200, json!({ "type": "object" })), &[]),
        Login => o(
            "Sign in.",
            &[],
            Body::Json(obj(&["username", "password"], json!({ "username": s, "password": s }))),
            (200, r("Login")),
            &[400, 401, 429],
        ),
        Logout => o("Sign out (revokes this session).", &[], Body::Empty, (200, json!({ "type": "object" })), &[401]),
        Me => o("The signed-in user.", &[], Body::None, (200, r("Me")), &[401]),
        OwnPassword => o(
            "Change one's own password.",
            &[],
            Body::Json(obj(&["current_password", "new_password"], json!({ "current_password": s, "new_password": s }))),
            (200, r("User")),
            ACTION,
        ),
        AccountCreate => o(
            "Create a wallet.",
            &[],
            Body::Json(obj(
                &["msisdn", "currency"],
                json!({ "msisdn": s, "currency": s, "display_name": { "type": ["string", "null"] } }),
            )),
            (201, r("Account")),
            WRITE,
        ),
        AccountList => o(
            "List and search wallets, newest first.",
            &["q", "currency", "status", "limit", "cursor"],
            Body::None,
            (200, page("Account")),
            READ,
        ),
        AccountGet => o("One wallet.", &[], Body::None, (200, r("Account")), READ),
        AccountFreeze => o("Freeze a wallet.", &[], Body::Json(reason.clone()), (200, r("Account")), ACTION),
        AccountUnfreeze => o("Unfreeze a wallet.", &[], Body::Json(reason.clone()), (200, r("Account")), ACTION),
        AccountDeposit | AccountWithdraw => o(
            "Cash in or out against SYS:CASH (idempotent with Idempotency-Key).",
            &[],
            Body::Json(obj(
                &["amount"],
                json!({ "amount": amount, "reference": { "type": ["string", "null"] }, "note": { "type": ["string", "null"] } }),
            )),
            (201, r("Transfer")),
            WRITE,
        ),
        AccountStatement => o(
            "A wallet's transfers, newest first.",
            &["status", "route", "since", "until", "limit", "cursor"],
            Body::None,
            (200, page("Transfer")),
            READ,
        ),
        SystemAccounts => o(
            "The system accounts: cash accounts, then settlement accounts, by currency code.",
            &["limit", "cursor"],
            Body::None,
            (200, page("SystemAccount")),
            READ,
        ),
        TransferCreate => o(
            "Send a P2P transfer (idempotent with Idempotency-Key or transfer_id).",
            &[],
            Body::Json(obj(
                &["sender_msisdn", "receiver_msisdn", "amount"],
                json!({ "sender_msisdn": s, "receiver_msisdn": s, "amount": amount, "currency": { "type": ["string", "null"] }, "note": { "type": ["string", "null"] }, "transfer_id": { "type": ["string", "null"] } }),
            )),
            (201, r("Transfer")),
            WRITE,
        ),
        TransferList => o(
            "List transfers, newest first.",
            &["msisdn", "status", "route", "since", "until", "limit", "cursor"],
            Body::None,
            (200, page("Transfer")),
            READ,
        ),
        TransferGet => o("One transfer with its postings.", &[], Body::None, (200, r("Transfer")), READ),
        TransferResolve | JobItemResolve => o(
            "Resolve an IN_DOUBT transfer: ask the hub about sdk_transfer_id, or apply outcome.",
            &[],
            Body::Json(obj(
                &["reason"],
                json!({ "sdk_transfer_id": { "type": ["string", "null"] }, "outcome": { "enum": ["COMPLETED", "FAILED", null] }, "reason": s }),
            )),
            (200, r("Transfer")),
            &[400, 401, 403, 404, 409, 503],
        ),
        TransferApprove => o(
            "Approve a cash movement above the threshold (not one's own).",
            &[],
            Body::Empty,
            (200, r("Transfer")),
            ACTION,
        ),
        TransferReject => o(
            "Reject a cash movement above the threshold.",
            &[],
            Body::Json(reason.clone()),
            (200, r("Transfer")),
            ACTION,
        ),
        AdjustmentCreate => o(
            "Request an adjustment (idempotent with Idempotency-Key).",
            &[],
            Body::Json(obj(
                &["msisdn", "counter", "direction", "amount", "reason"],
                json!({ "msisdn": s, "counter": { "enum": ["CASH", "SETTLEMENT"] }, "direction": { "enum": ["CREDIT", "DEBIT"] }, "amount": amount, "reason": s, "refers_to": { "type": ["string", "null"] } }),
            )),
            (201, r("Adjustment")),
            WRITE,
        ),
        AdjustmentList => o(
            "List adjustments, newest first.",
            &["status", "limit", "cursor"],
            Body::None,
            (200, page("Adjustment")),
            READ,
        ),
        AdjustmentGet => o("One adjustment.", &[], Body::None, (200, r("Adjustment")), READ),
        AdjustmentApprove => {
            o("Approve and post an adjustment (not one's own).", &[], Body::Empty, (200, r("Adjustment")), ACTION)
        }
        AdjustmentReject => o("Reject an adjustment.", &[], Body::Json(reason.clone()), (200, r("Adjustment")), ACTION),
        UserList => o("List users.", &[], Body::None, (200, page("User")), READ),
        UserCreate => o(
            "Create a user.",
            &[],
            Body::Json(obj(
                &["username", "role", "password"],
                json!({ "username": s, "role": { "enum": ["admin", "maker", "checker", "viewer"] }, "password": s }),
            )),
            (201, r("User")),
            WRITE,
        ),
        UserRole => o(
            "Change a user's role.",
            &[],
            Body::Json(obj(&["role"], json!({ "role": { "enum": ["admin", "maker", "checker", "viewer"] } }))),
            (200, r("User")),
            ACTION,
        ),
        UserDisable | UserEnable => {
            o("Disable or enable a user (disabling revokes sessions).", &[], Body::Empty, (200, r("User")), ACTION)
        }
        UserPassword => o(
            "Reset a user's password (revokes sessions).",
            &[],
            Body::Json(obj(&["password"], json!({ "password": s }))),
            (200, r("User")),
            ACTION,
        ),
        AuditList => o(
            "The audit log, newest first.",
            &["actor", "action", "limit", "cursor"],
            Body::None,
            (200, page("AuditEntry")),
            READ,
        ),
        AuditVerify => o("Verify the audit chain.", &[], Body::None, (200, r("Verify")), READ),
        BulkUpload => o(
            "Upload a CSV of payees (multipart); 202 as soon as the file is durable.",
            &[],
            Body::Multipart,
            (202, r("Job")),
            &[400, 401, 403, 409, 413, 415, 422],
        ),
        JobList => o("List jobs, newest first.", &["status", "limit", "cursor"], Body::None, (200, page("Job")), READ),
        JobGet => o(
            "One job: counts and amounts per item status, progress, rate, ETA.",
            &[],
            Body::None,
            (200, r("Job")),
            READ,
        ),
        JobItems => {
            o("A job's items in file order.", &["status", "limit", "cursor"], Body::None, (200, page("Item")), READ)
        }
        JobReport => {
            o("Validation problems by line and field.", &["limit", "cursor"], Body::None, (200, r("Report")), READ)
        }
        JobResults | JobErrors => {
            o("results.csv / errors.csv.", &[], Body::None, (200, json!({ "type": "string" })), READ)
        }
        JobEvents => o(
            "Server-sent progress events (event: progress, data: the job).",
            &[],
            Body::None,
            (200, json!({ "type": "string" })),
            READ,
        ),
        JobApprove | JobRetry => o(
            "Approve (reserving the total) or retry retryable failures.",
            &[],
            Body::Json(
                json!({ "type": "object", "properties": { "acknowledge_duplicates": { "type": "boolean" } }, "additionalProperties": false }),
            ),
            (200, r("Job")),
            ACTION,
        ),
        JobReject => o("Reject a job awaiting approval.", &[], Body::Json(reason), (200, r("Job")), ACTION),
        JobPause | JobResume | JobCancel => {
            o("Pause, resume or cancel a job.", &[], Body::Empty, (200, r("Job")), ACTION)
        }
    }
}

fn nullable(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}

fn schemas() -> Value {
    let s = json!({ "type": "string" });
    let i = json!({ "type": "integer" });
    let ns = nullable("string");
    let statuses = |names: &[&str], v: Value| -> Value {
        let props: Map<String, Value> = names.iter().map(|n| ((*n).to_owned(), v.clone())).collect();
        json!({ "type": "object", "required": names, "properties": props })
    };
    let items = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "IN_DOUBT", "CANCELLED", "INVALID"];
    json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": s, "message": s, "details": {} } } } },
        "Ready": { "type": "object", "required": ["ready", "store", "sdk"], "properties": { "ready": { "type": "boolean" }, "store": s, "sdk": { "type": "object" } } },
        "Login": { "type": "object", "required": ["token", "expires_at", "user"], "properties": { "token": s, "expires_at": s, "user": { "type": "object", "required": ["username", "role"], "properties": { "username": s, "role": s } } } },
        "Me": { "type": "object", "required": ["username", "role", "expires_at"], "properties": { "username": s, "role": s, "expires_at": s } },
        "User": { "type": "object", "required": ["username", "role", "disabled"], "properties": { "username": s, "role": s, "disabled": { "type": "boolean" }, "created_at": s, "created_by": s, "updated_at": s } },
        "Account": { "type": "object", "required": ["msisdn", "currency", "status", "display_name", "available", "reserved", "balance", "created_at"], "properties": { "msisdn": s, "currency": s, "status": { "enum": ["ACTIVE", "FROZEN"] }, "display_name": ns, "available": s, "reserved": s, "balance": s, "status_reason": ns, "created_at": s } },
        "SystemAccount": { "type": "object", "required": ["account", "kind", "currency", "available", "reserved", "balance"], "properties": { "account": s, "kind": s, "currency": s, "available": s, "reserved": s, "balance": s, "created_at": s } },
        "Transfer": { "type": "object", "required": ["transfer_id", "sender_msisdn", "receiver_msisdn", "amount", "currency", "status", "route", "created_at", "updated_at", "created_by"], "properties": {
            "transfer_id": s, "sender_msisdn": s, "receiver_msisdn": s, "amount": s, "currency": s,
            "status": { "enum": ["PENDING", "COMPLETED", "FAILED", "IN_DOUBT", "AWAITING_APPROVAL", "REJECTED"] },
            "route": { "enum": ["ON_US", "SDK", "CASH", "ADJUSTMENT"] }, "note": ns, "reference": ns, "sdk_transfer_id": ns, "sdk_phase": ns,
            "quote": nullable("object"), "error_code": ns, "error_message": ns, "retryable": { "type": "boolean" },
            "bulk_job_id": ns, "bulk_line": nullable("integer"), "resolution": nullable("object"), "created_at": s, "updated_at": s, "created_by": s, "approved_by": ns,
            "postings": { "type": "array", "items": { "type": "object", "required": ["kind", "from", "to", "amount"] } } } },
        "Adjustment": { "type": "object", "required": ["adjustment_id", "msisdn", "currency", "counter", "direction", "amount", "reason", "status", "created_by", "created_at"], "properties": {
            "adjustment_id": s, "msisdn": s, "currency": s, "counter": s, "direction": s, "amount": s, "reason": s, "refers_to": ns,
            "status": { "enum": ["AWAITING_APPROVAL", "POSTED", "REJECTED"] }, "created_by": s, "created_at": s, "decided_by": ns, "decided_at": ns, "decision_reason": ns, "transfer_id": ns } },
        "AuditEntry": { "type": "object", "required": ["seq", "at", "actor", "action"], "properties": { "seq": i, "at": s, "actor": s, "action": s, "target": ns, "details": {}, "key_id": s, "mac": s } },
        "Verify": { "type": "object", "required": ["ok", "entries", "first_bad"], "properties": { "ok": { "type": "boolean" }, "entries": i, "first_bad": { "type": ["object", "null"] } } },
        "Job": { "type": "object", "required": ["job_id", "status", "file_name", "source_msisdn", "currency", "created_by", "approved_by", "created_at", "started_at", "finished_at", "counts", "amounts", "total_count", "total_amount", "reserved_remaining", "progress", "rate_per_sec", "eta_seconds", "reason", "warnings"], "properties": {
            "job_id": s, "status": { "enum": ["PENDING", "AWAITING_APPROVAL", "PROCESSING", "PAUSED", "COMPLETED", "CANCELLED", "FAILED", "REJECTED"] },
            "file_name": s, "source_msisdn": s, "currency": s, "created_by": s, "approved_by": ns, "created_at": s, "started_at": ns, "finished_at": ns,
            "counts": statuses(&items, i.clone()), "amounts": statuses(&items, s.clone()), "total_count": i, "total_amount": s, "reserved_remaining": s,
            "progress": { "type": "number" }, "rate_per_sec": { "type": "number" }, "eta_seconds": nullable("integer"), "reason": ns, "warnings": { "type": "array", "items": s } } },
        "Item": { "type": "object", "required": ["line", "msisdn", "amount", "status", "transfer_id", "attempts"], "properties": {
            "line": i, "msisdn": ns, "amount": s, "reference": ns, "name": ns, "note": ns, "status": { "enum": items }, "route": ns, "transfer_id": s,
            "sdk_transfer_id": ns, "error_code": ns, "error_message": ns, "attempts": i, "updated_at": s, "completed_at": ns } },
        "Report": { "type": "object", "required": ["items", "next_cursor"], "properties": { "items": { "type": "array", "items": { "type": "object", "required": ["line", "code", "message"] } }, "next_cursor": ns } },
    })
}

fn operation(route: &Route) -> Value {
    let spec = op(route.handler);
    let mut responses = Map::new();
    responses.insert(
        spec.ok.0.to_string(),
        json!({ "description": "success", "content": { "application/json": { "schema": spec.ok.1 } } }),
    );
    for code in spec.errors {
        responses.insert(
            code.to_string(),
            json!({ "description": "error", "content": { "application/json": { "schema": r("Error") } } }),
        );
    }
    let mut params: Vec<Value> = route
        .pattern
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    params.extend(
        spec.query
            .iter()
            .map(|q| json!({ "name": q, "in": "query", "required": false, "schema": { "type": "string" } })),
    );
    if matches!(
        route.handler,
        Handler::TransferCreate | Handler::AccountDeposit | Handler::AccountWithdraw | Handler::AdjustmentCreate
    ) {
        params.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "minLength": 1, "maxLength": 255 } }));
    }
    let mut operation = json!({ "summary": spec.summary, "parameters": params, "responses": responses });
    match spec.body {
        Body::None => {}
        Body::Empty => {
            operation["requestBody"] = json!({ "required": false, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false } } } })
        }
        Body::Json(schema) => {
            operation["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "schema": schema } } })
        }
        Body::Multipart => {
            operation["requestBody"] = json!({ "required": true, "content": { "multipart/form-data": { "schema": { "type": "object", "required": ["file", "source_msisdn"], "properties": {
            "file": { "type": "string", "contentMediaType": "text/csv" }, "source_msisdn": { "type": "string" }, "skip_invalid": { "type": "boolean" },
            "allow_duplicate": { "type": "boolean" }, "reason": { "type": "string" }, "note": { "type": "string" } } } } } })
        }
    }
    if route.rule != crate::auth::Rule::Public {
        operation["security"] = json!([{ "bearer": [] }]);
    }
    operation
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.pattern.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "sysgp", "version": env!("CARGO_PKG_VERSION"), "description": "Mobile-money back office: wallets, P2P and bulk payouts through a Mojaloop SDK. Every route also answers without its trailing slash." },
        "paths": paths,
        "components": { "schemas": schemas(), "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } } },
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    Ok(response::json(StatusCode::OK, &document()))
}
