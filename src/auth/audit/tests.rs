//! Sealing, rotation and verification of the audit chain, and its store integration.

use std::convert::Infallible;

use super::*;
use crate::store::Store;

fn key(name: &str) -> AuditKey {
    AuditKey::derive(format!("{name}-secret-key-with-enough-characters").as_bytes())
}

fn draft(i: u64) -> Draft {
    Draft {
        actor: format!("user{i}"),
        action: "TRANSFER_CREATED".into(),
        target: Some(format!("transfer-{i}")),
        details: serde_json::json!({ "amount": i * 100 }),
    }
}

/// Appends `n` entries sealed by `key` to `log`.
fn extend(log: &mut Vec<AuditEntry>, key: &AuditKey, n: u64) {
    for _ in 0..n {
        let seq = log.len() as u64 + 1;
        log.push(seal(log.last().map(AuditEntry::head).as_ref(), key, draft(seq), Timestamp(seq as i64 * 1000)));
    }
}

fn rotate(log: &mut Vec<AuditEntry>, old: &AuditKey, new: &AuditKey) {
    let head = log.last().map(AuditEntry::head);
    log.push(seal_rotation(head.as_ref(), old, new, "cli:0", Timestamp(0)).expect("rotation"));
}

fn check(log: &[AuditEntry], current: &AuditKey, expected: Option<&AuditHead>) -> VerifyReport {
    verify(|| log.iter().cloned().map(Ok::<_, Infallible>), current, expected).expect("infallible")
}

fn first_bad(log: &[AuditEntry], current: &AuditKey) -> BadEntry {
    let report = check(log, current, None);
    assert!(!report.ok);
    report.first_bad.expect("a bad entry")
}

fn flip(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    bytes[0] ^= 1;
    *text = String::from_utf8(bytes).expect("ascii stays utf-8");
}

#[test]
fn a_sealed_chain_of_50_entries_verifies() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 50);
    assert_eq!(check(&log, &key("a"), None), VerifyReport { ok: true, entries: 50, first_bad: None });
    assert!(check(&log, &key("a"), Some(&log[49].head())).ok);
}

#[test]
fn flipping_one_byte_in_any_field_of_entry_17_names_entry_17() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 50);
    let tamperings: [fn(&mut AuditEntry); 9] = [
        |e| flip(&mut e.actor),
        |e| flip(&mut e.action),
        |e| flip(&mut e.details),
        |e| e.at.0 ^= 1,
        |e| flip(e.target.as_mut().expect("a target")),
        |e| e.prev_mac[31] ^= 1,
        |e| e.mac[0] ^= 1,
        |e| e.seq ^= 1 << 40,
        |e| flip(&mut e.key_id),
    ];
    for (i, tamper) in tamperings.iter().enumerate() {
        let mut bad_log = log.clone();
        tamper(&mut bad_log[16]);
        assert_ne!(bad_log[16], log[16]);
        assert_eq!(first_bad(&bad_log, &key("a")).seq, 17, "tampering #{i}");
    }
}

#[test]
fn removing_entry_25_is_reported_at_26() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 50);
    log.remove(24);
    assert_eq!(first_bad(&log, &key("a")).seq, 26);
}

#[test]
fn swapping_two_entries_is_caught() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 50);
    log.swap(9, 30);
    assert_eq!(first_bad(&log, &key("a")).seq, 31);
}

#[test]
fn rotations_keep_the_chain_verifiable_with_only_the_newest_key() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let mut log = Vec::new();
    extend(&mut log, &a, 10);
    rotate(&mut log, &a, &b);
    extend(&mut log, &b, 10);
    assert_eq!(log[10].key_id, a.id());
    assert!(check(&log, &b, None).ok);
    rotate(&mut log, &b, &c);
    extend(&mut log, &c, 5);
    assert_eq!(check(&log, &c, Some(&log[26].head())), VerifyReport { ok: true, entries: 27, first_bad: None });
    assert_eq!(first_bad(&log, &b).seq, 27, "b is no longer the current key");
    let mut bad_log = log.clone();
    if let Some(r) = bad_log[21].rotation.as_mut() {
        r.old_key_wrapped[0] ^= 1;
    }
    assert_eq!(first_bad(&bad_log, &c).seq, 22, "an altered rotation is named");
}

