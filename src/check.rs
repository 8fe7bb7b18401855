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
    let (accounts, transfers) = (checker.account_count, checker.transfer_count);
    Ok(CheckReport { accounts, transfers, violations: checker.finish() })
}
