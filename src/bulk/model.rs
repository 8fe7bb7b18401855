//! Jobs and items: records, status machines and the per-status counters of a job.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ledger::{Currency, Minor, Msisdn, Posting, Route, Timestamp, TransferError};

/// Where a job stands (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// Stored, being validated.
    Pending,
    /// Valid, report ready, waiting for a checker.
    AwaitingApproval,
    /// Approved: items are being paid.
    Processing,
    /// Stopped by an operator or the circuit breaker.
    Paused,
    /// Every item is final.
    Completed,
    /// Cancelled; remaining items were cancelled.
    Cancelled,
    /// Invalid file, unfundable, or fatal.
    Failed,
    /// Refused by a checker.
    Rejected,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Pending,
        JobStatus::AwaitingApproval,
        JobStatus::Processing,
        JobStatus::Paused,
        JobStatus::Completed,
        JobStatus::Cancelled,
        JobStatus::Failed,
        JobStatus::Rejected,
    ];

    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::AwaitingApproval => "AWAITING_APPROVAL",
            JobStatus::Processing => "PROCESSING",
            JobStatus::Paused => "PAUSED",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Cancelled => "CANCELLED",
            JobStatus::Failed => "FAILED",
            JobStatus::Rejected => "REJECTED",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No more changes.
    pub fn is_final(&self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Cancelled | JobStatus::Failed | JobStatus::Rejected)
    }
}

/// Where an item stands (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ItemStatus {
    /// Waiting to be paid.
    Pending,
    /// Its SDK call is under way.
    Processing,
    /// Paid.
    Completed,
    /// Not paid (its amount is back in the source wallet).
    Failed,
    /// The SDK may or may not have paid it; its amount stays reserved.
    InDoubt,
    /// Cancelled before it was sent.
    Cancelled,
    /// A row that failed validation (only with `skip_invalid`).
    Invalid,
}

impl ItemStatus {
    /// Every status, in counter order.
    pub const ALL: [ItemStatus; 7] = [
        ItemStatus::Pending,
        ItemStatus::Processing,
        ItemStatus::Completed,
        ItemStatus::Failed,
        ItemStatus::InDoubt,
        ItemStatus::Cancelled,
        ItemStatus::Invalid,
    ];

    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemStatus::Pending => "PENDING",
            ItemStatus::Processing => "PROCESSING",
            ItemStatus::Completed => "COMPLETED",
            ItemStatus::Failed => "FAILED",
            ItemStatus::InDoubt => "IN_DOUBT",
            ItemStatus::Cancelled => "CANCELLED",
            ItemStatus::Invalid => "INVALID",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<ItemStatus> {
        ItemStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Index into a job's counters.
    pub fn index(&self) -> usize {
        *self as usize
    }

    /// Whether the item still holds part of the job's reservation.
    pub fn holds_reservation(&self) -> bool {
        matches!(self, ItemStatus::Pending | ItemStatus::Processing | ItemStatus::InDoubt)
    }
}

/// Upload options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Invalid rows become INVALID items and the rest go on.
    pub skip_invalid: bool,
    /// Accept the same content again (with a reason).
    pub allow_duplicate: bool,
    /// Why a duplicate is accepted.
    pub duplicate_reason: Option<String>,
    /// Free text for the job.
    pub note: Option<String>,
}

/// A bulk disbursement job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Id.
    pub id: Uuid,
    /// Order key sequence.
    pub seq: u64,
    /// Name of the uploaded file (as sent).
    pub file_name: String,
    /// Paying wallet.
    pub source: Msisdn,
    /// Its currency.
    pub currency: Currency,
    /// Status.
    pub status: JobStatus,
    /// Uploader.
    pub created_by: String,
    /// Checker who approved.
    pub approved_by: Option<String>,
    /// Upload time.
    pub created_at: Timestamp,
    /// Approval time.
    pub started_at: Option<Timestamp>,
    /// When it reached a final status; on a PROCESSING or PAUSED job, when a cancel
    /// was requested (see [`Job::cancel_requested`]).
    pub finished_at: Option<Timestamp>,
    /// Upload options.
    pub options: JobOptions,
    /// SHA-256 of the file bytes.
    pub file_sha256: [u8; 32],
    /// SHA-256 over the parsed rows (duplicate detection).
    pub content_hash: Option<[u8; 32]>,
    /// Items per status ([`ItemStatus::index`]).
    pub counts: [u64; 7],
    /// Amounts per status.
    pub amounts: [Minor; 7],
    /// Data rows in the file.
    pub rows: u64,
    /// Column names of the file, normalised, in file order (results.csv, errors.csv).
    pub columns: Vec<String>,
    /// Validation problems found.
    pub problems: u64,
    /// Money this job still holds reserved on the source wallet.
    pub reserved_remaining: Minor,
    /// Why it failed, was rejected, paused or cancelled.
    pub reason: Option<String>,
    /// Warnings (duplicates) shown to the checker.
    pub warnings: Vec<String>,
    /// Job-level journal entries: reservations at approval and retry, releases at cancel.
    pub postings: Vec<Posting>,
    /// Retry rounds so far.
    pub retries: u32,
}

