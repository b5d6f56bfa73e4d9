//! Administrative roles of staff (HR and medical affairs bind and track cards: seeds 000, "the IT
//! department must not hold the cards") and the identity search their pages start from.
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::directory::{DirectoryError, Identity};

/// An administrative role a person or an API token may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// HR / medical affairs: card records, their life cycle and binding (`/admin/cards`).
    Cards,
    /// Administrators of FIDO2 keys: list and revoke any user's keys, issue enrolment codes.
    Fido2,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 2] = [Role::Cards, Role::Fido2];

    /// Stable label (configuration, database, CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cards => "cards",
            Role::Fido2 => "fido2",
        }
    }

    /// The role with this label, or a message naming the known ones.
    pub fn parse(s: &str) -> Result<Role, String> {
        parse_label("role", &Self::ALL, Role::as_str, s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an admin API token may do: one scope per kind of call of `/admin/api/…`, each under
/// the role it belongs to. A token holds a role and, within it, only the scopes configured for
/// it (RFC 6749 §3.3: the scope bounds what the token grants; RFC 6750 §3.1:
/// `insufficient_scope` names what is missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Search agents; read their cards and a card's history.
    #[serde(rename = "cards:read")]
    CardsRead,
    /// Record a card, move it in its life cycle (lost, stolen… ends its sessions).
    #[serde(rename = "cards:write")]
    CardsWrite,
    /// Bind a card record to a certificate (pending until the card is presented).
    #[serde(rename = "cards:bind")]
    CardsBind,
    /// List an agent's FIDO2 keys.
    #[serde(rename = "keys:read")]
    KeysRead,
    /// Issue a one-time enrolment code with which the agent registers a key.
    #[serde(rename = "keys:enrol")]
    KeysEnrol,
    /// Revoke a key (its sessions end).
    #[serde(rename = "keys:revoke")]
    KeysRevoke,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] =
        [Scope::CardsRead, Scope::CardsWrite, Scope::CardsBind, Scope::KeysRead, Scope::KeysEnrol, Scope::KeysRevoke];

    /// Stable label (configuration, `WWW-Authenticate`, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CardsRead => "cards:read",
            Scope::CardsWrite => "cards:write",
            Scope::CardsBind => "cards:bind",
            Scope::KeysRead => "keys:read",
            Scope::KeysEnrol => "keys:enrol",
            Scope::KeysRevoke => "keys:revoke",
        }
    }

    /// The role the scope belongs to: a token needs both.
    pub fn role(self) -> Role {
        match self {
            Scope::CardsRead | Scope::CardsWrite | Scope::CardsBind => Role::Cards,
            Scope::KeysRead | Scope::KeysEnrol | Scope::KeysRevoke => Role::Fido2,
        }
    }

    /// Whether the scope only reads.
    pub fn read_only(self) -> bool {
        matches!(self, Scope::CardsRead | Scope::KeysRead)
    }

    /// The scope with this label, or a message naming the known ones.
    pub fn parse(s: &str) -> Result<Scope, String> {
        parse_label("scope", &Self::ALL, Scope::as_str, s)
    }
}

/// The value of `all` whose label is `s`, or a message naming the known labels.
fn parse_label<T: Copy>(what: &str, all: &[T], label: fn(T) -> &'static str, s: &str) -> Result<T, String> {
    all.iter().copied().find(|v| label(*v) == s).ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|v| label(*v)).collect();
        format!("unknown {what} {:?}: expected one of {}", s.chars().take(40).collect::<String>(), known.join(", "))
    })
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds which administrative role.
#[async_trait]
pub trait Roles: Send + Sync {
    /// The roles of an identity (none for an unknown identity).
    async fn roles_of(&self, identity_id: &str) -> Result<Vec<Role>, DirectoryError>;
    /// Grants a role; granting a role already held changes nothing. Refused for an unknown identity.
    async fn grant(&self, identity_id: &str, role: Role, by: &str) -> Result<(), DirectoryError>;
    /// Revokes a role; returns whether it was held.
    async fn revoke(&self, identity_id: &str, role: Role) -> Result<bool, DirectoryError>;
}

/// Finding an agent from what HR has at hand.
#[async_trait]
pub trait IdentitySearch: Send + Sync {
    /// Identities whose family name, given name, "given family" / "family given", matricule or
    /// idNat contains `query` (accent- and case-insensitive for names), at most `limit`, by
    /// family then given name. An empty query finds nothing.
    async fn search_identities(&self, query: &str, limit: usize) -> Result<Vec<Identity>, DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roles_round_trip_through_their_labels() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        let e = Role::parse("admin").unwrap_err();
        assert!(e.contains("cards") && e.contains("\"admin\""), "{e}");
    }

    #[test]
    fn scopes_round_trip_through_their_labels_and_belong_to_one_role() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(s));
            assert!(s.as_str().starts_with(if s.role() == Role::Cards { "cards:" } else { "keys:" }));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        let e = Scope::parse("cards:*").unwrap_err();
        assert!(e.contains("cards:bind") && e.contains("\"cards:*\""), "{e}");
    }

    proptest! {
        #[test]
        fn scope_parsing_never_panics_and_accepts_only_labels(s in "\\PC{0,60}") {
            if let Ok(r) = Scope::parse(&s) {
                prop_assert_eq!(r.as_str(), s.as_str());
            }
        }

        #[test]
        fn role_parsing_never_panics_and_accepts_only_labels(s in "\\PC{0,60}") {
            if let Ok(r) = Role::parse(&s) {
                prop_assert_eq!(r.as_str(), s.as_str());
            }
        }
    }
}
