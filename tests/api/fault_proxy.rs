//! A fault-injecting HTTP/1.1 proxy for the SDK fault campaign (`faults.rs`): a real
//! TCP listener between sysgp and the SDK simulator that forwards every request, except
//! where the test's script says otherwise for one call of one transfer: then it refuses
//! the next connection, resets the connection (before reading the request, before or
//! after forwarding it), holds the answer past sysgp's timeout, or replaces, truncates
//! or garbles the answer.
//!
//! Requests are matched to a transfer by `homeTransactionId` (POST) and by the SDK
//! `transferId` learnt from forwarded replies (PUT, GET). Each request is first *peeked*,
//! so a reset "before reading" leaves it unread in the socket. Client connections are
//! kept alive (and the idle time before each reuse measured); upstream, each request gets
//! its own connection.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Largest request accepted from sysgp (a transfer request is well under 1 KiB).
const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Idle client connections are closed after this: longer than the SDK's 5 s (Node.js),
/// so that a money call reusing a connection idle for more than sysgp's 2 s limit is
/// seen and measured rather than hidden by the close.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(60);
/// Past sysgp's 1 MiB limit on SDK replies (real ones are about 10 KiB).
const REPLY_PADDING_BYTES: usize = 1024 * 1024 + 1;
/// The simulator answers in milliseconds; longer means the proxy itself is stuck.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The SDK calls of one payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `POST /transfers`.
    Post,
    /// `PUT /transfers/{id}` `{"acceptParty": true}`.
    AcceptParty,
    /// `PUT /transfers/{id}` `{"acceptQuote": true}`.
    AcceptQuote,
}

/// The SDK stage a synthesized error pretends to come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Party,
    Quote,
    Transfer,
}

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward and answer normally, but close the listener and every idle connection
    /// first, so that the transfer's next call finds nothing listening.
    RefuseNext,
    /// Reset the connection without reading the request.
    ResetUnread,
    /// Read the request, then reset: nothing reaches the SDK.
    ResetBeforeForward,
    /// Forward (the SDK acts), then reset instead of answering.
    ResetAfterForward,
    /// Forward at once, answer only after the hold (past sysgp's timeout).
    SlowReply,
    /// Hold the request, then forward it: the SDK acts after sysgp gave up.
    SlowRequest,
    /// Not forwarded: a captured SDK 500 with this FSPIOP code, in the top-level
    /// `statusCode` too, or only in `lastError` (`statusCode` "500").
    Fspiop { code: &'static str, code_in_status: bool },
    /// A 500 without an FSPIOP code; when forwarded it carries the SDK's transfer state.
    Plain500 { forward: bool },
    /// A gateway's 502 (HTML), 503 (JSON) or 504 (HTML).
    Gateway { status: u16, forward: bool },
    /// The SDK's 504 for a stage: party and quote timeouts are not forwarded; a transfer
    /// (fulfil) timeout is forwarded and carries `transferState.prepare`.
    Timeout504 { stage: Stage },
    /// Forwarded; half of the body is sent, then the connection is closed although
    /// `Content-Length` promised more.
    TruncatedShort,
    /// Forwarded; half of the body with a matching `Content-Length` (unparseable JSON).
    TruncatedJson,
    /// Forwarded; the connection closes in the middle of the reply's head.
    TruncatedHead,
    /// Forwarded; the reply padded past sysgp's limit on SDK replies (1 MiB).
    Oversized,
    /// An HTML body with this status.
    NonJson { status: u16, forward: bool },
    /// Forwarded; a COMPLETED reply whose `fulfil.body.transferState` says RESERVED.
    Uncommitted,
    /// Not forwarded: the SDK's 400 (it refused the request).
    Rejected400,
    /// Not forwarded: 200 with `currentState` ABORTED.
    Aborted200,
    /// Not forwarded: 200 with `currentState` WAITING_FOR_CONVERSION_ACCEPTANCE.
    WaitingConversion,
}

