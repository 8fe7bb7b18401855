//! The end of a campaign: the load stopped, the jobs and reconciliation are left to
//! finish, IN_DOUBT transfers without an SDK id are resolved as an operator would (by
//! looking the payment up at the hub), then everything is checked against the hub's
//! payments and the ledger.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bulk::{count, LOCAL_WALLETS, SOURCE};
use crate::load::{Load, WALLETS};
use crate::procs::Cluster;
use crate::{Campaign, CHECKER, FUNDS};

/// Reconciliation of the doubts the last kills left asks 5 s, 15 s and 30 s after a
/// doubt began; the jobs finish items far more often. Nothing settling for this long
/// is a failure.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the end polls the server.
const FINISH_POLL: Duration = Duration::from_millis(250);
const REASON: &str = "campaign operator: the hub's records say whether it was paid";

/// What the end found.
#[derive(Debug, Default)]
pub struct Done {
    /// Transfers the server has.
    pub transfers: usize,
    /// Bulk items over all jobs.
    pub bulk_items: usize,
    /// Payments the hub made.
    pub hub_paid: usize,
    /// IN_DOUBT transfers (P2P) and items resolved by the operator.
    pub resolved_p2p: usize,
    /// IN_DOUBT bulk items resolved by the operator.
    pub resolved_items: usize,
    /// Bulk lines paid after more than one attempt.
    pub retried_items: usize,
    /// P2P transfers a kill failed before anything was sent.
    pub interrupted: usize,
}

/// Waits for the end, resolves what only an operator can, and checks everything.
pub fn finish(c: &Campaign, load: &Load) -> Done {
    let unexpected = load.unexpected();
    assert!(unexpected.is_empty(), "replies other than 201 or a restart's 503: {unexpected:?}");
    let open = wait_until_settled(c);
    let mut done = Done::default();
    // The doubts are from kills seconds ago: the hub has long finished those calls.
    let hub = paid_once(&c.cluster.hub_paid());
    for t in &open {
        resolve(c, t, &hub, &mut done);
    }
    let stats = &c.stats;
    assert!(done.resolved_p2p <= stats.client_in_flight, "{done:?} but {stats:?}");
    assert!(done.resolved_items <= stats.bulk_in_flight, "{done:?} but {stats:?}");
    let all = transfers(&c.cluster, &c.maker, "");
    let open: Vec<_> = all.iter().filter(|t| t["status"] == "PENDING" || t["status"] == "IN_DOUBT").collect();
    assert!(open.is_empty(), "transfers still open: {open:?}");
    let by_id: HashMap<&str, &Value> = all.iter().map(|t| (t["transfer_id"].as_str().expect("id"), t)).collect();
    for a in load.acked() {
        let t = by_id.get(a.id.as_str()).unwrap_or_else(|| panic!("acknowledged transfer {a:?} is gone"));
        if ["COMPLETED", "FAILED"].contains(&a.status.as_str()) {
            assert_eq!(t["status"], a.status.as_str(), "a final status changed: {t}");
        }
    }
    let hub = paid_once(&c.cluster.hub_paid());
    verify_payments(&all, &hub);
    verify_failures(&all);
    verify_jobs(c, &hub, &mut done);
    verify_ledger(&c.cluster, &c.maker, &all);
    done.transfers = all.len();
    done.hub_paid = hub.len();
    done.interrupted = all.iter().filter(|t| t["bulk_job_id"].is_null() && t["error_code"] == "INTERRUPTED").count();
    let caught_p2p = stats.in_doubt_p2p_seen + done.interrupted;
    let caught_items = stats.in_doubt_items_seen + done.retried_items;
    assert!(caught_p2p > 0 && caught_items > 0, "the kills caught no SDK call in flight: {stats:?} {done:?}");
    assert!(
        stats.kills_mid_job * 2 >= stats.kills,
        "most kills found the jobs finished, proving little about them (make the jobs longer): {stats:?}"
    );
    done
}

