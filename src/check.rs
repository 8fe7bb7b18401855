//! `sysgp check`: every ledger invariant of SPEC §2 over a whole store.

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
