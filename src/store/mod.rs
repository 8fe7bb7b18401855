//! The store: the only code that names sled or bincode. Keys, the record codec with
//! its schema-version byte, typed reads and writes, and the single writer with group
//! commit (a reply means the change is fdatasync'ed).
#![deny(clippy::float_arithmetic)]

mod codec;
#[cfg(test)]
mod engine_tests;
pub mod keys;
mod read;
mod repo;
mod tx;
mod writer;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use codec::SCHEMA_VERSION;
pub use keys::OrderKey;
pub use read::{AccountQuery, Page, TransferQuery};
pub use repo::{IdempotencyRecord, ReferenceRecord, StoredReply};
pub use writer::{ClosedSignal, PauseGuard, WriteTx, Writer, WriterStats};

/// Every tree of the store. The discriminant indexes `StoreInner::trees`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeId {
    /// Store-wide settings: schema version, sequence counter.
    Meta = 0,
    /// Account key → account.
    Accounts,
    /// Order key → account key (account list, newest first).
    AccountsOrder,
    /// Transfer id → transfer.
    Transfers,
    /// Order key → transfer id (transfer list, time filters).
    TransfersOrder,
    /// Wallet | order key → transfer id (statements, msisdn filter).
    TransfersByAccount,
    /// Status | order key → transfer id, for the open statuses only (PENDING,
    /// IN_DOUBT, AWAITING_APPROVAL): recovery, reconciliation, approvals, filters.
    TransfersByStatus,
    /// Owner id | index → posting (the journal).
    Postings,
    /// Actor | key → idempotency record.
    Idempotency,
    /// Created at | actor | key → () (24 h expiry sweep).
    IdempotencyExpiry,
    /// Account | reference → reference record (30-day uniqueness).
    References,
    /// Created at | account | reference → () (expiry sweep).
    ReferencesExpiry,
    /// Seq → audit entry (the HMAC chain).
    Audit,
    /// User name → user.
    Users,
    /// HMAC(SECRET_KEY, token) → session.
    Sessions,
    /// Expires at | session key → () (expiry sweep).
    SessionsExpiry,
    /// Adjustment id → adjustment.
    Adjustments,
    /// Order key → adjustment id (list, newest first).
    AdjustmentsOrder,
    /// Job id → bulk job.
    Jobs,
    /// Order key → job id (list, newest first).
    JobsOrder,
    /// Job id | line → item.
    Items,
    /// Source wallet | SHA-256 of a file or of its parsed rows → job id (duplicates).
    JobsByHash,
    /// The SDK's transfer id → our transfer id: one hub transfer settles one of ours.
    TransfersBySdkId,
}

/// Number of trees.
pub const TREE_COUNT: usize = 23;

impl TreeId {
    /// Every tree, in discriminant order.
    pub const ALL: [TreeId; TREE_COUNT] = [
        TreeId::Meta,
        TreeId::Accounts,
        TreeId::AccountsOrder,
        TreeId::Transfers,
        TreeId::TransfersOrder,
        TreeId::TransfersByAccount,
        TreeId::TransfersByStatus,
        TreeId::Postings,
        TreeId::Idempotency,
        TreeId::IdempotencyExpiry,
        TreeId::References,
        TreeId::ReferencesExpiry,
        TreeId::Audit,
        TreeId::Users,
        TreeId::Sessions,
        TreeId::SessionsExpiry,
        TreeId::Adjustments,
        TreeId::AdjustmentsOrder,
        TreeId::Jobs,
        TreeId::JobsOrder,
        TreeId::Items,
        TreeId::JobsByHash,
        TreeId::TransfersBySdkId,
    ];

    /// The sled tree name.
    pub fn name(&self) -> &'static str {
        match self {
            TreeId::Meta => "meta",
            TreeId::Accounts => "accounts",
            TreeId::AccountsOrder => "accounts_order",
            TreeId::Transfers => "transfers",
            TreeId::TransfersOrder => "transfers_order",
            TreeId::TransfersByAccount => "transfers_by_account",
            TreeId::TransfersByStatus => "transfers_by_status",
            TreeId::Postings => "postings",
            TreeId::Idempotency => "idempotency",
            TreeId::IdempotencyExpiry => "idempotency_expiry",
            TreeId::References => "references",
            TreeId::ReferencesExpiry => "references_expiry",
            TreeId::Audit => "audit",
            TreeId::Users => "users",
            TreeId::Sessions => "sessions",
            TreeId::SessionsExpiry => "sessions_expiry",
            TreeId::Adjustments => "adjustments",
            TreeId::AdjustmentsOrder => "adjustments_order",
            TreeId::Jobs => "jobs",
            TreeId::JobsOrder => "jobs_order",
            TreeId::Items => "items",
            TreeId::JobsByHash => "jobs_by_hash",
            TreeId::TransfersBySdkId => "transfers_by_sdk_id",
        }
    }
}

