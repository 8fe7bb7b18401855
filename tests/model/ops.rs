//! The operations a sequence is made of and how they are generated. Wallets, payees,
//! amounts and earlier results are named by small indexes or picked from short tables,
//! so that a shrunk sequence still means something (`pick` is taken modulo the number
//! of candidates when the operation runs; with none it is skipped).

use proptest::prelude::*;

/// Wallet indexes 0..WALLETS; 0–2 exist from the prelude, 3 and 4 may be created.
pub const WALLETS: u8 = 5;

/// The MSISDN of wallet `w` (never ending in a simulator trigger).
pub fn wallet_msisdn(w: u8) -> String {
    format!("2250700{:04}", 100 + u32::from(w))
}

/// Payees that are never wallets here: an ordinary one, "party not found" (`…404`)
/// and "party lookup timeout" (`…408`).
pub const PAYEES: [&str; 3] = ["22599000001", "22599000404", "22599000408"];

/// Amounts that move money without triggering anything.
const ORDINARY: [&str; 5] = ["1", "5", "100", "250", "1000"];
/// The simulator's amount triggers: 5103 at the quote, 5105 and 4001 at the transfer,
/// and `408`, a fulfil timeout after the hub committed (IN_DOUBT).
const TRIGGERS: [&str; 4] = ["13", "408", "666", "4001"];
/// Refused texts: zero, and too many decimals for XOF (valid for USD).
const REFUSED: [&str; 2] = ["0", "2.25"];

/// A receiver: one of our wallet indexes (perhaps not created) or an outside payee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum To {
    /// Wallet index (a transfer to it goes on-us when it exists, else through the SDK).
    Wallet(u8),
    /// An outside payee from [`PAYEES`].
    Payee(&'static str),
}

impl To {
    /// The MSISDN.
    pub fn msisdn(&self) -> String {
        match self {
            To::Wallet(w) => wallet_msisdn(*w),
            To::Payee(p) => (*p).to_owned(),
        }
    }
}

/// How an operator resolves a transfer (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// `{sdk_transfer_id}` with the transfer's own SDK id: the hub's answer applies.
    HubOwnId,
    /// `{sdk_transfer_id}` with an id the hub never issued (not the transfer's own).
    HubBogusId,
    /// `{outcome: COMPLETED}`.
    Completed,
    /// `{outcome: FAILED}`.
    Failed,
}

/// What an adjustment refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refers {
    /// Nothing.
    Nothing,
    /// An earlier transfer (picked).
    Transfer(u8),
    /// A transfer id that does not exist.
    Bogus,
    /// A fixed transfer id (a remembered request sent again; never generated).
    Id(uuid::Uuid),
}

/// What the checker does with an uploaded job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A checker approves.
    Approve,
    /// The uploader tries to approve (refused), then a checker approves.
    SelfApproveFirst,
    /// A checker rejects.
    Reject,
}

/// An operator action on an earlier job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobAction {
    /// `retry` (checker): FAILED items with a retryable error are paid again.
    Retry,
    /// `cancel` by the uploader.
    Cancel,
    /// `cancel` by another maker (refused before approval).
    CancelByOther,
}

/// A P2P request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P2p {
    /// Sent by `maker2` instead of `maker` (keys are scoped to the user).
    pub maker2: bool,
    /// Sender wallet index (perhaps not created).
    pub from: u8,
    /// Receiver.
    pub to: To,
    /// Amount text.
    pub amount: &'static str,
    /// Explicit currency: `Some(true)` USD, `Some(false)` XOF.
    pub usd: Option<bool>,
    /// `Idempotency-Key` index.
    pub key: Option<u8>,
    /// Client `transfer_id` index (into the case's pool).
    pub tid: Option<u8>,
}

/// A deposit or withdrawal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cash {
    /// Wallet index.
    pub w: u8,
    /// Withdrawal rather than deposit.
    pub withdraw: bool,
    /// Amount text.
    pub amount: &'static str,
    /// Reference (unique per wallet for 30 days).
    pub reference: Option<&'static str>,
    /// `Idempotency-Key` index.
    pub key: Option<u8>,
}

/// An adjustment request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjust {
    /// Requested by `maker2` instead of `maker`.
    pub maker2: bool,
    /// Wallet index.
    pub w: u8,
    /// Counter account: SETTLEMENT rather than CASH.
    pub settlement: bool,
    /// CREDIT rather than DEBIT.
    pub credit: bool,
    /// Amount text.
    pub amount: &'static str,
    /// `Idempotency-Key` index.
    pub key: Option<u8>,
    /// `refers_to`.
    pub refers: Refers,
}

