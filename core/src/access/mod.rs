//! Who may do what on a shared instrument: users and roles, bearer-token authentication, the
//! control lease, whose datasets a user may read, and the audit log.
//!
//! Authentication happens once per request, in the server's authentication layer (`server::auth`
//! in the `microscoped` package), which turns the caller into a [`Caller`] in the request's
//! extensions. Every RPC handler then states what it needs, and [`Access::require`] decides; a
//! request that lacks it is refused and audited there.

pub mod audit;
pub mod lease;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{AccessConfig, UserConfig, ANONYMOUS_USER};
use crate::error::{Error, Kind};
use audit::{Audit, Record};
use lease::Leases;

// Roles and tokens are leaves (no config), so config reads them without a cycle.
pub use crate::role::Role;
pub use crate::token;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name (`local` for anonymous loopback access).
    pub user: String,
    /// Their role.
    pub role: Role,
    /// The client's address, for the audit log.
    pub peer: String,
}

/// An authenticated request's caller and the method it calls, put in the request's extensions
/// by the authentication layer.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub identity: Identity,
    /// The gRPC method ("SetProperty"), for the audit log.
    pub method: String,
}

/// The configured users, for authenticating requests.
pub struct Users {
    users: Vec<UserConfig>,
    anonymous_loopback_admin: bool,
}

/// How a client authenticates, for refusals.
const HOW_TO_AUTHENTICATE: &str = "send the metadata `authorization: Bearer <token>` (the CLI \
     takes --token or MICROSCOPED_TOKEN); an admin makes tokens with `microscoped token new`";

impl Users {
    /// The users of a config.
    pub fn new(config: &AccessConfig) -> Self {
        Self {
            users: config.users.clone(),
            anonymous_loopback_admin: config.anonymous_loopback_admin,
        }
    }

    /// Who sends a request with this `authorization` header value from `peer`. The error is
    /// the message for UNAUTHENTICATED; it never repeats the token.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Result<Identity, String> {
        let peer_text = peer.map(|p| p.to_string()).unwrap_or_default();
        let Some(header) = authorization else {
            let loopback = peer.is_some_and(|p| p.ip().to_canonical().is_loopback());
            if self.anonymous_loopback_admin && loopback {
                return Ok(Identity {
                    user: ANONYMOUS_USER.to_owned(),
                    role: Role::Admin,
                    peer: peer_text,
                });
            }
            return Err(format!("authentication required: {HOW_TO_AUTHENTICATE}"));
        };
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                format!("the authorization metadata is not `Bearer <token>`: {HOW_TO_AUTHENTICATE}")
            })?;
        let digest = token::sha256(token);
        // Every user is compared, so the time taken does not depend on which one matches.
        let mut found = None;
        for u in &self.users {
            if token::same_digest(&u.token_sha256, &digest) {
                found = Some(u);
            }
        }
        let u = found.ok_or_else(|| {
            format!("the token is not valid for this instrument: {HOW_TO_AUTHENTICATE}")
        })?;
        Ok(Identity {
            user: u.name.clone(),
            role: u.role,
            peer: peer_text,
        })
    }

    fn can_read_list(&self, user: &str) -> &[String] {
        self.users
            .iter()
            .find(|u| u.name == user)
            .map_or(&[], |u| u.can_read.as_slice())
    }
}

/// What an RPC needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated user: reads, live view, events.
    Observe,
    /// An operator or admin, lease or not: taking and giving back the lease, stopping an
    /// acquisition (the handler checks whose).
    Operate,
    /// An operator or admin who may change the hardware now: holds the lease, or is an admin
    /// and nobody holds it.
    Control,
    /// An admin: breaking leases, reading the audit log.
    Admin,
}

struct Inner {
    users: Users,
    leases: Leases,
    audit: Audit,
}

/// Access control for the services: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Access(Arc<Inner>);

impl Access {
    /// Access control over the configured users, writing to `audit`.
    pub fn new(config: &AccessConfig, audit: Audit) -> Self {
        Self(Arc::new(Inner {
            users: Users::new(config),
            leases: Leases::new(audit.clone()),
            audit,
        }))
    }

    /// The control lease.
    pub fn leases(&self) -> &Leases {
        &self.0.leases
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.0.audit
    }

    /// The users, for the authentication layer.
    pub fn users(&self) -> &Users {
        &self.0.users
    }

