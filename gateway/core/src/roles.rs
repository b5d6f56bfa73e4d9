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
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {:?}: expected one of {}", s.chars().take(40).collect::<String>(), known.join(", "))
        })
    }
}

impl fmt::Display for Role {
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

    proptest! {
        #[test]
        fn role_parsing_never_panics_and_accepts_only_labels(s in "\\PC{0,60}") {
            if let Ok(r) = Role::parse(&s) {
                prop_assert_eq!(r.as_str(), s.as_str());
            }
        }
    }
}
