//! The four ledger invariants of SPEC §2, checked over a whole store by `sysgp check`
//! and by the tests after every scenario:
//! 1. per currency, the sum of all accounts' `available + reserved` is exactly 0;
//! 2. no wallet has negative `available` or `reserved`;
//! 3. a wallet's `reserved` equals the sum of its open reservations;
//! 4. a transfer is applied at most once: its postings match its status exactly.
//!
//! In addition every account's buckets must equal the sum of the journal.

use std::collections::{BTreeMap, HashMap};

use super::{Account, AccountKey, Bucket, Currency, Leg, Minor, Posting, PostingKind, Route, Transfer, TransferStatus};

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1–4 as in SPEC §2, 5 for a journal mismatch.
    pub invariant: u8,
    /// What is wrong, without whole MSISDNs.
    pub message: String,
}

/// Accumulates accounts, open reservations and postings, then reports violations.
#[derive(Default)]
pub struct InvariantChecker {
    sums: BTreeMap<Currency, Minor>,
    accounts: HashMap<AccountKey, (Minor, Minor)>,
    open_reserved: HashMap<AccountKey, Minor>,
    journal: HashMap<Leg, Minor>,
    violations: Vec<Violation>,
    /// Number of accounts seen.
    pub account_count: u64,
    /// Number of transfers seen.
    pub transfer_count: u64,
}

impl InvariantChecker {
    /// A checker with nothing seen yet.
    pub fn new() -> InvariantChecker {
        InvariantChecker::default()
    }

    fn violate(&mut self, invariant: u8, message: String) {
        self.violations.push(Violation { invariant, message });
    }

    /// Adds an account (invariants 1 and 2).
    pub fn add_account(&mut self, account: &Account) {
        self.account_count += 1;
        let sum = self.sums.entry(account.currency).or_insert(0);
        *sum = sum.saturating_add(account.available).saturating_add(account.reserved);
        if !account.key.is_system() && (account.available < 0 || account.reserved < 0) {
            self.violate(
                2,
                format!(
                    "wallet {:?} is negative: available {}, reserved {}",
                    account.key, account.available, account.reserved
                ),
            );
        }
        if account.key.is_system() && account.reserved != 0 {
            self.violate(2, format!("system account {} holds a reservation", account.key));
        }
        self.accounts.insert(account.key, (account.available, account.reserved));
    }

    /// Adds money held for an open transfer or a job's `reserved_remaining` (invariant 3).
    pub fn add_open_reservation(&mut self, account: AccountKey, amount: Minor) {
        *self.open_reserved.entry(account).or_insert(0) += amount;
    }

    /// Adds postings owned by a job (bulk reservations) to the journal.
    pub fn add_postings(&mut self, postings: &[Posting]) {
        for p in postings {
            *self.journal.entry(p.from).or_insert(0) -= p.amount;
            *self.journal.entry(p.to).or_insert(0) += p.amount;
        }
    }

    /// Records a violation found by the caller (bulk job bookkeeping).
    pub fn note(&mut self, invariant: u8, message: String) {
        self.violate(invariant, message);
    }

    /// Adds a transfer and its postings (invariants 3 and 4).
    pub fn add_transfer(&mut self, transfer: &Transfer, postings: &[Posting]) {
        self.transfer_count += 1;
        if transfer.holds_reservation() && transfer.bulk.is_none() {
            self.add_open_reservation(transfer.sender, transfer.amount);
        }
        if let Err(why) = postings_match_status(transfer, postings) {
            self.violate(4, format!("transfer {}: {why}", transfer.id));
        }
        self.add_postings(postings);
    }

    /// Reports every violation found.
    pub fn finish(mut self) -> Vec<Violation> {
        let sums: Vec<_> = self.sums.iter().filter(|(_, s)| **s != 0).map(|(c, s)| (*c, *s)).collect();
        for (currency, sum) in sums {
            self.violate(1, format!("{currency} accounts sum to {sum}, not 0"));
        }
        let accounts: Vec<_> = self.accounts.iter().map(|(k, v)| (*k, *v)).collect();
        for (key, (available, reserved)) in accounts {
            let open = self.open_reserved.get(&key).copied().unwrap_or(0);
            if !key.is_system() && reserved != open {
                self.violate(3, format!("wallet {key:?} reserves {reserved} but its open reservations sum to {open}"));
            }
            let j_avail = self.journal.get(&Leg { account: key, bucket: Bucket::Available }).copied().unwrap_or(0);
            let j_res = self.journal.get(&Leg { account: key, bucket: Bucket::Reserved }).copied().unwrap_or(0);
            if (j_avail, j_res) != (available, reserved) {
                self.violate(
                    5,
                    format!("account {key:?} holds {available}/{reserved} but its journal sums to {j_avail}/{j_res}"),
                );
            }
        }
        for key in self.open_reserved.keys() {
            if !self.accounts.contains_key(key) {
                self.violations
                    .push(Violation { invariant: 3, message: format!("reservation on unknown account {key:?}") });
            }
        }
        self.violations
    }
}

/// The postings a transfer must have in its status, as (kind, from, to).
fn expected_postings(t: &Transfer, settle_to: AccountKey) -> Vec<(PostingKind, Leg, Leg)> {
    let avail = |account| Leg { account, bucket: Bucket::Available };
    let reserved = |account| Leg { account, bucket: Bucket::Reserved };
    let reserve = (PostingKind::Reserve, avail(t.sender), reserved(t.sender));
    let post = (PostingKind::Post, reserved(t.sender), avail(settle_to));
    let void = (PostingKind::Void, reserved(t.sender), avail(t.sender));
    let one_step = (PostingKind::Transfer, avail(t.sender), avail(t.receiver));
    use TransferStatus::*;
    match (t.bulk.is_some(), t.route, t.status) {
        // Bulk items settle out of their job's reservation.
        (true, _, Completed) => vec![post],
        (true, _, Failed) if t.bulk.is_some_and(|b| b.requeued) => vec![],
        (true, _, Failed) => vec![void],
        (true, _, _) => vec![],
        (false, Route::Sdk, Pending | InDoubt) => vec![reserve],
        (false, Route::Sdk, Completed) => vec![reserve, post],
        (false, Route::Sdk, Failed) => vec![reserve, void],
        (false, Route::Sdk, _) => vec![],
        (false, _, Completed) => vec![one_step],
        (false, _, _) => vec![],
    }
}

/// Checks that `postings` are exactly what `t`'s status implies.
pub fn postings_match_status(t: &Transfer, postings: &[Posting]) -> Result<(), String> {
    let settle_to = match t.route {
        Route::Sdk => AccountKey::Settlement(t.currency),
        _ => t.receiver,
    };
    let expected = expected_postings(t, settle_to);
    let actual: Vec<_> = postings.iter().map(|p| (p.kind, p.from, p.to)).collect();
    if actual != expected {
        return Err(format!(
            "status {} route {} has postings {actual:?}, expected {expected:?}",
            t.status.as_str(),
            t.route.as_str()
        ));
    }
    if let Some(p) = postings.iter().find(|p| p.amount != t.amount) {
        return Err(format!("posting of {} for a transfer of {}", p.amount, t.amount));
    }
    Ok(())
}
