//! The vendored sled's changes (vendor/README.md) against a model. Leaf sizes: keys
//! appended at the end of many ranges, random keys with record-sized values, removals
//! that empty leaves, then reads, scans and a reopen that must all agree with a
//! `BTreeMap`. Kept manifests and zeroed segments: transactions committed by a thread
//! that keeps its manifests, flushes racing on another thread, then a reopen.

use std::collections::BTreeMap;

use crate::prng::Prng;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Ranges the appends are spread over.
const RANGES: usize = 40;

/// Index-like entries appended per range (`range` ++ sequence), as the statement and
/// status indexes are written.
fn append_key(range: usize, seq: u64) -> Vec<u8> {
    let mut k = format!("acct{range:06}").into_bytes();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Runs `ops` random operations on both; `seq` is the last appended sequence number,
/// carried across calls so that appends after a reopen still go at the end.
fn apply(tree: &sled::Tree, model: &mut Model, dice: &mut Prng, seq: &mut u64, ops: u64) {
    for _ in 0..ops {
        match dice.below(10) {
            // Appends: small values, the leaves that now split by size.
            0..=5 => {
                *seq += 1;
                let k = append_key(dice.below(RANGES), *seq);
                let v = seq.to_be_bytes().to_vec();
                tree.insert(k.as_slice(), v.as_slice()).expect("insert");
                model.insert(k, v);
            }
            // Random keys, record-sized values: leaves that split at 16 keys as before.
            6 | 7 => {
                let k = dice.next().to_be_bytes().to_vec();
                let v = vec![(dice.next() & 0xff) as u8; 100 + dice.below(300)];
                tree.insert(k.as_slice(), v.as_slice()).expect("insert");
                model.insert(k, v);
            }
            // Removals of a whole run of one range: leaves shrink below 4 keys and merge.
            _ => {
                let start = append_key(dice.below(RANGES), 0);
                let victims: Vec<Vec<u8>> =
                    model.range(start.clone()..).take(1 + dice.below(30)).map(|(k, _)| k.clone()).collect();
                for k in victims {
                    assert!(tree.remove(k.as_slice()).expect("remove").is_some(), "model and tree disagree");
                    model.remove(&k);
                }
            }
        }
    }
}

fn assert_same(tree: &sled::Tree, model: &Model, dice: &mut Prng) {
    let all: Vec<(Vec<u8>, Vec<u8>)> =
        tree.iter().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("iter")).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.len(), expected.len(), "number of keys");
    assert!(all == expected, "the tree's contents differ from the model's");
    let backwards: Vec<Vec<u8>> = tree.iter().rev().map(|r| r.map(|(k, _)| k.to_vec()).expect("rev")).collect();
    assert!(backwards.iter().eq(model.keys().rev()), "reverse scan differs");
    for _ in 0..200 {
        let range = dice.below(RANGES);
        let (lo, hi) = (append_key(range, 0), append_key(range + 1, 0));
        let got: Vec<Vec<u8>> =
            tree.range(lo.as_slice()..hi.as_slice()).map(|r| r.map(|(k, _)| k.to_vec()).expect("range")).collect();
        assert!(got.iter().eq(model.range(lo..hi).map(|(k, _)| k)), "range {range} differs");
    }
}

#[test]
fn leaves_split_by_size_keep_every_key_through_splits_merges_and_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    let mut dice = Prng(0x9e37_79b9_7f4a_7c15);
    let mut seq = 0;
    {
        // A small cache: pages are evicted and read back from the log.
        let db = sled::Config::new().path(dir.path()).cache_capacity(64 * 1024).open().expect("open");
        let tree = db.open_tree("t").expect("tree");
        apply(&tree, &mut model, &mut dice, &mut seq, 30_000);
        assert_same(&tree, &model, &mut dice);
        db.flush().expect("flush");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    assert!(super::wait_unlocked(dir.path(), deadline), "sled kept its lock");
    let db = sled::Config::new().path(dir.path()).cache_capacity(64 * 1024).open().expect("reopen");
    let tree = db.open_tree("t").expect("tree");
    assert_same(&tree, &model, &mut dice);
    apply(&tree, &mut model, &mut dice, &mut seq, 10_000);
    assert_same(&tree, &model, &mut dice);
}