impl Fault {
    /// The name the campaign counts it under.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::RefuseNext => "refused",
            Fault::ResetUnread => "reset_unread",
            Fault::ResetBeforeForward => "reset_before_forward",
            Fault::ResetAfterForward => "reset_after_forward",
            Fault::SlowReply => "slow_reply",
            Fault::SlowRequest => "slow_request",
            Fault::Fspiop { code_in_status: true, .. } => "http500_fspiop",
            Fault::Fspiop { code_in_status: false, .. } => "http500_fspiop_last_error_only",
            Fault::Plain500 { .. } => "http500_no_fspiop_code",
            Fault::Gateway { status: 502, .. } => "http502",
            Fault::Gateway { status: 503, .. } => "http503",
            Fault::Gateway { .. } => "http504_gateway",
            Fault::Timeout504 { stage: Stage::Party } => "http504_party",
            Fault::Timeout504 { stage: Stage::Quote } => "http504_quote",
            Fault::Timeout504 { stage: Stage::Transfer } => "http504_transfer",
            Fault::TruncatedShort => "truncated_body_short_read",
            Fault::TruncatedJson => "truncated_json",
            Fault::TruncatedHead => "truncated_head",
            Fault::Oversized => "oversized_body",
            Fault::NonJson { status: 404, .. } => "non_json_404",
            Fault::NonJson { .. } => "non_json_200",
            Fault::Uncommitted => "completed_not_committed",
            Fault::Rejected400 => "http400",
            Fault::Aborted200 => "aborted_200",
            Fault::WaitingConversion => "waiting_for_conversion",
        }
    }

    /// Whether the SDK receives the request (and acts on it).
    pub fn forwards(self) -> bool {
        match self {
            Fault::ResetUnread | Fault::ResetBeforeForward | Fault::Fspiop { .. } => false,
            Fault::Rejected400 | Fault::Aborted200 | Fault::WaitingConversion => false,
            Fault::Plain500 { forward } | Fault::Gateway { forward, .. } | Fault::NonJson { forward, .. } => forward,
            Fault::Timeout504 { stage } => stage == Stage::Transfer,
            _ => true,
        }
    }
}

/// One transfer's faults: `fault` on its first `at` call, `lookup` on the first
/// `GET /transfers/{id}` for it (reconciliation).
#[derive(Clone, Copy, Debug)]
pub struct Script {
    pub at: Call,
    pub fault: Fault,
    pub lookup: Option<Fault>,
}

#[derive(Default)]
struct Book {
    /// home id → (script, call fault used, lookup fault used)
    scripts: HashMap<String, (Script, bool, bool)>,
    /// SDK transfer id → home id
    homes: HashMap<String, String>,
    /// home id → money calls received, in order
    calls: HashMap<String, Vec<Call>>,
    /// SDK transfer id → `GET /transfers/{id}` requests handled
    lookups: HashMap<String, usize>,
    injected: BTreeMap<String, usize>,
    problems: Vec<String>,
    /// home id → for each money call, how long its kept-alive connection had been idle
    /// (`None`: a fresh connection)
    idle_before: HashMap<String, Vec<Option<Duration>>>,
    /// When a money call's reply was last sent on a connection kept open.
    last_money_reply: Option<Instant>,
}

struct Shared {
    upstream: SocketAddr,
    hold: Duration,
    book: Mutex<Book>,
    /// Money calls being handled (a held request counts until it is forwarded and answered).
    busy: AtomicUsize,
    /// Connections waiting for their next request.
    idle: AtomicUsize,
    listening: AtomicBool,
    closing: watch::Sender<u64>,
    control: mpsc::UnboundedSender<Control>,
}

enum Control {
    Listen(bool, oneshot::Sender<io::Result<()>>),
}

