//! The audit chain (SPEC §7 "Audit log"): HMAC-sealed entries, key rotation, verification.
//!
//! Each entry's MAC covers its canonical bytes, which include the previous entry's MAC,
//! so altering, removing or reordering entries breaks the chain at a named seq. The MAC
//! key is HMAC(SECRET_KEY, "sysgp-audit-v1"). A `KEY_ROTATED` entry is MAC'ed with the
//! old and the new key and carries the old key wrapped under the new one, so a verifier
//! holding only the current key recovers every earlier key. Everything here is pure
//! except [`append`] and [`append_rotation`], which write through the caller's [`WriteTx`].

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::Timestamp;
use crate::store::{StoreError, TreeId, WriteTx};

/// The action of a key rotation entry.
pub const KEY_ROTATED: &str = "KEY_ROTATED";

type HmacSha256 = Hmac<Sha256>;
type MacBytes = [u8; 32];

/// Label of the key derivation; a new label would start a new, incompatible chain.
const KEY_LABEL: &[u8] = b"sysgp-audit-v1";
/// Domain tag opening the canonical bytes of every entry.
const ENTRY_TAG: &[u8] = b"sysgp-audit-entry-v1";
/// Label of the pad that wraps an old key under the new one.
const WRAP_LABEL: &[u8] = b"sysgp-audit-wrap";
/// `TreeId::Meta` key of the chain head (an [`AuditHead`]).
pub const HEAD_KEY: &[u8] = b"audit_head";

/// The audit MAC key: HMAC(SECRET_KEY, "sysgp-audit-v1"). `Debug` shows only its id.
#[derive(Clone)]
pub struct AuditKey {
    key: MacBytes,
    id: String,
}

impl AuditKey {
    /// HMAC-SHA256(SECRET_KEY bytes, "sysgp-audit-v1").
    pub fn derive(secret: &[u8]) -> AuditKey {
        AuditKey::from_bytes(hmac(secret, &[KEY_LABEL]))
    }

    /// Key id: first 16 hex chars of SHA-256(key). Never reveals the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn from_bytes(key: MacBytes) -> AuditKey {
        let digest = Sha256::digest(key);
        AuditKey { key, id: hex::encode(&digest[..8]) }
    }

    fn mac(&self, parts: &[&[u8]]) -> MacBytes {
        hmac(&self.key, parts)
    }

    /// Constant-time check of `tag` against HMAC(self, bytes).
    fn verifies(&self, bytes: &[u8], tag: &MacBytes) -> bool {
        let mut mac = new_mac(&self.key);
        mac.update(bytes);
        mac.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.id).field("key", &"<redacted>").finish()
    }
}

/// One sealed entry of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3… without gaps.
    pub seq: u64,
    /// When the recorded change was written.
    pub at: Timestamp,
    /// User name, `cli:<uid>` or `system`.
    pub actor: String,
    /// What happened, e.g. `LOGIN_OK`, `TRANSFER_CREATED`, `KEY_ROTATED`.
    pub action: String,
    /// What it happened to, e.g. a transfer id or a user name.
    pub target: Option<String>,
    /// Compact JSON (never passwords, tokens or whole MSISDNs: the caller's duty).
    pub details: String,
    /// Id of the key that MAC'ed `mac`.
    pub key_id: String,
    /// `mac` of entry `seq - 1`; zeros for seq 1.
    pub prev_mac: [u8; 32],
    /// HMAC(key, canonical bytes of every field except the MACs, `prev_mac` included).
    pub mac: [u8; 32],
    /// Present on `KEY_ROTATED` entries only.
    pub rotation: Option<Rotation>,
}

/// The key change recorded by a `KEY_ROTATED` entry. Its fields other than `mac_new`
/// are part of the entry's canonical bytes, so both MACs cover them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Id of the key that seals the entries after this one.
    pub new_key_id: String,
    /// The old key, wrapped (XOR) with HMAC(new key, "sysgp-audit-wrap" || seq) so that a
    /// verifier holding only the current key can recover every earlier key.
    pub old_key_wrapped: [u8; 32],
    /// HMAC(new key, canonical bytes) — the entry is MAC'ed with both keys: `mac` with
    /// the old key (its key_id is the old one), `mac_new` with the new key.
    pub mac_new: [u8; 32],
}

/// The chain head: what the next entry links to, exported in `/metrics` and logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Seq of the last entry.
    pub seq: u64,
    /// `mac` of the last entry.
    pub mac: [u8; 32],
    /// Id of the key that seals the next entry (the new key after a rotation).
    pub key_id: String,
}

