//! Roles: what a user may do. A leaf, so config (which parses them) and access (which checks
//! them) share the type without depending on each other.

/// What a user may do. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads state, watches live view and progress; changes nothing.
    Observer,
    /// Runs the instrument while holding the control lease.
    Operator,
    /// The technician: everything, including breaking leases and reading the audit log.
    Admin,
}

impl Role {
    /// The role called `name` in the config.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "observer" => Some(Self::Observer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The role's name in the config and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observer => "observer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}
