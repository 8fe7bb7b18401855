//! The ledger: pure domain types and rules for money, wallets, postings and transfers.
//!
//! No IO, no async, no store and no HTTP here: everything is a value or a function
//! over values, which is what makes this the most unit-tested part of the crate.
#![deny(clippy::float_arithmetic)]

mod account;
mod invariants;
mod money;
mod msisdn;
mod posting;
mod time;
mod transfer;

pub use account::{Account, AccountKey, AccountStatus};
pub use invariants::{postings_match_status, InvariantChecker, Violation};
pub use money::{
    check_amount_grammar, format_minor, major_to_minor, parse_amount, AmountError, Currency, CurrencyError, Minor,
    AMOUNT_MAJOR_CEILING, EXCLUDED_CURRENCIES,
};
pub use msisdn::{Msisdn, MsisdnError};
pub use posting::{post, reserve, transfer, void, Bucket, LedgerError, Leg, Posting, PostingKind};
pub use time::Timestamp;
pub use transfer::{
    BulkRef, IllegalTransition, Quote, QuotedMoney, Reconciliation, Resolution, Route, SdkPhase, SdkState, Transfer,
    TransferError, TransferStatus,
};
