//! Store keys: fixed-width, big-endian, so that byte order is the order we list in.

use uuid::Uuid;

use crate::ledger::{AccountKey, Timestamp, TransferStatus};

/// Width of an encoded [`AccountKey`].
pub const ACCOUNT_KEY_LEN: usize = 9;
/// Width of an [`OrderKey`].
pub const ORDER_KEY_LEN: usize = 16;

/// `tag | payload`: wallets by MSISDN as u64, system accounts by currency code.
pub fn account(key: &AccountKey) -> [u8; ACCOUNT_KEY_LEN] {
    let mut out = [0u8; ACCOUNT_KEY_LEN];
    match key {
        AccountKey::Wallet(m) => {
            out[0] = 1;
            out[1..].copy_from_slice(&m.as_u64().to_be_bytes());
        }
        AccountKey::Cash(c) => {
            out[0] = 2;
            out[1..4].copy_from_slice(c.code().as_bytes());
        }
        AccountKey::Settlement(c) => {
            out[0] = 3;
            out[1..4].copy_from_slice(c.code().as_bytes());
        }
    }
    out
}

/// Creation time then sequence: unique, and sorted the way lists are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    /// Creation time.
    pub at: Timestamp,
    /// Store-wide sequence number.
    pub seq: u64,
}

impl OrderKey {
    /// Big-endian bytes (times before 1970 do not occur).
    pub fn to_bytes(self) -> [u8; ORDER_KEY_LEN] {
        let mut out = [0u8; ORDER_KEY_LEN];
        out[..8].copy_from_slice(&(self.at.0.max(0) as u64).to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Parses 16 bytes back.
    pub fn from_bytes(bytes: &[u8]) -> Option<OrderKey> {
        let bytes: [u8; ORDER_KEY_LEN] = bytes.try_into().ok()?;
        let at = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let seq = u64::from_be_bytes(bytes[8..].try_into().ok()?);
        Some(OrderKey { at: Timestamp(i64::try_from(at).ok()?), seq })
    }

    /// Opaque cursor text for list paging.
    pub fn to_cursor(self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Parses a cursor made by [`OrderKey::to_cursor`].
    pub fn from_cursor(text: &str) -> Option<OrderKey> {
        OrderKey::from_bytes(&hex::decode(text).ok()?)
    }

    /// The smallest key at or after `at`.
    pub fn first_at(at: Timestamp) -> OrderKey {
        OrderKey { at, seq: 0 }
    }
}

/// `account | order` → transfer id: a wallet's statement.
pub fn by_account(account_key: &AccountKey, order: OrderKey) -> Vec<u8> {
    [&account(account_key)[..], &order.to_bytes()].concat()
}

/// `status tag | order` → transfer id.
pub fn by_status(status: TransferStatus, order: OrderKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ORDER_KEY_LEN);
    out.push(status.tag());
    out.extend_from_slice(&order.to_bytes());
    out
}

/// `owner id | index` → posting. The owner is a transfer or a bulk job.
pub fn posting(owner: Uuid, index: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..16].copy_from_slice(owner.as_bytes());
    out[16..].copy_from_slice(&index.to_be_bytes());
    out
}

/// `job | line` → item: a job's items in file order.
pub fn item(job: Uuid, line: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..16].copy_from_slice(job.as_bytes());
    out[16..].copy_from_slice(&line.to_be_bytes());
    out
}

/// `source | hash` → job id (duplicate files and contents).
pub fn job_hash(source: &crate::ledger::Msisdn, hash: &[u8; 32]) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&source.as_u64().to_be_bytes());
    out[8..].copy_from_slice(hash);
    out
}

/// `actor | 0 | key` → idempotency record (keys are scoped to the acting user).
pub fn idempotency(actor: &str, key: &str) -> Vec<u8> {
    [actor.as_bytes(), &[0], key.as_bytes()].concat()
}

/// `account | reference` → reference record.
pub fn reference(account_key: &AccountKey, reference: &str) -> Vec<u8> {
    [&account(account_key)[..], reference.as_bytes()].concat()
}

/// `expires at | key`: sweep index for records that live a bounded time.
pub fn expiry(at: Timestamp, key: &[u8]) -> Vec<u8> {
    [&(at.0.max(0) as u64).to_be_bytes()[..], key].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Currency, Msisdn};

    #[test]
    fn order_keys_sort_by_time_then_sequence_and_round_trip() {
        let a = OrderKey { at: Timestamp(5), seq: 9 };
        let b = OrderKey { at: Timestamp(6), seq: 1 };
        assert!(a.to_bytes() < b.to_bytes());
        assert_eq!(OrderKey::from_cursor(&a.to_cursor()), Some(a));
        assert_eq!(OrderKey::from_cursor("zz"), None);
    }

    #[test]
    fn account_keys_are_fixed_width_and_distinct() {
        let xof = Currency::parse("XOF").expect("XOF");
        let w = AccountKey::Wallet(Msisdn::parse("22507000001").expect("msisdn"));
        let keys = [account(&w), account(&AccountKey::Cash(xof)), account(&AccountKey::Settlement(xof))];
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
    }
}
