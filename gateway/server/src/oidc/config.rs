//! The provider's sections, each with its checks: `[tokens]` (lifetimes, the lockout of failing
//! client authentications) and `[[clients]]` (clients registered statically, FI tiers included).
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::config::check::{AcrValuesMap, MIE_LABELS, acr_values_map_problems, check_redirect_uri, is_amr_token};
use crate::keys::SigningAlg;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub code_ttl_secs: u64,
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// How long a login page stays valid (seconds).
    pub login_flow_ttl_secs: u64,
    /// Client authentications without a success (token, introspection, revocation endpoints)
    /// from one address, or for one client from one address, before they are refused for
    /// `client_auth_lockout_secs`.
    pub client_auth_max_failures: u64,
    /// The window in which client authentication failures are counted, and the lockout.
    pub client_auth_lockout_secs: u64,
    /// Refresh-token families kept in the compact layout (one entry per grant, the binary
    /// layout 2, rotated by compare-and-set). Set false while replicas of an earlier version
    /// still run (a rolling upgrade): they read only the object layout (and layout 1) and the
    /// separate mark of a used code, and rotate by a claim on the generation, which are then
    /// written and taken too. This version reads every layout whatever the setting. Default: true.
    pub compact_families: bool,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            code_ttl_secs: 60,
            access_token_ttl_secs: 300,
            id_token_ttl_secs: 300,
            refresh_token_ttl_secs: 12 * 3600,
            login_flow_ttl_secs: 15 * 60,
            client_auth_max_failures: 20,
            client_auth_lockout_secs: 60,
            compact_families: true,
        }
    }
}

impl TokenConfig {
    /// The keys that must be positive, with their values.
    pub(crate) fn counts(&self) -> [(&'static str, u64); 7] {
        [
            ("tokens.code_ttl_secs", self.code_ttl_secs),
            ("tokens.access_token_ttl_secs", self.access_token_ttl_secs),
            ("tokens.id_token_ttl_secs", self.id_token_ttl_secs),
            ("tokens.refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("tokens.login_flow_ttl_secs", self.login_flow_ttl_secs),
            ("tokens.client_auth_max_failures", self.client_auth_max_failures),
            ("tokens.client_auth_lockout_secs", self.client_auth_lockout_secs),
        ]
    }

    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if self.code_ttl_secs > 600 {
            // RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
            err("tokens.code_ttl_secs", "expected at most 600 (RFC 6749 §4.1.2)".into());
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access"].map(String::from).to_vec()
}

fn default_true() -> bool {
    true
}

fn default_policy() -> String {
    "default".into()
}

/// A client registered statically (OIDC Dynamic Registration §2 names the fields).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// Hash of the client secret: `sha256:<base64url>` (for generated secrets, see
    /// `vigie clients new-secret`) or an argon2id PHC string. Never the secret itself.
    pub client_secret_hash: Option<String>,
    pub auth_method: ClientAuthMethod,
    /// Public keys for `private_key_jwt`, inline (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Public keys for `private_key_jwt`, fetched.
    pub jwks_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// PKCE (RFC 7636) is required of every client unless this is false; public clients
    /// cannot turn it off (RFC 9700 §2.1.1).
    #[serde(default = "default_true")]
    pub require_pkce: bool,
    /// Label the policy engine reads.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Display name on login pages.
    pub name: Option<String>,
    /// The `acr` every login to this client must reach, whatever the request asks (e.g.
    /// `urn:vigie:loa:2fa-phr` for a client that needs a card or a FIDO2 key): a session below it
    /// is asked for a stronger MIE (step-up) without losing SSO. Default: none.
    #[serde(default)]
    pub acr: Option<String>,
    /// `acr` values of other schemes this client sends, mapped to the Vigie `acr` that meets
    /// each, over `login.acr_values_map` (see there). Default: none of its own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acr_values_map: AcrValuesMap,
    /// A "sensitive" service of the RIE (the DPI and what integrates shared services, external
    /// access, large services): the policies ask for a two-factor MIE of the RIE. Default: false.
    #[serde(default)]
    pub sensitive: bool,
    /// Who the client is for (`staff`, `external`…), a label the policies may read. Default: `staff`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// This client is Pro Santé Connect using Vigie as a *FI tiers* (delegated identity
    /// provider, reference/psc.md §3): its ID tokens and userinfo also carry `tid`, `oid` and the
    /// `amr` PSC expects, and it never gets an authentication older than `max_auth_age_secs`.
    /// See docs/fi-tiers.md. Only a confidential client may be one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fi_tiers: Option<FiTiersConfig>,
    /// May obtain VIHFs for the DMP (RFC 8693 token exchange) and use the DMP relay with its
    /// users' access tokens. Confidential clients only. Default: false.
    #[serde(default)]
    pub dmp: bool,
}

/// `clients[].fi_tiers`: what Vigie asserts to Pro Santé Connect as its FI tiers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiTiersConfig {
    /// The tenant id, a constant registered with ANS (`tid` claim): chosen once, never changed
    /// (e.g. `VIGIE_<FINESS juridique>`). PSC routes and checks authentications by it.
    pub tid: String,
    /// The `amr` values (RFC 8176) sent to PSC, by MIE label (`cps`, `fido2`, …), replacing the
    /// defaults (see `crate::oidc::fi_tiers::amr`): PSC's accepted values are not public.
    #[serde(default)]
    pub amr: std::collections::BTreeMap<String, Vec<String>>,
    /// An authentication older than this is never reused for this client: a fresh login is
    /// asked for, as `max_age` does (seconds; default 4 h, ANS's periodic re-authentication).
    #[serde(default = "default_fi_max_auth_age_secs")]
    pub max_auth_age_secs: u64,
}

fn default_fi_max_auth_age_secs() -> u64 {
    4 * 3600
}

fn default_audience() -> String {
    "staff".into()
}

impl FiTiersConfig {
    /// What is wrong with it, as (key under `clients[i].`, message).
    pub fn problems(&self, auth_method: ClientAuthMethod) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let tid = self.tid.as_str();
        if tid.is_empty() || tid.len() > 128 || !tid.bytes().all(|b| b.is_ascii_graphic()) {
            out.push((
                "fi_tiers.tid".into(),
                "expected the tenant id registered with ANS: 1 to 128 printable ASCII characters".into(),
            ));
        }
        for (mie, values) in &self.amr {
            let key = format!("fi_tiers.amr.{mie}");
            if !MIE_LABELS.contains(&mie.as_str()) {
                out.push((key.clone(), format!("unknown login method; expected one of {}", MIE_LABELS.join(", "))));
            }
            if values.is_empty() || !values.iter().all(|v| is_amr_token(v)) {
                out.push((key, "expected a non-empty list of RFC 8176 amr values (letters, digits, _ - .)".into()));
            }
        }
        if self.max_auth_age_secs == 0 {
            out.push((
                "fi_tiers.max_auth_age_secs".into(),
                "expected a positive number of seconds (4 h: 14400)".into(),
            ));
        }
        if auth_method == ClientAuthMethod::None {
            out.push((
                "fi_tiers".into(),
                "a FI-tiers client (Pro Santé Connect) must be confidential: set `auth_method` to client_secret_basic, client_secret_post or private_key_jwt".into(),
            ));
        }
        out
    }
}

