//! The audit chain (SPEC §7 "Audit log"): HMAC-sealed entries, key rotation, verification.
//!
//! Each entry's MAC covers its canonical bytes, which include the previous entry's MAC,
//! so altering, removing or reordering entries breaks the chain at a named seq. The MAC
//! key is HMAC(SECRET_KEY, "sysgp-audit-v1"). A `KEY_ROTATED` entry is MAC'ed with the
//! old and the new key and carries the old key wrapped under the new one, so a verifier
//! holding only the current key recovers every earlier key. Everything here is pure
//! except [`append`] and [`append_rotation`], which write through the caller's [`WriteTx`].

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::Timestamp;
use crate::store::{StoreError, TreeId, WriteTx};

#[cfg(test)]
mod tests;
mod verify;

pub use verify::verify;

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
