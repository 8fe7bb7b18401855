//! Who is acting and what they may do: users and roles, sessions, login throttling,
//! and the HMAC-chained audit log (SPEC §7).

pub mod audit;
pub mod password;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::net::IpAddr;
use std::time::Duration;

pub use roles::{Role, Rule};

use crate::config::SecretKey;
use throttle::LoginThrottle;

/// The authenticated user behind a request, or a system process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// User name as recorded in `created_by` and idempotency scopes.
    pub name: String,
}

impl Actor {
    /// A named actor.
    pub fn new(name: impl Into<String>) -> Actor {
        Actor { name: name.into() }
    }

    /// The service itself (recovery, reconciliation).
    pub fn system() -> Actor {
        Actor::new("system")
    }
}

/// A signed-in user: who, with which role, in which session.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The user as an actor.
    pub actor: Actor,
    /// The user's current role.
    pub role: Role,
    /// HMAC of the session token (for logout).
    pub session_key: [u8; 32],
    /// Session expiry.
    pub expires_at: crate::ledger::Timestamp,
}

/// Secrets and limits of the security layer.
pub struct Security {
    /// `SECRET_KEY`.
    pub secret: SecretKey,
    /// Failed-login counters.
    pub throttle: LoginThrottle,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// A hash checked for unknown users so failures take constant time.
    pub dummy_hash: String,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Security {
    /// Builds the layer; hashing the dummy password takes one argon2 run.
    pub fn new(
        secret: SecretKey,
        throttle: LoginThrottle,
        session_ttl: Duration,
        trusted_proxies: Vec<IpAddr>,
    ) -> Result<Security, crate::error::Error> {
        let dummy_hash = password::hash("dummy password for unknown users")?;
        Ok(Security { secret, throttle, session_ttl, dummy_hash, trusted_proxies })
    }
}

/// The audit chain head as stored (`None` for an empty log).
pub fn audit_head(store: &crate::store::Store) -> Result<Option<audit::AuditHead>, crate::store::StoreError> {
    store.record(crate::store::TreeId::Meta, audit::HEAD_KEY)
}

/// Refuses a `SECRET_KEY` that does not seal the audit chain head: the key changed
/// without `sysgp audit rotate --old-key-file`, and extending the chain would break it.
pub fn check_audit_key(store: &crate::store::Store, key: &audit::AuditKey) -> Result<(), String> {
    match audit_head(store) {
        Ok(Some(head)) if head.key_id != key.id() => Err(format!(
            "SECRET_KEY: the audit chain (head seq {}) is sealed by key id {}, but this SECRET_KEY has key id {}; \
             if the key was changed on purpose, run `sysgp audit rotate --old-key-file FILE` with the new key set",
            head.seq,
            head.key_id,
            key.id()
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot read the audit chain head: {e}")),
    }
}