#[test]
fn a_leaked_old_key_cannot_seal_entries_after_the_rotation() {
    let (a, b) = (key("a"), key("b"));
    let mut log = Vec::new();
    extend(&mut log, &a, 3);
    rotate(&mut log, &a, &b);
    extend(&mut log, &a, 1);
    extend(&mut log, &b, 1);
    let bad = first_bad(&log, &b);
    assert_eq!(bad.seq, 5);
    assert!(bad.reason.contains("in force"), "{}", bad.reason);
}

#[test]
fn verifying_with_a_wrong_current_key_reports_the_head_problem() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 5);
    let bad = first_bad(&log, &key("z"));
    assert_eq!(bad.seq, 5);
    assert!(bad.reason.contains("SECRET_KEY changed without `sysgp audit rotate"), "{}", bad.reason);
}

#[test]
fn an_empty_log_is_ok_with_0_entries() {
    assert_eq!(check(&[], &key("a"), None), VerifyReport { ok: true, entries: 0, first_bad: None });
}

#[test]
fn an_expected_head_beyond_the_log_reports_truncation() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 10);
    let head = log[9].head();
    log.truncate(7);
    let report = check(&log, &key("a"), Some(&head));
    assert_eq!(report.entries, 7);
    let bad = report.first_bad.expect("truncated");
    assert_eq!(bad.seq, 8);
    assert!(bad.reason.contains("tail"), "{}", bad.reason);
}

#[test]
fn rotation_refuses_an_old_key_that_did_not_seal_the_head() {
    let mut log = Vec::new();
    extend(&mut log, &key("a"), 2);
    let head = log[1].head();
    let err = seal_rotation(Some(&head), &key("b"), &key("c"), "cli:0", Timestamp(0));
    assert!(matches!(err, Err(AuditError::KeyMismatch { .. })));
    let err = seal_rotation(Some(&head), &key("a"), &key("a"), "cli:0", Timestamp(0));
    assert!(matches!(err, Err(AuditError::SameKey(_))));
}

#[test]
fn the_key_id_is_16_hex_chars_and_debug_hides_the_key() {
    let k = key("a");
    assert_eq!(k.id().len(), 16);
    assert!(k.id().bytes().all(|b| b.is_ascii_hexdigit()));
    let shown = format!("{k:?}");
    assert!(shown.contains(k.id()) && !shown.contains(&hex::encode(k.key)), "{shown}");
}

fn read_log(store: &Store) -> Vec<AuditEntry> {
    let read = store.writer.run_blocking(|tx| {
        let mut log = Vec::new();
        while let Some(e) = tx.get::<AuditEntry>(TreeId::Audit, &(log.len() as u64 + 1).to_be_bytes())? {
            log.push(e);
        }
        Ok::<_, StoreError>(log)
    });
    read.expect("read the log")
}

#[test]
fn appended_entries_are_stored_in_the_writer_job_and_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 16).expect("open");
    let (a, b) = (key("a"), key("b"));
    let k = a.clone();
    store.writer.run_blocking(move |tx| append(tx, &k, draft(1))).expect("append");
    let k = a.clone();
    let second = store.writer.run_blocking(move |tx| {
        append(tx, &k, draft(2))?;
        append(tx, &k, draft(3))
    });
    assert_eq!(second.expect("two in one job").seq, 3);
    let (old, new) = (a.clone(), b.clone());
    store.writer.run_blocking(move |tx| append_rotation(tx, &old, &new, "cli:0")).expect("rotate");
    let k = a.clone();
    let refused = store.writer.run_blocking(move |tx| append(tx, &k, draft(5)));
    assert!(matches!(refused, Err(StoreError::Codec(m)) if m.contains("sysgp audit rotate")));
    let k = b.clone();
    let last = store.writer.run_blocking(move |tx| append(tx, &k, draft(5))).expect("append under b");
    let log = read_log(&store);
    assert_eq!(log.len(), 5);
    assert_eq!(log[4], last);
    assert_eq!(check(&log, &b, Some(&last.head())), VerifyReport { ok: true, entries: 5, first_bad: None });
}
