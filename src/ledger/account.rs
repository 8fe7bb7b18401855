//! Accounts: customer wallets and the per-currency system accounts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Currency, Minor, Msisdn, Timestamp};

/// Identifies an account: a wallet by its MSISDN, or a system account by currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccountKey {
    /// A customer wallet.
    Wallet(Msisdn),
    /// `SYS:CASH:<CUR>`: source of deposits, sink of withdrawals.
    Cash(Currency),
    /// `SYS:SETTLEMENT:<CUR>`: money that left through the SDK.
    Settlement(Currency),
}

impl AccountKey {
    /// Parses `22507000001`, `+225 07…` or `SYS:CASH:XOF` / `SYS:SETTLEMENT:XOF`.
    pub fn parse(text: &str) -> Option<AccountKey> {
        if let Some(code) = text.strip_prefix("SYS:CASH:") {
            return Currency::parse(code).ok().map(AccountKey::Cash);
        }
        if let Some(code) = text.strip_prefix("SYS:SETTLEMENT:") {
            return Currency::parse(code).ok().map(AccountKey::Settlement);
        }
        Msisdn::parse(text).ok().map(AccountKey::Wallet)
    }

    /// True for `SYS:*` accounts, which may go negative and cannot be transfer parties.
    pub fn is_system(&self) -> bool {
        !matches!(self, AccountKey::Wallet(_))
    }

    /// The wallet's MSISDN, if this is a wallet.
    pub fn msisdn(&self) -> Option<Msisdn> {
        match self {
            AccountKey::Wallet(m) => Some(*m),
            _ => None,
        }
    }

    /// Text safe for logs: wallets masked, system accounts in full.
    pub fn masked(&self) -> String {
        match self {
            AccountKey::Wallet(m) => m.masked(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountKey::Wallet(m) => write!(f, "{m}"),
            AccountKey::Cash(c) => write!(f, "SYS:CASH:{c}"),
            AccountKey::Settlement(c) => write!(f, "SYS:SETTLEMENT:{c}"),
        }
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Whether a wallet may send and receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountStatus {
    /// Normal operation.
    Active,
    /// Can neither send nor receive; open reservations still settle.
    Frozen,
}

impl AccountStatus {
    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Frozen => "FROZEN",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<AccountStatus> {
        match text {
            "ACTIVE" => Some(AccountStatus::Active),
            "FROZEN" => Some(AccountStatus::Frozen),
            _ => None,
        }
    }
}

/// A wallet or system account. `balance` is `available + reserved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Identity.
    pub key: AccountKey,
    /// Currency of every amount in the account.
    pub currency: Currency,
    /// Active or frozen.
    pub status: AccountStatus,
    /// Optional customer name, never sent to the SDK.
    pub display_name: Option<String>,
    /// Spendable money. Never negative for wallets.
    pub available: Minor,
    /// Money held by open reservations (PENDING / IN_DOUBT transfers, bulk jobs).
    pub reserved: Minor,
    /// Creation time.
    pub created_at: Timestamp,
    /// Why the wallet was last frozen or unfrozen.
    pub status_reason: Option<String>,
}

impl Account {
    /// A new, empty, active wallet.
    pub fn new_wallet(msisdn: Msisdn, currency: Currency, display_name: Option<String>, now: Timestamp) -> Account {
        Account::empty(AccountKey::Wallet(msisdn), currency, display_name, now)
    }

    /// A new system account (cash or settlement) for `key`'s currency.
    pub fn new_system(key: AccountKey, currency: Currency, now: Timestamp) -> Account {
        debug_assert!(key.is_system());
        Account::empty(key, currency, None, now)
    }

    fn empty(key: AccountKey, currency: Currency, display_name: Option<String>, now: Timestamp) -> Account {
        Account {
            key,
            currency,
            status: AccountStatus::Active,
            display_name,
            available: 0,
            reserved: 0,
            created_at: now,
            status_reason: None,
        }
    }

    /// `available + reserved`.
    pub fn balance(&self) -> Minor {
        self.available.saturating_add(self.reserved)
    }

    /// True when the wallet is frozen.
    pub fn is_frozen(&self) -> bool {
        self.status == AccountStatus::Frozen
    }
}
