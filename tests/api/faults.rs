//! SDK fault campaign (SPEC §4 outcome table and phases, §2 invariants, §10 fault tests):
//! P2P transfers run through a fault proxy (`fault_proxy.rs`) between sysgp and the real
//! simulator, in each SDK mode, with one fault per transfer at one call of the mode's
//! dialogue: a refused connection; a reset before the request is read, before it is
//! forwarded, or after the SDK acted; an answer held past sysgp's timeout, or a request
//! held until sysgp gave up; FSPIOP 500s shaped like the captured ones (code in
//! `statusCode` and `lastError`, or in `lastError` only); 500s without a code; 502, 503;
//! the SDK's 504 at each stage and a gateway's 504; bodies truncated (in the head, short
//! of `Content-Length`, or cut JSON), oversized or not JSON; and the table's rarer
//! answers: 400, 200 ABORTED, WAITING_FOR_CONVERSION_ACCEPTANCE, COMPLETED without
//! COMMITTED. Some reconciliation lookups are faulted too.
//!
//! Each reply must be the table's: COMPLETED, FAILED with the right code and the funds
//! released, or IN_DOUBT with the funds still reserved; the SDK must have seen each call
//! up to the faulted one exactly once and nothing after it. Then every IN_DOUBT whose SDK
//! transfer id is known and whose final call reached the SDK must be settled by
//! reconciliation (polled with a deadline); one whose final call never reached the SDK
//! must stay IN_DOUBT (the hub answers 3208 until well after the quote expired) and is
//! resolved by an operator, as is one without an id (its id found at the hub by
//! `homeTransactionId`, as an operator would). One more transfer, without a fault, must
//! then complete, its first call on a fresh connection since sysgp's pooled ones have
//! been idle for more than 2 s (SPEC §4). Finally the simulator paid exactly the
//! COMPLETED transfers, each once; settlement equals what it paid; cash equals what was
//! deposited; and the invariants of `sysgp check` hold.
//!
//! Size: every fault at every call of every mode once per round: about 190 transfers
//! and 200 faults in four tests, each under 20 s in debug (about 40 s of wall time on two
//! cores). `SYSGP_FAULT_ROUNDS=N` runs N rounds with fresh transfers (forwarded / not
//! forwarded variants alternate between rounds), e.g. `SYSGP_FAULT_ROUNDS=20 cargo test
//! --test api faults -- --nocapture`. The faults injected per kind and how each transfer
//! ended are printed (shown with `--nocapture`) and written to `target/bench/faults.json`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sysgp::sdk::simulator::{self, Accept, SimulatorConfig};
use uuid::Uuid;

use crate::fault_proxy::{Call, Fault, FaultProxy, Script, Stage};
use crate::support::{spawn_app_with, Options, TestApp};

mod cases;
mod report;

use cases::{cases, expect, plain_amount, rounds, Acted, Case, Expect, Inject};
use report::report;

/// sysgp's SDK timeout here: short so that slow faults cost little, yet far above the
/// simulator's milliseconds on a loaded CI machine.
const SDK_TIMEOUT_SECS: u64 = 2;
/// Slow faults hold past that timeout and end before reconciliation's first attempt (5 s).
const HOLD: Duration = Duration::from_millis(3_500);
/// Each transfer has a sender wallet of its own holding this much (XOF).
const DEPOSIT: i64 = 1_000_000;
/// Transfers in flight at once (refusals run alone: they close the listener for everyone).
const WORKERS: usize = 4;
/// Reconciliation asks at 5 s and 15 s; a faulted first lookup settles at the second.
/// One thread asks, and slow lookup faults hold it, so larger campaigns get longer.
const SETTLE_DEADLINE_BASE: Duration = Duration::from_secs(60);
const SETTLE_DEADLINE_PER_ROUND: Duration = Duration::from_secs(10);
/// sysgp's longest idle time for a kept-alive connection a money call may reuse (SPEC §4)…
const MONEY_IDLE_MAX: Duration = Duration::from_secs(2);
/// …as the proxy sees it: its clock also runs while the reply and the request travel.
const IDLE_SLACK: Duration = Duration::from_millis(250);
/// The simulator prepares this amount and the hub aborts it (FSPIOP 5105).
const ABORTING_AMOUNT: i64 = 13;
/// Faults for reconciliation lookups, in turn.
const LOOKUP_FAULTS: [Fault; 6] = [
    Fault::Gateway { status: 503, forward: false },
    Fault::ResetBeforeForward,
    Fault::NonJson { status: 200, forward: true },
    Fault::TruncatedJson,
    Fault::Plain500 { forward: true },
    Fault::SlowReply,
];

