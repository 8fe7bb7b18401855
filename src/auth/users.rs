//! Users: one role each, argon2id password hashes, a session epoch that revokes every
//! session of the user when it moves (password change, disable). Every change is
//! audited in the same store transaction.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, Draft};
use super::password;
use super::{Actor, Role};
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::Timestamp;
use crate::store::{Store, StoreError, TreeId, WriteTx};

/// A user of the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique, lower-case name.
    pub username: String,
    /// The one role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot log in; their sessions are revoked.
    pub disabled: bool,
    /// Sessions carry the epoch they were made in; moving it revokes them all.
    pub epoch: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Who created the user.
    pub created_by: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// User names: 1–64 of `a-z 0-9 . _ -`, case-insensitive (stored lower-case).
pub fn check_username(name: &str) -> Result<String, Error> {
    let n = name.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && n != "system"
        && n != "api";
    if !ok {
        return Err(Error::invalid_field(
            "USERNAME_FORMAT",
            "username",
            "user names have 1 to 64 of a-z, 0-9, '.', '_', '-'",
        ));
    }
    Ok(n)
}

/// What the API shows of a user (never the hash).
pub fn view(u: &User) -> serde_json::Value {
    json!({
        "username": u.username,
        "role": u.role.as_str(),
        "disabled": u.disabled,
        "created_at": u.created_at.to_string(),
        "created_by": u.created_by,
        "updated_at": u.updated_at.to_string(),
    })
}

fn user_missing(name: &str) -> Error {
    Error::not_found("USER_NOT_FOUND", format!("no user {name}"))
}

/// Reads a user inside a job.
pub fn get(tx: &WriteTx<'_>, name: &str) -> Result<Option<User>, StoreError> {
    tx.get(TreeId::Users, name.as_bytes())
}

fn active_admins(tx: &WriteTx<'_>, store: &Store) -> Result<usize, Error> {
    // The user list is small (operators, not customers); count admins from the store
    // and correct for this batch's writes through the job's own view.
    let mut n = 0;
    for u in store.users()? {
        let current = get(tx, &u.username)?.unwrap_or(u);
        if current.role == Role::Admin && !current.disabled {
            n += 1;
        }
    }
    Ok(n)
}

/// A change to an existing user.
#[derive(Clone, Debug)]
pub enum UserChange {
    /// New role.
    Role(Role),
    /// Disable (revokes sessions).
    Disable,
    /// Enable again.
    Enable,
    /// New password hash (revokes sessions).
    Password(String),
}

impl Engine {
    /// Creates a user (admin API, CLI, demo).
    pub async fn add_user(
        self: &Arc<Self>,
        actor: &Actor,
        username: &str,
        role: Role,
        password: String,
    ) -> Result<User, Error> {
        let username = check_username(username)?;
        password::check_policy(&username, &password)?;
        let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await.map_err(Error::internal)??;
        let key = self.audit_key.clone();
        let actor = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                if get(tx, &username)?.is_some() {
                    return Err(Error::conflict("USER_EXISTS", format!("user {username} already exists")));
                }
                let now = tx.now();
                let user = User {
                    username: username.clone(),
                    role,
                    password_hash: hash,
                    disabled: false,
                    epoch: 1,
                    created_at: now,
                    created_by: actor.clone(),
                    updated_at: now,
                };
                tx.put(TreeId::Users, username.as_bytes(), &user)?;
                audit::append(
                    tx,
                    &key,
                    Draft {
                        actor,
                        action: "USER_CREATED".into(),
                        target: Some(username),
                        details: json!({ "role": role.as_str() }),
                    },
                )?;
                Ok(user)
            })
            .await
    }

    /// Changes a user; refuses to leave the system without an active admin.
    pub async fn change_user(
        self: &Arc<Self>,
        actor: &Actor,
        username: &str,
        change: UserChange,
    ) -> Result<User, Error> {
        let username = check_username(username)?;
        let change = match change {
            UserChange::Password(p) => {
                password::check_policy(&username, &p)?;
                UserChange::Password(
                    tokio::task::spawn_blocking(move || password::hash(&p)).await.map_err(Error::internal)??,
                )
            }
            other => other,
        };
        let key = self.audit_key.clone();
        let actor = actor.name.clone();
        let store = self.store.clone();
        self.store
            .writer
            .run(move |tx| {
                let mut user = get(tx, &username)?.ok_or_else(|| user_missing(&username))?;
                let was_admin = user.role == Role::Admin && !user.disabled;
                let (action, details) = match &change {
                    UserChange::Role(r) => {
                        user.role = *r;
                        ("USER_ROLE_CHANGED", json!({ "role": r.as_str() }))
                    }
                    UserChange::Disable => {
                        user.disabled = true;
                        user.epoch += 1;
                        ("USER_DISABLED", json!({}))
                    }
                    UserChange::Enable => {
                        user.disabled = false;
                        ("USER_ENABLED", json!({}))
                    }
                    UserChange::Password(hash) => {
                        user.password_hash = hash.clone();
                        user.epoch += 1;
                        ("USER_PASSWORD_SET", json!({}))
                    }
                };
                let still_admin = user.role == Role::Admin && !user.disabled;
                if was_admin && !still_admin && active_admins(tx, &store)? <= 1 {
                    return Err(Error::conflict(
                        "LAST_ADMIN",
                        "this is the last active admin; create another admin first",
                    ));
                }
                user.updated_at = tx.now();
                tx.put(TreeId::Users, username.as_bytes(), &user)?;
                audit::append(tx, &key, Draft { actor, action: action.into(), target: Some(username), details })?;
                Ok(user)
            })
            .await
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<User>, Error> {
        Ok(self.store.users()?)
    }
}

impl Store {
    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.scan_tree(TreeId::Users)
    }
}