/// A store failure. Messages are for logs; clients see a generic error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A filesystem operation failed.
    #[error("io: {0}")]
    Io(std::io::Error),
    /// A record could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// The data was written by a newer build.
    #[error("the data directory was written by a newer sysgp (schema {found}, this build reads up to {supported}); refusing to touch it")]
    SchemaTooNew {
        /// Version found.
        found: u8,
        /// Newest version this build understands.
        supported: u8,
    },
    /// The transaction of a batch failed.
    #[error("commit: {0}")]
    Commit(String),
    /// The writer thread is gone (shutting down or crashed).
    #[error("the store writer is not running")]
    WriterGone,
    /// Another process holds the data directory.
    #[error("the data directory {0} is in use by another sysgp process")]
    Locked(PathBuf),
}

/// The open database and its trees, shared by readers and the writer thread.
pub(crate) struct StoreInner {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    dir: PathBuf,
}

impl StoreInner {
    fn tree(&self, id: TreeId) -> &sled::Tree {
        &self.trees[id as usize]
    }
}

/// The store: typed reads on any thread, writes through the single [`Writer`].
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
    /// The writer for every change.
    pub writer: Writer,
}

const META_SCHEMA: &[u8] = b"schema_version";

/// Heap bytes per byte of sled's cache accounting, rounded. sled counts a cached page
/// by its size in the log; its node in memory takes about twice that. Heap profiles of
/// a 1M-row ingest: sled held 113.5 MB at a 32 MiB capacity and 171 MB at 64 MiB, so
/// 1.8 bytes of heap for each byte more it counts. `SYSGP_CACHE_MB` is the memory the
/// cache may take, so sled is given this fraction of it.
const SLED_HEAP_PER_COUNTED_BYTE: u64 = 2;

/// sled's `cache_capacity` for `SYSGP_CACHE_MB`.
fn sled_cache_capacity(cache_mb: u64) -> u64 {
    cache_mb.saturating_mul(1024 * 1024) / SLED_HEAP_PER_COUNTED_BYTE
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and starts its writer.
    pub fn open(dir: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        let fresh = !dir.join("db").exists();
        fs::create_dir_all(dir).map_err(StoreError::Io)?;
        let db = sled::Config::new().path(dir).cache_capacity(sled_cache_capacity(cache_mb)).open().map_err(|e| {
            match e {
                // sled reports its file lock as an IO error with this text.
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.raw_os_error() == Some(11)
                        || io.to_string().contains("could not acquire lock") =>
                {
                    StoreError::Locked(dir.to_path_buf())
                }
                other => StoreError::Sled(other),
            }
        })?;
        // The schema is checked before any other tree is opened (opening creates).
        check_schema(&db.open_tree(TreeId::Meta.name())?, fresh)?;
        let trees = TreeId::ALL.iter().map(|t| db.open_tree(t.name())).collect::<Result<Vec<_>, _>>()?;
        let inner = StoreInner { db, trees, dir: dir.to_path_buf() };
        let built = build_sdk_id_index(&inner)?;
        if fresh || built {
            // Durable: the vendored sled fdatasyncs what it flushes.
            inner.db.flush()?;
        }
        if fresh {
            sync_dir(dir)?;
        }
        let inner = Arc::new(inner);
        let writer = Writer::start(inner.clone())?;
        Ok(Store { inner, writer })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Bytes on disk as sled reports them.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }
}

/// Refuses a store written by a newer build; records this build's schema in a new one.
fn check_schema(meta: &sled::Tree, fresh: bool) -> Result<(), StoreError> {
    match meta.get(META_SCHEMA)? {
        Some(v) => {
            let found = codec::decode::<u8>(&v)?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
            }
        }
        None if fresh || meta.is_empty() => {
            meta.insert(META_SCHEMA, codec::encode(&SCHEMA_VERSION)?)?;
        }
        None => return Err(StoreError::Codec("store has data but no schema version".into())),
    }
    Ok(())
}

const META_SDK_ID_INDEX: &[u8] = b"index_transfers_by_sdk_id";

/// Fills [`TreeId::TransfersBySdkId`] from the transfers of a store written before it
/// existed, once (a marker in the meta tree says it is complete; an interrupted run is
/// simply done again). Runs before the writer starts. True when it wrote anything.
fn build_sdk_id_index(inner: &StoreInner) -> Result<bool, StoreError> {
    let meta = inner.tree(TreeId::Meta);
    if meta.get(META_SDK_ID_INDEX)?.is_some() {
        return Ok(false);
    }
    let index = inner.tree(TreeId::TransfersBySdkId);
    for entry in inner.tree(TreeId::Transfers).iter() {
        let (id, value) = entry?;
        let t: crate::ledger::Transfer = codec::decode(&value)?;
        if let Some(sdk_id) = t.sdk.and_then(|s| s.transfer_id) {
            index.insert(sdk_id.as_bytes(), id)?;
        }
    }
    meta.insert(META_SDK_ID_INDEX, codec::encode(&true)?)?;
    Ok(true)
}

/// fsyncs a directory so that files created in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::Io)
}

