//! Postings: every money movement debits one account bucket and credits another by
//! the same amount. The four movements are `transfer` (one step), `reserve`,
//! `post` (reserved → another account) and `void` (reserved → available).

use serde::{Deserialize, Serialize};

use super::{Account, AccountKey, Minor};

/// The part of an account a posting touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bucket {
    /// Spendable money.
    Available,
    /// Money held for an open transfer or job.
    Reserved,
}

/// One side of a posting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Leg {
    /// The account.
    pub account: AccountKey,
    /// Which of its buckets.
    pub bucket: Bucket,
}

/// What a posting does, for statements and for the consistency check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostingKind {
    /// A one-step movement between two accounts (ON_US, CASH, ADJUSTMENT).
    Transfer,
    /// Available → reserved on the same wallet.
    Reserve,
    /// Reserved → another account (SDK settlement, bulk item paid).
    Post,
    /// Reserved → available on the same wallet.
    Void,
}

/// A journal entry: `amount` leaves `from` and arrives in `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// Kind of movement.
    pub kind: PostingKind,
    /// The leg that loses `amount`.
    pub from: Leg,
    /// The leg that gains `amount`.
    pub to: Leg,
    /// Strictly positive minor units.
    pub amount: Minor,
}

/// A movement the ledger refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The wallet's available money does not cover the amount.
    #[error("insufficient funds: {shortfall} minor units short")]
    InsufficientFunds {
        /// How much is missing, in minor units.
        shortfall: Minor,
    },
    /// The two accounts hold different currencies.
    #[error("currency mismatch between {0:?} and {1:?}")]
    CurrencyMismatch(AccountKey, AccountKey),
    /// A reservation to settle is larger than what the wallet holds reserved: a bug.
    #[error("reservation of {amount} exceeds reserved {reserved} on {account:?}")]
    ReservationShort {
        /// The account.
        account: AccountKey,
        /// The amount to settle.
        amount: Minor,
        /// What it holds reserved.
        reserved: Minor,
    },
    /// Non-positive amount or arithmetic overflow: a bug.
    #[error("invalid posting amount {0}")]
    BadAmount(Minor),
}

fn leg(account: &Account, bucket: Bucket) -> Leg {
    Leg { account: account.key, bucket }
}

fn same_currency(a: &Account, b: &Account) -> Result<(), LedgerError> {
    if a.currency == b.currency {
        Ok(())
    } else {
        Err(LedgerError::CurrencyMismatch(a.key, b.key))
    }
}

fn checked(value: Option<Minor>, amount: Minor) -> Result<Minor, LedgerError> {
    value.ok_or(LedgerError::BadAmount(amount))
}

/// Takes `amount` from `account.available`; wallets may not go below zero.
fn debit_available(account: &mut Account, amount: Minor) -> Result<(), LedgerError> {
    if amount <= 0 {
        return Err(LedgerError::BadAmount(amount));
    }
    if !account.key.is_system() && account.available < amount {
        return Err(LedgerError::InsufficientFunds { shortfall: amount - account.available });
    }
    account.available = checked(account.available.checked_sub(amount), amount)?;
    Ok(())
}

/// Takes `amount` out of `account.reserved`, which must hold it.
fn debit_reserved(account: &mut Account, amount: Minor) -> Result<(), LedgerError> {
    if amount <= 0 {
        return Err(LedgerError::BadAmount(amount));
    }
    if account.reserved < amount {
        return Err(LedgerError::ReservationShort { account: account.key, amount, reserved: account.reserved });
    }
    account.reserved -= amount;
    Ok(())
}

/// One-step movement `from.available → to.available` (ON_US, CASH, ADJUSTMENT).
pub fn transfer(from: &mut Account, to: &mut Account, amount: Minor) -> Result<Posting, LedgerError> {
    same_currency(from, to)?;
    debug_assert_ne!(from.key, to.key);
    let credited = checked(to.available.checked_add(amount), amount)?;
    debit_available(from, amount)?;
    to.available = credited;
    Ok(Posting {
        kind: PostingKind::Transfer,
        from: leg(from, Bucket::Available),
        to: leg(to, Bucket::Available),
        amount,
    })
}