/// An SDK configuration: sysgp's mode, the simulator's stops and the calls of one payment
/// with the SDK stages each runs. The last call is the final one.
struct Mode {
    name: &'static str,
    accept: Accept,
    sdk_mode: &'static str,
    calls: &'static [(Call, &'static [Stage])],
}

const AUTO: Mode = Mode {
    name: "auto",
    accept: Accept::None,
    sdk_mode: "auto",
    calls: &[(Call::Post, &[Stage::Party, Stage::Quote, Stage::Transfer])],
};
const ACCEPT_PARTY: Mode = Mode {
    name: "accept_party",
    accept: Accept::Party,
    sdk_mode: "accept_party",
    calls: &[(Call::Post, &[Stage::Party]), (Call::AcceptParty, &[Stage::Quote, Stage::Transfer])],
};
const ACCEPT_QUOTE: Mode = Mode {
    name: "accept_quote",
    accept: Accept::Quote,
    sdk_mode: "accept_quote",
    calls: &[(Call::Post, &[Stage::Party, Stage::Quote]), (Call::AcceptQuote, &[Stage::Transfer])],
};
const ACCEPT_BOTH: Mode = Mode {
    name: "accept_quote, SDK stops twice",
    accept: Accept::Both,
    sdk_mode: "accept_quote",
    calls: &[
        (Call::Post, &[Stage::Party]),
        (Call::AcceptParty, &[Stage::Quote]),
        (Call::AcceptQuote, &[Stage::Transfer]),
    ],
};

#[test]
fn faults_in_auto_mode_end_as_the_outcome_table_says() {
    campaign(&AUTO);
}

#[test]
fn faults_in_accept_party_mode_end_as_the_outcome_table_says() {
    campaign(&ACCEPT_PARTY);
}

#[test]
fn faults_in_accept_quote_mode_end_as_the_outcome_table_says() {
    campaign(&ACCEPT_QUOTE);
}

#[test]
fn faults_in_accept_quote_mode_with_two_stops_end_as_the_outcome_table_says() {
    campaign(&ACCEPT_BOTH);
}

/// One case after it ran.
struct Outcome {
    case: Case,
    expect: Expect,
    id: String,
    reply: Value,
    /// The calls the SDK saw, right after the reply.
    calls: Vec<Call>,
    /// How it ended, for the report.
    ended: String,
}

fn campaign(mode: &Mode) {
    let started = Instant::now();
    let sim_config = SimulatorConfig { accept: mode.accept, ..SimulatorConfig::default() };
    let sim = simulator::spawn("127.0.0.1:0".parse().expect("addr"), sim_config).expect("simulator starts");
    let proxy = FaultProxy::start(sim.addr(), HOLD);
    let app = spawn_app_with(Options {
        accept: mode.accept,
        sdk_mode: mode.sdk_mode,
        extra: vec![("MOJALOOP_SDK_URL", proxy.url()), ("SYSGP_SDK_TIMEOUT_SECS", SDK_TIMEOUT_SECS.to_string())],
        ..Options::default()
    });
    let (refused, others): (Vec<Case>, Vec<Case>) =
        cases(mode, rounds()).into_iter().partition(|c| matches!(c.inject, Inject::Refused));
    let mut outcomes: Vec<Outcome> = refused.into_iter().map(|c| run_case(&app, &proxy, mode, c)).collect();
    outcomes.extend(run_parallel(&app, &proxy, mode, others));
    settle(&app, &proxy, &sim.url(), &mut outcomes);
    outcomes.push(transfer_after_quiet(&app, &proxy, mode, outcomes.len()));
    verify(&app, &proxy, &sim.url(), &outcomes);
    report(mode, &proxy, &outcomes, started.elapsed());
}

fn run_parallel(app: &TestApp, proxy: &FaultProxy, mode: &Mode, cases: Vec<Case>) -> Vec<Outcome> {
    let queue = Mutex::new(cases);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let Some(case) = queue.lock().expect("queue").pop() else { break };
                let outcome = run_case(app, proxy, mode, case);
                done.lock().expect("outcomes").push(outcome);
            });
        }
    });
    done.into_inner().expect("outcomes")
}

