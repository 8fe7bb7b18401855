//! Serving sysgp's connections: each request is identified, then passed to the
//! simulator or answered with the fault the script holds for it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::bodies::{fspiop_body, fulfil_timeout_body, reply_id, stage_timeout_body, transfer_state};
use super::wire::{reason, Request, Response};
use super::{
    bind, Call, Control, Fault, Shared, Stage, Target, KEEP_ALIVE_IDLE, REPLY_PADDING_BYTES, REQUEST_BYTES_MAX,
    UPSTREAM_TIMEOUT,
};

pub(super) async fn accept_loop(
    first: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Control>,
) {
    let mut listener = Some(first);
    loop {
        let command = match &listener {
            Some(l) => tokio::select! {
                accepted = l.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(serve_connection(stream, shared.clone()));
                    }
                    continue;
                }
                command = commands.recv() => command,
            },
            None => commands.recv().await,
        };
        let Some(Control::Listen(on, ack)) = command else { return };
        let result = match (on, listener.is_some()) {
            (false, _) => {
                listener = None;
                shared.listening.store(false, SeqCst);
                shared.closing.send_modify(|epoch| *epoch += 1);
                Ok(())
            }
            (true, true) => Ok(()),
            (true, false) => bind(addr).map(|l| {
                listener = Some(l);
                shared.listening.store(true, SeqCst);
            }),
        };
        let _ = ack.send(result);
    }
}

/// Decrements a counter when dropped.
struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut replied_at: Option<Instant> = None;
    loop {
        shared.idle.fetch_add(1, SeqCst);
        let Some(request) = next_request(&stream, &shared).await else {
            drop(stream);
            shared.idle.fetch_sub(1, SeqCst);
            return;
        };
        shared.idle.fetch_sub(1, SeqCst);
        let target = identify(&request, &shared);
        if let (Some(_), Some(home)) = (target.call, &target.home) {
            let idle = replied_at.map(|at| at.elapsed());
            shared.book().idle_before.entry(home.clone()).or_default().push(idle);
        }
        let _busy = target.call.map(|_| {
            shared.busy.fetch_add(1, SeqCst);
            Busy(&shared.busy)
        });
        let fault = shared.take_fault(&target);
        let kept = match fault {
            None => pass(&mut stream, &request, &target, &shared).await.map(|()| stream),
            Some(fault) => inject(stream, &request, &target, fault, &shared).await,
        };
        if let (true, Some(id)) = (target.lookup, &target.sdk_id) {
            *shared.book().lookups.entry(id.clone()).or_default() += 1;
        }
        match kept {
            Some(kept) => stream = kept,
            None => return,
        }
        replied_at = Some(Instant::now());
        if target.call.is_some() {
            shared.book().last_money_reply = replied_at;
        }
    }
}

/// Waits for the next request (peeked, not consumed); `None` when the client closes,
/// the connection stays idle too long, or the listener is being closed.
async fn next_request(stream: &TcpStream, shared: &Shared) -> Option<Request> {
    let mut closing = shared.closing.subscribe();
    if !shared.listening.load(SeqCst) {
        return None;
    }
    tokio::select! {
        peeked = peek_request(stream) => match peeked {
            Ok(request) => request,
            Err(e) => {
                shared.problem(format!("reading a request: {e}"));
                None
            }
        },
        _ = closing.changed() => None,
        () = tokio::time::sleep(KEEP_ALIVE_IDLE) => None,
    }
}

