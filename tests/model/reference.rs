//! The reference model: wallets (available/reserved, frozen), the system accounts,
//! every transfer's status, idempotency records, adjustments and jobs, all in memory,
//! and what each operation must answer according to the specification (§2–§5, §7).
//!
//! The model decides outcomes from its own state and from the simulator's documented
//! triggers; from the system it takes only identities (ids the system chose).

use std::collections::{BTreeMap, HashMap, HashSet};

use sysgp::bulk::model::{ItemStatus, JobStatus};
use sysgp::ledger::TransferStatus;
use sysgp::transfers::adjust::AdjustmentStatus;
use uuid::Uuid;

use crate::obs::Obs;
use crate::ops::{Op, Refers};

/// Deposits and withdrawals above this many major units wait for a checker
/// (`SYSGP_CASH_APPROVAL_ABOVE` of the system under test).
pub const CASH_APPROVAL_ABOVE: i128 = 50_000;

/// A transfer id that never exists (adjustments referring to nothing real).
pub const BOGUS_ID: Uuid = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);

/// The two currencies of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cur {
    /// West African CFA franc, exponent 0.
    Xof,
    /// US dollar, exponent 2.
    Usd,
}

impl Cur {
    /// `usd` → USD, else XOF.
    pub fn of(usd: bool) -> Cur {
        if usd {
            Cur::Usd
        } else {
            Cur::Xof
        }
    }

    /// ISO code.
    pub fn code(self) -> &'static str {
        match self {
            Cur::Xof => "XOF",
            Cur::Usd => "USD",
        }
    }

    fn exponent(self) -> u32 {
        match self {
            Cur::Xof => 0,
            Cur::Usd => 2,
        }
    }
}

/// Minor units of an amount text (only the shapes the generators produce).
pub fn minor(text: &str, cur: Cur) -> Result<i128, &'static str> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = frac.trim_end_matches('0');
    let exp = cur.exponent() as usize;
    if frac.len() > exp {
        return Err("TOO_MANY_DECIMALS");
    }
    let scale = 10i128.pow(cur.exponent());
    let int: i128 = int.parse().map_err(|_| "AMOUNT_FORMAT")?;
    let frac_minor: i128 =
        if frac.is_empty() { 0 } else { format!("{frac:0<exp$}").parse().map_err(|_| "AMOUNT_FORMAT")? };
    let value = int * scale + frac_minor;
    if value == 0 {
        return Err("AMOUNT_ZERO");
    }
    Ok(value)
}

/// The canonical text of an amount (what the SDK receives).
pub fn canonical(minor: i128, cur: Cur) -> String {
    let scale = 10i128.pow(cur.exponent());
    let (int, frac) = (minor / scale, minor % scale);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = cur.exponent() as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// What the simulator does with a payment to `payee` of `amount` (canonical text):
/// the status, the error code and whether the hub committed it (SPEC §4 and the
/// simulator's documented triggers).
pub fn sdk_outcome(payee: &str, amount: &str) -> (TransferStatus, Option<&'static str>, bool) {
    use TransferStatus::{Completed, Failed, InDoubt};
    if payee.ends_with("404") {
        return (Failed, Some("3204"), false);
    }
    if payee.ends_with("408") {
        return (Failed, Some("SDK_TIMEOUT_PARTY"), false);
    }
    match amount {
        "666" => (Failed, Some("5103"), false),
        "13" => (Failed, Some("5105"), false),
        "4001" => (Failed, Some("4001"), false),
        "408" => (InDoubt, Some("SDK_OUTCOME_UNKNOWN"), true),
        _ => (Completed, None, true),
    }
}

/// A wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wallet {
    /// Currency.
    pub cur: Cur,
    /// FROZEN.
    pub frozen: bool,
    /// Spendable.
    pub available: i128,
    /// Held by open reservations.
    pub reserved: i128,
}

/// The two system accounts of a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sys {
    /// `SYS:CASH:<CUR>`.
    Cash,
    /// `SYS:SETTLEMENT:<CUR>`.
    Settlement,
}

/// How a transfer moves money, with what its settlement needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// P2P between two wallets here.
    OnUs,
    /// P2P to a payee elsewhere, paid by wallet `from`.
    Sdk { from: u8 },
    /// Deposit or withdrawal on wallet `w`.
    Cash { w: u8, withdraw: bool },
    /// A posted adjustment.
    Adjustment,
    /// A bulk item's attempt (job index, line).
    Item { job: usize, line: u32 },
}

