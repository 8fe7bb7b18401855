//! Transfers: the record of one money movement and its status machine.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AccountKey, Currency, Minor, Timestamp};

/// Where a transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferStatus {
    /// Reserved, SDK call not finished.
    Pending,
    /// Money moved. Final.
    Completed,
    /// Money did not move (or was given back). Final.
    Failed,
    /// The SDK may or may not have moved the money; funds stay reserved.
    InDoubt,
    /// A cash movement waiting for a checker; nothing moved yet.
    AwaitingApproval,
    /// A cash movement a checker refused; nothing moved. Final.
    Rejected,
}

impl TransferStatus {
    /// Every status, in API order.
    pub const ALL: [TransferStatus; 6] = [
        TransferStatus::Pending,
        TransferStatus::Completed,
        TransferStatus::Failed,
        TransferStatus::InDoubt,
        TransferStatus::AwaitingApproval,
        TransferStatus::Rejected,
    ];

    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransferStatus::Pending => "PENDING",
            TransferStatus::Completed => "COMPLETED",
            TransferStatus::Failed => "FAILED",
            TransferStatus::InDoubt => "IN_DOUBT",
            TransferStatus::AwaitingApproval => "AWAITING_APPROVAL",
            TransferStatus::Rejected => "REJECTED",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<TransferStatus> {
        TransferStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Final statuses never change again (invariant 4).
    pub fn is_final(&self) -> bool {
        matches!(self, TransferStatus::Completed | TransferStatus::Failed | TransferStatus::Rejected)
    }

    /// Statuses that still need work (recovery, reconciliation, approval): the only
    /// ones with a status index entry.
    pub fn is_open(&self) -> bool {
        matches!(self, TransferStatus::Pending | TransferStatus::InDoubt | TransferStatus::AwaitingApproval)
    }

    /// Whether the status machine allows `self → next`.
    pub fn can_become(&self, next: TransferStatus) -> bool {
        use TransferStatus::*;
        matches!(
            (self, next),
            (Pending, Completed | Failed | InDoubt)
                | (InDoubt, Completed | Failed)
                | (AwaitingApproval, Completed | Failed | Rejected)
        )
    }

    /// Stable one-byte tag for index keys.
    pub fn tag(&self) -> u8 {
        match self {
            TransferStatus::Pending => 1,
            TransferStatus::Completed => 2,
            TransferStatus::Failed => 3,
            TransferStatus::InDoubt => 4,
            TransferStatus::AwaitingApproval => 5,
            TransferStatus::Rejected => 6,
        }
    }
}

/// How a transfer is booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Route {
    /// Both parties are wallets here: one posting, no SDK call.
    OnUs,
    /// The receiver is elsewhere: reserve, call the SDK, post to settlement or void.
    Sdk,
    /// Deposit or withdrawal against `SYS:CASH:<CUR>`.
    Cash,
    /// An approved correction against cash or settlement.
    Adjustment,
}

impl Route {
    /// Every route, in API order.
    pub const ALL: [Route; 4] = [Route::OnUs, Route::Sdk, Route::Cash, Route::Adjustment];

    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Route::OnUs => "ON_US",
            Route::Sdk => "SDK",
            Route::Cash => "CASH",
            Route::Adjustment => "ADJUSTMENT",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// How far an SDK transfer got. `FinalSent` is written durably before the call after
/// which the SDK moves money without asking again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SdkPhase {
    /// Funds reserved; no money-moving call made.
    Reserved,
    /// The final call may have reached the SDK.
    FinalSent,
    /// The outcome is recorded.
    Done,
}

impl SdkPhase {
    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            SdkPhase::Reserved => "RESERVED",
            SdkPhase::FinalSent => "FINAL_SENT",
            SdkPhase::Done => "DONE",
        }
    }
}

/// An amount as the SDK sent it, never parsed with the wallet's exponent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotedMoney {
    /// The SDK's amount text.
    pub amount: String,
    /// The SDK's currency text.
    pub currency: String,
}

/// Informational quote details kept from the SDK (never posted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// `quoteResponse.body.transferAmount`.
    pub transfer_amount: Option<QuotedMoney>,
    /// `quoteResponse.body.payeeReceiveAmount`.
    pub payee_receive_amount: Option<QuotedMoney>,
    /// `quoteResponse.body.payeeFspFee`.
    pub payee_fsp_fee: Option<QuotedMoney>,
    /// `quoteResponse.body.payeeFspCommission`.
    pub payee_fsp_commission: Option<QuotedMoney>,
    /// `quoteResponse.body.expiration` (RFC 3339 text).
    pub expiration: Option<String>,
}