async fn peek_request(stream: &TcpStream) -> io::Result<Option<Request>> {
    let mut buf = vec![0u8; REQUEST_BYTES_MAX];
    loop {
        let n = match stream.peek(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(None);
        }
        if let Some(request) = Request::parse(&buf[..n])? {
            return Ok(Some(request));
        }
        if n == buf.len() {
            return Err(io::Error::other("request larger than REQUEST_BYTES_MAX"));
        }
        // Part of the request is in; peek returns at once while data is unread, so pause.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn identify(request: &Request, shared: &Shared) -> Target {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let sdk_id = request.path.strip_prefix("/transfers/").map(str::to_owned);
    let home_of = |id: &Option<String>| id.as_ref().and_then(|id| shared.book().homes.get(id).cloned());
    match (request.method.as_str(), &sdk_id) {
        ("POST", None) if request.path == "/transfers" => Target {
            call: Some(Call::Post),
            lookup: false,
            home: body["homeTransactionId"].as_str().map(str::to_owned),
            sdk_id: None,
        },
        ("PUT", Some(_)) => {
            let call = match (&body["acceptParty"], &body["acceptQuote"]) {
                (Value::Bool(true), _) => Some(Call::AcceptParty),
                (_, Value::Bool(true)) => Some(Call::AcceptQuote),
                _ => None,
            };
            Target { call, lookup: false, home: home_of(&sdk_id), sdk_id }
        }
        ("GET", Some(_)) => Target { call: None, lookup: true, home: home_of(&sdk_id), sdk_id },
        _ => Target { call: None, lookup: false, home: None, sdk_id: None },
    }
}

/// Forwards and relays; the stream comes back when the connection stays open.
async fn pass(stream: &mut TcpStream, request: &Request, target: &Target, shared: &Shared) -> Option<()> {
    consume(stream, request).await?;
    let reply = forward(request, target, shared).await?;
    respond(stream, reply.status, &reply.content_type, &reply.body, reply.body.len(), true).await.ok()
}

async fn inject(
    mut stream: TcpStream,
    request: &Request,
    target: &Target,
    fault: Fault,
    shared: &Shared,
) -> Option<TcpStream> {
    if fault == Fault::ResetUnread {
        return reset(stream);
    }
    consume(&mut stream, request).await?;
    match fault {
        Fault::RefuseNext => {
            let reply = forward(request, target, shared).await?;
            shared.stop_listening().await;
            let _ = respond(&mut stream, reply.status, &reply.content_type, &reply.body, reply.body.len(), false).await;
            None
        }
        Fault::ResetBeforeForward => reset(stream),
        Fault::ResetAfterForward => {
            forward(request, target, shared).await?;
            reset(stream)
        }
        Fault::SlowReply | Fault::SlowRequest => {
            if fault == Fault::SlowRequest {
                tokio::time::sleep(shared.hold).await;
            }
            let reply = forward(request, target, shared).await?;
            if fault == Fault::SlowReply {
                tokio::time::sleep(shared.hold).await;
            }
            // sysgp gave up long ago: the write fails or lands in a closed socket.
            let _ = respond(&mut stream, reply.status, &reply.content_type, &reply.body, reply.body.len(), false).await;
            None
        }
        Fault::TruncatedShort => {
            let reply = forward(request, target, shared).await?;
            let half = &reply.body[..reply.body.len() / 2];
            let _ = respond(&mut stream, reply.status, &reply.content_type, half, reply.body.len(), false).await;
            let _ = stream.shutdown().await;
            None
        }
        Fault::TruncatedHead => {
            forward(request, target, shared).await?;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: applic").await;
            let _ = stream.shutdown().await;
            None
        }
        _ => {
            let Some((status, content_type, body)) = replacement(request, target, fault, shared).await else {
                shared.problem(format!("no reply to make for {fault:?} on {} {}", request.method, request.path));
                return None;
            };
            respond(&mut stream, status, content_type, &body, body.len(), true).await.ok()?;
            Some(stream)
        }
    }
}

/// The reply that replaces the SDK's for the faults that answer something.
async fn replacement(
    request: &Request,
    target: &Target,
    fault: Fault,
    shared: &Shared,
) -> Option<(u16, &'static str, Vec<u8>)> {
    let forwarded = match fault.forwards() {
        true => Some(forward(request, target, shared).await?),
        false => None,
    };
    let state = forwarded.as_ref().and_then(|r| transfer_state(&r.body));
    let json = |status: u16, body: Value| Some((status, "application/json", body.to_string().into_bytes()));
    let html =
        |status: u16, text: &str| Some((status, "text/html", format!("<html><body>{text}</body></html>").into()));
    match fault {
        Fault::Fspiop { code, code_in_status } => json(500, fspiop_body(code, code_in_status, target, shared)),
        Fault::Plain500 { .. } => match state {
            Some(state) => {
                json(500, json!({"statusCode": "500", "message": "Internal Server Error", "transferState": state}))
            }
            None => json(500, json!({"statusCode": "500", "message": "Internal Server Error"})),
        },
        Fault::Gateway { status: 503, .. } => json(503, json!({"statusCode": "503", "message": "Service Unavailable"})),
        Fault::Gateway { status, .. } => html(status, &format!("<h1>{status} {}</h1><hr>nginx", reason(status))),
        Fault::Timeout504 { stage: Stage::Transfer } => json(504, fulfil_timeout_body(state, shared)?),
        Fault::Timeout504 { stage } => json(504, stage_timeout_body(stage, target, shared)),
        Fault::TruncatedJson => {
            let reply = forwarded?;
            Some((reply.status, "application/json", reply.body[..reply.body.len() / 2].to_vec()))
        }
        Fault::NonJson { status, .. } => html(status, "It works!"),
        Fault::Uncommitted => {
            let mut state = state?;
            state["fulfil"]["body"]["transferState"] = json!("RESERVED");
            json(200, state)
        }
        Fault::Oversized => {
            let reply = forwarded?;
            let mut body: Value = serde_json::from_slice(&reply.body).ok()?;
            body["padding"] = json!("x".repeat(REPLY_PADDING_BYTES));
            json(reply.status, body)
        }
        Fault::Rejected400 => {
            json(400, json!({"statusCode": 400, "message": "request.body should NOT have additional properties"}))
        }
        Fault::Aborted200 | Fault::WaitingConversion => {
            let state = if fault == Fault::Aborted200 { "ABORTED" } else { "WAITING_FOR_CONVERSION_ACCEPTANCE" };
            json(
                200,
                json!({"transferId": reply_id(target, shared), "homeTransactionId": target.home, "currentState": state}),
            )
        }
        _ => None,
    }
}

fn reset(stream: TcpStream) -> Option<TcpStream> {
    // SO_LINGER 0: close sends RST at once instead of FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
    None
}

async fn consume(stream: &mut TcpStream, request: &Request) -> Option<()> {
    let mut sink = vec![0u8; request.wire_len];
    stream.read_exact(&mut sink).await.ok().map(|_| ())
}

async fn forward(request: &Request, target: &Target, shared: &Shared) -> Option<Response> {
    let exchange = async {
        let mut upstream = TcpStream::connect(shared.upstream).await?;
        upstream.write_all(&request.upstream_bytes()).await?;
        let mut raw = Vec::new();
        upstream.read_to_end(&mut raw).await?;
        Response::parse(&raw)
    };
    let result = match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("upstream timeout")),
    };
    match result {
        Ok(reply) => {
            shared.learn(target.home.as_deref(), &reply.body);
            Some(reply)
        }
        Err(e) => {
            shared.problem(format!("forwarding {} {}: {e}", request.method, request.path));
            None
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    declared_len: usize,
    keep_alive: bool,
) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {declared_len}\r\n\
         connection: {connection}\r\n\r\n",
        reason(status)
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}