/// Polls until no transfer is PENDING, no job has lines to work on, and every doubt
/// reconciliation can settle is settled: all of them in accept_quote mode, those with
/// an SDK id in auto mode. Fails when nothing moves for `STALL_TIMEOUT` (the jobs may
/// have many lines left after a long campaign). Returns the IN_DOUBT transfers left.
fn wait_until_settled(c: &Campaign) -> Vec<Value> {
    let (mut least, mut deadline) = (usize::MAX, Instant::now() + STALL_TIMEOUT);
    loop {
        let pending = transfers(&c.cluster, &c.maker, "&status=PENDING");
        let in_doubt = transfers(&c.cluster, &c.maker, "&status=IN_DOUBT");
        let jobs: Vec<Value> =
            c.jobs.iter().map(|j| c.cluster.get(&c.maker, &format!("/api/v1/bulk/jobs/{}/", j.id))).collect();
        let reconcilable =
            in_doubt.iter().filter(|t| c.mode.sdk_mode != "auto" || !t["sdk_transfer_id"].is_null()).count();
        let lines: u64 = jobs.iter().map(|j| count(j, "PENDING") + count(j, "PROCESSING")).sum();
        let left = pending.len() + reconcilable + lines as usize;
        if left == 0 {
            return in_doubt;
        }
        if left < least {
            (least, deadline) = (left, Instant::now() + STALL_TIMEOUT);
        }
        assert!(
            Instant::now() < deadline,
            "nothing moved for {STALL_TIMEOUT:?}: {} PENDING, {reconcilable} IN_DOUBT not reconciled: {in_doubt:?}; \
             jobs {jobs:?}",
            pending.len()
        );
        // Not waiting for one event: jobs and reconciliation finish on their own schedule.
        std::thread::sleep(FINISH_POLL);
    }
}

/// Resolves one IN_DOUBT transfer without an SDK id as an operator would: the hub's
/// records say whether it was paid; if so the server is given the hub's id (and asks
/// the hub), if not the operator fails it. Bulk items are resolved from their job.
fn resolve(c: &Campaign, t: &Value, hub: &HashMap<String, Value>, done: &mut Done) {
    assert_eq!(c.mode.sdk_mode, "auto", "only auto mode leaves doubts to an operator: {t}");
    assert!(t["sdk_transfer_id"].is_null(), "{t}");
    let id = t["transfer_id"].as_str().expect("id");
    let paid = hub.get(id);
    let body = match paid {
        Some(p) => json!({"sdk_transfer_id": p["transferId"], "reason": REASON}),
        None => json!({"outcome": "FAILED", "reason": REASON}),
    };
    let path = match t["bulk_job_id"].as_str() {
        Some(job) => {
            done.resolved_items += 1;
            format!("/api/v1/bulk/jobs/{job}/items/{}/resolve/", t["bulk_line"])
        }
        None => {
            done.resolved_p2p += 1;
            format!("/api/v1/transfers/{id}/resolve/")
        }
    };
    let resolved = c.cluster.post(&c.checker, &path, &body, 200);
    let expected = if paid.is_some() { "COMPLETED" } else { "FAILED" };
    assert_eq!(resolved["status"], expected, "{resolved}");
}

/// Every transfer matching `query` (`&status=…`).
pub fn transfers(cluster: &Cluster, token: &str, query: &str) -> Vec<Value> {
    cluster.all_pages(token, &format!("/api/v1/transfers/?limit=500{query}"))
}

/// The hub's payments by `homeTransactionId`, none of them twice.
fn paid_once(paid: &[Value]) -> HashMap<String, Value> {
    let mut once = HashMap::new();
    for p in paid {
        let id = p["homeTransactionId"].as_str().expect("homeTransactionId").to_owned();
        if let Some(first) = once.insert(id.clone(), p.clone()) {
            panic!("{id} paid more than once: {first} and {p}");
        }
    }
    once
}

/// Every COMPLETED SDK transfer (P2P or bulk) was paid by the hub, for its amount and
/// under its SDK id; no FAILED one was; the hub paid nothing the server does not have
/// as a COMPLETED SDK transfer.
fn verify_payments(all: &[Value], hub: &HashMap<String, Value>) {
    let mut completed = HashSet::new();
    for t in all.iter().filter(|t| t["route"] == "SDK") {
        let id = t["transfer_id"].as_str().expect("id");
        match (t["status"].as_str(), hub.get(id)) {
            (Some("COMPLETED"), Some(p)) => {
                assert_eq!((&p["amount"], &p["currency"]), (&t["amount"], &t["currency"]), "{p} for {t}");
                assert_eq!(p["transferId"], t["sdk_transfer_id"], "{p} for {t}");
                completed.insert(id);
            }
            (Some("COMPLETED"), None) => panic!("COMPLETED but the hub never paid it: {t}"),
            (Some("FAILED"), Some(p)) => panic!("FAILED but the hub paid it: {p} for {t}"),
            (Some("FAILED"), None) => {}
            _ => panic!("not final: {t}"),
        }
    }
    for (id, p) in hub {
        assert!(completed.contains(id.as_str()), "the hub paid what the server has no COMPLETED transfer for: {p}");
    }
}

