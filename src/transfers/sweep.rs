//! Expiry of idempotency keys (24 h), cash references (30 days) and sessions: a background
//! thread removes what has expired, a bounded batch at a time.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::cash::REFERENCE_LIFETIME_MICROS;
use super::idempotency::KEY_LIFETIME_MICROS;
use crate::engine::{now, Engine};
use crate::error::Error;
use crate::store::TreeId;

/// Entries removed per writer job: small enough to keep the job (and the sled
/// transaction) short next to live traffic.
const SWEEP_BATCH: usize = 256;
/// How often to look for expired entries.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

impl Engine {
    /// Removes every expired idempotency key and reference; returns how many.
    pub fn sweep_expired(&self) -> Result<usize, Error> {
        let mut removed = 0;
        for (tree, lifetime) in
            [(TreeId::IdempotencyExpiry, KEY_LIFETIME_MICROS), (TreeId::ReferencesExpiry, REFERENCE_LIFETIME_MICROS)]
        {
            loop {
                let before = now().plus_micros(-lifetime);
                let entries = self.store.expired_entries(tree, before, SWEEP_BATCH)?;
                if entries.is_empty() {
                    break;
                }
                removed += entries.len();
                self.store.writer.run_blocking(move |tx| {
                    for key in &entries {
                        tx.expire_entry(tree, key)?;
                    }
                    Ok::<(), Error>(())
                })?;
            }
        }
        Ok(removed)
    }

    /// Starts the sweeping thread.
    pub fn start_sweeper(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let engine = self.clone();
        std::thread::Builder::new().name("sysgp-sweep".into()).spawn(move || {
            while !engine.is_stopping() {
                match engine.sweep_expired() {
                    Ok(0) => {}
                    Ok(n) => log::info!("expired {n} idempotency keys and references"),
                    Err(e) => log::warn!("sweeping expired keys: {e}"),
                }
                engine.sleep_unless_stopping(SWEEP_INTERVAL);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Limits;
    use crate::ledger::Timestamp;
    use crate::store::{IdempotencyRecord, Store};

    fn record(at: Timestamp) -> IdempotencyRecord {
        IdempotencyRecord { request_hash: [7; 32], transfer_id: None, reply: None, created_at: at }
    }

    #[test]
    fn expired_keys_go_and_live_or_renewed_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 16).expect("store");
        let engine =
            crate::transfers::cash::tests::engine_over(store.clone(), Limits { amount_max: 1000, ..Limits::default() });
        let old = Timestamp(1_000_000);
        store
            .writer
            .run_blocking(move |tx| {
                tx.put_idempotency("alice", "old", &record(old))?;
                tx.put_idempotency("alice", "renewed", &record(old))?;
                tx.put_idempotency("alice", "renewed", &record(now()))?;
                tx.put_idempotency("alice", "fresh", &record(now()))?;
                Ok::<(), Error>(())
            })
            .expect("write");
        assert_eq!(engine.sweep_expired().expect("sweep"), 2, "two old expiry entries");
        assert!(store.idempotency("alice", "old").expect("read").is_none());
        assert!(store.idempotency("alice", "renewed").expect("read").is_some());
        assert!(store.idempotency("alice", "fresh").expect("read").is_some());
        assert_eq!(engine.sweep_expired().expect("sweep"), 0);
    }
}