/// A transfer.
#[derive(Clone, Debug)]
pub struct MTransfer {
    /// Id (chosen by the system, or the client's `transfer_id`).
    pub id: Uuid,
    /// Status.
    pub status: TransferStatus,
    /// Error code.
    pub code: Option<String>,
    /// How it moves money.
    pub kind: Kind,
    /// Minor units.
    pub amount: i128,
    /// Currency.
    pub cur: Cur,
    /// The normalised request (for replays by transfer id).
    pub request: String,
    /// The user who created it.
    pub created_by: String,
    /// Whether it went through the SDK (and so must show in the simulator's list
    /// exactly once if `hub_paid`, never otherwise).
    pub sdk: bool,
    /// Whether the simulator's hub committed it.
    pub hub_paid: bool,
}

/// An adjustment.
#[derive(Clone, Debug)]
pub struct MAdjustment {
    /// Id.
    pub id: Uuid,
    /// Wallet index.
    pub w: u8,
    /// Counter is SETTLEMENT.
    pub settlement: bool,
    /// Wallet gains.
    pub credit: bool,
    /// Minor units.
    pub amount: i128,
    /// The maker.
    pub maker: String,
    /// Status.
    pub status: AdjustmentStatus,
}

/// What an idempotency key is bound to.
#[derive(Clone, Debug)]
pub enum Bound {
    /// A transfer (index).
    Transfer(usize),
    /// A stored 422.
    Rejection(String),
    /// An adjustment (index).
    Adjustment(usize),
}

/// An idempotency record.
#[derive(Clone, Debug)]
pub struct Idem {
    /// The normalised request.
    pub request: String,
    /// Its answer.
    pub bound: Bound,
}

/// A bulk item.
#[derive(Clone, Debug)]
pub struct MItem {
    /// File line.
    pub line: u32,
    /// Payee.
    pub to: crate::ops::To,
    /// Status.
    pub status: ItemStatus,
    /// Error code.
    pub code: Option<String>,
    /// Minor units.
    pub amount: i128,
}

/// A bulk job.
#[derive(Clone, Debug)]
pub struct MJob {
    /// Id.
    pub id: Uuid,
    /// Source wallet index.
    pub source: u8,
    /// Status.
    pub status: JobStatus,
    /// Money still reserved on the source for open items.
    pub reserved_remaining: i128,
    /// Items (empty when the file was refused as a whole).
    pub items: Vec<MItem>,
    /// Cancelled while items were in flight: it ends CANCELLED when they settle.
    pub cancelling: bool,
}

/// The whole reference state of one case.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Wallets by index.
    pub wallets: BTreeMap<u8, Wallet>,
    /// System account balances (`available`; their `reserved` is always 0).
    pub system: BTreeMap<(Cur, Sys), i128>,
    /// Every transfer, in creation order.
    pub transfers: Vec<MTransfer>,
    /// Every adjustment.
    pub adjustments: Vec<MAdjustment>,
    /// Every job that was recorded.
    pub jobs: Vec<MJob>,
    /// Idempotency records by (user, key index).
    pub idem: HashMap<(String, u8), Idem>,
    /// (wallet, reference) pairs used by cash movements.
    pub references: HashSet<(u8, String)>,
    /// Requests that carried a key or transfer id, for [`Op::Again`].
    pub keyed: Vec<Op>,
    /// The case's pool of client transfer ids.
    pub tids: Vec<Uuid>,
    /// Bulk operations run (their references are unique per case).
    pub bulk_ops: usize,
}

/// A mismatch between the model and the system.
pub type Mismatch = String;

/// Checks that `got` is `want`.
pub fn expect(want: &Obs, got: &Obs) -> Result<(), Mismatch> {
    if want == got {
        Ok(())
    } else {
        Err(format!("expected {want:?}, the system answered {got:?}"))
    }
}

fn pick_among<T>(candidates: Vec<&T>, pick: u8, open: bool) -> Option<&T> {
    (open && !candidates.is_empty()).then(|| candidates[usize::from(pick) % candidates.len()])
}

pub(crate) fn refused(status: u16, code: &str) -> Obs {
    Obs::Refused((status, code.to_owned()))
}

