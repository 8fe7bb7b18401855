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
//!
//! `serve` handles connections, `bodies` makes up the replies, `wire` parses HTTP.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, oneshot, watch};

mod bodies;
mod serve;
mod wire;

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
        rt.spawn(serve::accept_loop(listener, addr, shared.clone(), commands));
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

/// A request and the transfer it belongs to.
struct Target {
    call: Option<Call>,
    lookup: bool,
    home: Option<String>,
    sdk_id: Option<String>,
}