/// Holds `amount` on a wallet: available → reserved.
pub fn reserve(wallet: &mut Account, amount: Minor) -> Result<Posting, LedgerError> {
    let reserved = checked(wallet.reserved.checked_add(amount), amount)?;
    debit_available(wallet, amount)?;
    wallet.reserved = reserved;
    Ok(Posting {
        kind: PostingKind::Reserve,
        from: leg(wallet, Bucket::Available),
        to: leg(wallet, Bucket::Reserved),
        amount,
    })
}

/// Settles a reservation: `from.reserved → to.available`.
pub fn post(from: &mut Account, to: &mut Account, amount: Minor) -> Result<Posting, LedgerError> {
    same_currency(from, to)?;
    let credited = checked(to.available.checked_add(amount), amount)?;
    debit_reserved(from, amount)?;
    to.available = credited;
    Ok(Posting { kind: PostingKind::Post, from: leg(from, Bucket::Reserved), to: leg(to, Bucket::Available), amount })
}

/// Releases a reservation: reserved → available on the same wallet.
pub fn void(wallet: &mut Account, amount: Minor) -> Result<Posting, LedgerError> {
    let available = checked(wallet.available.checked_add(amount), amount)?;
    debit_reserved(wallet, amount)?;
    wallet.available = available;
    Ok(Posting {
        kind: PostingKind::Void,
        from: leg(wallet, Bucket::Reserved),
        to: leg(wallet, Bucket::Available),
        amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Currency, Msisdn, Timestamp};

    fn wallet(n: &str, available: Minor) -> Account {
        let mut a = Account::new_wallet(Msisdn::parse(n).expect("msisdn"), xof(), None, Timestamp(0));
        a.available = available;
        a
    }
    fn xof() -> Currency {
        Currency::parse("XOF").expect("XOF")
    }

    #[test]
    fn transfer_moves_available_money_and_refuses_overdraft() {
        let mut a = wallet("22507000001", 100);
        let mut b = wallet("22507000002", 0);
        let p = transfer(&mut a, &mut b, 60).expect("funded");
        assert_eq!((a.available, b.available, p.amount), (40, 60, 60));
        assert_eq!(transfer(&mut a, &mut b, 41), Err(LedgerError::InsufficientFunds { shortfall: 1 }));
        assert_eq!((a.available, b.available), (40, 60), "a refused posting changes nothing");
    }

    #[test]
    fn system_accounts_may_go_negative() {
        let mut cash = Account::new_system(AccountKey::Cash(xof()), xof(), Timestamp(0));
        let mut w = wallet("22507000001", 0);
        transfer(&mut cash, &mut w, 500).expect("deposit");
        assert_eq!((cash.available, w.available), (-500, 500));
    }

    #[test]
    fn reserve_then_post_or_void_keeps_the_balance_until_settled() {
        let mut w = wallet("22507000001", 100);
        let mut settlement = Account::new_system(AccountKey::Settlement(xof()), xof(), Timestamp(0));
        reserve(&mut w, 30).expect("reserve");
        assert_eq!((w.available, w.reserved, w.balance()), (70, 30, 100));
        post(&mut w, &mut settlement, 20).expect("post");
        assert_eq!((w.reserved, settlement.available), (10, 20));
        void(&mut w, 10).expect("void");
        assert_eq!((w.available, w.reserved, w.balance()), (80, 0, 80));
        assert!(matches!(void(&mut w, 1), Err(LedgerError::ReservationShort { .. })));
    }

    #[test]
    fn zero_negative_and_cross_currency_postings_are_refused() {
        let mut a = wallet("22507000001", 100);
        let mut b = wallet("22507000002", 0);
        assert_eq!(transfer(&mut a, &mut b, 0), Err(LedgerError::BadAmount(0)));
        assert_eq!(reserve(&mut a, -5), Err(LedgerError::BadAmount(-5)));
        b.currency = Currency::parse("USD").expect("USD");
        assert!(matches!(transfer(&mut a, &mut b, 1), Err(LedgerError::CurrencyMismatch(..))));
    }
}