/// The id and status of a transfer answer, checking the rest against the model.
pub(crate) fn transfer_answer(got: &Obs, status: TransferStatus, code: Option<&str>) -> Result<Uuid, Mismatch> {
    match got {
        Obs::Transfer { id, status: s, code: c, replayed: false } if *s == status && c.as_deref() == code => Ok(*id),
        other => Err(format!("expected a new transfer {status:?} {code:?}, the system answered {other:?}")),
    }
}

impl Model {
    /// An empty model with the case's client transfer ids.
    pub fn new(tids: Vec<Uuid>) -> Model {
        Model { tids, ..Model::default() }
    }

    /// The transfer `pick` names (modulo the count), if any.
    pub fn transfer_pick(&self, pick: u8) -> Option<&MTransfer> {
        (!self.transfers.is_empty()).then(|| &self.transfers[usize::from(pick) % self.transfers.len()])
    }

    /// The transfer `pick` names among the IN_DOUBT ones when `open` and there are
    /// any, else among all.
    pub fn doubt_pick(&self, pick: u8, open: bool) -> Option<&MTransfer> {
        let doubtful = |t: &&MTransfer| t.status == TransferStatus::InDoubt;
        pick_among(self.transfers.iter().filter(doubtful).collect(), pick, open).or_else(|| self.transfer_pick(pick))
    }

    /// The cash transfer `pick` names (among those awaiting approval when `open`).
    pub fn cash_pick(&self, pick: u8, open: bool) -> Option<&MTransfer> {
        let cash: Vec<&MTransfer> = self.transfers.iter().filter(|t| matches!(t.kind, Kind::Cash { .. })).collect();
        let waiting = cash.iter().copied().filter(|t| t.status == TransferStatus::AwaitingApproval).collect();
        pick_among(waiting, pick, open).or_else(|| pick_among(cash, pick, true))
    }

    /// The adjustment `pick` names (among those awaiting approval when `open`).
    pub fn adjustment_pick(&self, pick: u8, open: bool) -> Option<&MAdjustment> {
        let waiting = self.adjustments.iter().filter(|a| a.status == AdjustmentStatus::AwaitingApproval).collect();
        pick_among(waiting, pick, open).or_else(|| pick_among(self.adjustments.iter().collect(), pick, true))
    }

    /// The job `pick` names among those `action` applies to (retryable failures for
    /// a retry, not yet final for a cancel), else among all.
    pub fn job_pick(&self, pick: u8, action: crate::ops::JobAction) -> Option<usize> {
        let applies = |j: &MJob| match action {
            crate::ops::JobAction::Retry => j.items.iter().any(|it| {
                it.status == ItemStatus::Failed && matches!(it.code.as_deref(), Some("SDK_TIMEOUT_PARTY" | "4001"))
            }),
            _ => !j.status.is_final(),
        };
        let fitting: Vec<usize> = (0..self.jobs.len()).filter(|i| applies(&self.jobs[*i])).collect();
        match fitting.is_empty() {
            false => Some(fitting[usize::from(pick) % fitting.len()]),
            true => (!self.jobs.is_empty()).then(|| usize::from(pick) % self.jobs.len()),
        }
    }

    /// The transfer id an adjustment's `refers_to` resolves to.
    pub fn refers_to(&self, refers: Refers) -> Option<Uuid> {
        match refers {
            Refers::Nothing => None,
            Refers::Transfer(pick) => self.transfer_pick(pick).map(|t| t.id),
            Refers::Bogus => Some(BOGUS_ID),
            Refers::Id(id) => Some(id),
        }
    }

    /// The earlier keyed request `pick` names, the same or with another amount.
    pub fn again(&self, pick: u8, mutate: bool) -> Option<Op> {
        if self.keyed.is_empty() {
            return None;
        }
        let mut op = self.keyed[usize::from(pick) % self.keyed.len()].clone();
        if mutate {
            let other = |a: &'static str| if a == "100" { "5" } else { "100" };
            match &mut op {
                Op::P2p(p) => p.amount = other(p.amount),
                Op::Cash(c) => c.amount = other(c.amount),
                Op::Adjust(a) => a.amount = other(a.amount),
                _ => {}
            }
        }
        Some(op)
    }

    /// Remembers a request that carried a key or transfer id (with picks resolved,
    /// so that sending it again sends the same thing).
    pub fn remember(&mut self, op: &Op) {
        let keyed = match op {
            Op::P2p(p) => p.key.is_some() || p.tid.is_some(),
            Op::Cash(c) => c.key.is_some(),
            Op::Adjust(a) => a.key.is_some(),
            _ => false,
        };
        if !keyed {
            return;
        }
        let mut op = op.clone();
        if let Op::Adjust(a) = &mut op {
            a.refers = self.refers_to(a.refers).map_or(Refers::Nothing, Refers::Id);
        }
        self.keyed.push(op);
    }

