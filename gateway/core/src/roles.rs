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
    /// An identity-governance tool or HR connector pushing people and groups through SCIM 2.0
    /// (`/scim/v2`). A token's role only: it opens nothing of the admin API.
    Provisioning,
    /// Auditors: search the audit trail (`GET /admin/audit`, docs/audit.md "Searching").
    Audit,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Cards, Role::Fido2, Role::Provisioning, Role::Audit];

    /// Stable label (configuration, database, CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cards => "cards",
            Role::Fido2 => "fido2",
            Role::Provisioning => "provisioning",
            Role::Audit => "audit",
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
    /// Create, read, change and delete people and groups through SCIM 2.0 (`/scim/v2`).
    #[serde(rename = "provisioning")]
    Provisioning,
    /// Search the audit trail (`GET /admin/audit`); every search is itself audited.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Search people and read a person's page in the console (identity, MIEs, live sessions).
    #[serde(rename = "people:read")]
    PeopleRead,
    /// End a person's sessions.
    #[serde(rename = "people:write")]
    PeopleWrite,
    /// Read the HR feed's runs (counts, diff, error lines) and the pending RPPS proposals.
    #[serde(rename = "feeds:read")]
    FeedsRead,
    /// Confirm or reject an RPPS derivation proposal (the identity's idNat).
    #[serde(rename = "proposals:write")]
    ProposalsWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 12] = [
        Scope::CardsRead,
        Scope::CardsWrite,
        Scope::CardsBind,
        Scope::KeysRead,
        Scope::KeysEnrol,
        Scope::KeysRevoke,
        Scope::Provisioning,
        Scope::AuditRead,
        Scope::PeopleRead,
        Scope::PeopleWrite,
        Scope::FeedsRead,
        Scope::ProposalsWrite,
    ];

    /// Stable label (configuration, `WWW-Authenticate`, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CardsRead => "cards:read",
            Scope::CardsWrite => "cards:write",
            Scope::CardsBind => "cards:bind",
            Scope::KeysRead => "keys:read",
            Scope::KeysEnrol => "keys:enrol",
            Scope::KeysRevoke => "keys:revoke",
            Scope::Provisioning => "provisioning",
            Scope::AuditRead => "audit:read",
            Scope::PeopleRead => "people:read",
            Scope::PeopleWrite => "people:write",
            Scope::FeedsRead => "feeds:read",
            Scope::ProposalsWrite => "proposals:write",
        }
    }

    /// The role the scope belongs to: a token needs both.
    pub fn role(self) -> Role {
        match self {
            // The people console, the feeds and the derivation proposals are HR's, as the cards
            // are (`provisioning` is a SCIM tool's token role and opens nothing of the admin API).
            Scope::CardsRead
            | Scope::CardsWrite
            | Scope::CardsBind
            | Scope::PeopleRead
            | Scope::PeopleWrite
            | Scope::FeedsRead
            | Scope::ProposalsWrite => Role::Cards,
            Scope::KeysRead | Scope::KeysEnrol | Scope::KeysRevoke => Role::Fido2,
            Scope::Provisioning => Role::Provisioning,
            Scope::AuditRead => Role::Audit,
        }
    }

    /// Whether the scope only reads.
    pub fn read_only(self) -> bool {
        matches!(self, Scope::CardsRead | Scope::KeysRead | Scope::AuditRead | Scope::PeopleRead | Scope::FeedsRead)
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

    /// The labels README.md documents ("Each token has `roles` and, within them, `scopes`").
    const ROLES: [(&str, Role); 4] =
        [("cards", Role::Cards), ("fido2", Role::Fido2), ("provisioning", Role::Provisioning), ("audit", Role::Audit)];
    /// Each scope with its role and whether it only reads.
    const SCOPES: [(&str, Role, bool); 12] = [
        ("cards:read", Role::Cards, true),
        ("cards:write", Role::Cards, false),
        ("cards:bind", Role::Cards, false),
        ("keys:read", Role::Fido2, true),
        ("keys:enrol", Role::Fido2, false),
        ("keys:revoke", Role::Fido2, false),
        ("provisioning", Role::Provisioning, false),
        ("audit:read", Role::Audit, true),
        ("people:read", Role::Cards, true),
        ("people:write", Role::Cards, false),
        ("feeds:read", Role::Cards, true),
        ("proposals:write", Role::Cards, false),
    ];
    const KNOWN_ROLES: &str = "expected one of cards, fido2, provisioning, audit";
    const KNOWN_SCOPES: &str = "expected one of cards:read, cards:write, cards:bind, keys:read, keys:enrol, keys:revoke, provisioning, \
         audit:read, people:read, people:write, feeds:read, proposals:write";

    #[test]
    fn the_documented_labels_name_each_role_and_scope() {
        assert_eq!(Role::ALL.len(), ROLES.len());
        for (label, role) in ROLES {
            assert_eq!(Role::parse(label), Ok(role));
            assert_eq!((role.as_str(), serde_json::to_value(role).unwrap()), (label, serde_json::json!(label)));
        }
        assert_eq!(Scope::ALL.len(), SCOPES.len());
        for (label, role, read_only) in SCOPES {
            let scope = Scope::parse(label).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((scope.as_str(), scope.role(), scope.read_only()), (label, role, read_only));
            assert_eq!(serde_json::to_value(scope).unwrap(), serde_json::json!(label));
            assert_eq!(serde_json::from_value::<Scope>(serde_json::json!(label)).unwrap(), scope);
        }
    }

    #[test]
    fn an_unknown_label_is_refused_naming_it_and_the_known_ones() {
        assert_eq!(Role::parse("admin"), Err(format!(r#"unknown role "admin": {KNOWN_ROLES}"#)));
        assert_eq!(Scope::parse("cards:*"), Err(format!(r#"unknown scope "cards:*": {KNOWN_SCOPES}"#)));
        assert_eq!(Scope::parse(""), Err(format!(r#"unknown scope "": {KNOWN_SCOPES}"#)));
        // What is echoed is cut at 40 characters.
        let long = format!("cards{}", "x".repeat(100));
        assert_eq!(Role::parse(&long), Err(format!(r#"unknown role "cards{}": {KNOWN_ROLES}"#, "x".repeat(35))));
    }

    /// One of `labels` with one edit: a character deleted, inserted or replaced, the whole in
    /// capitals, or blank around it. Labels are exact: none of these is one.
    fn near_miss(labels: Vec<&'static str>) -> impl Strategy<Value = String> {
        let edit = (0u8..5, any::<prop::sample::Index>(), "[a-z0-9A-Z:*_ .é\t-]");
        (prop::sample::select(labels.clone()), edit).prop_filter_map("still a label", move |(label, (kind, at, c))| {
            let mut s = label.to_owned();
            match kind {
                0 => drop(s.remove(at.index(s.len()))),
                1 => s.insert_str(at.index(s.len() + 1), &c),
                2 => s.replace_range(at.index(s.len())..at.index(s.len()) + 1, &c),
                3 => s = s.to_uppercase(),
                _ => s = if at.index(2) == 0 { format!(" {s}") } else { format!("{s}\n") },
            }
            (!labels.contains(&s.as_str())).then_some(s)
        })
    }

    proptest! {
        #[test]
        fn a_role_label_one_edit_off_is_refused(s in near_miss(ROLES.map(|(label, _)| label).to_vec())) {
            prop_assert_eq!(Role::parse(&s), Err(format!("unknown role {s:?}: {KNOWN_ROLES}")));
        }

        #[test]
        fn a_scope_label_one_edit_off_is_refused(s in near_miss(SCOPES.map(|(label, ..)| label).to_vec())) {
            prop_assert_eq!(Scope::parse(&s), Err(format!("unknown scope {s:?}: {KNOWN_SCOPES}")));
            prop_assert!(serde_json::from_value::<Scope>(serde_json::json!(s)).is_err());
        }
    }
}