/// A bulk job: upload, validation, the checker's decision, processing to the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bulk {
    /// Source wallet index.
    pub source: u8,
    /// Payee and amount per line.
    pub lines: Vec<(To, &'static str)>,
    /// The checker's decision.
    pub decision: Decision,
}

/// One step of a sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create wallet `w` in XOF or USD.
    CreateWallet { w: u8, usd: bool },
    /// Freeze wallet `w` (checker).
    Freeze { w: u8 },
    /// Unfreeze wallet `w` (checker).
    Unfreeze { w: u8 },
    /// Deposit or withdraw (maker).
    Cash(Cash),
    /// Approve or reject a cash movement (picked among those awaiting approval when
    /// `open` and there are any, else among all cash transfers).
    DecideCash { pick: u8, approve: bool, by_maker: bool, open: bool },
    /// A P2P transfer.
    P2p(P2p),
    /// Send an earlier request that had an idempotency key or transfer id again, the
    /// same (`mutate` false) or with another amount.
    Again { pick: u8, mutate: bool },
    /// Resolve a transfer (picked among the IN_DOUBT ones when `open` and there are
    /// any, else among all), through the item route for bulk items when `via_item`.
    Resolve { pick: u8, how: How, via_item: bool, open: bool },
    /// One reconciliation attempt for a transfer (picked as for `Resolve`).
    Reconcile { pick: u8, open: bool },
    /// Request an adjustment (maker).
    Adjust(Adjust),
    /// Approve or reject an adjustment (picked among those awaiting approval when
    /// `open` and there are any, else among all).
    DecideAdjustment { pick: u8, approve: bool, by_maker: bool, open: bool },
    /// A bulk job run to completion.
    Bulk(Bulk),
    /// An action on a job (picked among those it applies to, if any, else among all),
    /// run to its end.
    Job { pick: u8, action: JobAction },
}

/// The fixed start of every sequence: two funded XOF wallets and a funded USD one.
pub fn prelude() -> Vec<Op> {
    let deposit = |w, amount| Op::Cash(Cash { w, withdraw: false, amount, reference: None, key: None });
    vec![
        Op::CreateWallet { w: 0, usd: false },
        Op::CreateWallet { w: 1, usd: false },
        Op::CreateWallet { w: 2, usd: true },
        deposit(0, "20000"),
        deposit(1, "20000"),
        deposit(2, "1000"),
    ]
}

fn wallet() -> impl Strategy<Value = u8> {
    0..WALLETS
}

/// A paying wallet: mostly one of the prelude's, sometimes one that may not exist.
fn payer() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 0..3u8, 1 => 3..WALLETS]
}

fn payee() -> impl Strategy<Value = &'static str> {
    prop_oneof![2 => Just(PAYEES[0]), 1 => Just(PAYEES[1]), 1 => Just(PAYEES[2])]
}

fn to() -> impl Strategy<Value = To> {
    prop_oneof![3 => wallet().prop_map(To::Wallet), 2 => payee().prop_map(To::Payee)]
}

fn select(table: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(table)
}

/// Transfer amounts: ordinary, simulator triggers, refused texts.
fn transfer_amount() -> impl Strategy<Value = &'static str> {
    prop_oneof![5 => select(&ORDINARY), 3 => select(&TRIGGERS), 2 => Just("408"), 1 => select(&REFUSED)]
}

/// Bulk line amounts: no `4001` (FSPIOP 4001 pauses a job at once through the circuit
/// breaker, which is another test's subject), and refused texts rarely (one fails the
/// whole file).
fn line_amount() -> impl Strategy<Value = &'static str> {
    prop_oneof![12 => select(&ORDINARY), 6 => select(&TRIGGERS[..3]), 3 => Just("408"), 1 => select(&REFUSED)]
}

/// Deposits: ordinary, above the cash approval threshold, refused.
fn deposit_amount() -> impl Strategy<Value = &'static str> {
    prop_oneof![5 => select(&["100", "1000", "20000"]), 2 => Just("60000"), 1 => select(&REFUSED)]
}

