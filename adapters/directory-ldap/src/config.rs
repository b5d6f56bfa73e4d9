//! `[directory.ldap]`: where the establishment's directory is, how Vigie binds to it, and how
//! its entries map to Vigie's identities, with defaults per profile (Active Directory, OpenLDAP).
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The kind of directory, which sets the defaults of the attribute names and group expansion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Microsoft Active Directory (or Samba AD): `sAMAccountName`, `objectGUID`,
    /// `userAccountControl`, nested groups by `LDAP_MATCHING_RULE_IN_CHAIN`.
    Ad,
    /// OpenLDAP: `uid`, `entryUUID`, groups found by `member`, nesting expanded by Vigie.
    Openldap,
}

/// How the groups of a user are found, nested ones included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupExpansion {
    /// One search with AD's `LDAP_MATCHING_RULE_IN_CHAIN` (1.2.840.113556.1.4.1941): the server
    /// walks the nesting (Active Directory, Samba AD).
    InChain,
    /// Vigie searches `(member=<dn>)` level by level, each group once (cycles end): any server.
    Client,
}

/// The attribute names read from a user entry. Empty: the profile's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attributes {
    /// The login name people type (`sAMAccountName` / `uid`).
    pub login: Option<String>,
    /// The stable id that survives renames (`objectGUID` / `entryUUID`).
    pub id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub mail: Option<String>,
    /// The HR matricule (`employeeID` on AD, `employeeNumber` on OpenLDAP).
    pub matricule: Option<String>,
    /// The national identifier (idNat), where the directory holds it: no default.
    pub idnat: Option<String>,
    /// Functional unit (UF) codes, one value each: no default.
    pub unit: Option<String>,
    /// Métier: no default.
    pub metier: Option<String>,
    /// Grade: no default.
    pub grade: Option<String>,
}

/// `[directory.ldap]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    pub profile: Profile,
    /// `ldaps://host:636` or `ldap://host:389` (with `starttls = true`), tried in order.
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS (RFC 4511 §4.14). Plain LDAP is refused:
    /// passwords cross this connection.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA(s) that issued the directory's certificate; absent: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The service account's DN, which searches users and groups.
    pub bind_dn: String,
    /// A file holding the service account's password (one line; a trailing newline is dropped).
    pub bind_password_file: PathBuf,
    /// Where users are searched (subtree).
    pub user_base: String,
    /// Where groups are searched (subtree); absent: `user_base`.
    #[serde(default)]
    pub group_base: Option<String>,
    /// An extra filter users must match, e.g. `(objectClass=user)`; absent: the profile's.
    #[serde(default)]
    pub user_filter: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
    /// Absent: `in_chain` on AD, `client` on OpenLDAP (which has no such rule).
    #[serde(default)]
    pub group_expansion: Option<GroupExpansion>,
    /// Group (its DN, or its CN) → Vigie role (`cards`, `fido2`).
    #[serde(default)]
    pub group_roles: BTreeMap<String, String>,
    /// Longest wait for a TCP + TLS connection, per URL (milliseconds).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for one operation (bind, search), in milliseconds.
    #[serde(default = "default_operation_timeout_ms")]
    pub operation_timeout_ms: u64,
    /// How often `serve` syncs the directory into Vigie's (one replica at a time), in seconds;
    /// 0: only `vigie directory sync` does.
    #[serde(default)]
    pub sync_interval_secs: u64,
    /// How often a periodic pass is a full one (every entry read, leavers found) rather than a
    /// changed-since one (only the entries changed since the last pass), in seconds.
    #[serde(default = "default_full_sync_interval_secs")]
    pub full_sync_interval_secs: u64,
    /// What a sync does when a linked entry's matricule changes in the directory.
    #[serde(default)]
    pub matricule_changes: MatriculeChanges,
}

/// Whose matricule wins when the directory's changes for an entry already linked to an identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatriculeChanges {
    /// HR's record owns the matricule: the entry is not synced, the change is logged and audited
    /// until HR and the directory agree again.
    #[default]
    Refuse,
    /// The directory's matricule is taken: the linked identity's matricule is changed (by its
    /// id), unless another identity holds the new one (then refused as above).
    Follow,
}

fn default_full_sync_interval_secs() -> u64 {
    86_400
}

fn default_connect_timeout_ms() -> u64 {
    3000
}

fn default_operation_timeout_ms() -> u64 {
    5000
}

/// The attribute names and filters in force: the configuration over the profile's defaults.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub login: String,
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub mail: String,
    pub matricule: String,
    pub idnat: Option<String>,
    pub unit: Option<String>,
    pub metier: Option<String>,
    pub grade: Option<String>,
    pub user_filter: String,
    pub group_expansion: GroupExpansion,
}

impl LdapConfig {
    pub(crate) fn resolved(&self) -> Resolved {
        let a = &self.attributes;
        let pick = |v: &Option<String>, ad: &str, ol: &str| {
            v.clone().unwrap_or_else(|| if self.profile == Profile::Ad { ad } else { ol }.to_owned())
        };
        Resolved {
            login: pick(&a.login, "sAMAccountName", "uid"),
            id: pick(&a.id, "objectGUID", "entryUUID"),
            given_name: pick(&a.given_name, "givenName", "givenName"),
            family_name: pick(&a.family_name, "sn", "sn"),
            mail: pick(&a.mail, "mail", "mail"),
            matricule: pick(&a.matricule, "employeeID", "employeeNumber"),
            idnat: a.idnat.clone(),
            unit: a.unit.clone(),
            metier: a.metier.clone(),
            grade: a.grade.clone(),
            user_filter: pick(&self.user_filter, "(objectClass=user)", "(objectClass=inetOrgPerson)"),
            group_expansion: self.group_expansion.unwrap_or(match self.profile {
                Profile::Ad => GroupExpansion::InChain,
                Profile::Openldap => GroupExpansion::Client,
            }),
        }
    }

