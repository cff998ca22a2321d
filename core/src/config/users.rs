//! `[users.NAME]`: who may use the instrument, with what role and which token.

use toml::de::DeValue;
use toml::Spanned;

use super::{ConfigError, Parser, Role};
use serde::Deserialize;

/// Who may use the instrument: `[users.NAME]` tables and `server.anonymous_loopback_admin`.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// The users, in config order.
    pub users: Vec<UserConfig>,
    /// Unauthenticated clients connecting from a loopback address act as the admin
    /// [`ANONYMOUS_USER`] (a single-user bench setup).
    pub anonymous_loopback_admin: bool,
}

/// Re-exported from the leaf that holds the user name rules.
pub use crate::names::ANONYMOUS_USER;

/// One user of the instrument.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// The name: also the folder under the data root that holds the user's datasets.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// SHA-256 of the user's bearer token.
    pub token_sha256: [u8; 32],
    /// Whose datasets the user may list and read besides their own ("*": everyone's).
    pub can_read: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    role: String,
    token_sha256: String,
    can_read: Option<Vec<String>>,
}

impl<'a> Parser<'a> {
    pub(super) fn users(
        &self,
        table: Option<Spanned<DeValue<'a>>>,
    ) -> Result<Vec<UserConfig>, ConfigError> {
        let Some(table) = table else {
            return Ok(Vec::new());
        };
        let span = table.span();
        let DeValue::Table(table) = table.into_inner() else {
            return Err(self.error(
                Some(span),
                Some("users".into()),
                "must be a table of users, e.g. [users.alice]".into(),
            ));
        };
        let mut users: Vec<UserConfig> = Vec::new();
        for (name, value) in table {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            let prefix = format!("users.{name}");
            if let Err(why) = crate::names::validate_user_name(&name) {
                return Err(self.error(Some(name_span), Some(prefix), why));
            }
            let vspan = value.span();
            let raw: RawUser = self.deserialize(&prefix, vspan.clone(), value.into_inner())?;
            let at = |key: &str, message: String| {
                self.error(
                    self.find_key(&["users", &name, key])
                        .or(Some(vspan.clone())),
                    Some(format!("{prefix}.{key}")),
                    message,
                )
            };
            let role = Role::from_name(&raw.role).ok_or_else(|| {
                at(
                    "role",
                    format!(
                        "{:?} is not a role: choose admin, operator or observer",
                        raw.role
                    ),
                )
            })?;
            let token_sha256 =
                crate::token::parse_sha256_hex(&raw.token_sha256).ok_or_else(|| {
                    at(
                        "token_sha256",
                        "must be the SHA-256 of the user's token as 64 hex digits \
                         (`microscoped token new` prints it)"
                            .into(),
                    )
                })?;
            if let Some(other) = users.iter().find(|u| u.token_sha256 == token_sha256) {
                return Err(at(
                    "token_sha256",
                    format!(
                        "the same token hash as users.{}: every user needs a token of their own",
                        other.name
                    ),
                ));
            }
            if role == Role::Admin && raw.can_read.is_some() {
                return Err(at(
                    "can_read",
                    "admins read every dataset already; remove can_read".into(),
                ));
            }
            users.push(UserConfig {
                name,
                role,
                token_sha256,
                can_read: raw.can_read.unwrap_or_default(),
            });
        }
        // Checked once every user is known, so a typo cannot silently grant nothing.
        for u in &users {
            for entry in &u.can_read {
                let known = entry == "*"
                    || entry == ANONYMOUS_USER
                    || users.iter().any(|o| &o.name == entry);
                if !known {
                    return Err(self.error(
                        self.find_key(&["users", &u.name, "can_read"]),
                        Some(format!("users.{}.can_read", u.name)),
                        format!(
                            "{entry:?} is not a user of this config: name users (or {ANONYMOUS_USER:?}), \
                             or \"*\" for everyone's datasets"
                        ),
                    ));
                }
            }
        }
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::{Config, DEFAULT_AUDIT_MB};
    use super::*;
    use std::path::Path;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn users_and_roles() {
        let c = Config::parse(
            &format!(
                "{HEAD}[users.alice]\nrole = \"operator\"\ntoken_sha256 = \"{H1}\"\n\
                 [users.bob]\nrole = \"observer\"\ntoken_sha256 = \"{H2}\"\ncan_read = [\"alice\"]\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert!(!c.access.anonymous_loopback_admin);
        let names: Vec<_> = c
            .access
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.role))
            .collect();
        assert_eq!(names, [("alice", Role::Operator), ("bob", Role::Observer)]);
        assert_eq!(c.access.users[1].can_read, ["alice"]);
        assert_eq!(c.access.users[0].token_sha256, [0x11; 32]);
        assert_eq!(c.audit.path, Path::new("data/.audit/audit.jsonl"));
        assert_eq!(c.audit.max_bytes, DEFAULT_AUDIT_MB << 20);
    }

    #[test]
    fn nobody_could_use_it() {
        let e = err(HEAD);
        assert_eq!(e.key.as_deref(), Some("users"), "{e}");
        assert!(e.message.contains("token new"), "{e}");
    }

    #[test]
    fn bad_users() {
        let user = |name: &str, body: &str| format!("{HEAD}\n[users.\"{name}\"]\n{body}");
        let ok_body = format!("role = \"operator\"\ntoken_sha256 = \"{H1}\"\n");
        for (text, key, line, says) in [
            (user("a/b", &ok_body), "users.a/b", 4, "not allowed"),
            (user("local", &ok_body), "users.local", 4, "reserved"),
            (user(".audit", &ok_body), "users..audit", 4, "start with"),
            (
                user("a", &format!("role = \"boss\"\ntoken_sha256 = \"{H1}\"\n")),
                "users.a.role",
                5,
                "admin, operator or observer",
            ),
            (
                user("a", "role = \"admin\"\ntoken_sha256 = \"secret\"\n"),
                "users.a.token_sha256",
                6,
                "64 hex",
            ),
            (
                user("a", "role = \"admin\"\n"),
                "users.a.token_sha256",
                4,
                "missing",
            ),
            (
                user("a", &format!("{ok_body}token = \"x\"\n")),
                "users.a.token",
                7,
                "unknown field",
            ),
            (
                format!(
                    "{}[users.b]\nrole = \"observer\"\ntoken_sha256 = \"{H1}\"\n",
                    user("a", &ok_body)
                ),
                "users.b.token_sha256",
                9,
                "the same token hash as users.a",
            ),
            (
                user("a", &format!("{ok_body}can_read = [\"alcie\"]\n")),
                "users.a.can_read",
                7,
                "not a user",
            ),
            (
                user(
                    "a",
                    &format!("role = \"admin\"\ntoken_sha256 = \"{H1}\"\ncan_read = [\"*\"]\n"),
                ),
                "users.a.can_read",
                7,
                "admins read every dataset",
            ),
        ] {
            let e = err(&text);
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
}