/// The load avoids every simulator trigger: a transfer FAILED only because a kill
/// interrupted it before anything was sent, or because the operator failed an unpaid
/// doubt.
fn verify_failures(all: &[Value]) {
    for t in all.iter().filter(|t| t["status"] == "FAILED") {
        let by_operator = t["resolution"]["by"] == CHECKER;
        assert!(t["error_code"] == "INTERRUPTED" || by_operator, "FAILED for another reason: {t}");
    }
}

/// Every job COMPLETED with each line paid as its item says (lines FAILED only where an
/// operator failed an unpaid doubt), the local wallets credited once, the source
/// debited exactly what the jobs paid.
fn verify_jobs(c: &Campaign, hub: &HashMap<String, Value>, done: &mut Done) {
    let mut to_local: HashMap<String, i64> = HashMap::new();
    let mut completed = 0;
    for job in &c.jobs {
        let paid = job.verify(&c.cluster, &c.maker, hub, c.mode.sdk_mode == "auto");
        completed += paid.completed;
        done.retried_items += paid.retried;
        done.bulk_items += job.lines.len();
        for (wallet, amount) in paid.to_local {
            *to_local.entry(wallet).or_default() += amount;
        }
    }
    for wallet in LOCAL_WALLETS {
        let account = c.cluster.get(&c.maker, &format!("/api/v1/accounts/{wallet}/"));
        let expected = to_local.get(wallet).copied().unwrap_or(0);
        assert!(expected > 0, "the jobs pay {wallet}");
        assert_eq!(account["balance"], expected.to_string(), "credited once: {account}");
    }
    let source = c.cluster.get(&c.maker, &format!("/api/v1/accounts/{SOURCE}/"));
    let left = (FUNDS - completed).to_string();
    assert_eq!((&source["balance"], &source["reserved"]), (&json!(left), &json!("0")), "{source}");
}

/// Each wallet's balance, CASH and SETTLEMENT are exactly what the COMPLETED
/// transfers moved (SDK ones into settlement), and nothing is reserved.
fn verify_ledger(cluster: &Cluster, token: &str, all: &[Value]) {
    let mut expected: HashMap<String, i64> = HashMap::new();
    for t in all.iter().filter(|t| t["status"] == "COMPLETED") {
        let amount = minor(&t["amount"]);
        let to = if t["route"] == "SDK" {
            format!("SYS:SETTLEMENT:{}", t["currency"].as_str().expect("currency"))
        } else {
            t["receiver_msisdn"].as_str().expect("receiver").to_owned()
        };
        *expected.entry(t["sender_msisdn"].as_str().expect("sender").to_owned()).or_default() -= amount;
        *expected.entry(to).or_default() += amount;
    }
    let mut seen = HashSet::new();
    let wallets = cluster.get(token, "/api/v1/accounts/?limit=500");
    assert!(wallets["next_cursor"].is_null(), "a handful of wallets");
    let system = cluster.get(token, "/api/v1/system-accounts/");
    let accounts = wallets["items"].as_array().expect("items").iter().map(|a| (a, "msisdn"));
    for (account, key) in accounts.chain(system["items"].as_array().expect("items").iter().map(|a| (a, "account"))) {
        let name = account[key].as_str().expect("account name");
        let balance = expected.get(name).copied().unwrap_or(0);
        assert_eq!(minor(&account["balance"]), balance, "{name} disagrees with its transfers: {account}");
        assert_eq!(account["reserved"], "0", "{account}");
        seen.insert(name.to_owned());
    }
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "transfers name accounts that are not listed: {missing:?}");
    assert_eq!(seen.len(), WALLETS.len() + LOCAL_WALLETS.len() + 1 + 2, "the wallets and XOF's two system accounts");
}

fn minor(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("an XOF amount: {v}"))
}