    /// Checks serde cannot make; each problem names its key (under `prefix`, e.g.
    /// `directory.ldap`) and says what to do. `roles` are the role labels Vigie knows.
    pub fn validate(&self, prefix: &str, roles: &[&str], err: &mut dyn FnMut(&str, String)) {
        let key = |k: &str| format!("{prefix}.{k}");
        if self.urls.is_empty() {
            err(&key("urls"), "give at least one ldaps:// or ldap:// URL".into());
        }
        for (i, u) in self.urls.iter().enumerate() {
            // Only the scheme is named back: an URL may carry credentials.
            let k = key(&format!("urls[{i}]"));
            if u.starts_with("ldaps://") {
                if self.starttls {
                    err(&k, "is ldaps://: StartTLS is for ldap:// URLs; drop `starttls` or use ldap://".into());
                }
            } else if u.starts_with("ldap://") {
                if !self.starttls {
                    err(
                        &k,
                        "is plain ldap:// and passwords would cross it in clear: use ldaps:// or set `starttls = true`"
                            .into(),
                    );
                }
            } else {
                err(&k, "expected an ldaps:// or ldap:// URL".into());
            }
            if u.contains('@') {
                err(&k, "must not carry credentials: the service password goes in `bind_password_file`".into());
            }
        }
        for (k, v) in [("bind_dn", &self.bind_dn), ("user_base", &self.user_base)] {
            if v.trim().is_empty() {
                err(&key(k), "must not be empty".into());
            }
        }
        if let Some(f) = &self.user_filter
            && !(f.starts_with('(') && f.ends_with(')') && ldap3::parse_filter(f).is_ok())
        {
            err(&key("user_filter"), "is not an LDAP filter (RFC 4515), e.g. \"(objectClass=user)\"".into());
        }
        for (group, role) in &self.group_roles {
            if !roles.contains(&role.as_str()) {
                err(
                    &key(&format!("group_roles.{group:?}")),
                    format!("unknown role {role:?}: expected one of {}", roles.join(", ")),
                );
            }
        }
        if self.connect_timeout_ms == 0 {
            err(&key("connect_timeout_ms"), "is 0: give the longest wait in milliseconds, e.g. 3000".into());
        }
        if self.full_sync_interval_secs == 0 {
            err(&key("full_sync_interval_secs"), "is 0: give how often a pass reads every entry, e.g. 86400".into());
        }
        if self.operation_timeout_ms == 0 {
            err(&key("operation_timeout_ms"), "is 0: give the longest wait in milliseconds, e.g. 5000".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> LdapConfig {
        let base = "profile = \"ad\"\nbind_dn = \"cn=svc\"\nbind_password_file = \"/p\"\nuser_base = \"dc=x\"\n";
        toml_like(&format!("{base}{extra}"))
    }

    // The crate has no TOML parser; serde's value model is enough through a tiny JSON form.
    fn toml_like(s: &str) -> LdapConfig {
        let mut map = serde_json::Map::new();
        for line in s.lines().filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once(" = ").expect("key = value");
            map.insert(k.to_owned(), serde_json::from_str(v).expect("a JSON value"));
        }
        serde_json::from_value(serde_json::Value::Object(map)).expect("a [directory.ldap] section")
    }

    fn problems(c: &LdapConfig) -> Vec<String> {
        let mut found = Vec::new();
        c.validate("directory.ldap", &["cards", "fido2"], &mut |k, m| found.push(format!("`{k}`: {m}")));
        found
    }

    #[test]
    fn plain_ldap_without_starttls_is_refused_naming_the_url_key() {
        let found = problems(&config("urls = [\"ldaps://a:636\", \"ldap://b:389\"]"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("`directory.ldap.urls[1]`: is plain ldap://"), "{found:?}");
    }

    #[test]
    fn credentials_in_an_url_are_refused_without_echoing_them() {
        let found = problems(&config("urls = [\"ldaps://svc:s3cret@a:636\"]"));
        assert!(found.iter().any(|p| p.contains("must not carry credentials")), "{found:?}");
        assert!(found.iter().all(|p| !p.contains("s3cret")), "{found:?}");
    }

    #[test]
    fn an_unknown_role_or_a_bad_filter_is_refused_naming_its_key() {
        let c = config(
            "urls = [\"ldaps://a\"]\nuser_filter = \"objectClass=user\"\ngroup_roles = {\"GG-Cartes\": \"carte\"}",
        );
        let found = problems(&c);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("`directory.ldap.user_filter`"), "{found:?}");
        assert!(found[1].starts_with("`directory.ldap.group_roles.\"GG-Cartes\"`: unknown role"), "{found:?}");
    }

    #[test]
    fn profiles_set_their_defaults_and_the_configuration_overrides_them() {
        let ad = config("urls = [\"ldaps://a\"]").resolved();
        assert_eq!((ad.login.as_str(), ad.id.as_str()), ("sAMAccountName", "objectGUID"));
        assert_eq!(ad.group_expansion, GroupExpansion::InChain);
        let mut ol = config("urls = [\"ldaps://a\"]\nattributes = {\"matricule\": \"employeeID\"}");
        ol.profile = Profile::Openldap;
        let ol = ol.resolved();
        assert_eq!((ol.login.as_str(), ol.id.as_str(), ol.matricule.as_str()), ("uid", "entryUUID", "employeeID"));
        assert_eq!(ol.group_expansion, GroupExpansion::Client);
    }
}
