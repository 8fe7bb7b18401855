//! The simulator's memory: every transfer it issued (waiting ones in full, finished ones
//! as a few words), the list of committed payments in commit order, and the `--state`
//! journal that makes the committed ones survive a restart.
//!
//! One `std::sync::Mutex` guards it all; it is held for map updates only, never across
//! an `.await`, JSON building or disk IO.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::bodies::HubState;
use super::flow::{Live, Phase};
use super::journal::Journal;
use super::schema::Continuation;

/// Most transfers waiting for a continuation at once. Clients that never continue would
/// otherwise grow the map without bound; a million is far above any test run.
const WAITING_MAX: usize = 1_000_000;

/// A committed payment: one entry of `GET /__sim/transfers` and one line of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Paid {
    pub(super) home_transaction_id: String,
    pub(super) transfer_id: Uuid,
    pub(super) amount: String,
    pub(super) currency: String,
    pub(super) initiated: SystemTime,
    pub(super) completed: SystemTime,
}

impl Paid {
    /// The `/__sim/transfers` entry.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "homeTransactionId": self.home_transaction_id,
            "transferId": self.transfer_id.to_string(),
            "amount": self.amount,
            "currency": self.currency,
            "state": "COMMITTED",
        })
    }
}

/// What a finished transfer leaves behind: enough for `GET /transfers/{id}`.
#[derive(Clone, Copy, Debug)]
struct Done {
    initiated: SystemTime,
    completed: SystemTime,
    state: HubState,
}

#[derive(Debug)]
enum Entry {
    Waiting(Box<Live>),
    Done(Done),
}

#[derive(Debug, Default)]
struct Inner {
    transfers: HashMap<Uuid, Entry>,
    paid: Vec<Arc<Paid>>,
    waiting: usize,
}

/// Why a transfer could not be recorded or continued.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Too many transfers are waiting for a continuation (503).
    Full,
    /// No such transfer id (400 on PUT).
    Unknown,
    /// The transfer is not waiting for this continuation (400).
    Conflict(String),
}

/// A commit's trip to disk: resolves once the journal line is synced (or at once without `--state`).
pub(super) type Durable = Option<oneshot::Receiver<io::Result<()>>>;

/// The shared state of one simulator.
#[derive(Debug)]
pub(super) struct Ledger {
    inner: Mutex<Inner>,
    journal: Option<Journal>,
}

impl Ledger {
    /// A ledger holding `reloaded` payments (from the journal), appending new ones to `journal`.
    pub(super) fn new(reloaded: Vec<Paid>, journal: Option<Journal>) -> Ledger {
        let mut inner = Inner::default();
        for paid in reloaded {
            let done = Done { initiated: paid.initiated, completed: paid.completed, state: HubState::Committed };
            if inner.transfers.insert(paid.transfer_id, Entry::Done(done)).is_none() {
                inner.paid.push(Arc::new(paid));
            }
        }
        Ledger { inner: Mutex::new(inner), journal }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves maps that are still valid maps; keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a transfer that a POST just ran.
    pub(super) fn record(&self, live: Live) -> Result<Durable, Refusal> {
        let mut inner = self.lock();
        if live.phase.is_waiting() {
            if inner.waiting >= WAITING_MAX {
                return Err(Refusal::Full);
            }
            inner.waiting += 1;
            inner.transfers.insert(live.id, Entry::Waiting(Box::new(live)));
            return Ok(None);
        }
        Ok(self.finish(&mut inner, &live))
    }

    /// Applies a continuation to a waiting transfer, atomically (two racing PUTs cannot
    /// both run the transfer). `step_fn` advances the transfer; the returned `Live` is its new state.
    pub(super) fn resume(
        &self,
        id: Uuid,
        step: Continuation,
        step_fn: impl FnOnce(&mut Live, Continuation) -> Result<(), String>,
    ) -> Result<(Live, Durable), Refusal> {
        let mut inner = self.lock();
        let live = match inner.transfers.get_mut(&id) {
            None => return Err(Refusal::Unknown),
            Some(Entry::Done(done)) => {
                return Err(Refusal::Conflict(format!(
                    "transfer {id} is not waiting for an acceptance (it is {:?})",
                    done.state
                )))
            }
            Some(Entry::Waiting(live)) => live,
        };
        step_fn(live, step).map_err(Refusal::Conflict)?;
        if live.phase.is_waiting() {
            return Ok(((**live).clone(), None));
        }
        let live = (**live).clone();
        inner.waiting -= 1;
        let durable = self.finish(&mut inner, &live);
        Ok((live, durable))
    }

    /// Moves a transfer to its final record and, if it was paid, to the paid list and the
    /// journal. Called with the lock held so that journal order is commit order.
    fn finish(&self, inner: &mut Inner, live: &Live) -> Durable {
        let completed = live.completed.unwrap_or(live.initiated);
        let state = hub_state(live.phase);
        inner.transfers.insert(live.id, Entry::Done(Done { initiated: live.initiated, completed, state }));
        if !live.phase.is_paid() {
            return None;
        }
        let paid = Paid {
            home_transaction_id: live.request.home_transaction_id.clone(),
            transfer_id: live.id,
            amount: live.request.amount.clone(),
            currency: live.request.currency.clone(),
            initiated: live.initiated,
            completed,
        };
        let durable = self.journal.as_ref().map(|journal| journal.append(&paid));
        inner.paid.push(Arc::new(paid));
        durable
    }

    /// What `GET /transfers/{id}` reports: initiated, completed, state.
    pub(super) fn lookup(&self, id: Uuid) -> Option<(SystemTime, Option<SystemTime>, HubState)> {
        match self.lock().transfers.get(&id)? {
            Entry::Waiting(live) => Some((live.initiated, None, HubState::Reserved)),
            Entry::Done(done) => Some((done.initiated, Some(done.completed), done.state)),
        }
    }

    /// Every committed payment in commit order (a cheap copy of pointers, taken under the lock).
    pub(super) fn paid(&self) -> Vec<Arc<Paid>> {
        self.lock().paid.clone()
    }
}

fn hub_state(phase: Phase) -> HubState {
    match phase {
        Phase::WaitingParty | Phase::WaitingQuote => HubState::Reserved,
        Phase::Committed | Phase::CommittedUnseen => HubState::Committed,
        Phase::TransferFailed(_) => HubState::Aborted,
        Phase::PartyFailed(_) | Phase::PartyTimeout | Phase::QuoteFailed(_) => HubState::Failed,
        Phase::Declined => HubState::Declined,
    }
}