impl ClientConfig {
    /// The level named by `acr`, once validated.
    pub fn min_level(&self) -> Option<vigie_core::AssuranceLevel> {
        self.acr.as_deref().and_then(vigie_core::AssuranceLevel::from_acr)
    }
}

/// The checks of `[[clients]]`, each client on its own and no `client_id` twice.
pub(crate) fn validate_clients(clients: &[ClientConfig], err: &mut dyn FnMut(&str, String)) {
    let mut seen = HashSet::new();
    for (i, c) in clients.iter().enumerate() {
        let k = |field: &str| format!("clients[{i}].{field}");
        if c.client_id.is_empty() || c.client_id.len() > 128 || !c.client_id.bytes().all(|b| b.is_ascii_graphic()) {
            err(&k("client_id"), "expected 1 to 128 printable ASCII characters".into());
        }
        if !seen.insert(c.client_id.as_str()) {
            err(&k("client_id"), format!("{:?} is registered twice", c.client_id));
        }
        match c.auth_method {
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => match &c.client_secret_hash {
                None => err(&k("client_secret_hash"), format!("required for {}", c.auth_method.as_str())),
                Some(h) if crate::secrets::SecretHash::parse(h).is_none() => err(
                    &k("client_secret_hash"),
                    "expected `sha256:<base64url>` or an argon2id PHC string (see `vigie clients new-secret`)".into(),
                ),
                _ => {}
            },
            ClientAuthMethod::PrivateKeyJwt => {
                if c.jwks.is_none() == c.jwks_uri.is_none() {
                    err(&k("jwks"), "private_key_jwt needs exactly one of `jwks` or `jwks_uri`".into());
                }
                if let Some(j) = &c.jwks
                    && serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(j.clone()).is_err()
                {
                    err(&k("jwks"), "expected a JWK Set ({\"keys\": [...]})".into());
                }
            }
            ClientAuthMethod::None => {
                if c.client_secret_hash.is_some() {
                    err(&k("client_secret_hash"), "a public client (auth_method \"none\") has no secret".into());
                }
                if !c.require_pkce {
                    err(&k("require_pkce"), "public clients must use PKCE (RFC 9700 §2.1.1)".into());
                }
            }
        }
        if c.redirect_uris.is_empty() {
            err(&k("redirect_uris"), "at least one redirect URI is required".into());
        }
        if let Some(acr) = &c.acr
            && vigie_core::AssuranceLevel::from_acr(acr).is_none()
        {
            let known: Vec<&str> = vigie_core::AssuranceLevel::ALL.iter().map(|l| l.acr()).collect();
            err(&format!("clients[{i}].acr"), format!("unknown acr {acr:?}; expected one of {}", known.join(", ")));
        }
        for (value, m) in acr_values_map_problems(&c.acr_values_map) {
            err(&k(&format!("acr_values_map.{value}")), m);
        }
        for (j, u) in c.redirect_uris.iter().enumerate() {
            if let Err(m) = check_redirect_uri(u) {
                err(&k(&format!("redirect_uris[{j}]")), m);
            }
        }
        for (j, u) in c.post_logout_redirect_uris.iter().enumerate() {
            if let Err(m) = check_redirect_uri(u) {
                err(&k(&format!("post_logout_redirect_uris[{j}]")), m);
            }
        }
        if let Some(u) = &c.backchannel_logout_uri
            && let Err(m) = check_redirect_uri(u)
        {
            err(&k("backchannel_logout_uri"), m);
        }
        if !c.scopes.iter().any(|s| s == "openid") {
            err(&k("scopes"), "must include \"openid\"".into());
        }
        if c.dmp && c.auth_method == ClientAuthMethod::None {
            err(&k("dmp"), "only a confidential client may obtain VIHFs (RFC 8693 token exchange)".into());
        }
        if let Some(fi) = &c.fi_tiers {
            for (key, m) in fi.problems(c.auth_method) {
                err(&k(&key), m);
            }
        }
    }
}
