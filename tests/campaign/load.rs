//! The client load of the campaign: threads sending P2P transfers on-us and through the
//! SDK, and deposits, against whichever server is up; every acknowledged (201) reply is
//! recorded, and SDK requests in flight are counted so that a kill can say how many it
//! may have cut off.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::procs::{agent, call, lock, Rng, POLL, READY_TIMEOUT, REQUEST_TIMEOUT};

/// Concurrent load clients: enough to keep several SDK transfers in flight at a kill.
pub const CLIENTS: usize = 6;
/// Wallets the clients send from and to; funded at the start.
pub const WALLETS: [&str; 4] = ["22507100001", "22507100002", "22507100003", "22507100004"];
/// Between requests that found no server: a restart takes far longer.
const DOWN_PAUSE: Duration = Duration::from_millis(50);
/// Out of 10 requests: this many P2P through the SDK…
const SDK_SHARE: u64 = 4;
/// …this many P2P on-us, the rest deposits.
const ON_US_SHARE: u64 = 4;

/// The load shared by the client threads and the supervisor.
pub struct Load {
    base: Mutex<String>,
    /// The maker's session: it must survive every restart.
    token: String,
    stop: AtomicBool,
    sdk_in_flight: AtomicUsize,
    sdk_begun: AtomicUsize,
    acked: Mutex<Vec<Acked>>,
    unacked: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

/// A transfer (or deposit) the server answered 201 for, as it was answered.
#[derive(Clone, Debug)]
pub struct Acked {
    /// `transfer_id`.
    pub id: String,
    /// `route`: ON_US, SDK or CASH.
    pub route: String,
    /// `status` in the reply.
    pub status: String,
}

impl Load {
    /// A load against `base`, signed in with `token`.
    pub fn new(base: String, token: String) -> Load {
        Load {
            base: Mutex::new(base),
            token,
            stop: AtomicBool::new(false),
            sdk_in_flight: AtomicUsize::new(0),
            sdk_begun: AtomicUsize::new(0),
            acked: Mutex::new(Vec::new()),
            unacked: AtomicUsize::new(0),
            unexpected: Mutex::new(Vec::new()),
        }
    }

    /// Points the clients at the restarted server.
    pub fn set_base(&self, base: &str) {
        *lock(&self.base) = base.to_owned();
    }

    /// Tells the clients to stop after their current request.
    pub fn stop(&self) {
        self.stop.store(true, SeqCst);
    }

    /// Acknowledged replies so far.
    pub fn acked(&self) -> Vec<Acked> {
        lock(&self.acked).clone()
    }

    /// Requests that got no answer (killed or restarting server).
    pub fn unacked(&self) -> usize {
        self.unacked.load(SeqCst)
    }

    /// Replies other than 201, a restart's 503 or a cut connection.
    pub fn unexpected(&self) -> Vec<String> {
        lock(&self.unexpected).clone()
    }

    /// Polls until the current server has acknowledged `CLIENTS` more requests.
    pub fn wait_for_progress(&self) {
        let acked = lock(&self.acked).len();
        let deadline = Instant::now() + READY_TIMEOUT;
        while lock(&self.acked).len() < acked + CLIENTS {
            assert!(Instant::now() < deadline, "the load makes no progress");
            std::thread::sleep(POLL);
        }
    }

    /// Runs `kill` and returns how many SDK requests of the clients it may have cut off:
    /// those open just before the signal plus those begun until the process died.
    pub fn kill(&self, kill: impl FnOnce()) -> usize {
        let (open, begun) = (self.sdk_in_flight.load(SeqCst), self.sdk_begun.load(SeqCst));
        kill();
        open + self.sdk_begun.load(SeqCst) - begun
    }

    /// One client: random on-us and SDK transfers and deposits until told to stop.
    pub fn client(&self, seed: u64) {
        let agent = agent(REQUEST_TIMEOUT);
        let mut rng = Rng(seed);
        while !self.stop.load(SeqCst) {
            let from = WALLETS[rng.below(WALLETS.len() as u64) as usize];
            let kind = rng.below(10);
            let to_sdk = kind < SDK_SHARE;
            let (path, body) = if to_sdk {
                let body = json!({"sender_msisdn": from, "receiver_msisdn": rng.payee(),
                    "amount": rng.sdk_amount().to_string()});
                ("/api/v1/transfers/".to_owned(), body)
            } else if kind < SDK_SHARE + ON_US_SHARE {
                let to = WALLETS.iter().filter(|w| **w != from).nth(rng.below(WALLETS.len() as u64 - 1) as usize);
                let body =
                    json!({"sender_msisdn": from, "receiver_msisdn": to, "amount": (1 + rng.below(100)).to_string()});
                ("/api/v1/transfers/".to_owned(), body)
            } else {
                (format!("/api/v1/accounts/{from}/deposit/"), json!({"amount": (1 + rng.below(1000)).to_string()}))
            };
            let url = format!("{}{path}", lock(&self.base));
            if to_sdk {
                self.sdk_in_flight.fetch_add(1, SeqCst);
                self.sdk_begun.fetch_add(1, SeqCst);
            }
            let reply = call(&agent, &url, &self.token, Some(&body));
            if to_sdk {
                self.sdk_in_flight.fetch_sub(1, SeqCst);
            }
            match reply {
                Ok((201, t)) => lock(&self.acked).push(Acked {
                    id: t["transfer_id"].as_str().unwrap_or_default().to_owned(),
                    route: t["route"].as_str().unwrap_or_default().to_owned(),
                    status: t["status"].as_str().unwrap_or_default().to_owned(),
                }),
                // Killed or restarting: not acknowledged (it may or may not exist).
                Ok((503, _)) | Err(_) => {
                    self.unacked.fetch_add(1, SeqCst);
                    // Not waiting for work: a pause before asking a dead server again.
                    std::thread::sleep(DOWN_PAUSE);
                }
                Ok((status, reply)) => lock(&self.unexpected).push(format!("{path} {body}: {status} {reply}")),
            }
        }
    }
}