/// A running proxy; dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Listens on a free port and forwards to `upstream`; `hold` is how long slow faults wait.
    pub fn start(upstream: SocketAddr, hold: Duration) -> FaultProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let (control, commands) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            upstream,
            hold,
            book: Mutex::new(Book::default()),
            busy: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            listening: AtomicBool::new(true),
            closing: watch::channel(0).0,
            control,
        });
        let listener = {
            let _context = rt.enter();
            bind("127.0.0.1:0".parse().expect("addr")).expect("proxy binds")
        };
        let addr = listener.local_addr().expect("proxy address");
        rt.spawn(accept_loop(listener, addr, shared.clone(), commands));
        FaultProxy { addr, shared, rt: Some(rt) }
    }

    /// The base URL to give sysgp as `MOJALOOP_SDK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Plans the faults of the transfer whose `homeTransactionId` is `home`.
    pub fn script(&self, home: &str, script: Script) {
        self.shared.book().scripts.insert(home.to_owned(), (script, false, false));
    }

    /// Closes (false) or reopens (true) the listener; closing also closes idle connections.
    pub fn set_listening(&self, on: bool) {
        let (ack, done) = oneshot::channel();
        assert!(self.shared.control.send(Control::Listen(on, ack)).is_ok(), "proxy stopped");
        done.blocking_recv().expect("proxy answers").expect("proxy listener");
        if !on {
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.shared.idle.load(SeqCst) > 0 {
                assert!(Instant::now() < deadline, "idle proxy connections did not close");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// The money calls received for transfer `home`, in order.
    pub fn calls(&self, home: &str) -> Vec<Call> {
        self.shared.book().calls.get(home).cloned().unwrap_or_default()
    }

    /// How many `GET /transfers/{sdk_id}` requests were handled.
    pub fn lookups(&self, sdk_id: &str) -> usize {
        self.shared.book().lookups.get(sdk_id).copied().unwrap_or(0)
    }

    /// Faults injected so far, by kind (`lookup:` prefixed for reconciliation GETs).
    pub fn injected(&self) -> BTreeMap<String, usize> {
        self.shared.book().injected.clone()
    }

    /// Counts a fault the proxy cannot see itself (a refused connection).
    pub fn count(&self, kind: &str) {
        *self.shared.book().injected.entry(kind.to_owned()).or_default() += 1;
    }

    /// Money calls sent on a kept-alive connection, and the longest idle time before one.
    pub fn money_calls_reusing_connections(&self) -> (usize, Duration) {
        let book = self.shared.book();
        let reused = book.idle_before.values().flatten().flatten();
        (reused.clone().count(), reused.max().copied().unwrap_or_default())
    }

    /// For each money call of transfer `home`: how long its connection had been idle
    /// before (`None`: a fresh connection).
    pub fn idle_before(&self, home: &str) -> Vec<Option<Duration>> {
        self.shared.book().idle_before.get(home).cloned().unwrap_or_default()
    }

    /// Time since a money call's reply was last sent on a connection kept open.
    pub fn since_last_money_reply(&self) -> Option<Duration> {
        self.shared.book().last_money_reply.map(|at| at.elapsed())
    }

    /// What went wrong inside the proxy (should stay empty).
    pub fn problems(&self) -> Vec<String> {
        self.shared.book().problems.clone()
    }

    /// Waits until no money call is being handled (held requests forwarded, replies sent).
    pub fn wait_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.shared.busy.load(SeqCst) > 0 {
            assert!(Instant::now() < deadline, "proxy still busy after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn problem(&self, what: String) {
        self.book().problems.push(what);
    }

    /// Closes the listener (the accept loop acknowledges once it is dropped) and waits
    /// until every idle connection is closed.
    async fn stop_listening(&self) {
        let (ack, done) = oneshot::channel();
        if self.control.send(Control::Listen(false, ack)).is_err() || done.await.is_err() {
            return self.problem("the accept loop is gone".into());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.idle.load(SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Records the SDK transfer id a reply carries, so later PUTs and GETs find their transfer.
    fn learn(&self, home: Option<&str>, body: &[u8]) {
        let (Some(home), Ok(reply)) = (home, serde_json::from_slice::<Value>(body)) else { return };
        let id = reply.get("transferId").or_else(|| reply.pointer("/transferState/transferId"));
        if let Some(id) = id.and_then(Value::as_str) {
            self.book().homes.insert(id.to_owned(), home.to_owned());
        }
    }

    /// Logs the request and takes the fault planned for it, if any (each fault fires once).
    fn take_fault(&self, target: &Target) -> Option<Fault> {
        let mut book = self.book();
        let home = target.home.clone()?;
        if let Some(call) = target.call {
            book.calls.entry(home.clone()).or_default().push(call);
        }
        let (script, used, lookup_used) = book.scripts.get_mut(&home)?;
        let (fault, label) = match target.call {
            Some(call) if call == script.at && !*used => {
                *used = true;
                (script.fault, script.fault.kind().to_owned())
            }
            None if target.lookup && !*lookup_used && script.lookup.is_some() => {
                *lookup_used = true;
                let fault = script.lookup?;
                (fault, format!("lookup:{}", fault.kind()))
            }
            _ => return None,
        };
        // A refusal is counted by the test once it has checked that the call never arrived.
        if fault != Fault::RefuseNext {
            *book.injected.entry(label).or_default() += 1;
        }
        Some(fault)
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Reopening on the same port right after closing it.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
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

/// A request and the transfer it belongs to.
struct Target {
    call: Option<Call>,
    lookup: bool,
    home: Option<String>,
    sdk_id: Option<String>,
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

/// The transfer state of an SDK reply: the whole body of a 200, `transferState` of an error.
fn transfer_state(body: &[u8]) -> Option<Value> {
    let reply: Value = serde_json::from_slice(body).ok()?;
    match reply.get("transferState") {
        Some(state) => Some(state.clone()),
        None => reply.get("transferId").is_some().then_some(reply),
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/sdk/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The SDK transfer id a synthesized reply names: the path's, or a new one for a POST.
fn reply_id(target: &Target, shared: &Shared) -> String {
    let id = target.sdk_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Some(home) = &target.home {
        shared.book().homes.insert(id.clone(), home.clone());
    }
    id
}

/// A captured FSPIOP error reply, re-addressed to this transfer.
fn fspiop_body(code: &str, code_in_status: bool, target: &Target, shared: &Shared) -> Value {
    let name = match code {
        "3204" => "fail_party404.response.json",
        "5103" => "fail_quote666.response.json",
        "5105" => "fail_xfer13.response.json",
        "4001" => "fail_liq.response.json",
        other => panic!("no captured reply for FSPIOP {other}"),
    };
    let mut body = fixture(name);
    body["transferState"]["transferId"] = json!(reply_id(target, shared));
    body["transferState"]["homeTransactionId"] = json!(target.home);
    if !code_in_status {
        body["statusCode"] = json!("500");
    }
    body
}

/// The captured party-timeout 504, re-addressed (and re-worded for the quote stage).
fn stage_timeout_body(stage: Stage, target: &Target, shared: &Shared) -> Value {
    let id = reply_id(target, shared);
    let mut body = fixture("fail_timeout.response.json");
    let doing = if stage == Stage::Party { "resolving payee" } else { "requesting quote" };
    body["message"] = json!(format!("Timeout {doing} for transfer {id}"));
    body["transferState"]["transferId"] = json!(id);
    body["transferState"]["homeTransactionId"] = json!(target.home);
    body
}

/// A fulfil timeout after the SDK prepared (and the hub settled) the forwarded transfer.
fn fulfil_timeout_body(state: Option<Value>, shared: &Shared) -> Option<Value> {
    let mut state = state?;
    if state.get("prepare").is_none() {
        shared.problem(format!("a transfer-stage reply without prepare: {state}"));
    }
    let id = state["transferId"].as_str().unwrap_or_default().to_owned();
    state["currentState"] = json!("ERROR_OCCURRED");
    state["lastError"] = json!({"httpStatusCode": 504});
    Some(
        json!({"message": format!("Timeout waiting for fulfil for transfer {id}"), "transferState": state, "statusCode": "504"}),
    )
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

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Time-out",
        _ => "Unknown",
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes on the wire: head and body.
    wire_len: usize,
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn parse_head(head: &[u8]) -> io::Result<(String, Vec<(String, String)>)> {
    let head = std::str::from_utf8(head).map_err(io::Error::other)?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok((first, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "content-length").map(|v| v.parse().map_err(io::Error::other)).transpose()
}

impl Request {
    /// `None` while incomplete.
    fn parse(buf: &[u8]) -> io::Result<Option<Request>> {
        let Some(end) = head_end(buf) else { return Ok(None) };
        let (first, headers) = parse_head(&buf[..end])?;
        let mut words = first.split(' ');
        let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        if header(&headers, "transfer-encoding").is_some() {
            return Err(io::Error::other("chunked requests are not expected from sysgp"));
        }
        let wire_len = end + 4 + content_length(&headers)?.unwrap_or(0);
        if buf.len() < wire_len {
            return Ok(None);
        }
        let body = buf[end + 4..wire_len].to_vec();
        Ok(Some(Request { method: method.to_owned(), path: path.to_owned(), headers, body, wire_len }))
    }

    /// The request for the simulator, on a connection of its own.
    fn upstream_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (name, value) in self.headers.iter().filter(|(n, _)| n != "connection" && n != "keep-alive") {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

struct Response {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> io::Result<Response> {
        let end = head_end(raw).ok_or_else(|| io::Error::other("upstream reply without a head"))?;
        let (first, headers) = parse_head(&raw[..end])?;
        let status =
            first.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| io::Error::other(first.clone()))?;
        let mut body = raw[end + 4..].to_vec();
        if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            body = dechunk(&body)?;
        } else if let Some(len) = content_length(&headers)? {
            body.truncate(len);
        }
        let content_type = header(&headers, "content-type").unwrap_or("application/json").to_owned();
        Ok(Response { status, content_type, body })
    }
}

fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(|| io::Error::other("bad chunk"))?;
        let size_text = std::str::from_utf8(&raw[..line_end]).map_err(io::Error::other)?;
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(io::Error::other)?;
        if size == 0 {
            return Ok(out);
        }
        let start = line_end + 2;
        let chunk = raw.get(start..start + size).ok_or_else(|| io::Error::other("short chunk"))?;
        out.extend_from_slice(chunk);
        raw = raw.get(start + size + 2..).ok_or_else(|| io::Error::other("short chunk"))?;
    }
}
