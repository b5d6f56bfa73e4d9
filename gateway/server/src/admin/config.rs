//! `[admin]`: the bearer tokens of the admin API, their roles, scopes and expiry, and their checks.
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The admin API (`/admin/api/…`, used by the `vigie cards …` CLI): who may call it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer tokens of the admin API, each with its roles (`vigie admin new-token` makes one).
    pub tokens: Vec<AdminTokenConfig>,
}

/// One bearer token of the admin API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Who holds it (audit lines say `token:<name>`).
    pub name: String,
    /// `sha256:<base64url>` of the token, as `vigie admin new-token` prints it. Never the token.
    pub token_hash: String,
    /// Roles it grants (`cards`, `fido2`).
    pub roles: Vec<String>,
    /// What it may do within its roles (`cards:read`, `cards:write`, `cards:bind`, `keys:read`,
    /// `keys:enrol`, `keys:revoke`; see `vigie_core::roles::Scope`). Absent (a token made before
    /// scopes existed): only the read scopes of its roles, and every start warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// When it stops working (RFC 3339, e.g. `2026-06-30T00:00:00Z`); refused after, and every
    /// start warns from 14 days before. Absent: it never expires, and every start warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl AdminTokenConfig {
    /// The scopes the token holds: those configured, or, when none are, the read scopes of its
    /// roles that existed before scopes did (a safe migration: a token configured before scopes
    /// existed reads the cards and keys it read then, writes nothing, and gains no capability
    /// added since — people, audit — without an explicit scope).
    /// Scopes that do not parse are left out (the start-up validation refuses them).
    pub fn scopes(&self) -> Vec<vigie_core::roles::Scope> {
        use vigie_core::roles::Scope;
        match &self.scopes {
            Some(scopes) => scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect(),
            None => Scope::ALL
                .into_iter()
                .filter(|s| matches!(s, Scope::CardsRead | Scope::KeysRead))
                .filter(|s| self.roles.iter().any(|r| r == s.role().as_str()))
                .collect(),
        }
    }

    /// The end of the token's validity, Unix seconds; `None` when it never expires (or the value
    /// is invalid, which the start-up validation refuses).
    pub fn expires_at(&self) -> Option<i64> {
        let at = self.expires_at.as_deref()?;
        crate::parse_rfc3339(at)
    }
}

impl AdminConfig {
    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        let mut names = HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let k = |field: &str| format!("admin.tokens[{i}].{field}");
            if t.name.is_empty() || t.name.len() > 64 || !t.name.bytes().all(|b| b.is_ascii_graphic()) {
                err(&k("name"), "expected 1 to 64 printable ASCII characters".into());
            }
            if !names.insert(t.name.as_str()) {
                err(&k("name"), format!("{:?} is named twice", t.name));
            }
            // Tokens are generated (high entropy): the fast hash is the one that fits.
            if !matches!(crate::secrets::SecretHash::parse(&t.token_hash), Some(crate::secrets::SecretHash::Sha256(_)))
            {
                err(&k("token_hash"), "expected `sha256:<base64url>` (see `vigie admin new-token`)".into());
            }
            if t.roles.is_empty() {
                err(&k("roles"), "at least one role is required".into());
            }
            if t.expires_at.is_some() && t.expires_at().is_none() {
                err(&k("expires_at"), "expected an RFC 3339 date and time, e.g. `2026-06-30T00:00:00Z`".into());
            }
            for (j, r) in t.roles.iter().enumerate() {
                if let Err(m) = vigie_core::roles::Role::parse(r) {
                    err(&k(&format!("roles[{j}]")), m);
                }
            }
            if t.scopes.as_ref().is_some_and(Vec::is_empty) {
                err(&k("scopes"), "at least one scope, or leave `scopes` out for a read-only token".into());
            }
            for (j, s) in t.scopes.iter().flatten().enumerate() {
                match vigie_core::roles::Scope::parse(s) {
                    Err(m) => err(&k(&format!("scopes[{j}]")), m),
                    Ok(scope) if !t.roles.iter().any(|r| r == scope.role().as_str()) => err(
                        &k(&format!("scopes[{j}]")),
                        format!("the scope {scope} needs the role {} in `roles`", scope.role()),
                    ),
                    Ok(_) => {}
                }
            }
        }
    }
}
