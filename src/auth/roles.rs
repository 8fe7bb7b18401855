//! Roles and the access rule of every route (SPEC §7).

use serde::{Deserialize, Serialize};

/// One role per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Reads everything except users and audit.
    Viewer,
    /// Creates wallets, moves money, requests adjustments, uploads.
    Maker,
    /// Approves, rejects, retries, resolves, freezes.
    Checker,
    /// Everything, except approving what it created itself.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Maker, Role::Checker, Role::Admin];

    /// API spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Maker => "maker",
            Role::Checker => "checker",
            Role::Admin => "admin",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// No token needed (`/healthz`, login, `openapi.json`).
    Public,
    /// Any signed-in user (reads, `me`, logout, own password).
    Signed,
    /// Makers and admins: create wallets, move money, request adjustments, upload.
    Maker,
    /// Checkers and admins: approve, reject, retry, resolve, freeze.
    Checker,
    /// Makers, checkers and admins: pause, resume, cancel a running job.
    Operator,
    /// Admins only: users, audit, backup.
    Admin,
}

impl Rule {
    /// Whether `role` passes this rule.
    pub fn allows(&self, role: Role) -> bool {
        match self {
            Rule::Public | Rule::Signed => true,
            Rule::Maker => matches!(role, Role::Maker | Role::Admin),
            Rule::Checker => matches!(role, Role::Checker | Role::Admin),
            Rule::Operator => role != Role::Viewer,
            Rule::Admin => role == Role::Admin,
        }
    }
}
