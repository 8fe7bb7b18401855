//! Verification of the audit chain: a first pass surveys the log and recovers every
//! earlier key from the rotations, a second walks every entry in order.

use std::collections::HashMap;

use super::{canonical, ct_eq, wrap_pad, xor, AuditEntry, AuditHead, AuditKey, BadEntry, MacBytes, VerifyReport};

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
