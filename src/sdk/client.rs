//! The SDK client: runs one payment through the SDK's stages in the configured mode,
//! recording `FINAL_SENT` durably (through a caller-supplied hook) before the call
//! after which the SDK moves money without asking again.
//!
//! Blocking (ureq): call it from the bulk pool or `spawn_blocking`, never on an async worker.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::outcome::{classify, fspiop_retryable, Answer, Exchange};
use super::wire::{transfer_request, Payment, SdkReply};
use crate::ledger::{format_minor, Quote};

/// How the SDK is configured (`SYSGP_SDK_MODE`), which decides the final call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdkMode {
    /// The SDK auto-accepts party and quote: the POST is final.
    Auto,
    /// The SDK waits for party acceptance: `PUT acceptParty` is final.
    AcceptParty,
    /// The SDK waits for quote acceptance: `PUT acceptQuote` is final.
    AcceptQuote,
}

impl SdkMode {
    /// Parses `auto`, `accept_party`, `accept_quote`.
    pub fn parse(text: &str) -> Option<SdkMode> {
        match text {
            "auto" => Some(SdkMode::Auto),
            "accept_party" => Some(SdkMode::AcceptParty),
            "accept_quote" => Some(SdkMode::AcceptQuote),
            _ => None,
        }
    }
}

/// How a payment ended, as far as we can know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The hub committed the transfer.
    Completed,
    /// Nothing moved (or the hub aborted).
    Failed {
        /// Bare FSPIOP code or an upper-case code.
        code: String,
        /// One line.
        message: String,
        /// Whether sending it again is safe and may succeed.
        retryable: bool,
    },
    /// The money may or may not have moved.
    InDoubt {
        /// Why we cannot tell.
        reason: String,
    },
}

/// The result of [`SdkClient::pay`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayOutcome {
    /// What happened.
    pub verdict: Verdict,
    /// The SDK's `transferId`, when any reply carried it.
    pub sdk_transfer_id: Option<String>,
    /// Quote details, when a quote came back.
    pub quote: Option<Quote>,
    /// A configuration problem the replies revealed (for `/readyz`).
    pub config_problem: Option<String>,
}

/// What the `FINAL_SENT` hook is told before the final call.
#[derive(Clone, Debug)]
pub struct FinalSent {
    /// The SDK's `transferId` (known in the accept modes).
    pub sdk_transfer_id: Option<String>,
    /// The quote accepted (accept_quote mode).
    pub quote: Option<Quote>,
}

/// The hub's view of a transfer (`GET /transfers/{id}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubState {
    /// COMMITTED: paid.
    Committed,
    /// ABORTED: not paid.
    Aborted,
    /// RECEIVED / RESERVED or no fulfil yet: still in flight.
    InFlight(String),
    /// FSPIOP 3208: the hub does not know the transfer.
    Unknown,
    /// No usable answer.
    Unavailable(String),
}

/// Bodies larger than this are not an SDK reply (real ones are ~10 KiB).
const REPLY_BYTES_MAX: u64 = 1024 * 1024;
/// Connection set-up: the SDK is on the same host or LAN; longer means unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A pooled connection older than this is not reused for money-moving calls: the SDK
/// (Node.js) closes idle connections after 5 s, and a reset on a stale connection
/// would turn into an IN_DOUBT without id.
const MONEY_IDLE_MAX: Duration = Duration::from_secs(2);
/// Idle connections kept for reuse: one per concurrent caller (P2P requests and bulk
/// workers); ureq's default of 3 would open a new connection for most calls.
const IDLE_CONNECTIONS_MAX: usize = 256;
/// Reads (reconciliation, probes) give up sooner than money calls.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// At most POST, PUT acceptParty, PUT acceptQuote: a longer dialogue is a misbehaving SDK.
const STEPS_MAX: usize = 4;