    /// `caller` (the one the authentication layer found) if they have what `need` asks;
    /// otherwise the refusal, recorded in the audit log with `target`: permission denied for a
    /// role that may not, a failed precondition for a lease held by someone else or not taken,
    /// unauthenticated with no caller (a service served without the authentication layer
    /// refuses everything).
    pub fn require(
        &self,
        caller: Option<&Caller>,
        need: Need,
        target: &str,
    ) -> Result<Caller, Error> {
        let Some(caller) = caller.cloned() else {
            return Err(Error::new(
                Kind::Unauthenticated,
                "this request carries no identity: the daemon refuses it",
            ));
        };
        let refusal = self.refusal(&caller, need);
        match refusal {
            None => Ok(caller),
            Some(e) => {
                self.record(
                    &caller,
                    target,
                    serde_json::Value::Null,
                    Outcome::Denied(&e.message),
                );
                Err(e)
            }
        }
    }

    /// Whether `caller` has what `need` asks, recording nothing: for a request that does more
    /// for those who may (a live view starts live mode for a caller who may control).
    pub fn allows(&self, caller: &Caller, need: Need) -> bool {
        self.refusal(caller, need).is_none()
    }

    /// Why `caller` lacks what `need` asks, if they do: the one decision `require` and
    /// `allows` share.
    fn refusal(&self, caller: &Caller, need: Need) -> Option<Error> {
        let who = &caller.identity;
        match need {
            Need::Observe => None,
            Need::Operate | Need::Control if who.role < Role::Operator => Some(Error::new(
                Kind::PermissionDenied,
                format!(
                    "{} is an observer and may not call {}: observers watch and read; ask an \
                     admin for the operator role",
                    who.user, caller.method
                ),
            )),
            Need::Admin if who.role < Role::Admin => Some(Error::new(
                Kind::PermissionDenied,
                format!(
                    "{} is an {} and may not call {}: only admins may",
                    who.user,
                    who.role.as_str(),
                    caller.method
                ),
            )),
            Need::Control => self.0.leases.check_control(who).err().map(Error::from),
            Need::Operate | Need::Admin => None,
        }
    }

    /// Writes what `caller` did to `target` and how it went to the audit log.
    pub fn record(
        &self,
        caller: &Caller,
        target: &str,
        detail: serde_json::Value,
        outcome: Outcome<'_>,
    ) {
        let (outcome, reason) = match outcome {
            Outcome::Ok => ("ok", ""),
            Outcome::Denied(reason) => ("denied", reason),
            Outcome::Failed(reason) => ("failed", reason),
        };
        self.0.audit.record(Record {
            user: caller.identity.user.clone(),
            role: caller.identity.role.as_str().into(),
            peer: caller.identity.peer.clone(),
            action: caller.method.clone(),
            target: target.to_owned(),
            detail,
            outcome,
            reason: reason.to_owned(),
        });
    }

    /// Whether `who` may list and read datasets owned by `owner`: their own, admins everyone's,
    /// others whose the config's `can_read` names.
    pub fn can_read(&self, who: &Identity, owner: &str) -> bool {
        who.role == Role::Admin
            || who.user == owner
            || self
                .0
                .users
                .can_read_list(&who.user)
                .iter()
                .any(|n| n == "*" || n == owner)
    }
}

/// How an audited action went, as the audit log's `outcome` and `reason` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Done.
    Ok,
    /// Refused (the caller's mistake or lack of permission), and why.
    Denied(&'a str),
    /// Allowed, but it went wrong, and how.
    Failed(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> (Users, String) {
        let t = token::new_token().unwrap();
        let u = Users::new(&AccessConfig {
            users: vec![UserConfig {
                name: "alice".into(),
                role: Role::Operator,
                token_sha256: token::sha256(&t),
                can_read: vec![],
            }],
            anonymous_loopback_admin: true,
        });
        (u, t)
    }

    #[test]
    fn tokens_and_anonymous_loopback() {
        let (u, t) = users();
        let lo: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let lo6: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        let far: SocketAddr = "192.0.2.7:5".parse().unwrap();
        let alice = u
            .authenticate(Some(&format!("Bearer {t}")), Some(far))
            .unwrap();
        assert_eq!((alice.user.as_str(), alice.role), ("alice", Role::Operator));
        assert_eq!(
            u.authenticate(Some(&format!("bearer {t}")), Some(far))
                .unwrap()
                .user,
            "alice"
        );
        for peer in [lo, lo6] {
            let anon = u.authenticate(None, Some(peer)).unwrap();
            assert_eq!(
                (anon.user.as_str(), anon.role),
                (ANONYMOUS_USER, Role::Admin)
            );
        }
        let e = u.authenticate(None, Some(far)).unwrap_err();
        assert!(e.contains("Bearer"), "{e}");
        // A wrong token is refused even on loopback, and is never echoed.
        let e = u
            .authenticate(Some("Bearer msd_wrong-token"), Some(lo))
            .unwrap_err();
        assert!(!e.contains("wrong-token"), "{e}");
        assert!(u.authenticate(Some(&t), Some(lo)).is_err(), "no scheme");
    }
}
