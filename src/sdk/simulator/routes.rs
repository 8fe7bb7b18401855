//! The HTTP surface: warp filters for the SDK outbound API (`POST /transfers`,
//! `PUT /transfers/{id}`, `GET /transfers/{id}`, `GET /`) and the test-only
//! `GET /__sim/transfers`, their handlers, and the mapping of rejections to the SDK's
//! 404/405 bodies. Business outcomes are replies, never rejections.
//!
//! A POST or PUT runs the transfer and serializes its reply when the call arrives, then
//! waits out `--latency-ms` from the arrival and sends it: the reply's cost (a 10 KiB
//! body) is not added to the latency asked for.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::bodies::{self, HubState};
use super::flow::Live;
use super::schema::{self, Continuation, TransferRequest};
use super::state::{Durable, Refusal};
use super::Sim;

/// Largest request body, the real SDK's (koa-body) default JSON limit; a transfer
/// request with every optional field filled is a few kilobytes.
const BODY_MAX: usize = 1024 * 1024;

/// Every route, with rejections turned into JSON replies.
pub(super) fn routes(sim: Arc<Sim>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with_sim = warp::any().map(move || sim.clone());
    // Path filters come before method filters so that an unknown path is a 404, not a 405.
    let health = warp::path::end().and(warp::get()).map(|| json_reply(200, &json!({})));
    let post = warp::path!("transfers").and(warp::post()).and(body()).and(with_sim.clone()).then(post_transfer);
    let put = warp::path!("transfers" / String).and(warp::put()).and(body()).and(with_sim.clone()).then(put_transfer);
    let get = warp::path!("transfers" / String).and(warp::get()).and(with_sim.clone()).then(get_transfer);
    let list = warp::path!("__sim" / "transfers").and(warp::get()).and(with_sim).map(list_paid);
    health.or(post).unify().or(put).unify().or(get).unify().or(list).unify().recover(rejected).unify()
}

/// Why a body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Broken,
}

impl warp::reject::Reject for BodyError {}

/// The request body, whole, refused beyond [`BODY_MAX`] (chunked bodies included).
fn body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::body::stream().and_then(collect_body)
}

async fn collect_body<S, B>(stream: S) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| warp::reject::custom(BodyError::Broken))?;
        if body.len() + chunk.remaining() > BODY_MAX {
            return Err(warp::reject::custom(BodyError::TooLarge));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let len = piece.len();
            body.extend_from_slice(piece);
            chunk.advance(len);
        }
    }
    Ok(body.freeze())
}

/// Runs a money call to the end even if the client hangs up, as the real SDK (a
/// Node.js server) does: a request that arrived is acted upon.
async fn detached<F>(work: F) -> Response
where
    F: std::future::Future<Output = Response> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(_) => json_reply(500, &bodies::sdk_error(500, "simulator task failed")),
    }
}

async fn post_transfer(raw: Bytes, sim: Arc<Sim>) -> Response {
    detached(post_transfer_detached(Instant::now(), raw, sim)).await
}

async fn post_transfer_detached(arrived: Instant, raw: Bytes, sim: Arc<Sim>) -> Response {
    let answer = match schema::transfer_request(&raw) {
        Ok(request) => start(request, &sim),
        Err(message) => {
            log::debug!("simulator POST /transfers: 400 {message}");
            Answer::Now(json_reply(400, &bodies::sdk_error(400, &message)))
        }
    };
    answer.after(sim.delay(arrived)).await
}

/// A call's answer, worked out when the call arrives (the transfer runs then, as the
/// real SDK acts on a call at once) and sent when the latency is over.
enum Answer {
    /// Ready to send.
    Now(Response),
    /// To send once the commit it carries is in the state file.
    Settle(Durable, u16, Vec<u8>),
}

impl Answer {
    async fn after(self, latency: impl std::future::Future<Output = ()>) -> Response {
        latency.await;
        match self {
            Answer::Now(response) => response,
            Answer::Settle(durable, status, reply) => settle(durable, status, reply).await,
        }
    }
}

fn start(request: TransferRequest, sim: &Sim) -> Answer {
    let live = Live::start(Uuid::new_v4(), request, SystemTime::now(), sim.accept, &sim.dice);
    log_transfer("POST /transfers", &live);
    let (status, reply) = bodies::transfer_reply(&live);
    match sim.ledger.record(live) {
        Ok(durable) => Answer::Settle(durable, status, to_bytes(&reply)),
        Err(refusal) => Answer::Now(refused(refusal)),
    }
}

async fn put_transfer(id: String, raw: Bytes, sim: Arc<Sim>) -> Response {
    detached(put_transfer_detached(Instant::now(), id, raw, sim)).await
}