/// Resolves an IP address in the URL in place; a host name through ureq's resolver,
/// which looks it up on a thread of its own so that the timeout holds. Without this,
/// every call (pooled connection or not) started a thread just to parse `127.0.0.1`.
#[derive(Debug, Default)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let literal = uri.authority().and_then(|authority| {
            let host = authority.host().trim_start_matches('[').trim_end_matches(']');
            let port = authority.port_u16().or(match uri.scheme_str() {
                Some("http") => Some(80),
                Some("https") => Some(443),
                _ => None,
            })?;
            Some(SocketAddr::new(host.parse::<IpAddr>().ok()?, port))
        });
        match literal {
            Some(addr) => {
                let mut addrs = self.0.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// Talks to one SDK Scheme Adapter.
#[derive(Clone)]
pub struct SdkClient {
    base: String,
    mode: SdkMode,
    money: ureq::Agent,
    reads: ureq::Agent,
}

impl SdkClient {
    /// A client for `base_url` (paths are appended with exactly one `/`).
    pub fn new(base_url: &str, mode: SdkMode, timeout: Duration) -> SdkClient {
        let agent = |global: Duration, idle: Duration| -> ureq::Agent {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(CONNECT_TIMEOUT))
                .timeout_global(Some(global))
                .max_idle_age(idle)
                .max_idle_connections(IDLE_CONNECTIONS_MAX)
                .max_idle_connections_per_host(IDLE_CONNECTIONS_MAX)
                .max_redirects(0)
                .user_agent("sysgp")
                .build();
            ureq::Agent::with_parts(config, DefaultConnector::new(), LiteralFirst::default())
        };
        SdkClient {
            base: base_url.trim_end_matches('/').to_owned(),
            mode,
            money: agent(timeout, MONEY_IDLE_MAX),
            reads: agent(READ_TIMEOUT.min(timeout), Duration::from_secs(4)),
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> SdkMode {
        self.mode
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    fn exchange(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Exchange {
        let started = std::time::Instant::now();
        let exchange = self.exchange_untimed(method, path, body);
        let outcome = match &exchange {
            Exchange::Replied { status, .. } => format!("{}xx", status / 100),
            Exchange::NotConnected(_) => "unreachable".into(),
            Exchange::Lost(_) => "lost".into(),
        };
        crate::metrics::inc("sysgp_sdk_requests_total", &[("method", method), ("outcome", &outcome)]);
        crate::metrics::observe("sysgp_sdk_request_duration_seconds", &[("method", method)], started.elapsed());
        exchange
    }

    fn exchange_untimed(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Exchange {
        let agent = if method == "GET" { &self.reads } else { &self.money };
        let url = self.url(path);
        let result = match (method, body) {
            ("POST", Some(b)) => agent.post(&url).header("content-type", "application/json").send(b.to_string()),
            ("PUT", Some(b)) => agent.put(&url).header("content-type", "application/json").send(b.to_string()),
            _ => agent.get(&url).header("accept", "application/json").call(),
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                match response.body_mut().with_config().limit(REPLY_BYTES_MAX).read_to_vec() {
                    Ok(body) => Exchange::Replied { status, body },
                    Err(e) => Exchange::Lost(format!("reading the HTTP {status} reply failed: {e}")),
                }
            }
            Err(e) if nothing_sent(&e) => Exchange::NotConnected(e.to_string()),
            Err(e) => Exchange::Lost(e.to_string()),
        }
    }

    /// Sends one payment through every stage the mode requires. `final_sent` must make
    /// the FINAL_SENT phase durable before returning `Ok`; if it fails, no final call is
    /// made and its error is returned.
    pub fn pay<E>(
        &self,
        payment: &Payment,
        mut final_sent: impl FnMut(&FinalSent) -> Result<(), E>,
    ) -> Result<PayOutcome, E> {
        let mut run = Run { sdk_transfer_id: None, quote: None, is_final: false, moved: false };
        if self.mode == SdkMode::Auto {
            final_sent(&FinalSent { sdk_transfer_id: None, quote: None })?;
            run.is_final = true;
        }
        let mut exchange = self.exchange("POST", "transfers", Some(&transfer_request(payment)));
        for _ in 0..STEPS_MAX {
            let (answer, reply) = classify(&exchange);
            run.absorb(reply, self.mode);
            let next = match answer {
                Answer::WaitingParty => self.on_waiting_party(&mut run, &mut final_sent)?,
                Answer::WaitingQuote => self.on_waiting_quote(&mut run, payment, &mut final_sent)?,
                Answer::WaitingConversion => {
                    self.abandon(&run, "acceptConversion");
                    Step::Done(failed("FX_NOT_SUPPORTED", "the SDK asked for a currency conversion", false))
                }
                other => Step::Done(run.verdict(other)),
            };
            match next {
                Step::Send(path, body) => exchange = self.exchange("PUT", &path, Some(&body)),
                Step::Done(verdict) => return Ok(run.outcome(verdict)),
            }
        }
        let verdict = run.verdict(Answer::Doubt("the SDK kept asking for acceptance".into()));
        Ok(run.outcome(verdict))
    }

    fn on_waiting_party<E>(
        &self,
        run: &mut Run,
        final_sent: &mut impl FnMut(&FinalSent) -> Result<(), E>,
    ) -> Result<Step, E> {
        let Some(id) = run.sdk_transfer_id.clone() else {
            return Ok(Step::Done(run.verdict(Answer::Doubt("WAITING reply without transferId".into()))));
        };
        match self.mode {
            SdkMode::AcceptParty if !run.is_final => {
                final_sent(&FinalSent { sdk_transfer_id: Some(id.clone()), quote: None })?;
                run.is_final = true;
            }
            // In accept_quote mode accepting the party is an intermediate, safe step.
            SdkMode::AcceptQuote => {}
            _ => return Ok(Step::Done(mode_mismatch("WAITING_FOR_PARTY_ACCEPTANCE", self.mode))),
        }
        Ok(Step::Send(format!("transfers/{id}"), json!({"acceptParty": true})))
    }

    fn on_waiting_quote<E>(
        &self,
        run: &mut Run,
        payment: &Payment,
        final_sent: &mut impl FnMut(&FinalSent) -> Result<(), E>,
    ) -> Result<Step, E> {
        let Some(id) = run.sdk_transfer_id.clone() else {
            return Ok(Step::Done(run.verdict(Answer::Doubt("WAITING reply without transferId".into()))));
        };
        if self.mode != SdkMode::AcceptQuote || run.is_final {
            self.abandon(run, "acceptQuote");
            return Ok(Step::Done(mode_mismatch("WAITING_FOR_QUOTE_ACCEPTANCE", self.mode)));
        }
        if let Err(why) = quote_matches(run.quote.as_ref(), payment) {
            self.abandon(run, "acceptQuote");
            return Ok(Step::Done(failed("QUOTE_MISMATCH", &why, false)));
        }
        final_sent(&FinalSent { sdk_transfer_id: Some(id.clone()), quote: run.quote.clone() })?;
        run.is_final = true;
        Ok(Step::Send(format!("transfers/{id}"), json!({"acceptQuote": true})))
    }

    /// Declines a waiting transfer (nothing has moved). Failures are only logged: an
    /// unanswered acceptance expires on its own.
    fn abandon(&self, run: &Run, field: &str) {
        if let Some(id) = &run.sdk_transfer_id {
            if let Exchange::NotConnected(e) | Exchange::Lost(e) =
                self.exchange("PUT", &format!("transfers/{id}"), Some(&json!({ field: false })))
            {
                log::warn!("declining SDK transfer {id} failed: {e}");
            }
        }
    }

    /// Sends the final acceptance again for a transfer whose final call may never have
    /// reached the SDK (the service stopped right after recording FINAL_SENT); true
    /// when the reply shows it COMMITTED. The SDK transfer id is the same, so the hub
    /// moves the money at most once. Any other reply settles nothing, failures
    /// included: if the first call did reach the SDK, a second one can fail (a hub
    /// refusing the repeated prepare) while the first one commits, so only the hub's
    /// answer to a GET may release the money.
    pub fn resume_final(&self, sdk_transfer_id: &str) -> bool {
        let field = match self.mode {
            SdkMode::AcceptParty => "acceptParty",
            SdkMode::AcceptQuote => "acceptQuote",
            SdkMode::Auto => return false,
        };
        if sdk_transfer_id.is_empty() || sdk_transfer_id.contains(['/', '?', '#']) {
            return false;
        }
        let exchange = self.exchange("PUT", &format!("transfers/{sdk_transfer_id}"), Some(&json!({ field: true })));
        matches!(classify(&exchange).0, Answer::Completed)
    }

    /// Asks the hub, through the SDK, where a transfer stands.
    pub fn lookup(&self, sdk_transfer_id: &str) -> HubState {
        if sdk_transfer_id.is_empty() || sdk_transfer_id.contains(['/', '?', '#']) {
            return HubState::Unavailable("malformed transfer id".into());
        }
        let (status, reply) = match self.exchange("GET", &format!("transfers/{sdk_transfer_id}"), None) {
            Exchange::Replied { status, body } => (status, super::wire::parse_reply(&body)),
            Exchange::NotConnected(e) | Exchange::Lost(e) => return HubState::Unavailable(e),
        };
        let Some(reply) = reply else {
            return HubState::Unavailable(format!("HTTP {status} with a body that is not JSON"));
        };
        let code = reply.status_code.as_deref().or(reply.error_code.as_deref());
        if code == Some("3208") {
            return HubState::Unknown;
        }
        match (status, reply.fulfil_state.as_deref()) {
            (200, Some("COMMITTED")) => HubState::Committed,
            (200, Some("ABORTED")) => HubState::Aborted,
            (200, state) => HubState::InFlight(state.or(reply.current_state.as_deref()).unwrap_or("no fulfil").into()),
            (status, _) => HubState::Unavailable(format!("HTTP {status}")),
        }
    }

    /// `GET {base}/`: is the SDK answering?
    pub fn probe(&self) -> Result<(), String> {
        match self.exchange("GET", "", None) {
            Exchange::Replied { status, .. } if (200..300).contains(&status) => Ok(()),
            Exchange::Replied { status, .. } => Err(format!("HTTP {status} from {}/", self.base)),
            Exchange::NotConnected(e) | Exchange::Lost(e) => Err(e),
        }
    }
}

enum Step {
    Send(String, serde_json::Value),
    Done(Verdict),
}

struct Run {
    sdk_transfer_id: Option<String>,
    quote: Option<Quote>,
    is_final: bool,
    /// A reply before the final call showed the transfer stage: the SDK is not in the
    /// configured mode and money may have moved.
    moved: bool,
}

impl Run {
    fn absorb(&mut self, reply: Option<SdkReply>, mode: SdkMode) {
        if let Some(reply) = reply {
            if !self.is_final && reply.shows_transfer_stage() {
                log::error!(
                    "configuration error: the SDK ran the transfer stage before the final call of SYSGP_SDK_MODE \
                     {mode:?} (SDK transfer {:?}); the transfer is treated as possibly paid",
                    reply.transfer_id.as_ref().or(self.sdk_transfer_id.as_ref())
                );
                self.moved = true;
            }
            if reply.transfer_id.is_some() {
                self.sdk_transfer_id = reply.transfer_id;
            }
            if reply.quote.is_some() {
                self.quote = reply.quote;
            }
        }
    }

    /// Maps a terminal answer; doubt before the final call means nothing moved, unless
    /// a reply showed the transfer stage.
    fn verdict(&self, answer: Answer) -> Verdict {
        match answer {
            Answer::Completed => Verdict::Completed,
            Answer::Aborted => failed("SDK_ABORTED", "the hub aborted the transfer", false),
            Answer::Rejected(message) => {
                log::error!("the SDK refused our request (a bug in sysgp or an SDK upgrade): {message}");
                failed("SDK_REJECTED_REQUEST", &message, false)
            }
            Answer::Fspiop { code, description } => {
                let retryable = fspiop_retryable(&code);
                Verdict::Failed { code, message: description, retryable }
            }
            Answer::StageTimeout { code, message } => failed(code, &message, true),
            Answer::Unreachable(detail) => {
                failed("SDK_UNREACHABLE", &format!("the SDK could not be reached: {detail}"), true)
            }
            Answer::ConfigError(detail) => {
                log::error!("SDK configuration error: {detail}");
                failed("SDK_CONFIG_ERROR", &detail, true)
            }
            Answer::Doubt(reason) if self.is_final || self.moved => Verdict::InDoubt { reason },
            Answer::Doubt(reason) => failed("SDK_ERROR", &format!("before the final call: {reason}"), true),
            Answer::WaitingParty | Answer::WaitingQuote | Answer::WaitingConversion => {
                Verdict::InDoubt { reason: "unexpected waiting state".into() }
            }
        }
    }

    fn outcome(self, verdict: Verdict) -> PayOutcome {
        let config_problem = match &verdict {
            Verdict::Failed { code, message, .. } if code == "SDK_CONFIG_ERROR" || code == "SDK_MODE_MISMATCH" => {
                Some(format!("{code}: {message}"))
            }
            _ if self.moved => Some("SDK_MODE_MISMATCH: the SDK ran the transfer stage before the final call".into()),
            _ => None,
        };
        PayOutcome { verdict, sdk_transfer_id: self.sdk_transfer_id, quote: self.quote, config_problem }
    }
}

fn failed(code: &str, message: &str, retryable: bool) -> Verdict {
    Verdict::Failed { code: code.to_owned(), message: message.to_owned(), retryable }
}

fn mode_mismatch(state: &str, mode: SdkMode) -> Verdict {
    log::error!(
        "configuration error: the SDK answered {state} but SYSGP_SDK_MODE is {mode:?}; the transfer was abandoned"
    );
    failed("SDK_MODE_MISMATCH", &format!("the SDK answered {state}, which SYSGP_SDK_MODE does not expect"), true)
}

/// In accept_quote mode the quote must be for exactly our amount and currency.
fn quote_matches(quote: Option<&Quote>, payment: &Payment) -> Result<(), String> {
    let quoted = quote.and_then(|q| q.transfer_amount.as_ref()).ok_or("the quote has no transferAmount")?;
    let ours = format_minor(payment.amount, payment.currency);
    let same_amount = match (quoted.amount.parse::<rust_decimal::Decimal>(), ours.parse::<rust_decimal::Decimal>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_amount && quoted.currency == payment.currency.code() {
        Ok(())
    } else {
        Err(format!("quoted {} {} for a transfer of {} {}", quoted.amount, quoted.currency, ours, payment.currency))
    }
}

/// True when ureq failed before any byte of the request could have been sent.
fn nothing_sent(error: &ureq::Error) -> bool {
    use ureq::Timeout;
    match error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::BadUri(_) => true,
        ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::NetworkDown
                | io::ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use ureq::unversioned::transport::time::Duration as Wait;
    use ureq::Timeout;

    use super::*;

    fn resolve(url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().expect("uri");
        let timeout = NextTimeout {
            after: Wait::Exact(Duration::from_secs(5)),
            reason: Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let config = ureq::Agent::config_builder().build();
        LiteralFirst::default().resolve(&uri, &config, timeout).expect("resolves").to_vec()
    }

    #[test]
    fn ip_addresses_resolve_in_place_and_names_through_the_resolver() {
        assert_eq!(resolve("http://127.0.0.1:4001/transfers"), ["127.0.0.1:4001".parse().expect("addr")]);
        assert_eq!(resolve("http://[::1]:4002/"), ["[::1]:4002".parse().expect("addr")]);
        assert_eq!(resolve("http://10.0.0.7/"), ["10.0.0.7:80".parse().expect("addr")]);
        let named = resolve("http://localhost:4003/");
        assert!(!named.is_empty() && named.iter().all(|a| a.port() == 4003 && a.ip().is_loopback()), "{named:?}");
    }
}