/// sled's default segment size, which the store does not change.
const SEGMENT_BYTES: u64 = 512 * 1024;

#[test]
fn manifests_kept_by_the_committing_thread_are_written_by_its_flush_and_survive_a_reopen() {
    use sled::Transactional;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new().path(dir.path()).cache_capacity(64 * 1024).open().expect("open");
    let (a, b) = (db.open_tree("a").expect("tree a"), db.open_tree("b").expect("tree b"));
    let done = Arc::new(AtomicBool::new(false));
    // Another thread flushes all along: its flushes (holding sled's concurrency-control
    // lock) wait for manifests the committing thread keeps, as they waited for sled's
    // IO pool before, and the committing thread's next commit waits for them.
    let racer = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut flushes = 0u64;
            while !done.load(Ordering::Acquire) {
                db.flush().expect("racing flush");
                flushes += 1;
            }
            flushes
        })
    };
    let (finished, finish) = std::sync::mpsc::channel();
    let committer = {
        let (db, a, b) = (db.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            sled::defer_manifest_writes();
            let mut model = Model::new();
            let mut dice = Prng(0x2545_f491_4f6c_dd1d);
            // About 4 MB of values: the log takes several new segments at the file's end.
            for i in 0u64..4_000 {
                let key = i.to_be_bytes().to_vec();
                let value = vec![(dice.next() & 0xff) as u8; 200 + dice.below(1_600)];
                (&a, &b)
                    .transaction(|(ta, tb)| {
                        ta.insert(key.as_slice(), value.as_slice())?;
                        tb.insert(key.as_slice(), &value[..8])?;
                        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .expect("transaction");
                db.flush_kept().expect("flush");
                if i % 3 == 0 {
                    // A single-tree batch: the same manifest, through `apply_batch`.
                    let mut batch = sled::Batch::default();
                    batch.insert(key.as_slice(), &value[..16]);
                    b.apply_batch(batch).expect("batch");
                    db.flush_kept().expect("flush");
                }
                model.insert(key, value);
            }
            let _ = finished.send(());
            model
        })
    };
    // A kept manifest that no flush writes would hang both threads: fail instead.
    finish.recv_timeout(std::time::Duration::from_secs(120)).expect("the committing thread stalled");
    done.store(true, Ordering::Release);
    let model = committer.join().expect("committer");
    assert!(racer.join().expect("racer") > 0, "the racing thread never flushed");
    drop((a, b, db));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    assert!(super::wait_unlocked(dir.path(), deadline), "sled kept its lock");
    let len = std::fs::metadata(dir.path().join("db")).expect("db file").len();
    assert!(len >= 4 * SEGMENT_BYTES, "the log did not grow over several segments: {len} bytes");
    assert_eq!(len % SEGMENT_BYTES, 0, "a segment taken at the end of the file is written whole");
    let db = sled::Config::new().path(dir.path()).cache_capacity(64 * 1024).open().expect("reopen");
    let (a, b) = (db.open_tree("a").expect("tree a"), db.open_tree("b").expect("tree b"));
    assert_eq!(a.len(), model.len(), "tree a lost or gained keys");
    for (i, (key, value)) in model.iter().enumerate() {
        assert_eq!(a.get(key).expect("get a").as_deref(), Some(value.as_slice()), "tree a, key {i}");
        let expected = if i % 3 == 0 { &value[..16] } else { &value[..8] };
        assert_eq!(b.get(key).expect("get b").as_deref(), Some(expected), "tree b, key {i}");
    }
}