    pub(crate) fn balance_mut(&mut self, cur: Cur, sys: Sys) -> &mut i128 {
        self.system.entry((cur, sys)).or_insert(0)
    }

    pub(crate) fn wallet_mut(&mut self, w: u8) -> &mut Wallet {
        self.wallets.get_mut(&w).expect("the model only moves money of existing wallets")
    }

    /// Looks up an idempotency record: `Some(Ok(answer))` to replay, `Some(Err(_))`
    /// when the key or transfer id was used for another request, `None` when new.
    pub(crate) fn replay(
        &self,
        user: &str,
        key: Option<u8>,
        tid: Option<Uuid>,
        request: &str,
    ) -> Option<Result<Obs, Obs>> {
        if let Some(k) = key {
            if let Some(rec) = self.idem.get(&(user.to_owned(), k)) {
                if rec.request != request {
                    return Some(Err(refused(409, "IDEMPOTENCY_KEY_REUSED")));
                }
                return Some(Ok(match &rec.bound {
                    Bound::Transfer(i) => self.replayed_transfer(*i),
                    Bound::Rejection(code) => Obs::StoredReplay((422, code.clone())),
                    Bound::Adjustment(i) => Obs::Adjustment {
                        id: self.adjustments[*i].id,
                        status: AdjustmentStatus::AwaitingApproval,
                        transfer: None,
                        replayed: true,
                    },
                }));
            }
        }
        let i = self.transfers.iter().position(|t| Some(t.id) == tid)?;
        if self.transfers[i].request != request {
            return Some(Err(refused(409, "IDEMPOTENCY_KEY_REUSED")));
        }
        Some(Ok(self.replayed_transfer(i)))
    }

    /// A replay answers with the transfer's current record.
    pub(crate) fn replayed_transfer(&self, i: usize) -> Obs {
        let t = &self.transfers[i];
        Obs::Transfer { id: t.id, status: t.status, code: t.code.clone(), replayed: true }
    }

    pub(crate) fn bind(&mut self, user: &str, key: Option<u8>, request: &str, bound: Bound) {
        if let Some(k) = key {
            self.idem.insert((user.to_owned(), k), Idem { request: request.to_owned(), bound });
        }
    }

    /// A business rejection: 422, stored under the key (SPEC §3).
    pub(crate) fn reject(
        &mut self,
        got: &Obs,
        user: &str,
        key: Option<u8>,
        request: &str,
        code: &str,
    ) -> Result<(), Mismatch> {
        expect(&refused(422, code), got)?;
        self.bind(user, key, request, Bound::Rejection(code.to_owned()));
        Ok(())
    }

    /// Applies one operation (already concrete: no `Again`), checking the answer.
    pub fn apply(&mut self, op: &Op, got: &Obs) -> Result<(), Mismatch> {
        match op {
            Op::CreateWallet { w, usd } => self.create_wallet(*w, Cur::of(*usd), got),
            Op::Freeze { w } => self.freeze(*w, true, got),
            Op::Unfreeze { w } => self.freeze(*w, false, got),
            Op::Cash(c) => self.cash(c, got),
            Op::DecideCash { pick, approve, by_maker, open } => {
                let picked = self.cash_pick(*pick, *open).cloned();
                self.decide_cash(picked, *approve, *by_maker, got)
            }
            Op::P2p(p) => self.p2p(p, got),
            Op::Again { .. } => Err("Again must be made concrete before it is applied".into()),
            Op::Resolve { pick, how, open, .. } => self.resolve(self.doubt_pick(*pick, *open).cloned(), *how, got),
            Op::Reconcile { pick, open } => self.reconcile(self.doubt_pick(*pick, *open).cloned(), got),
            Op::Adjust(a) => self.adjust(a, got),
            Op::DecideAdjustment { pick, approve, by_maker, open } => {
                let picked = self.adjustment_pick(*pick, *open).cloned();
                self.decide_adjustment(picked, *approve, *by_maker, got)
            }
            Op::Bulk(b) => self.bulk(b, got),
            Op::Job { pick, action } => self.job_action(*pick, *action, got),
        }
    }
}
