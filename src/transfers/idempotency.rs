//! Idempotency of money POSTs (SPEC §3): an `Idempotency-Key` scoped to the acting
//! user, or a client `transfer_id`, bound in the same store transaction as the
//! reservation or posting to a hash of the normalised request.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::engine::ClaimKey;
use crate::error::{Error, ErrorKind};
use crate::ledger::{Timestamp, Transfer};
use crate::store::{IdempotencyRecord, StoredReply, WriteTx};

/// Keys live 24 hours.
pub const KEY_LIFETIME_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The idempotency handles of one request.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Acting user (keys are scoped to it).
    pub actor: String,
    /// `Idempotency-Key`, if sent.
    pub key: Option<String>,
    /// Client `transfer_id`, if sent (global).
    pub transfer_id: Option<Uuid>,
}

impl Scope {
    /// What the request must hold exclusively while it runs.
    pub fn claims(&self) -> Vec<ClaimKey> {
        let mut keys = Vec::new();
        if let Some(k) = &self.key {
            keys.push(ClaimKey::Key(self.actor.clone(), k.clone()));
        }
        if let Some(id) = self.transfer_id {
            keys.push(ClaimKey::Transfer(id));
        }
        keys
    }
}

/// An earlier answer to the same request.
#[derive(Clone, Debug)]
pub enum Replay {
    /// The transfer the first request created (replayed as 201 with its current record).
    Transfer(Box<Transfer>),
    /// The stored reply of a business rejection.
    Stored(StoredReply),
}

/// SHA-256 over the normalised fields, separated by a byte no field contains.
pub fn request_hash(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    h.finalize().into()
}

fn reused() -> Error {
    Error::conflict(
        "IDEMPOTENCY_KEY_REUSED",
        "this idempotency key or transfer_id was already used for a different request",
    )
}

/// Finds the earlier answer for this scope, or refuses a different request under it.
pub fn find_replay(tx: &WriteTx<'_>, scope: &Scope, hash: &[u8; 32]) -> Result<Option<Replay>, Error> {
    if let Some(key) = &scope.key {
        let live =
            tx.idempotency(&scope.actor, key)?.filter(|r| tx.now().micros_since(r.created_at) < KEY_LIFETIME_MICROS);
        if let Some(record) = live {
            if &record.request_hash != hash {
                return Err(reused());
            }
            if let Some(id) = record.transfer_id {
                let t = tx
                    .transfer(id)?
                    .ok_or_else(|| Error::internal(format!("idempotency key bound to missing transfer {id}")))?;
                return Ok(Some(Replay::Transfer(Box::new(t))));
            }
            if let Some(reply) = record.reply {
                return Ok(Some(Replay::Stored(reply)));
            }
        }
    }
    if let Some(id) = scope.transfer_id {
        if let Some(t) = tx.transfer(id)? {
            if &t.request_hash != hash {
                return Err(reused());
            }
            return Ok(Some(Replay::Transfer(Box::new(t))));
        }
    }
    Ok(None)
}

/// Binds the key to what this request produced (a transfer or a stored rejection).
pub fn bind(
    tx: &mut WriteTx<'_>,
    scope: &Scope,
    hash: [u8; 32],
    transfer_id: Option<Uuid>,
    rejection: Option<&Error>,
) -> Result<(), Error> {
    let Some(key) = &scope.key else { return Ok(()) };
    let reply = rejection.map(|e| StoredReply { status: 422, body: e.body().to_string() });
    let record = IdempotencyRecord { request_hash: hash, transfer_id, reply, created_at: tx.now() };
    tx.put_idempotency(&scope.actor, key, &record)?;
    Ok(())
}

/// Runs the business checks of a job: a 422 is bound to the key (so it replays) and
/// returned as the job's value; anything else propagates.
pub fn gate<T>(
    tx: &mut WriteTx<'_>,
    scope: &Scope,
    hash: [u8; 32],
    checks: Result<T, Error>,
) -> Result<Result<T, Error>, Error> {
    match checks {
        Err(e) if e.kind == ErrorKind::Rejected => {
            bind(tx, scope, hash, None, Some(&e))?;
            Ok(Err(e))
        }
        Err(e) => Err(e),
        Ok(v) => Ok(Ok(v)),
    }
}

/// Checks the `Idempotency-Key` header: 1–255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            "IDEMPOTENCY_KEY_FORMAT",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Whether a record created at `created_at` has expired at `now`.
pub fn expired(created_at: Timestamp, now: Timestamp) -> bool {
    now.micros_since(created_at) >= KEY_LIFETIME_MICROS
}
