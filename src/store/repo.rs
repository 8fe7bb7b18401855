//! Typed writes (and the reads jobs need) on top of [`WriteTx`], keeping every index
//! in step with its record.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{self, OrderKey};
use super::{StoreError, TreeId, WriteTx};
use crate::ledger::{Account, AccountKey, Posting, Timestamp, Transfer, TransferStatus};

/// A reply kept for idempotent replays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    /// HTTP status of the first reply.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
}

/// What an `Idempotency-Key` is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the normalised request.
    pub request_hash: [u8; 32],
    /// The transfer the request created, if it created one.
    pub transfer_id: Option<Uuid>,
    /// The stored reply for requests that created no transfer (business rejections).
    pub reply: Option<StoredReply>,
    /// When the key was first used (keys live 24 h).
    pub created_at: Timestamp,
}

/// A cash reference in use on an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    /// The transfer that used it.
    pub transfer_id: Uuid,
    /// When (references are unique for 30 days).
    pub created_at: Timestamp,
}

/// The order key of a transfer.
pub fn transfer_order(t: &Transfer) -> OrderKey {
    OrderKey { at: t.created_at, seq: t.seq }
}

/// Statement index entries of a transfer: both parties when they are wallets.
fn indexed_parties(t: &Transfer) -> Vec<AccountKey> {
    let mut parties: Vec<AccountKey> = [t.sender, t.receiver].into_iter().filter(|k| !k.is_system()).collect();
    parties.dedup();
    parties
}

impl WriteTx<'_> {
    /// Reads an account.
    pub fn account(&self, key: &AccountKey) -> Result<Option<Account>, StoreError> {
        self.get(TreeId::Accounts, &keys::account(key))
    }

    /// Creates an account and its list entry.
    pub fn insert_account(&mut self, account: &Account) -> Result<(), StoreError> {
        let key = keys::account(&account.key);
        let order = self.next_order();
        self.put_raw(TreeId::AccountsOrder, &order.to_bytes(), &key);
        self.put(TreeId::Accounts, &key, account)
    }

    /// Saves a changed account.
    pub fn update_account(&mut self, account: &Account) -> Result<(), StoreError> {
        self.put(TreeId::Accounts, &keys::account(&account.key), account)
    }

    /// Reads a transfer.
    pub fn transfer(&self, id: Uuid) -> Result<Option<Transfer>, StoreError> {
        self.get(TreeId::Transfers, id.as_bytes())
    }

    /// Records a new transfer with its list, statement and status index entries.
    pub fn insert_transfer(&mut self, t: &Transfer) -> Result<(), StoreError> {
        let order = transfer_order(t);
        let id = t.id.as_bytes();
        self.put_raw(TreeId::TransfersOrder, &order.to_bytes(), id);
        for party in indexed_parties(t) {
            self.put_raw(TreeId::TransfersByAccount, &keys::by_account(&party, order), id);
        }
        if t.status.is_open() {
            self.put_raw(TreeId::TransfersByStatus, &keys::by_status(t.status, order), id);
        }
        self.put(TreeId::Transfers, id, t)
    }

    /// Saves a changed transfer, moving its status index entry from `before`.
    pub fn update_transfer(&mut self, before: TransferStatus, t: &Transfer) -> Result<(), StoreError> {
        if before != t.status {
            let order = transfer_order(t);
            if before.is_open() {
                self.remove(TreeId::TransfersByStatus, &keys::by_status(before, order));
            }
            if t.status.is_open() {
                self.put_raw(TreeId::TransfersByStatus, &keys::by_status(t.status, order), t.id.as_bytes());
            }
        }
        self.put(TreeId::Transfers, t.id.as_bytes(), t)
    }

    /// Records that the SDK's transfer `sdk_id` is our transfer `id`.
    pub fn index_sdk_id(&mut self, sdk_id: &str, id: Uuid) {
        self.put_raw(TreeId::TransfersBySdkId, sdk_id.as_bytes(), id.as_bytes());
    }

    /// Our transfer that the SDK's transfer `sdk_id` belongs to, if any.
    pub fn transfer_of_sdk_id(&self, sdk_id: &str) -> Result<Option<Uuid>, StoreError> {
        let raw = self.get_raw(TreeId::TransfersBySdkId, sdk_id.as_bytes())?;
        Ok(raw.and_then(|r| Uuid::from_slice(&r).ok()))
    }

    /// Appends a journal entry owned by a transfer or job.
    pub fn put_posting(&mut self, owner: Uuid, index: u32, posting: &Posting) -> Result<(), StoreError> {
        self.put(TreeId::Postings, &keys::posting(owner, index), posting)
    }

    /// Reads an idempotency record.
    pub fn idempotency(&self, actor: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get(TreeId::Idempotency, &keys::idempotency(actor, key))
    }

    /// Binds an idempotency key (with its expiry entry).
    pub fn put_idempotency(&mut self, actor: &str, key: &str, record: &IdempotencyRecord) -> Result<(), StoreError> {
        let k = keys::idempotency(actor, key);
        self.put_raw(TreeId::IdempotencyExpiry, &keys::expiry(record.created_at, &k), &[]);
        self.put(TreeId::Idempotency, &k, record)
    }

    /// Reads a cash reference of an account.
    pub fn reference(&self, account: &AccountKey, reference: &str) -> Result<Option<ReferenceRecord>, StoreError> {
        self.get(TreeId::References, &keys::reference(account, reference))
    }

    /// Marks a cash reference as used (with its expiry entry).
    pub fn put_reference(
        &mut self,
        account: &AccountKey,
        reference: &str,
        record: &ReferenceRecord,
    ) -> Result<(), StoreError> {
        let k = keys::reference(account, reference);
        self.put_raw(TreeId::ReferencesExpiry, &keys::expiry(record.created_at, &k), &[]);
        self.put(TreeId::References, &k, record)
    }
}

impl WriteTx<'_> {
    /// Removes an expiry entry and, unless it was renewed since, the record it guards.
    /// The entry's first 8 bytes are the record's `created_at` (idempotency keys,
    /// references) or its expiry (sessions).
    pub fn expire_entry(&mut self, expiry_tree: TreeId, expiry_key: &[u8]) -> Result<(), StoreError> {
        let Some((stamp, record_key)) = expiry_key.split_first_chunk::<8>() else {
            self.remove(expiry_tree, expiry_key);
            return Ok(());
        };
        let created_at = Timestamp(i64::try_from(u64::from_be_bytes(*stamp)).unwrap_or(i64::MAX));
        let current = match expiry_tree {
            TreeId::IdempotencyExpiry => self
                .get::<IdempotencyRecord>(TreeId::Idempotency, record_key)?
                .map(|r| (TreeId::Idempotency, r.created_at)),
            TreeId::ReferencesExpiry => {
                self.get::<ReferenceRecord>(TreeId::References, record_key)?.map(|r| (TreeId::References, r.created_at))
            }
            // Session keys are random and never renewed: the entry's time is the expiry.
            TreeId::SessionsExpiry => Some((TreeId::Sessions, created_at)),
            _ => None,
        };
        if let Some((record_tree, at)) = current {
            if at == created_at {
                self.remove(record_tree, record_key);
            }
        }
        self.remove(expiry_tree, expiry_key);
        Ok(())
    }
}
