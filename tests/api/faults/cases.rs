//! The campaign's cases: one fault per transfer at each call of a mode's dialogue, and
//! what the outcome table says each must end as.

use super::{Mode, ABORTING_AMOUNT, LOOKUP_FAULTS};
use crate::fault_proxy::{Fault, Stage};

#[derive(Clone, Copy, Debug)]
pub(super) enum Inject {
    /// No fault (the transfer after the campaign).
    Nothing,
    /// Nothing listens when the call is made.
    Refused,
    /// The proxy does this to the call.
    Proxy(Fault),
}

#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) n: usize,
    /// Index of the faulted call in the mode's dialogue.
    pub(super) at: usize,
    pub(super) inject: Inject,
    pub(super) lookup: Option<Fault>,
    pub(super) amount: i64,
}

impl Case {
    pub(super) fn kind(&self) -> &'static str {
        match self.inject {
            Inject::Nothing => "no_fault",
            Inject::Refused => "refused",
            Inject::Proxy(fault) => fault.kind(),
        }
    }

    pub(super) fn sender(&self) -> String {
        format!("22507{:05}1", self.n)
    }

    pub(super) fn payee(&self) -> String {
        // Never a local wallet, never ending in a simulator trigger (404, 408).
        format!("22509{:05}1", self.n)
    }
}

/// What the table says a case's reply must be.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expect {
    Completed,
    Failed { code: &'static str, message: Option<&'static str>, retryable: Option<bool> },
    InDoubt { id_known: bool, acted: Acted },
}

/// What the SDK did with the final call of an IN_DOUBT transfer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Acted {
    No,
    Paid,
    Aborted,
}

pub(super) fn expect(mode: &Mode, case: &Case) -> Expect {
    let failed = |code, retryable| Expect::Failed { code, message: None, retryable };
    let fault = match case.inject {
        Inject::Nothing => return Expect::Completed,
        Inject::Refused => return failed("SDK_UNREACHABLE", Some(true)),
        Inject::Proxy(fault) => fault,
    };
    match fault {
        Fault::Fspiop { code, .. } => {
            Expect::Failed { code, message: Some(fspiop_description(code)), retryable: Some(code == "4001") }
        }
        Fault::Timeout504 { stage: Stage::Party } => failed("SDK_TIMEOUT_PARTY", Some(true)),
        Fault::Timeout504 { stage: Stage::Quote } => failed("SDK_TIMEOUT_QUOTE", Some(true)),
        Fault::NonJson { status: 404, .. } => failed("SDK_CONFIG_ERROR", None),
        Fault::Rejected400 => failed("SDK_REJECTED_REQUEST", Some(false)),
        Fault::Aborted200 => failed("SDK_ABORTED", Some(false)),
        Fault::WaitingConversion => failed("FX_NOT_SUPPORTED", Some(false)),
        // Doubt before the final call: nothing moved.
        _ if case.at + 1 < mode.calls.len() => failed("SDK_ERROR", Some(true)),
        _ => {
            let carries_id =
                matches!(fault, Fault::Timeout504 { .. } | Fault::Plain500 { forward: true } | Fault::Uncommitted);
            let acted = match (fault.forwards(), case.amount) {
                (false, _) => Acted::No,
                (true, ABORTING_AMOUNT) => Acted::Aborted,
                (true, _) => Acted::Paid,
            };
            Expect::InDoubt { id_known: mode.sdk_mode != "auto" || carries_id, acted }
        }
    }
}

pub(super) fn fspiop_description(code: &str) -> &'static str {
    match code {
        "3204" => "Party not found",
        "5103" => "Payee FSP rejected quote",
        "5105" => "Payee FSP rejected transaction",
        _ => "Payer FSP insufficient liquidity",
    }
}

/// The FSPIOP error a stage fails with (the transfer stage alternates 5105 and 4001).
pub(super) fn fspiop_code(stage: Stage, alt: bool) -> &'static str {
    match (stage, alt) {
        (Stage::Party, _) => "3204",
        (Stage::Quote, _) => "5103",
        (Stage::Transfer, true) => "5105",
        (Stage::Transfer, false) => "4001",
    }
}

/// Every fault at every call of the mode, `rounds` times.
pub(super) fn cases(mode: &Mode, rounds: usize) -> Vec<Case> {
    let mut planned: Vec<(usize, Inject, Option<i64>)> = Vec::new();
    for round in 0..rounds {
        for (at, (_, stages)) in mode.calls.iter().enumerate() {
            let alt = (round + at) % 2 == 0;
            let mut faults = vec![
                Fault::ResetUnread,
                Fault::ResetBeforeForward,
                Fault::ResetAfterForward,
                Fault::SlowReply,
                Fault::SlowRequest,
                Fault::Plain500 { forward: alt },
                Fault::Gateway { status: 502, forward: alt },
                Fault::Gateway { status: 503, forward: !alt },
                Fault::Gateway { status: 504, forward: alt },
                Fault::TruncatedShort,
                Fault::TruncatedJson,
                Fault::TruncatedHead,
                Fault::Oversized,
                Fault::NonJson { status: 200, forward: true },
                Fault::NonJson { status: 404, forward: false },
                Fault::Rejected400,
                Fault::Aborted200,
                Fault::WaitingConversion,
            ];
            for &stage in stages.iter() {
                faults.push(Fault::Timeout504 { stage });
                faults.push(Fault::Fspiop { code: fspiop_code(stage, alt), code_in_status: alt });
            }
            planned.push((at, Inject::Refused, None));
            planned.extend(faults.into_iter().map(|f| (at, Inject::Proxy(f), None)));
            if stages.contains(&Stage::Transfer) {
                let timeout = Fault::Timeout504 { stage: Stage::Transfer };
                planned.push((at, Inject::Proxy(timeout), Some(ABORTING_AMOUNT)));
                planned.push((at, Inject::Proxy(Fault::Uncommitted), None));
            }
        }
    }
    let mut lookups = LOOKUP_FAULTS.iter().cycle();
    let mut reconciled = 0;
    let mut out = Vec::new();
    for (n, (at, inject, amount)) in planned.into_iter().enumerate() {
        let mut case = Case { n, at, inject, lookup: None, amount: amount.unwrap_or_else(|| plain_amount(n)) };
        if let Expect::InDoubt { id_known: true, acted: Acted::Paid | Acted::Aborted } = expect(mode, &case) {
            reconciled += 1;
            if reconciled % 2 == 0 {
                case.lookup = lookups.next().copied();
            }
        }
        out.push(case);
    }
    out
}

/// An amount no simulator trigger reacts to.
pub(super) fn plain_amount(n: usize) -> i64 {
    let amount = 100 + i64::try_from(n).expect("case number");
    if [408, 666, 4001].contains(&amount) {
        amount + 1
    } else {
        amount
    }
}

pub(super) fn rounds() -> usize {
    std::env::var("SYSGP_FAULT_ROUNDS").ok().and_then(|v| v.parse().ok()).filter(|&n| n >= 1).unwrap_or(1)
}