/// Withdrawals: ordinary, larger than any prelude balance, refused.
fn withdraw_amount() -> impl Strategy<Value = &'static str> {
    prop_oneof![5 => select(&["1", "100", "1000"]), 2 => Just("60000"), 1 => Just("0")]
}

fn key() -> impl Strategy<Value = Option<u8>> {
    prop::option::weighted(0.5, 0..3u8)
}

fn p2p() -> impl Strategy<Value = P2p> {
    let currency = prop::option::weighted(0.15, any::<bool>());
    let tid = prop::option::weighted(0.2, 0..2u8);
    (any::<bool>(), payer(), to(), transfer_amount(), currency, key(), tid).prop_map(
        |(maker2, from, to, amount, usd, key, tid)| P2p {
            maker2: maker2 && key.is_some(),
            from,
            to,
            amount,
            usd,
            key,
            tid,
        },
    )
}

fn cash() -> impl Strategy<Value = Cash> {
    let reference = prop::option::weighted(0.3, prop::sample::select(vec!["R1", "R2"]));
    (payer(), any::<bool>(), deposit_amount(), withdraw_amount(), reference, key()).prop_map(
        |(w, withdraw, d, wd, reference, key)| Cash {
            w,
            withdraw,
            amount: if withdraw { wd } else { d },
            reference,
            key,
        },
    )
}

fn adjust() -> impl Strategy<Value = Adjust> {
    let refers =
        prop_oneof![3 => Just(Refers::Nothing), 2 => any::<u8>().prop_map(Refers::Transfer), 1 => Just(Refers::Bogus)];
    (any::<bool>(), payer(), any::<bool>(), any::<bool>(), transfer_amount(), key(), refers).prop_map(
        |(maker2, w, settlement, credit, amount, key, refers)| Adjust {
            maker2,
            w,
            settlement,
            credit,
            amount,
            key,
            refers,
        },
    )
}

fn bulk() -> impl Strategy<Value = Bulk> {
    let decision =
        prop_oneof![4 => Just(Decision::Approve), 1 => Just(Decision::SelfApproveFirst), 1 => Just(Decision::Reject)];
    let line = (to(), line_amount());
    (payer(), prop::collection::vec(line, 1..=4), decision).prop_map(|(source, lines, decision)| Bulk {
        source,
        lines,
        decision,
    })
}

fn job_action() -> impl Strategy<Value = JobAction> {
    prop_oneof![3 => Just(JobAction::Retry), 2 => Just(JobAction::Cancel), 1 => Just(JobAction::CancelByOther)]
}

/// Mostly pick among what is still open (shrinks to `true`).
fn open() -> impl Strategy<Value = bool> {
    prop_oneof![4 => Just(true), 1 => Just(false)]
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![Just(How::HubOwnId), Just(How::Completed), Just(How::Failed), Just(How::HubBogusId)]
}

/// One operation, weighted towards money movements.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => p2p().prop_map(Op::P2p),
        5 => cash().prop_map(Op::Cash),
        3 => (wallet(), any::<bool>()).prop_map(|(w, usd)| Op::CreateWallet { w, usd }),
        2 => wallet().prop_map(|w| Op::Freeze { w }),
        2 => wallet().prop_map(|w| Op::Unfreeze { w }),
        2 => (any::<u8>(), any::<bool>(), any::<bool>(), open()).prop_map(|(pick, approve, by_maker, open)| Op::DecideCash { pick, approve, by_maker, open }),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(pick, mutate)| Op::Again { pick, mutate }),
        4 => (any::<u8>(), how(), any::<bool>(), open()).prop_map(|(pick, how, via_item, open)| Op::Resolve { pick, how, via_item, open }),
        1 => (any::<u8>(), open()).prop_map(|(pick, open)| Op::Reconcile { pick, open }),
        3 => adjust().prop_map(Op::Adjust),
        3 => (any::<u8>(), any::<bool>(), any::<bool>(), open()).prop_map(|(pick, approve, by_maker, open)| Op::DecideAdjustment { pick, approve, by_maker, open }),
        2 => bulk().prop_map(Op::Bulk),
        2 => (any::<u8>(), job_action()).prop_map(|(pick, action)| Op::Job { pick, action }),
    ]
}

/// A case: the SDK mode (index into `system::MODES`) and up to `ops_max` operations.
pub fn case(ops_max: usize) -> impl Strategy<Value = (usize, Vec<Op>)> {
    (0..crate::system::MODES.len(), prop::collection::vec(op(), 1..=ops_max))
}