fn describe(mode: &Mode, case: &Case) -> String {
    let call = mode.calls[case.at].0;
    format!("mode {}: {} at call {} ({call:?}), amount {}", mode.name, case.kind(), case.at, case.amount)
}

/// Sends one transfer with its fault and checks the reply against the table.
fn run_case(app: &TestApp, proxy: &FaultProxy, mode: &Mode, case: Case) -> Outcome {
    let expect = expect(mode, &case);
    let what = describe(mode, &case);
    app.funded(&case.sender(), "XOF", &DEPOSIT.to_string());
    let id = Uuid::new_v4().to_string();
    match case.inject {
        Inject::Nothing => {}
        Inject::Proxy(fault) => proxy.script(&id, Script { at: mode.calls[case.at].0, fault, lookup: case.lookup }),
        Inject::Refused if case.at > 0 => {
            proxy.script(&id, Script { at: mode.calls[case.at - 1].0, fault: Fault::RefuseNext, lookup: None })
        }
        Inject::Refused => proxy.set_listening(false),
    }
    let r = app.post(
        "/api/v1/transfers/",
        json!({"sender_msisdn": case.sender(), "receiver_msisdn": case.payee(),
               "amount": case.amount.to_string(), "transfer_id": id}),
    );
    if let Inject::Refused = case.inject {
        proxy.set_listening(true);
    }
    assert_eq!(r.status, 201, "{what}: {}", r.text);
    check_reply(&r.body, &expect, &what);
    let funds = match expect {
        Expect::Completed => Funds::Paid,
        Expect::Failed { .. } => Funds::Released,
        Expect::InDoubt { .. } => Funds::Reserved,
    };
    check_wallet(app, &case, funds, &what);
    // The SDK saw each call up to the faulted one once (a refused one not at all), and
    // nothing after it.
    let reached = if let Inject::Refused = case.inject { case.at } else { case.at + 1 };
    let calls = proxy.calls(&id);
    assert_eq!(calls, mode.calls[..reached].iter().map(|c| c.0).collect::<Vec<_>>(), "{what}: calls the SDK saw");
    if let Inject::Refused = case.inject {
        proxy.count("refused");
    }
    let ended = match &expect {
        Expect::Completed => "COMPLETED".to_owned(),
        Expect::Failed { code, .. } => format!("FAILED {code}"),
        Expect::InDoubt { .. } => "IN_DOUBT".to_owned(),
    };
    Outcome { case, expect, id, reply: r.body, calls, ended }
}

/// After the campaign sysgp still pays normally; and its first money call after more
/// than 2 s without any opens a fresh connection instead of reusing one (SPEC §4).
fn transfer_after_quiet(app: &TestApp, proxy: &FaultProxy, mode: &Mode, n: usize) -> Outcome {
    // The behaviour under test is about idle time: let sysgp's pooled connections age past
    // its limit (settling usually took longer already).
    let quiet = app.eventually(Duration::from_secs(10), "2 s without money calls", || {
        let quiet = proxy.since_last_money_reply().expect("money calls were made");
        (quiet > MONEY_IDLE_MAX + IDLE_SLACK).then_some(quiet)
    });
    let case = Case { n, at: mode.calls.len() - 1, inject: Inject::Nothing, lookup: None, amount: plain_amount(n) };
    let outcome = run_case(app, proxy, mode, case);
    assert_eq!(proxy.idle_before(&outcome.id).first(), Some(&None), "a fresh connection after {quiet:?}");
    outcome
}

