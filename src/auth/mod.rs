//! Who is acting. The security layer (users, roles, sessions, audit) builds on this.

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
