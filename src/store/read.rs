//! Typed reads and list queries, safe on any thread. Reads see committed batches,
//! which may be a few milliseconds ahead of what is fdatasync'ed.

use uuid::Uuid;

use super::keys::{self, OrderKey, ORDER_KEY_LEN};
use super::repo::IdempotencyRecord;
use super::{codec, Store, StoreError, TreeId};
use crate::ledger::{
    Account, AccountKey, AccountStatus, Currency, Msisdn, Posting, Route, Timestamp, Transfer, TransferStatus,
};

/// Index entries examined per list page before returning a short page with a cursor.
/// Bounds the work of one request when filters match rarely.
const SCAN_MAX: usize = 20_000;

/// One page of a list, newest first.
#[derive(Debug)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when there is nothing older.
    pub next_cursor: Option<String>,
}

/// Filters of `GET /api/v1/transfers/`.
#[derive(Clone, Debug, Default)]
pub struct TransferQuery {
    /// Sender or receiver.
    pub msisdn: Option<Msisdn>,
    /// Only this status.
    pub status: Option<TransferStatus>,
    /// Only this route.
    pub route: Option<Route>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created at or before.
    pub until: Option<Timestamp>,
    /// Page size.
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<OrderKey>,
}

/// Filters of `GET /api/v1/accounts/`.
#[derive(Clone, Debug, Default)]
pub struct AccountQuery {
    /// MSISDN prefix (digits) or a case-insensitive part of the display name.
    pub q: Option<String>,
    /// Only this currency.
    pub currency: Option<Currency>,
    /// Only this status.
    pub status: Option<AccountStatus>,
    /// Page size.
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<OrderKey>,
}

impl AccountQuery {
    fn matches(&self, a: &Account) -> bool {
        if self.currency.is_some_and(|c| c != a.currency) || self.status.is_some_and(|s| s != a.status) {
            return false;
        }
        match &self.q {
            None => true,
            Some(q) => {
                let digits: String = q.chars().filter(|c| c.is_ascii_digit()).collect();
                let by_number = !digits.is_empty() && a.key.to_string().starts_with(&digits);
                let needle = q.to_lowercase();
                let by_name = a.display_name.as_ref().is_some_and(|n| n.to_lowercase().contains(&needle));
                by_number || by_name
            }
        }
    }
}

impl TransferQuery {
    fn matches(&self, t: &Transfer) -> bool {
        let party = |m: Msisdn| t.sender == AccountKey::Wallet(m) || t.receiver == AccountKey::Wallet(m);
        self.msisdn.is_none_or(party)
            && self.status.is_none_or(|s| s == t.status)
            && self.route.is_none_or(|r| r == t.route)
    }
}

