//! `sysgp check`: every ledger invariant of SPEC §2 over a whole store, and the
//! verdict that `sysgp check` and `sysgp check --live` both print (SPEC §9: the
//! invariants and the audit chain).

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::auth::audit::VerifyReport;
use crate::ledger::{InvariantChecker, Violation};
use crate::store::{Store, StoreError};

/// What a check found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Accounts examined.
    pub accounts: u64,
    /// Transfers examined.
    pub transfers: u64,
    /// Broken invariants (empty when all hold).
    pub violations: Vec<Violation>,
}

impl CheckReport {
    /// True when every invariant holds.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks the four invariants and the journal against every account.
pub fn check_store(store: &Store) -> Result<CheckReport, StoreError> {
    let mut checker = InvariantChecker::new();
    for account in store.all_accounts() {
        checker.add_account(&account?);
    }
    for transfer in store.all_transfers() {
        let transfer = transfer?;
        checker.add_transfer(&transfer, &transfer.postings);
    }
    // A bulk job holds its open items' money on the source wallet (invariant 3) and
    // journals its reservations and releases itself.
    for job in store.scan_tree::<crate::bulk::model::Job>(crate::store::TreeId::Jobs)? {
        checker.add_postings(&job.postings);
        checker.add_open_reservation(crate::ledger::AccountKey::Wallet(job.source), job.reserved_remaining);
        let held = job.amounts[crate::bulk::model::ItemStatus::Pending.index()]
            + job.amounts[crate::bulk::model::ItemStatus::Processing.index()]
            + job.amounts[crate::bulk::model::ItemStatus::InDoubt.index()];
        let approved = job.started_at.is_some();
        if approved && !job.status.is_final() && held != job.reserved_remaining {
            checker.note(
                3,
                format!("job {} holds {} reserved but its open items sum to {held}", job.id, job.reserved_remaining),
            );
        }
    }
    let (accounts, transfers) = (checker.account_count, checker.transfer_count);
    Ok(CheckReport { accounts, transfers, violations: checker.finish() })
}

/// The first audit entry verification rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadAuditEntry {
    /// Its seq.
    pub seq: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// What the audit chain check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChainVerdict {
    /// Every entry verifies.
    Verified {
        /// Entries in the log.
        entries: u64,
    },
    /// An entry was rejected.
    Broken {
        /// Entries in the log.
        entries: u64,
        /// The first one rejected.
        first_bad: BadAuditEntry,
    },
    /// No `SECRET_KEY`, so the chain could not be verified: never a success.
    NoKey,
}

impl From<&VerifyReport> for ChainVerdict {
    fn from(r: &VerifyReport) -> ChainVerdict {
        // `ok` is defined as "no entry rejected"; trust `first_bad`, the stronger fact.
        debug_assert_eq!(r.ok, r.first_bad.is_none());
        match &r.first_bad {
            None => ChainVerdict::Verified { entries: r.entries },
            Some(b) => ChainVerdict::Broken {
                entries: r.entries,
                first_bad: BadAuditEntry { seq: b.seq, reason: b.reason.clone() },
            },
        }
    }
}

/// Everything `sysgp check` reports: the same for the offline command and the live one
/// (the server computes it and sends it over the admin socket).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// Accounts examined.
    pub accounts: u64,
    /// Transfers examined.
    pub transfers: u64,
    /// One line per broken invariant.
    pub violations: Vec<String>,
    /// The audit chain.
    pub audit: ChainVerdict,
}

impl Verdict {
    /// Joins the invariant check and the chain check.
    pub fn new(report: &CheckReport, audit: ChainVerdict) -> Verdict {
        let violations =
            report.violations.iter().map(|v| format!("invariant {} violated: {}", v.invariant, v.message)).collect();
        Verdict { accounts: report.accounts, transfers: report.transfers, violations, audit }
    }

    /// True when every invariant holds and the chain verifies.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && matches!(self.audit, ChainVerdict::Verified { .. })
    }

    /// Prints every finding on stdout and, when anything failed or could not be
    /// checked, one line on stderr saying why the exit status is a failure.
    pub fn print(&self) -> ExitCode {
        match &self.audit {
            ChainVerdict::Verified { entries } => println!("ok: audit chain of {entries} entries verifies"),
            ChainVerdict::Broken { first_bad, .. } => {
                println!("audit chain broken at seq {}: {}", first_bad.seq, first_bad.reason)
            }
            ChainVerdict::NoKey => {}
        }
        if self.violations.is_empty() {
            println!("ok: {} accounts, {} transfers, every invariant holds", self.accounts, self.transfers);
        } else {
            for v in &self.violations {
                println!("{v}");
            }
            println!(
                "FAILED: {} violations in {} accounts, {} transfers",
                self.violations.len(),
                self.accounts,
                self.transfers
            );
        }
        let mut failures = Vec::new();
        if !self.violations.is_empty() {
            failures.push(format!("{} invariant violations", self.violations.len()));
        }
        match &self.audit {
            ChainVerdict::Verified { .. } => {}
            ChainVerdict::Broken { first_bad, .. } => {
                failures.push(format!("the audit chain is broken at seq {} ({})", first_bad.seq, first_bad.reason))
            }
            ChainVerdict::NoKey => failures.push(
                "SECRET_KEY is needed to verify the audit chain: set it (environment or --env-file) and run the \
                 check again"
                    .into(),
            ),
        }
        if failures.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!("sysgp: check failed: {}", failures.join("; "));
        ExitCode::FAILURE
    }
}