fn check_reply(t: &Value, expect: &Expect, what: &str) {
    let message = t["error_message"].as_str().unwrap_or_default();
    assert!(!message.contains('\n') && message.chars().count() <= 300, "{what}: error_message is one line: {t}");
    match expect {
        Expect::Completed => {
            assert_eq!((t["status"].as_str(), &t["error_code"]), (Some("COMPLETED"), &Value::Null), "{what}: {t}");
        }
        Expect::Failed { code, message, retryable } => {
            assert_eq!((t["status"].as_str(), t["error_code"].as_str()), (Some("FAILED"), Some(*code)), "{what}: {t}");
            if let Some(message) = message {
                assert_eq!(t["error_message"], *message, "{what}");
            }
            if let Some(retryable) = retryable {
                assert_eq!(t["retryable"], *retryable, "{what}");
            }
        }
        Expect::InDoubt { id_known, .. } => {
            assert_eq!(
                (t["status"].as_str(), t["error_code"].as_str()),
                (Some("IN_DOUBT"), Some("SDK_OUTCOME_UNKNOWN")),
                "{what}: {t}"
            );
            assert_eq!(t["sdk_transfer_id"].is_string(), *id_known, "{what}: SDK transfer id kept: {t}");
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Funds {
    Released,
    Reserved,
    Paid,
}

fn check_wallet(app: &TestApp, case: &Case, funds: Funds, what: &str) {
    let a = app.account(&case.sender());
    let (available, reserved) = match funds {
        Funds::Released => (DEPOSIT, 0),
        Funds::Reserved => (DEPOSIT - case.amount, case.amount),
        Funds::Paid => (DEPOSIT - case.amount, 0),
    };
    let got = (a["available"].as_str(), a["reserved"].as_str());
    assert_eq!(got, (Some(&*available.to_string()), Some(&*reserved.to_string())), "{what}: funds {funds:?}");
}

/// Brings every IN_DOUBT to a final status: reconciliation where it can, an operator
/// where it cannot.
fn settle(app: &TestApp, proxy: &FaultProxy, sim_url: &str, outcomes: &mut [Outcome]) {
    // Held requests reach the SDK before anything is concluded from what it paid.
    proxy.wait_idle(Duration::from_secs(30));
    let paid = app.sim_paid_at(sim_url);
    for o in outcomes.iter_mut() {
        if let Expect::InDoubt { id_known: false, acted } = o.expect {
            resolve_without_id(app, &paid, o, acted);
        }
    }
    let mut pending: Vec<usize> =
        (0..outcomes.len()).filter(|&i| matches!(outcomes[i].expect, Expect::InDoubt { id_known: true, .. })).collect();
    let deadline = SETTLE_DEADLINE_BASE + SETTLE_DEADLINE_PER_ROUND * u32::try_from(rounds()).expect("rounds");
    app.eventually(deadline, "reconciliation of every IN_DOUBT with an SDK id", || {
        pending.retain(|&i| !settled_with_id(app, proxy, &mut outcomes[i]));
        pending.is_empty().then_some(())
    });
}

/// No SDK id: reconciliation cannot ask; an operator finds the hub's id by our id.
fn resolve_without_id(app: &TestApp, paid: &[Value], o: &mut Outcome, acted: Acted) {
    let what = describe_outcome(o);
    assert_eq!(app.transfer(&o.id)["status"], "IN_DOUBT", "{what}: nothing can settle it without an id");
    let found = paid.iter().find(|p| p["homeTransactionId"] == o.id.as_str());
    assert_eq!(found.is_some(), acted == Acted::Paid, "{what}: the hub paid it iff the SDK got the final call");
    let path = format!("/api/v1/transfers/{}/resolve/", o.id);
    // The hub id of another of our transfers is refused: one hub transfer pays one of ours.
    let taken = paid.iter().find_map(|p| {
        let theirs = p["homeTransactionId"].as_str().filter(|h| *h != o.id.as_str())?;
        (app.transfer(theirs)["sdk_transfer_id"] == p["transferId"])
            .then(|| (theirs.to_owned(), p["transferId"].clone()))
    });
    if let Some((owner, sdk_id)) = taken {
        let r = app.post(&path, json!({"sdk_transfer_id": sdk_id, "reason": "wrong id"}));
        assert_eq!((r.status, r.code()), (409, "SDK_TRANSFER_ID_IN_USE"), "{what}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["transfer_id"], owner.as_str());
    }
    let (r, status, ended) = match found {
        Some(p) => (
            app.post(&path, json!({"sdk_transfer_id": p["transferId"], "reason": "found at the hub"})),
            "COMPLETED",
            "IN_DOUBT (no SDK id) -> COMPLETED, resolved by an operator with the hub's id",
        ),
        None => (
            app.post(&path, json!({"outcome": "FAILED", "reason": "not at the hub"})),
            "FAILED",
            "IN_DOUBT (no SDK id) -> FAILED, resolved by an operator",
        ),
    };
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some(status)), "{what}: {}", r.text);
    o.ended = ended.to_owned();
}

/// Known SDK id: true once the case reached its final status.
fn settled_with_id(app: &TestApp, proxy: &FaultProxy, o: &mut Outcome) -> bool {
    let what = describe_outcome(o);
    let sdk_id = o.reply["sdk_transfer_id"].as_str().expect("sdk id").to_owned();
    let Expect::InDoubt { acted, .. } = o.expect else { return true };
    let t = app.transfer(&o.id);
    if acted == Acted::No {
        // The hub never saw it (3208): reconciliation must leave it alone, an operator fails it.
        if proxy.lookups(&sdk_id) == 0 {
            return false;
        }
        assert_eq!(t["status"], "IN_DOUBT", "{what}: a 3208 must not settle it yet");
        let path = format!("/api/v1/transfers/{}/resolve/", o.id);
        let r = app.post(&path, json!({"outcome": "FAILED", "reason": "the hub does not know it"}));
        assert_eq!((r.status, r.body["status"].as_str()), (200, Some("FAILED")), "{what}: {}", r.text);
        o.ended = "IN_DOUBT, hub answers 3208 -> FAILED, resolved by an operator".to_owned();
        return true;
    }
    if t["status"] == "IN_DOUBT" {
        return false;
    }
    let (status, code, ended) = match acted {
        Acted::Aborted => ("FAILED", Value::from("SDK_ABORTED"), "IN_DOUBT -> FAILED SDK_ABORTED by reconciliation"),
        _ => ("COMPLETED", Value::Null, "IN_DOUBT -> COMPLETED by reconciliation"),
    };
    assert_eq!((&t["status"], &t["error_code"]), (&Value::from(status), &code), "{what}: {t}");
    o.ended = ended.to_owned();
    true
}

fn describe_outcome(o: &Outcome) -> String {
    format!("{} at call {} (amount {}, transfer {})", o.case.kind(), o.case.at, o.case.amount, o.id)
}

fn amount_of(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("an XOF amount: {v}"))
}

/// Exactly-once payment, funds, sums and invariants, and every planned fault injected.
fn verify(app: &TestApp, proxy: &FaultProxy, sim_url: &str, outcomes: &[Outcome]) {
    let paid = app.sim_paid_at(sim_url);
    let mut completed_sum = 0;
    let mut completed = 0;
    for o in outcomes {
        let what = describe_outcome(o);
        let t = app.transfer(&o.id);
        let done = t["status"] == "COMPLETED";
        assert!(done || t["status"] == "FAILED", "{what}: final, got {t}");
        let times = paid.iter().filter(|p| p["homeTransactionId"] == o.id.as_str()).count();
        assert_eq!(times, usize::from(done), "{what}: paid by the hub once iff COMPLETED");
        check_wallet(app, &o.case, if done { Funds::Paid } else { Funds::Released }, &what);
        assert_eq!(proxy.calls(&o.id), o.calls, "{what}: no call was sent again");
        if done {
            completed += 1;
            completed_sum += o.case.amount;
        }
    }
    assert_eq!(paid.len(), completed, "the hub paid nothing but the COMPLETED transfers");
    let paid_sum: i64 = paid.iter().map(|p| amount_of(&p["amount"])).sum();
    assert_eq!(paid_sum, completed_sum, "the hub paid what sysgp completed");
    assert_eq!(amount_of(&app.system_account("SYS:SETTLEMENT:XOF")["balance"]), completed_sum);
    let deposited = DEPOSIT * i64::try_from(outcomes.len()).expect("count");
    assert_eq!(amount_of(&app.system_account("SYS:CASH:XOF")["balance"]), -deposited, "no money created or lost");
    app.assert_invariants();
    let mut planned: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !matches!(o.case.inject, Inject::Nothing)) {
        *planned.entry(o.case.kind().to_owned()).or_default() += 1;
        if let Some(lookup) = o.case.lookup {
            *planned.entry(format!("lookup:{}", lookup.kind())).or_default() += 1;
        }
    }
    assert_eq!(proxy.injected(), planned, "every planned fault was injected, once");
    assert_eq!(proxy.problems(), Vec::<String>::new(), "the proxy itself worked");
    // SPEC §4: money calls reuse only connections idle for less than 2 s (the SDK closes
    // idle ones after 5 s); the proxy's clock adds the reply's and request's transit.
    let (_, idle_max) = proxy.money_calls_reusing_connections();
    assert!(idle_max < MONEY_IDLE_MAX + IDLE_SLACK, "a money call reused a connection idle for {idle_max:?}");
}