/// An entry before sealing.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// See [`AuditEntry::actor`].
    pub actor: String,
    /// See [`AuditEntry::action`].
    pub action: String,
    /// See [`AuditEntry::target`].
    pub target: Option<String>,
    /// Stored as compact JSON text.
    pub details: serde_json::Value,
}

/// A refused audit operation.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain head is sealed by another key than the one given as the old key.
    #[error("the audit chain head is sealed by key id {head}, not by the old key given (key id {old})")]
    KeyMismatch {
        /// Key id of the chain head.
        head: String,
        /// Key id of the old key given.
        old: String,
    },
    /// The old and new keys are the same.
    #[error("the old and new audit keys are the same (key id {0}): nothing to rotate")]
    SameKey(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The first entry verification rejects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadEntry {
    /// Seq of the entry.
    pub seq: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// The answer of `GET /api/v1/audit/verify` and `sysgp audit verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when no entry was rejected.
    pub ok: bool,
    /// Entries in the log.
    pub entries: u64,
    /// The first rejected entry.
    pub first_bad: Option<BadEntry>,
}

/// Seals the next entry after `head` (None = empty log).
pub fn seal(head: Option<&AuditHead>, key: &AuditKey, draft: Draft, at: Timestamp) -> AuditEntry {
    let mut entry = unsealed(head, key, draft, at);
    entry.mac = key.mac(&[&canonical(&entry)]);
    entry
}

/// Seals a KEY_ROTATED entry (action "KEY_ROTATED", actor given) switching from `old` to `new`.
/// Refuses (Err) if `head.key_id != old.id()`, or if both keys are the same.
pub fn seal_rotation(
    head: Option<&AuditHead>,
    old: &AuditKey,
    new: &AuditKey,
    actor: &str,
    at: Timestamp,
) -> Result<AuditEntry, AuditError> {
    if let Some(h) = head.filter(|h| h.key_id != old.id) {
        return Err(AuditError::KeyMismatch { head: h.key_id.clone(), old: old.id.clone() });
    }
    if old.id == new.id {
        return Err(AuditError::SameKey(old.id.clone()));
    }
    let details = serde_json::json!({ "old_key_id": old.id, "new_key_id": new.id });
    let draft = Draft { actor: actor.to_owned(), action: KEY_ROTATED.to_owned(), target: None, details };
    let mut entry = unsealed(head, old, draft, at);
    let old_key_wrapped = xor(&old.key, &wrap_pad(new, entry.seq));
    entry.rotation = Some(Rotation { new_key_id: new.id.clone(), old_key_wrapped, mac_new: [0; 32] });
    let bytes = canonical(&entry);
    entry.mac = old.mac(&[&bytes]);
    if let Some(rotation) = entry.rotation.as_mut() {
        rotation.mac_new = new.mac(&[&bytes]);
    }
    Ok(entry)
}

impl AuditEntry {
    /// The chain head once this entry is the last one.
    pub fn head(&self) -> AuditHead {
        let key_id = self.rotation.as_ref().map_or(&self.key_id, |r| &r.new_key_id);
        AuditHead { seq: self.seq, mac: self.mac, key_id: key_id.clone() }
    }
}

/// Verifies a whole log given only the current key. `entries` is called twice (first
/// pass: collect rotations and recover earlier keys by unwrapping backwards from the
/// current key; second pass: check every entry in seq order). Detects: a changed byte
/// in any field (MAC mismatch, names the seq), a missing entry (seq gap or prev_mac
/// mismatch: names the first seq after the gap), reordering, an entry under an unknown
/// key id or under a key no longer in force, a head whose key is not the current key
/// (SECRET_KEY changed without `sysgp audit rotate`), and a truncated tail relative to
/// `expected_head` (an outside copy of the head).
pub fn verify<I, E>(
    entries: impl Fn() -> I,
    current: &AuditKey,
    expected_head: Option<&AuditHead>,
) -> Result<VerifyReport, E>
where
    I: Iterator<Item = Result<AuditEntry, E>>,
{
    let survey = Survey::collect(entries())?;
    let first_bad = match head_problem(survey.head.as_ref(), current) {
        Some(problem) => Some(problem),
        None => match recover_keys(&survey, current) {
            Err(problem) => Some(problem),
            Ok((keys, oldest_key_id)) => {
                let mut walk = Walk { keys, in_force: oldest_key_id, next_seq: 1, prev_mac: [0; 32], expected_head };
                walk.run(entries())?
            }
        },
    };
    Ok(VerifyReport { ok: first_bad.is_none(), entries: survey.count, first_bad })
}

/// Store integration: appends an entry in the caller's writer job (same transaction as
/// the change it records). The head lives in `TreeId::Meta` under key b"audit_head";
/// entries in `TreeId::Audit` under `seq.to_be_bytes()`. Refuses to extend a chain
/// whose head is sealed by another key: that would fork the chain beyond repair, and
/// `sysgp audit rotate` must run first.
pub fn append(tx: &mut WriteTx<'_>, key: &AuditKey, draft: Draft) -> Result<AuditEntry, StoreError> {
    let head = read_head(tx)?;
    if let Some(h) = head.as_ref().filter(|h| h.key_id != key.id) {
        return Err(StoreError::Codec(format!(
            "the audit chain head (seq {}) is sealed by key id {}, not by the current SECRET_KEY's key id {}: \
             SECRET_KEY changed without `sysgp audit rotate --old-key-file`",
            h.seq, h.key_id, key.id
        )));
    }
    let entry = seal(head.as_ref(), key, draft, tx.now());
    write(tx, &entry)?;
    Ok(entry)
}

/// Store form of [`seal_rotation`], in the caller's writer job.
pub fn append_rotation(
    tx: &mut WriteTx<'_>,
    old: &AuditKey,
    new: &AuditKey,
    actor: &str,
) -> Result<AuditEntry, AuditError> {
    let head = read_head(tx)?;
    let entry = seal_rotation(head.as_ref(), old, new, actor, tx.now())?;
    write(tx, &entry)?;
    Ok(entry)
}

fn read_head(tx: &WriteTx<'_>) -> Result<Option<AuditHead>, StoreError> {
    tx.get(TreeId::Meta, HEAD_KEY)
}

fn write(tx: &mut WriteTx<'_>, entry: &AuditEntry) -> Result<(), StoreError> {
    tx.put(TreeId::Audit, &entry.seq.to_be_bytes(), entry)?;
    tx.put(TreeId::Meta, HEAD_KEY, &entry.head())
}

fn unsealed(head: Option<&AuditHead>, key: &AuditKey, draft: Draft, at: Timestamp) -> AuditEntry {
    // 2^64 entries cannot be written, so `seq + 1` cannot overflow.
    let (seq, prev_mac) = head.map_or((1, [0; 32]), |h| (h.seq + 1, h.mac));
    AuditEntry {
        seq,
        at,
        actor: draft.actor,
        action: draft.action,
        target: draft.target,
        details: draft.details.to_string(),
        key_id: key.id.clone(),
        prev_mac,
        mac: [0; 32],
        rotation: None,
    }
}

/// Length-prefixed (u64 BE) fields in a fixed order behind a domain tag; options carry
/// a presence field. Every field but the MACs, so no two entries share these bytes.
fn canonical(e: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + e.actor.len() + e.action.len() + e.details.len());
    let mut field = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    field(ENTRY_TAG);
    field(&e.seq.to_be_bytes());
    field(&e.at.0.to_be_bytes());
    field(e.actor.as_bytes());
    field(e.action.as_bytes());
    match &e.target {
        None => field(&[0]),
        Some(target) => {
            field(&[1]);
            field(target.as_bytes());
        }
    }
    field(e.details.as_bytes());
    field(e.key_id.as_bytes());
    field(&e.prev_mac);
    match &e.rotation {
        None => field(&[0]),
        Some(r) => {
            field(&[1]);
            field(r.new_key_id.as_bytes());
            field(&r.old_key_wrapped);
        }
    }
    out
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> MacBytes {
    let mut mac = new_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn wrap_pad(new: &AuditKey, seq: u64) -> MacBytes {
    new.mac(&[WRAP_LABEL, &seq.to_be_bytes()])
}

fn xor(a: &MacBytes, b: &MacBytes) -> MacBytes {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn ct_eq(a: &MacBytes, b: &MacBytes) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bad(seq: u64, reason: impl Into<String>) -> BadEntry {
    BadEntry { seq, reason: reason.into() }
}

/// First pass: what the log holds, without checking it.
struct Survey {
    count: u64,
    /// The `KEY_ROTATED` entries, oldest first (few: one per key change).
    rotations: Vec<AuditEntry>,
    head: Option<AuditHead>,
}

impl Survey {
    fn collect<E>(entries: impl Iterator<Item = Result<AuditEntry, E>>) -> Result<Survey, E> {
        let mut survey = Survey { count: 0, rotations: Vec::new(), head: None };
        for entry in entries {
            let entry = entry?;
            survey.count += 1;
            survey.head = Some(entry.head());
            if entry.rotation.is_some() {
                survey.rotations.push(entry);
            }
        }
        Ok(survey)
    }
}

fn head_problem(head: Option<&AuditHead>, current: &AuditKey) -> Option<BadEntry> {
    let head = head.filter(|h| h.key_id != current.id)?;
    Some(bad(
        head.seq,
        format!(
            "the chain head is sealed by key id {} but the current SECRET_KEY gives key id {}: SECRET_KEY changed \
             without `sysgp audit rotate --old-key-file` (or the head entry is forged)",
            head.key_id, current.id
        ),
    ))
}

/// Unwraps the rotations newest first, each with the key that followed it. Returns every
/// key by id and the id of the oldest one (the key of seq 1).
fn recover_keys(survey: &Survey, current: &AuditKey) -> Result<(HashMap<String, AuditKey>, String), BadEntry> {
    let mut keys = HashMap::from([(current.id.clone(), current.clone())]);
    let mut newer = current.clone();
    for entry in survey.rotations.iter().rev() {
        let Some(r) = &entry.rotation else { continue };
        if r.new_key_id != newer.id {
            return Err(bad(
                entry.seq,
                format!("rotates to key id {} but the next key is {}: entries were altered", r.new_key_id, newer.id),
            ));
        }
        if !newer.verifies(&canonical(entry), &r.mac_new) {
            return Err(bad(entry.seq, "MAC under the new key does not match: the KEY_ROTATED entry was altered"));
        }
        let old = AuditKey::from_bytes(xor(&r.old_key_wrapped, &wrap_pad(&newer, entry.seq)));
        if old.id != entry.key_id {
            return Err(bad(entry.seq, format!("the wrapped old key is not key id {}", entry.key_id)));
        }
        keys.insert(old.id.clone(), old.clone());
        newer = old;
    }
    Ok((keys, newer.id))
}

/// Second pass: every entry in order against the recovered keys.
struct Walk<'a> {
    keys: HashMap<String, AuditKey>,
    in_force: String,
    next_seq: u64,
    prev_mac: MacBytes,
    expected_head: Option<&'a AuditHead>,
}

impl Walk<'_> {
    fn run<E>(&mut self, entries: impl Iterator<Item = Result<AuditEntry, E>>) -> Result<Option<BadEntry>, E> {
        for entry in entries {
            if let Err(problem) = self.step(&entry?) {
                return Ok(Some(problem));
            }
        }
        Ok(self.truncation())
    }

    /// An entry whose own MAC fails is named by its place in the chain: its seq field
    /// may be the altered byte.
    fn step(&mut self, e: &AuditEntry) -> Result<(), BadEntry> {
        let here = self.next_seq;
        let key = self.keys.get(&e.key_id).ok_or_else(|| {
            bad(here, format!("sealed by key id {}, which no KEY_ROTATED entry links to the current key", e.key_id))
        })?;
        let bytes = canonical(e);
        if !key.verifies(&bytes, &e.mac) {
            return Err(bad(here, "MAC does not match: the entry was altered"));
        }
        if let Some(r) = &e.rotation {
            if !self.keys.get(&r.new_key_id).is_some_and(|new| new.verifies(&bytes, &r.mac_new)) {
                return Err(bad(here, "MAC under the new key does not match: the KEY_ROTATED entry was altered"));
            }
        }
        if e.seq != here {
            return Err(bad(e.seq, format!("expected seq {here} here: entries are missing or out of order")));
        }
        if !ct_eq(&e.prev_mac, &self.prev_mac) {
            return Err(bad(e.seq, "does not follow the previous entry: an entry before it was removed or replaced"));
        }
        if e.key_id != self.in_force {
            return Err(bad(
                e.seq,
                format!("sealed by key id {} while key id {} was in force", e.key_id, self.in_force),
            ));
        }
        if self.expected_head.is_some_and(|h| h.seq == e.seq && !ct_eq(&h.mac, &e.mac)) {
            return Err(bad(e.seq, "differs from the exported chain head: the log was rewritten"));
        }
        self.next_seq = here + 1;
        self.prev_mac = e.mac;
        if let Some(r) = &e.rotation {
            self.in_force = r.new_key_id.clone();
        }
        Ok(())
    }

    fn truncation(&self) -> Option<BadEntry> {
        let expected = self.expected_head.filter(|h| h.seq >= self.next_seq)?;
        let reason = format!(
            "the log ends at seq {} but the exported chain head is at seq {}: entries were removed from the tail",
            self.next_seq - 1,
            expected.seq
        );
        Some(bad(self.next_seq, reason))
    }
}

#[cfg(test)]
mod tests {
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
}