impl Store {
    fn get<T: serde::de::DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.inner.tree(tree).get(key)?.map(|v| codec::decode(&v)).transpose()
    }

    /// Reads an account.
    pub fn account(&self, key: &AccountKey) -> Result<Option<Account>, StoreError> {
        self.get(TreeId::Accounts, &keys::account(key))
    }

    /// Reads a transfer.
    pub fn transfer(&self, id: Uuid) -> Result<Option<Transfer>, StoreError> {
        self.get(TreeId::Transfers, id.as_bytes())
    }

    /// Our transfer that the SDK's transfer `sdk_id` belongs to, if any.
    pub fn transfer_of_sdk_id(&self, sdk_id: &str) -> Result<Option<Uuid>, StoreError> {
        let raw = self.inner.tree(TreeId::TransfersBySdkId).get(sdk_id.as_bytes())?;
        Ok(raw.and_then(|r| Uuid::from_slice(&r).ok()))
    }

    /// Reads an idempotency record.
    pub fn idempotency(&self, actor: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get(TreeId::Idempotency, &keys::idempotency(actor, key))
    }

    /// The journal entries owned by a transfer or job, in order.
    pub fn postings(&self, owner: Uuid) -> Result<Vec<Posting>, StoreError> {
        self.inner
            .tree(TreeId::Postings)
            .scan_prefix(owner.as_bytes())
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| codec::decode(&v)))
            .collect()
    }

    /// Every account (for `check` and the dashboard).
    pub fn all_accounts(&self) -> impl Iterator<Item = Result<Account, StoreError>> + '_ {
        self.inner
            .tree(TreeId::Accounts)
            .iter()
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| codec::decode(&v)))
    }

    /// Up to `limit` system accounts after `after` (cash accounts, then settlement
    /// accounts, each by currency code): a range of their own in the accounts tree, so
    /// listing them never walks the wallets.
    pub fn system_accounts(&self, after: Option<&AccountKey>, limit: usize) -> Result<Page<Account>, StoreError> {
        let tree = self.inner.tree(TreeId::Accounts);
        let range = match after {
            Some(key) => {
                tree.range((std::ops::Bound::Excluded(keys::account(key).to_vec()), std::ops::Bound::Unbounded))
            }
            None => tree.range(vec![2u8]..),
        };
        let mut items: Vec<Account> = Vec::new();
        for entry in range {
            let (_, value) = entry?;
            let account: Account = codec::decode(&value)?;
            if items.len() == limit {
                let next_cursor = items.last().map(|a| a.key.to_string());
                return Ok(Page { items, next_cursor });
            }
            items.push(account);
        }
        Ok(Page { items, next_cursor: None })
    }

    /// Every transfer, in id order (for `check`).
    pub fn all_transfers(&self) -> impl Iterator<Item = Result<Transfer, StoreError>> + '_ {
        self.inner
            .tree(TreeId::Transfers)
            .iter()
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| codec::decode(&v)))
    }

    /// Transfers in one open status (see `TransferStatus::is_open`), oldest first.
    pub fn transfers_with_status(&self, status: TransferStatus) -> Result<Vec<Transfer>, StoreError> {
        debug_assert!(status.is_open(), "only open statuses are indexed");
        let mut out = Vec::new();
        for entry in self.inner.tree(TreeId::TransfersByStatus).scan_prefix([status.tag()]) {
            let (_, id) = entry?;
            if let Some(t) = self.transfer(uuid_of(&id)?)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Number of transfers in one open status.
    pub fn count_with_status(&self, status: TransferStatus) -> usize {
        self.inner.tree(TreeId::TransfersByStatus).scan_prefix([status.tag()]).count()
    }

    /// A page of transfers, newest first, using the most selective index.
    pub fn list_transfers(&self, q: &TransferQuery) -> Result<Page<Transfer>, StoreError> {
        let (tree, prefix) = match (q.msisdn, q.status) {
            (Some(m), _) => (TreeId::TransfersByAccount, keys::account(&AccountKey::Wallet(m)).to_vec()),
            (None, Some(s)) if s.is_open() => (TreeId::TransfersByStatus, vec![s.tag()]),
            (None, _) => (TreeId::TransfersOrder, Vec::new()),
        };
        let low = OrderKey::first_at(q.since.unwrap_or(Timestamp(0)));
        let mut high = q
            .until
            .map(|u| OrderKey { at: u, seq: u64::MAX })
            .unwrap_or(OrderKey { at: Timestamp(i64::MAX), seq: u64::MAX });
        if let Some(c) = q.cursor {
            high = high.min(c);
        }
        let range = self.inner.tree(tree).range(with_prefix(&prefix, low)..with_prefix(&prefix, high));
        self.collect_page(range.rev(), q.limit, |id| Ok(self.transfer(uuid_of(id)?)?.filter(|t| q.matches(t))))
    }

    /// A page of accounts, newest first.
    pub fn list_accounts(&self, q: &AccountQuery) -> Result<Page<Account>, StoreError> {
        let high = q.cursor.unwrap_or(OrderKey { at: Timestamp(i64::MAX), seq: u64::MAX });
        let range = self.inner.tree(TreeId::AccountsOrder).range(..high.to_bytes().to_vec());
        self.collect_page(range.rev(), q.limit, |key| {
            Ok(self.get::<Account>(TreeId::Accounts, key)?.filter(|a| !a.key.is_system() && q.matches(a)))
        })
    }

    /// A page of any record listed through an order-key index (newest first).
    pub fn list_by_order<T: serde::de::DeserializeOwned>(
        &self,
        order_tree: TreeId,
        record_tree: TreeId,
        limit: usize,
        cursor: Option<OrderKey>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Page<T>, StoreError> {
        let high = cursor.unwrap_or(OrderKey { at: Timestamp(i64::MAX), seq: u64::MAX });
        let range = self.inner.tree(order_tree).range(..high.to_bytes().to_vec());
        self.collect_page(range.rev(), limit, |key| Ok(self.get::<T>(record_tree, key)?.filter(|r| keep(r))))
    }

    /// Walks index entries (key ends with an order key, value is the record key),
    /// keeping matches until `limit` are found or the scan budget is spent.
    fn collect_page<T>(
        &self,
        entries: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        limit: usize,
        mut load: impl FnMut(&[u8]) -> Result<Option<T>, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut items = Vec::new();
        let mut last_order = None;
        for (scanned, entry) in entries.enumerate() {
            let (key, value) = entry?;
            let order = order_suffix(&key)?;
            if items.len() == limit {
                // One more match exists beyond the page: the page ends at the last item.
                if load(&value)?.is_some() {
                    return Ok(Page { items, next_cursor: last_order.map(OrderKey::to_cursor) });
                }
            } else if let Some(item) = load(&value)? {
                items.push(item);
                last_order = Some(order);
            }
            if scanned + 1 >= SCAN_MAX {
                return Ok(Page { items, next_cursor: Some(order.to_cursor()) });
            }
        }
        Ok(Page { items, next_cursor: None })
    }
}

fn with_prefix(prefix: &[u8], order: OrderKey) -> Vec<u8> {
    [prefix, &order.to_bytes()].concat()
}

fn order_suffix(key: &[u8]) -> Result<OrderKey, StoreError> {
    key.len()
        .checked_sub(ORDER_KEY_LEN)
        .and_then(|start| OrderKey::from_bytes(&key[start..]))
        .ok_or_else(|| StoreError::Codec("index key without order suffix".into()))
}

fn uuid_of(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|e| StoreError::Codec(e.to_string()))
}

impl Store {
    /// Up to `limit` expiry entries (`created at | record key`) created before `before`.
    pub fn expired_entries(
        &self,
        expiry_tree: TreeId,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = (before.0.max(0) as u64).to_be_bytes();
        self.inner
            .tree(expiry_tree)
            .range(..end.to_vec())
            .take(limit)
            .map(|r| r.map(|(k, _)| k.to_vec()).map_err(StoreError::from))
            .collect()
    }
}

impl Store {
    /// Reads and decodes one record of any tree.
    pub fn record<T: serde::de::DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get(tree, key)
    }

    /// Every record of a small tree (users), in key order.
    pub fn scan_tree<T: serde::de::DeserializeOwned>(&self, tree: TreeId) -> Result<Vec<T>, StoreError> {
        self.inner.tree(tree).iter().map(|r| r.map_err(StoreError::from).and_then(|(_, v)| codec::decode(&v))).collect()
    }

    /// Records of a tree keyed by big-endian sequence numbers, newest first, below `before`.
    pub fn scan_back<T: serde::de::DeserializeOwned>(
        &self,
        tree: TreeId,
        before: Option<u64>,
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        let high = before.unwrap_or(u64::MAX).to_be_bytes().to_vec();
        self.inner
            .tree(tree)
            .range(..high)
            .rev()
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| codec::decode(&v)))
    }

    /// Records of a sequence-keyed tree in order.
    pub fn scan_forward<T: serde::de::DeserializeOwned>(
        &self,
        tree: TreeId,
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        self.inner.tree(tree).iter().map(|r| r.map_err(StoreError::from).and_then(|(_, v)| codec::decode(&v)))
    }
}

impl Store {
    /// A raw value (index entries whose value is a record key).
    pub fn raw(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.tree(tree).get(key)?.map(|v| v.to_vec()))
    }
}

impl Store {
    /// Up to `limit` items of a job with a line after `after_line` that pass `keep`, in
    /// line order. Item records are a bulk type: decoded generically.
    pub fn items<T: serde::de::DeserializeOwned>(
        &self,
        job: Uuid,
        after_line: u32,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let start = keys::item(job, after_line.saturating_add(1));
        let end = keys::item(job, u32::MAX);
        let mut out = Vec::new();
        if after_line == u32::MAX {
            return Ok(out);
        }
        for entry in self.inner.tree(TreeId::Items).range(start..=end) {
            let (_, v) = entry?;
            let item: T = codec::decode(&v)?;
            if keep(&item) {
                out.push(item);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Raw values of an index tree, newest key first (order indexes hold record keys).
    pub fn raw_values_back(&self, tree: TreeId) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        self.inner.tree(tree).iter().rev().map(|r| r.map(|(_, v)| v.to_vec()).map_err(StoreError::from))
    }
}
