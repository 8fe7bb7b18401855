//! Which outcomes a run produced, so that a change in the generators that stops
//! reaching some outcome shows (`coverage::REQUIRED` is checked at the CI size).

use crate::obs::Obs;
use crate::ops::Op;

/// Outcomes a CI-size run must reach: every SDK outcome, every refusal the brief
/// names, replays, resolutions and each end of a bulk job.
pub const REQUIRED: &[&str] = &[
    "P2p: COMPLETED",
    "P2p: FAILED 3204",
    "P2p: FAILED SDK_TIMEOUT_PARTY",
    "P2p: FAILED 5103",
    "P2p: FAILED 5105",
    "P2p: FAILED 4001",
    "P2p: IN_DOUBT SDK_OUTCOME_UNKNOWN",
    "P2p: refused 422 ACCOUNT_FROZEN",
    "P2p: refused 422 SAME_ACCOUNT",
    "P2p: refused 422 ACCOUNT_NOT_FOUND",
    "P2p: refused 422 INSUFFICIENT_FUNDS",
    "P2p: refused 422 CURRENCY_MISMATCH",
    "Cash: refused 422 INSUFFICIENT_FUNDS",
    "Cash: AWAITING_APPROVAL",
    "Again: replayed",
    "Again: stored 422",
    "Again: refused 409 IDEMPOTENCY_KEY_REUSED",
    "Resolve: COMPLETED",
    "Resolve: refused 409 RESOLVE_CONTRADICTS_HUB",
    "Resolve: refused 409 SDK_TRANSFER_ID_MISMATCH",
    "Resolve: refused 409 INVALID_STATE",
    "DecideAdjustment: POSTED",
    "DecideAdjustment: REJECTED",
    "DecideAdjustment: refused 403 SELF_APPROVAL",
    "DecideCash: COMPLETED",
    "Freeze: done",
    "Unfreeze: done",
    "Bulk: COMPLETED",
    "Bulk: PROCESSING",
    "Bulk: REJECTED",
    "Bulk: FAILED",
    "Retry: COMPLETED",
    "Retry: refused 409 NOTHING_TO_RETRY",
    "Cancel: CANCELLED",
    "CancelByOther: refused 403 FORBIDDEN",
];

/// `"<operation>: <answer>"`.
pub fn label(generated: &Op, concrete: &Op, got: &Obs) -> String {
    let op = match generated {
        Op::Again { .. } => "Again",
        _ => name(concrete),
    };
    let answer = match got {
        Obs::Refused((status, code)) => format!("refused {status} {code}"),
        Obs::StoredReplay(_) => "stored 422".into(),
        Obs::Transfer { replayed: true, .. } | Obs::Adjustment { replayed: true, .. } => "replayed".into(),
        Obs::Transfer { status, code, .. } => format!("{} {}", status.as_str(), code.as_deref().unwrap_or("")),
        Obs::Adjustment { status, .. } => status.as_str().into(),
        Obs::Done => "done".into(),
        Obs::Skipped => "skipped".into(),
        Obs::Bulk(b) => match (&b.upload, &b.decision, b.status) {
            (Some(Err((status, code))), _, _) | (None, Some(Err((status, code))), _) => {
                format!("refused {status} {code}")
            }
            (_, _, Some(s)) => s.as_str().into(),
            _ => "?".into(),
        },
    };
    format!("{op}: {}", answer.trim_end())
}

fn name(op: &Op) -> &'static str {
    match op {
        Op::CreateWallet { .. } => "CreateWallet",
        Op::Freeze { .. } => "Freeze",
        Op::Unfreeze { .. } => "Unfreeze",
        Op::Cash(_) => "Cash",
        Op::DecideCash { .. } => "DecideCash",
        Op::P2p(_) => "P2p",
        Op::Again { .. } => "Again",
        Op::Resolve { .. } => "Resolve",
        Op::Reconcile { .. } => "Reconcile",
        Op::Adjust(_) => "Adjust",
        Op::DecideAdjustment { .. } => "DecideAdjustment",
        Op::Bulk(_) => "Bulk",
        Op::Job { action, .. } => match action {
            crate::ops::JobAction::Retry => "Retry",
            crate::ops::JobAction::Cancel => "Cancel",
            crate::ops::JobAction::CancelByOther => "CancelByOther",
        },
    }
}
