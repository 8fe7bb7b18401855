//! Sessions (SPEC §7): login with throttling and constant-time failure, bearer tokens
//! stored only as HMAC(SECRET_KEY, token), expiry, logout, revocation by the user's
//! epoch (password change, disable) and by a new SECRET_KEY (the HMAC no longer matches).

use std::net::IpAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::audit::{self, Draft};
use super::password;
use super::users::{self, User};
use super::{Actor, Principal};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::ledger::Timestamp;
use crate::store::{keys, TreeId};

/// A signed-in session, stored under HMAC(SECRET_KEY, token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub username: String,
    /// The user's epoch at login.
    pub epoch: u64,
    /// Login time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// What a successful login returns.
#[derive(Clone, Debug)]
pub struct LoginOk {
    /// The bearer token (shown once, never stored).
    pub token: String,
    /// Its expiry.
    pub expires_at: Timestamp,
    /// Who logged in.
    pub user: User,
}

/// Token bytes (256 bits of randomness).
const TOKEN_BYTES: usize = 32;

/// HMAC-SHA256(SECRET_KEY, token): the only form in which a token is stored.
pub fn token_key(secret: &[u8], token: &str) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return [0; 32] };
    mac.update(token.as_bytes());
    mac.finalize().into_bytes().into()
}

fn invalid_credentials() -> Error {
    Error::new(ErrorKind::Unauthenticated, "INVALID_CREDENTIALS", "wrong user name or password")
}

/// 401 for a missing, malformed, unknown, expired or revoked token.
pub fn unauthenticated() -> Error {
    Error::new(ErrorKind::Unauthenticated, "UNAUTHENTICATED", "sign in: send Authorization: Bearer <token>")
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Engine {
    /// `POST /api/v1/auth/login`.
    pub async fn login(
        self: &Arc<Self>,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<LoginOk, Error> {
        let name = username.trim().to_ascii_lowercase();
        let valid_name = users::check_username(&name).is_ok();
        let audited_name = if valid_name { name.clone() } else { "<invalid>".to_owned() };
        let details = json!({ "address": address.map(|a| a.to_string()) });
        if let Some(retry) = self.security.throttle.blocked(&name, address) {
            crate::metrics::inc("sysgp_login_attempts_total", &[("result", "throttled")]);
            self.audit_event(&audited_name, "LOGIN_THROTTLED", Some(audited_name.clone()), details).await?;
            return Err(Error::new(ErrorKind::TooMany, "TOO_MANY_ATTEMPTS", "too many failed logins; try again later")
                .with_retry_after(retry));
        }
        let user = if valid_name { self.store.record::<User>(TreeId::Users, name.as_bytes())? } else { None };
        // Unknown users are checked against a dummy hash so both failures take as long.
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| self.security.dummy_hash.clone());
        let matches =
            tokio::task::spawn_blocking(move || password::verify(&password, &hash)).await.map_err(Error::internal)?;
        let user = match user {
            Some(u) if matches && !u.disabled => u,
            _ => {
                self.security.throttle.failed(&name, address);
                crate::metrics::inc("sysgp_login_attempts_total", &[("result", "failed")]);
                self.audit_event(&audited_name, "LOGIN_FAILED", Some(audited_name.clone()), details).await?;
                return Err(invalid_credentials());
            }
        };
        self.security.throttle.succeeded(&name);
        crate::metrics::inc("sysgp_login_attempts_total", &[("result", "ok")]);
        self.open_session(user, details).await
    }

    async fn open_session(self: &Arc<Self>, user: User, details: serde_json::Value) -> Result<LoginOk, Error> {
        let mut raw = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut raw).map_err(Error::internal)?;
        let token = hex::encode(raw);
        let key = token_key(self.security.secret.expose(), &token);
        let ttl_micros = i64::try_from(self.security.session_ttl.as_micros()).unwrap_or(i64::MAX);
        let audit_key = self.audit_key.clone();
        let (name, epoch) = (user.username.clone(), user.epoch);
        let expires_at = self
            .store
            .writer
            .run(move |tx| {
                let now = tx.now();
                let session =
                    Session { username: name.clone(), epoch, created_at: now, expires_at: now.plus_micros(ttl_micros) };
                tx.put(TreeId::Sessions, &key, &session)?;
                tx.put_raw(TreeId::SessionsExpiry, &keys::expiry(session.expires_at, &key), &[]);
                audit::append(
                    tx,
                    &audit_key,
                    Draft { actor: name.clone(), action: "LOGIN_OK".into(), target: Some(name), details },
                )?;
                Ok::<_, Error>(session.expires_at)
            })
            .await?;
        Ok(LoginOk { token, expires_at, user })
    }

    /// Resolves a bearer token to the signed-in user, or 401.
    pub fn authenticate(&self, token: &str) -> Result<Principal, Error> {
        if !well_formed(token) {
            return Err(unauthenticated());
        }
        let key = token_key(self.security.secret.expose(), token);
        let session: Session = self.store.record(TreeId::Sessions, &key)?.ok_or_else(unauthenticated)?;
        if crate::engine::now() >= session.expires_at {
            return Err(unauthenticated());
        }
        let user: User = self.store.record(TreeId::Users, session.username.as_bytes())?.ok_or_else(unauthenticated)?;
        if user.disabled || user.epoch != session.epoch {
            return Err(unauthenticated());
        }
        Ok(Principal {
            actor: Actor::new(user.username),
            role: user.role,
            session_key: key,
            expires_at: session.expires_at,
        })
    }

    /// `POST /api/v1/auth/logout`: revokes this session.
    pub async fn logout(self: &Arc<Self>, principal: &Principal) -> Result<(), Error> {
        let key = principal.session_key;
        let expires = principal.expires_at;
        let audit_key = self.audit_key.clone();
        let name = principal.actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                tx.remove(TreeId::Sessions, &key);
                tx.remove(TreeId::SessionsExpiry, &keys::expiry(expires, &key));
                audit::append(
                    tx,
                    &audit_key,
                    Draft { actor: name.clone(), action: "LOGOUT".into(), target: Some(name), details: json!({}) },
                )?;
                Ok::<(), Error>(())
            })
            .await
    }

    /// `POST /api/v1/auth/password`: a user changes their own password.
    pub async fn change_own_password(
        self: &Arc<Self>,
        principal: &Principal,
        current: String,
        new: String,
    ) -> Result<User, Error> {
        let user: User =
            self.store.record(TreeId::Users, principal.actor.name.as_bytes())?.ok_or_else(unauthenticated)?;
        let hash = user.password_hash.clone();
        let ok =
            tokio::task::spawn_blocking(move || password::verify(&current, &hash)).await.map_err(Error::internal)?;
        if !ok {
            return Err(Error::new(ErrorKind::Forbidden, "INVALID_CREDENTIALS", "the current password is wrong"));
        }
        self.change_user(&principal.actor, &user.username, users::UserChange::Password(new)).await
    }

    /// Appends one audit entry on its own (login attempts).
    pub async fn audit_event(
        &self,
        actor: &str,
        action: &str,
        target: Option<String>,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        let key = self.audit_key.clone();
        let draft = Draft { actor: actor.to_owned(), action: action.to_owned(), target, details };
        self.store.writer.run(move |tx| audit::append(tx, &key, draft).map(|_| ()).map_err(Error::from)).await
    }
}

impl From<audit::AuditError> for Error {
    fn from(e: audit::AuditError) -> Error {
        Error::internal(e)
    }
}