async fn put_transfer_detached(arrived: Instant, id: String, raw: Bytes, sim: Arc<Sim>) -> Response {
    let answer = match schema::continuation(&raw) {
        Ok(step) => resume(&id, step, &sim),
        Err(message) => Answer::Now(json_reply(400, &bodies::sdk_error(400, &message))),
    };
    answer.after(sim.delay(arrived)).await
}

fn resume(id: &str, step: Continuation, sim: &Sim) -> Answer {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Answer::Now(refused(Refusal::Unknown));
    };
    let now = SystemTime::now();
    match sim.ledger.resume(uuid, step, |live, step| live.resume(step, sim.accept, &sim.dice, now)) {
        Ok((live, durable)) => {
            log_transfer("PUT /transfers", &live);
            let (status, reply) = bodies::transfer_reply(&live);
            Answer::Settle(durable, status, to_bytes(&reply))
        }
        Err(refusal) => {
            log::debug!("simulator PUT /transfers/{id}: refused: {refusal:?}");
            Answer::Now(refused(refusal))
        }
    }
}

async fn get_transfer(id: String, sim: Arc<Sim>) -> Response {
    sim.delay(Instant::now()).await;
    let found = Uuid::parse_str(&id).ok().and_then(|uuid| Some((uuid, sim.ledger.lookup(uuid)?)));
    log::debug!("simulator GET /transfers/{id}: {:?}", found.map(|(_, (_, _, state))| state));
    // The SDK asks the hub, which only knows transfers that reached the transfer stage:
    // one still waiting for acceptance, declined or failed before prepare is a 3208.
    match found {
        Some((uuid, (initiated, completed, state @ (HubState::Committed | HubState::Aborted)))) => {
            json_reply(200, &bodies::get_reply(uuid, initiated, completed, state))
        }
        _ => json_reply(500, &bodies::unknown_transfer()),
    }
}

/// `GET /__sim/transfers`: written entry by entry, since a long run commits millions.
fn list_paid(sim: Arc<Sim>) -> Response {
    let paid = sim.ledger.paid();
    let mut out = Vec::with_capacity(paid.len() * 160 + 2);
    out.push(b'[');
    for (i, entry) in paid.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &entry.to_json());
    }
    out.push(b']');
    bytes_reply(200, out)
}

/// Waits for the commit to reach the state file before answering: the simulator never
/// admits a payment it could forget.
async fn settle(durable: Durable, status: u16, reply: Vec<u8>) -> Response {
    let Some(wait) = durable else {
        return bytes_reply(status, reply);
    };
    match wait.await {
        Ok(Ok(())) => bytes_reply(status, reply),
        Ok(Err(e)) => {
            let message = format!("simulator could not record a committed transfer in its state file: {e}");
            json_reply(500, &bodies::sdk_error(500, &message))
        }
        Err(_) => json_reply(500, &bodies::sdk_error(500, "simulator state file writer stopped")),
    }
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Full => {
            json_reply(503, &bodies::sdk_error(503, "simulator: too many transfers waiting for acceptance"))
        }
        Refusal::Unknown => json_reply(400, &bodies::sdk_error(400, "request.params.transferId: no such transfer")),
        Refusal::Conflict(message) => json_reply(400, &bodies::sdk_error(400, &message)),
    }
}

async fn rejected(rejection: Rejection) -> Result<Response, Infallible> {
    let reply = if let Some(body_error) = rejection.find::<BodyError>() {
        match body_error {
            BodyError::TooLarge => json_reply(413, &bodies::sdk_error(413, "request entity too large")),
            BodyError::Broken => json_reply(400, &bodies::sdk_error(400, "request body could not be read")),
        }
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        json_reply(405, &bodies::sdk_error(405, "Method not allowed"))
    } else {
        json_reply(404, &bodies::sdk_error(404, "Not found"))
    };
    Ok(reply)
}

/// Logs one call without the payee's full number (last four digits only).
fn log_transfer(call: &str, live: &Live) {
    if log::log_enabled!(log::Level::Debug) {
        let payee = &live.request.payee_id;
        let tail: String = payee.chars().skip(payee.chars().count().saturating_sub(4)).collect();
        log::debug!(
            "simulator {call} {} payee …{tail} {} {}: {:?}",
            live.id,
            live.request.amount,
            live.request.currency,
            live.phase
        );
    }
}

fn json_reply(status: u16, body: &Value) -> Response {
    bytes_reply(status, to_bytes(body))
}

/// Straight into bytes: `Value`'s Display goes through a formatter per token.
fn to_bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

fn bytes_reply(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = body.into_response();
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}
