//! The vendored sled's leaf sizes (vendor/README.md) against a model: keys appended at
//! the end of many ranges, random keys with record-sized values, removals that empty
//! leaves, then reads, scans and a reopen that must all agree with a `BTreeMap`.

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