impl Store {
    /// Calls `f` for every entry of every tree, tree by tree (backups). Run it while the
    /// writer is paused (or the store is offline) for a consistent copy.
    pub fn for_each_entry(
        &self,
        mut f: impl FnMut(TreeId, &[u8], &[u8]) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for id in TreeId::ALL {
            for entry in self.inner.tree(id).iter() {
                let (k, v) = entry?;
                f(id, &k, &v).map_err(StoreError::Io)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes one entry directly, bypassing the writer: only for restoring a backup
    /// into a fresh store before it serves anything.
    pub fn restore_entry(&self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.tree(tree).insert(key, value)?;
        Ok(())
    }

    /// Makes every write so far durable (after a restore): the vendored sled's flush
    /// fdatasyncs what it writes.
    pub fn sync_now(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Drops the store and waits until its writer has ended and sled has let go of the
    /// directory; false when that took longer than `timeout`.
    pub fn close(self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let closed = self.writer.closed_signal();
        let dir = self.inner.dir.clone();
        drop(self);
        closed.wait(timeout) && wait_unlocked(&dir, deadline)
    }
}

/// Waits until no one holds sled's lock on `dir`'s log file: sled's own threads may
/// still hold the file for a moment after the last handle is dropped, and an open in
/// that moment fails "could not acquire lock". False at the deadline.
pub fn wait_unlocked(dir: &Path, deadline: std::time::Instant) -> bool {
    loop {
        match File::open(dir.join("db")).map(|f| fs2::FileExt::try_lock_exclusive(&f)) {
            Ok(Ok(())) | Err(_) => return true,
            Ok(Err(_)) if std::time::Instant::now() >= deadline => return false,
            Ok(Err(_)) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_written_by_a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("open sled");
            let meta = db.open_tree(TreeId::Meta.name()).expect("meta tree");
            meta.insert(META_SCHEMA, codec::encode(&(SCHEMA_VERSION + 1)).expect("encode")).expect("insert");
            db.flush().expect("flush");
        }
        assert!(wait_unlocked(dir.path(), std::time::Instant::now() + std::time::Duration::from_secs(30)));
        let refused = Store::open(dir.path(), 8).err().expect("a newer schema must be refused");
        assert!(
            matches!(refused, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("newer sysgp"), "{refused}");
        assert!(wait_unlocked(dir.path(), std::time::Instant::now() + std::time::Duration::from_secs(30)));
        let db = sled::open(dir.path()).expect("reopen sled");
        let kept =
            db.open_tree(TreeId::Meta.name()).expect("meta tree").get(META_SCHEMA).expect("get").expect("marker");
        assert_eq!(codec::decode::<u8>(&kept).expect("decode"), SCHEMA_VERSION + 1, "the marker was rewritten");
    }

    #[test]
    fn batches_of_one_tree_and_order_keys_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 8).expect("open");
        let first = store
            .writer
            .run_blocking(|tx| {
                let order = tx.next_order();
                tx.put_raw(TreeId::AccountsOrder, &order.to_bytes(), b"a");
                tx.put_raw(TreeId::Accounts, b"a", b"1");
                Ok::<_, StoreError>(order)
            })
            .expect("first batch");
        // Later batches take no order key and write one tree: committed as sled batches.
        for i in 0u8..3 {
            store
                .writer
                .run_blocking(move |tx| {
                    tx.put_raw(TreeId::Items, &[i], &[i]);
                    Ok::<_, StoreError>(())
                })
                .expect("one tree");
        }
        assert!(store.close(std::time::Duration::from_secs(30)), "the writer did not stop");
        let store = Store::open(dir.path(), 8).expect("reopen");
        for i in 0u8..3 {
            assert_eq!(store.inner.tree(TreeId::Items).get([i]).expect("get").as_deref(), Some(&[i][..]));
        }
        let next = store.writer.run_blocking(|tx| Ok::<_, StoreError>(tx.next_order())).expect("order");
        assert!(next.seq > first.seq, "{next:?} after {first:?}");
    }

    #[test]
    fn a_reply_that_panics_leaves_its_change_durable_and_the_writer_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 8).expect("open");
        store
            .writer
            .submit_blocking(
                |tx| {
                    tx.put_raw(TreeId::Items, b"k", b"v");
                    Ok::<_, StoreError>(())
                },
                |_| panic!("a reply that panics"),
            )
            .expect("queued");
        let next = store.writer.run_blocking(|_| Ok::<_, StoreError>(7)).expect("the writer still runs");
        assert_eq!(next, 7);
        assert!(store.close(std::time::Duration::from_secs(30)), "the writer did not stop");
        let store = Store::open(dir.path(), 8).expect("reopen");
        assert_eq!(store.inner.tree(TreeId::Items).get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_fresh_directory_records_this_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 8).expect("open");
        let v = store.inner.tree(TreeId::Meta).get(META_SCHEMA).expect("get").expect("marker");
        assert_eq!(codec::decode::<u8>(&v).expect("decode"), SCHEMA_VERSION);
    }
}