/// Reconciliation bookkeeping of an IN_DOUBT transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// When the transfer became IN_DOUBT.
    pub since: Option<Timestamp>,
    /// GET attempts made so far.
    pub attempts: u32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<Timestamp>,
    /// Answers of FSPIOP 3208 received at least 5 minutes after the quote expired.
    pub unknown_answers: u32,
}

/// SDK-specific state of a transfer with route SDK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdkState {
    /// The SDK's `transferId` (UUID or ULID, opaque).
    pub transfer_id: Option<String>,
    /// Phase, see [`SdkPhase`].
    pub phase: SdkPhase,
    /// Quote details when the SDK reported them.
    pub quote: Option<Quote>,
    /// Reconciliation bookkeeping.
    pub recon: Reconciliation,
    /// The service stopped right after FINAL_SENT in an accept mode: the final
    /// acceptance is sent once more before reconciling by GET.
    pub resume_final: bool,
}

/// Why a transfer failed or is in doubt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferError {
    /// Bare FSPIOP code (`"3204"`) or an upper-case code.
    pub code: String,
    /// One line, human-readable.
    pub message: String,
    /// Whether sending the same payment again is safe (nothing moved).
    pub retryable: bool,
}

/// Who settled an IN_DOUBT transfer by hand, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The acting user.
    pub by: String,
    /// The operator's reason.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Position of a bulk item in its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkRef {
    /// The job.
    pub job_id: Uuid,
    /// The item's line in the uploaded file.
    pub line: u32,
    /// This attempt failed before anything was sent and its item went back to
    /// PENDING: its amount stayed in the job's reservation (no release posting).
    pub requeued: bool,
}

/// One money movement and everything needed to explain it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Our id; the SDK's `homeTransactionId`.
    pub id: Uuid,
    /// Monotonic sequence, with `created_at` the list order.
    pub seq: u64,
    /// Paying account (a wallet, or `SYS:CASH` for deposits).
    pub sender: AccountKey,
    /// Receiving account, or the external payee for route SDK.
    pub receiver: AccountKey,
    /// Strictly positive minor units.
    pub amount: Minor,
    /// Currency of `amount`.
    pub currency: Currency,
    /// Current status.
    pub status: TransferStatus,
    /// How it is booked.
    pub route: Route,
    /// Trimmed free text, at most 128 UTF-16 code units.
    pub note: Option<String>,
    /// Cash reference (unique per account for 30 days).
    pub reference: Option<String>,
    /// SDK state for route SDK.
    pub sdk: Option<SdkState>,
    /// Failure or doubt details.
    pub error: Option<TransferError>,
    /// Bulk job and line, for bulk items.
    pub bulk: Option<BulkRef>,
    /// Manual resolution, if any.
    pub resolution: Option<Resolution>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Acting user who created it.
    pub created_by: String,
    /// Checker who approved it (cash approvals, adjustments).
    pub approved_by: Option<String>,
    /// SHA-256 of the normalised request, for idempotent replays by transfer id.
    pub request_hash: [u8; 32],
    /// Its journal entries, in order (kept in the record: one store write fewer
    /// per movement).
    pub postings: Vec<super::Posting>,
}

/// A status change the machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transfer cannot go from {from:?} to {to:?}")]
pub struct IllegalTransition {
    /// Current status.
    pub from: TransferStatus,
    /// Requested status.
    pub to: TransferStatus,
}

impl Transfer {
    /// Moves to `next`, refusing transitions out of final statuses (invariant 4).
    pub fn set_status(&mut self, next: TransferStatus, now: Timestamp) -> Result<(), IllegalTransition> {
        if !self.status.can_become(next) {
            return Err(IllegalTransition { from: self.status, to: next });
        }
        self.status = next;
        self.updated_at = now;
        Ok(())
    }

    /// True while funds are held for this transfer (PENDING or IN_DOUBT).
    pub fn holds_reservation(&self) -> bool {
        matches!(self.status, TransferStatus::Pending | TransferStatus::InDoubt)
    }

    /// The SDK phase, if this is an SDK transfer.
    pub fn phase(&self) -> Option<SdkPhase> {
        self.sdk.as_ref().map(|s| s.phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_never_change() {
        for from in TransferStatus::ALL.into_iter().filter(TransferStatus::is_final) {
            for to in TransferStatus::ALL {
                assert!(!from.can_become(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn in_doubt_settles_only_to_a_final_status() {
        assert!(TransferStatus::InDoubt.can_become(TransferStatus::Completed));
        assert!(TransferStatus::InDoubt.can_become(TransferStatus::Failed));
        assert!(!TransferStatus::InDoubt.can_become(TransferStatus::Pending));
    }

    #[test]
    fn api_spellings_round_trip() {
        for s in TransferStatus::ALL {
            assert_eq!(TransferStatus::parse(s.as_str()), Some(s));
        }
        for r in Route::ALL {
            assert_eq!(Route::parse(r.as_str()), Some(r));
        }
    }
}
