//! What a store job sees: its own and earlier jobs' writes through an overlay, the
//! writer's clock for order keys.

use std::collections::HashMap;

use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use super::keys::OrderKey;
use super::{codec, StoreError, StoreInner, TreeId, TREE_COUNT};
use crate::ledger::Timestamp;

/// Pending writes of one tree: key → new value, or `None` for a removal.
pub(super) type TreeWrites = HashMap<Vec<u8>, Option<Vec<u8>>>;

/// Writes not yet committed: a job's, or a whole batch's.
pub(super) struct Overlay {
    pub(super) trees: Vec<TreeWrites>,
    pub(super) writes: usize,
}

impl Overlay {
    pub(super) fn new() -> Overlay {
        Overlay { trees: (0..TREE_COUNT).map(|_| HashMap::new()).collect(), writes: 0 }
    }

    pub(super) fn get(&self, tree: TreeId, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.trees[tree as usize].get(key)
    }

    pub(super) fn set(&mut self, tree: TreeId, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.trees[tree as usize].insert(key, value);
        self.writes += 1;
    }

    pub(super) fn merge(&mut self, other: Overlay) {
        if self.writes == 0 {
            *self = other;
            return;
        }
        for (mine, theirs) in self.trees.iter_mut().zip(other.trees) {
            mine.extend(theirs);
        }
        self.writes += other.writes;
    }

    /// Writes the overlay to sled atomically: writes to one tree (item batches of an
    /// ingest) as one sled batch, which sled applies atomically at less cost than a
    /// transaction; others as one transaction over the trees they write.
    pub(super) fn commit(self, inner: &StoreInner) -> Result<(), StoreError> {
        let mut trees: Vec<&sled::Tree> = Vec::new();
        let mut sled_batches: Vec<sled::Batch> = Vec::new();
        for (id, writes) in TreeId::ALL.iter().zip(self.trees) {
            if writes.is_empty() {
                continue;
            }
            let mut b = sled::Batch::default();
            for (key, value) in writes {
                match value {
                    Some(v) => b.insert(key, v),
                    None => b.remove(key),
                }
            }
            trees.push(inner.tree(*id));
            sled_batches.push(b);
        }
        if trees.len() == 1 {
            trees[0].apply_batch(sled_batches.swap_remove(0))?;
            return Ok(());
        }
        trees[..]
            .transaction(|trees| {
                for (tree, b) in trees.iter().zip(&sled_batches) {
                    tree.apply_batch(b)?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| StoreError::Commit(format!("{e:?}")))
    }
}

/// Monotonic time and sequence for order keys, owned by the writer thread.
pub(super) struct Clock {
    pub(super) last: Timestamp,
    pub(super) next_seq: u64,
    /// `next_seq` as last committed: a batch that took no order key need not write it.
    pub(super) stored_seq: u64,
}

/// What a job sees: reads through the pending writes, writes into the overlay.
pub struct WriteTx<'a> {
    pub(super) inner: &'a StoreInner,
    pub(super) batch: &'a Overlay,
    pub(super) job: Overlay,
    pub(super) clock: &'a mut Clock,
    pub(super) now: Timestamp,
}

impl WriteTx<'_> {
    /// Reads a raw value, seeing this batch's earlier writes.
    pub fn get_raw(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.job.get(tree, key).or_else(|| self.batch.get(tree, key)) {
            return Ok(v.clone());
        }
        Ok(self.inner.tree(tree).get(key)?.map(|v| v.to_vec()))
    }

    /// Reads and decodes a record.
    pub fn get<T: DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get_raw(tree, key)?.map(|bytes| codec::decode(&bytes)).transpose()
    }

    /// Encodes and writes a record.
    pub fn put<T: Serialize>(&mut self, tree: TreeId, key: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = codec::encode(value)?;
        self.job.set(tree, key.to_vec(), Some(bytes));
        Ok(())
    }

    /// Writes a raw value (index entries).
    pub fn put_raw(&mut self, tree: TreeId, key: &[u8], value: &[u8]) {
        self.job.set(tree, key.to_vec(), Some(value.to_vec()));
    }

    /// Removes a key.
    pub fn remove(&mut self, tree: TreeId, key: &[u8]) {
        self.job.set(tree, key.to_vec(), None);
    }

    /// The time of this job, never earlier than any job before it.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// A fresh, store-wide unique order key at [`WriteTx::now`].
    pub fn next_order(&mut self) -> OrderKey {
        let seq = self.clock.next_seq;
        self.clock.next_seq += 1;
        OrderKey { at: self.now, seq }
    }
}