impl Job {
    /// Moves one item's amount between two counters.
    pub fn count_move(&mut self, from: Option<ItemStatus>, to: ItemStatus, amount: Minor) {
        if let Some(f) = from {
            self.counts[f.index()] = self.counts[f.index()].saturating_sub(1);
            self.amounts[f.index()] -= amount;
        }
        self.counts[to.index()] += 1;
        self.amounts[to.index()] += amount;
    }

    /// A cancel was requested while items were in flight: the PENDING items are (being)
    /// cancelled, nothing more is sent, and the job ends CANCELLED once its PROCESSING
    /// and IN_DOUBT items settle (SPEC §5: a job stays PROCESSING while any item is
    /// IN_DOUBT). Derived from existing fields, so the record layout is unchanged: a
    /// running job never has `finished_at` otherwise, and old records never have both.
    pub fn cancel_requested(&self) -> bool {
        matches!(self.status, JobStatus::Processing | JobStatus::Paused) && self.finished_at.is_some()
    }

    /// Items not yet final.
    pub fn open_items(&self) -> u64 {
        [ItemStatus::Pending, ItemStatus::Processing, ItemStatus::InDoubt].iter().map(|s| self.counts[s.index()]).sum()
    }

    /// Valid items (everything but INVALID).
    pub fn valid_count(&self) -> u64 {
        self.counts.iter().sum::<u64>() - self.counts[ItemStatus::Invalid.index()]
    }

    /// Their total.
    pub fn valid_amount(&self) -> Minor {
        self.amounts.iter().sum::<Minor>() - self.amounts[ItemStatus::Invalid.index()]
    }
}

/// One line of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Line in the file (the header is line 1).
    pub line: u32,
    /// Payee (`None` only for INVALID rows whose number did not parse).
    pub msisdn: Option<Msisdn>,
    /// Minor units (0 for INVALID rows whose amount did not parse).
    pub amount: Minor,
    /// The row as uploaded, kept for INVALID rows only (errors.csv).
    pub raw: Vec<String>,
    /// Caller's reference.
    pub reference: Option<String>,
    /// Payee name (informational, never sent to the SDK).
    pub name: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// Status.
    pub status: ItemStatus,
    /// ON_US or SDK, once known.
    pub route: Option<Route>,
    /// The transfer of the current attempt (fixed when the attempt is created).
    pub transfer_id: Uuid,
    /// The SDK's id.
    pub sdk_transfer_id: Option<String>,
    /// Why it failed or is in doubt.
    pub error: Option<TransferError>,
    /// Attempts so far (SDK_UNREACHABLE and retries add one).
    pub attempts: u32,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it became COMPLETED.
    pub completed_at: Option<Timestamp>,
}

/// The transfer id of attempt `attempt` of a line: derived, so it is fixed when the
/// attempt is created and the same after any restart.
pub fn item_transfer_id(job: Uuid, line: u32, attempt: u32) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"sysgp-bulk-item-v1");
    h.update(job.as_bytes());
    h.update(line.to_be_bytes());
    h.update(attempt.to_be_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_transfer_ids_are_fixed_per_attempt_and_distinct_across_attempts() {
        let job = Uuid::nil();
        assert_eq!(item_transfer_id(job, 7, 0), item_transfer_id(job, 7, 0));
        assert_ne!(item_transfer_id(job, 7, 0), item_transfer_id(job, 7, 1));
        assert_ne!(item_transfer_id(job, 7, 0), item_transfer_id(job, 8, 0));
        assert_eq!(item_transfer_id(job, 7, 0).get_version_num(), 4);
    }

    #[test]
    fn counters_move_with_their_amounts() {
        let mut counts = [0u64; 7];
        counts[ItemStatus::Pending.index()] = 2;
        assert_eq!(ItemStatus::ALL.len(), counts.len());
        assert_eq!(ItemStatus::parse("IN_DOUBT"), Some(ItemStatus::InDoubt));
        assert!(JobStatus::Rejected.is_final() && !JobStatus::Paused.is_final());
    }
}
