//! What the system answered to one operation, reduced to what the model predicts:
//! statuses and codes, plus the ids the system chose (the model takes identities
//! from the system, never outcomes).

use sysgp::bulk::model::{ItemStatus, JobStatus};
use sysgp::error::{Error, ErrorKind};
use sysgp::ledger::TransferStatus;
use sysgp::transfers::adjust::AdjustmentStatus;
use uuid::Uuid;

/// A refusal: the HTTP status the API would send and the error code.
pub type Refusal = (u16, String);

/// The answer to one operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// An error reply.
    Refused(Refusal),
    /// The replay of a stored business rejection.
    StoredReplay(Refusal),
    /// A transfer (created, replayed, approved, resolved…).
    Transfer { id: Uuid, status: TransferStatus, code: Option<String>, replayed: bool },
    /// An adjustment (requested, replayed, decided).
    Adjustment { id: Uuid, status: AdjustmentStatus, transfer: Option<Uuid>, replayed: bool },
    /// Done, nothing to report (wallet created, frozen, reconciliation attempted).
    Done,
    /// The operation had nothing to pick from.
    Skipped,
    /// A bulk job's whole life.
    Bulk(BulkObs),
}

/// What happened to a bulk job, stage by stage.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BulkObs {
    /// The job id, or why the upload was refused.
    pub upload: Option<Result<Uuid, Refusal>>,
    /// The status once validation ended.
    pub validated: Option<JobStatus>,
    /// The uploader's own approval attempt.
    pub self_approval: Option<Result<(), Refusal>>,
    /// The checker's approval or rejection.
    pub decision: Option<Result<(), Refusal>>,
    /// The status once every item that can finish has finished.
    pub status: Option<JobStatus>,
    /// Items in line order.
    pub items: Vec<ItemObs>,
}

/// One item at the end of a bulk operation.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemObs {
    /// File line (the header is line 1).
    pub line: u32,
    /// Status.
    pub status: ItemStatus,
    /// Error code.
    pub code: Option<String>,
    /// The transfer of its attempt.
    pub transfer: Uuid,
}

/// The HTTP status of an error kind (the API's mapping, SPEC §6).
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Invalid => 400,
        ErrorKind::Unauthenticated => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::LengthRequired => 411,
        ErrorKind::TooLarge => 413,
        ErrorKind::UnsupportedMedia => 415,
        ErrorKind::Rejected => 422,
        ErrorKind::TooMany => 429,
        ErrorKind::Unavailable => 503,
        ErrorKind::Internal => 500,
    }
}

/// An error as a refusal.
pub fn refusal(e: &Error) -> Refusal {
    (status_of(e.kind), e.code.clone())
}
