//! The `[psc]` configuration section and its validation, and which MIE a PSC login is from the
//! `amr` PSC sent. Its serde shape is the config file's `[psc]` table.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vigie_core::Mie;

/// PSC's issuer in production (reference/psc.md §1).
pub const PROD_ISSUER: &str = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet";

/// The `[psc]` section.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PscConfig {
    /// Offer login through Pro Santé Connect (e-CPS, or a CPS at PSC). Default `false`.
    pub enabled: bool,
    /// PSC's issuer (compared exactly with the ID token's `iss`).
    pub issuer: String,
    /// Where PSC's metadata is; default `<issuer>/.well-known/wallet-openid-configuration`.
    pub discovery_url: Option<String>,
    /// The client id ANS registered for this establishment.
    pub client_id: String,
    /// Client authentication at PSC's token endpoint.
    pub client_auth: PscClientAuth,
    /// The client secret (`client_secret_basic` / `_post`). Prefer `client_secret_file`, or the
    /// environment (`VIGIE_PSC__CLIENT_SECRET`); never logged.
    pub client_secret: Option<crate::secrets::Secret>,
    /// A file holding the client secret (a mounted Kubernetes secret).
    pub client_secret_file: Option<PathBuf>,
    /// PEM private key for `private_key_jwt` (its public key registered with ANS).
    pub private_key_file: Option<PathBuf>,
    /// `kid` of that key, if ANS's registration names one.
    pub private_key_kid: Option<String>,
    /// Signature algorithm of the client assertion.
    pub private_key_alg: String,
    /// PEM certificate (chain) and key for `tls_client_auth` (mutual TLS to the token endpoint).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The redirect URI registered with ANS; default `<vigie issuer>/login/psc/callback`.
    pub redirect_uri: Option<String>,
    /// Where PSC sends the browser back after its logout; default `<vigie issuer>/logout/psc`.
    pub post_logout_redirect_uri: Option<String>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// `acr_values` sent to PSC (`eidas1`); empty: none.
    pub acr_values: Option<String>,
    /// `acr` values accepted in PSC's ID token (an absent `acr` is accepted, as ANS's own
    /// Keycloak extension does).
    pub accepted_acr: Vec<String>,
    /// ID token signature algorithms accepted (never `none`).
    pub id_token_algs: Vec<String>,
    /// Userinfo format accepted: `any` (JSON or signed JWT), `json`, `jwt`.
    pub userinfo: String,
    /// Extra CA certificates (PEM) to trust for PSC's endpoints (a test platform's CA).
    pub ca_file: Option<PathBuf>,
    /// Timeout of each request to PSC, in milliseconds.
    pub timeout_ms: u64,
    /// Clock skew tolerated on `exp` / `iat`, in seconds.
    pub clock_skew_secs: i64,
    /// Allow plain `http://` to PSC on a loopback address (tests and the demo stand-in only).
    pub allow_http: bool,
    /// PSC `amr` value → Vigie MIE (`ecps` or `cps_via_psc`). PSC's values are not public
    /// (reference/psc.md §2): any value mapped to `cps_via_psc` makes the login a CPS through PSC;
    /// otherwise it is an e-CPS login.
    pub amr_map: BTreeMap<String, String>,
    /// Create the identity of an unknown professional at their first PSC login, only when HR
    /// announced their idNat (`vigie users announce`). Default `false`.
    pub jit: bool,
    /// A logout at Vigie of a session that came from PSC also ends PSC's session (the browser
    /// goes through PSC's end_session endpoint). Default `true`.
    pub end_session: bool,
    /// Seconds between two health probes of PSC (metadata + JWKS).
    pub probe_interval_secs: u64,
    /// How long a login sent to PSC may take before its `state` lapses, in seconds.
    pub state_ttl_secs: u64,
}

impl std::fmt::Debug for PscConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PscConfig")
            .field("enabled", &self.enabled)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

/// How Vigie authenticates to PSC's token endpoint (reference/psc.md §1: PSC accepts all four).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PscClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    TlsClientAuth,
}

/// PSC `amr` values that name a smart card (RFC 8176 §2 `sc`, and the likely spellings).
const CARD_AMR: [&str; 4] = ["sc", "card", "smartcard", "cps"];

impl Default for PscConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: PROD_ISSUER.into(),
            discovery_url: None,
            client_id: String::new(),
            client_auth: PscClientAuth::ClientSecretBasic,
            client_secret: None,
            client_secret_file: None,
            private_key_file: None,
            private_key_kid: None,
            private_key_alg: "RS256".into(),
            tls_cert_file: None,
            tls_key_file: None,
            redirect_uri: None,
            post_logout_redirect_uri: None,
            scopes: vec!["openid".into(), "scope_all".into()],
            acr_values: Some("eidas1".into()),
            accepted_acr: vec!["eidas1".into()],
            id_token_algs: vec!["RS256".into()],
            userinfo: "any".into(),
            ca_file: None,
            timeout_ms: 5000,
            clock_skew_secs: 60,
            allow_http: false,
            amr_map: CARD_AMR.iter().map(|a| (a.to_string(), Mie::CpsViaPsc.as_str().to_owned())).collect(),
            jit: false,
            end_session: true,
            probe_interval_secs: 30,
            state_ttl_secs: 600,
        }
    }
}

/// Signature algorithms an ID token from PSC may use (RFC 7518 §3.1), `none` excluded.
const JWS_ALGS: [&str; 10] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

impl PscConfig {
    /// Checks the section; one call of `err` per bad key (`psc.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        let url = |key: &str, v: &str, err: &mut dyn FnMut(&str, String)| match url::Url::parse(v) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && self.allow_http && crate::config::check::is_loopback(&u) => {}
            Ok(u) if u.scheme() == "http" => err(
                key,
                format!("{v:?}: PSC is reached over https (plain http only on loopback with `psc.allow_http`)"),
            ),
            _ => err(key, format!("{v:?} is not an absolute https URL")),
        };
        if self.enabled || self.issuer != PROD_ISSUER {
            url("psc.issuer", &self.issuer, err);
        }
        if let Some(d) = &self.discovery_url {
            url("psc.discovery_url", d, err);
        }
        if self.enabled && self.client_id.trim().is_empty() {
            err("psc.client_id", "required when `psc.enabled` (the client id ANS registered)".into());
        }
        let file = |key: &str, p: &Option<PathBuf>, needed: bool, err: &mut dyn FnMut(&str, String)| match p {
            Some(p) if !p.is_file() => err(key, format!("{} is not a readable file", p.display())),
            None if needed => err(key, format!("required for `psc.client_auth = {:?}`", self.client_auth)),
            _ => {}
        };
        match self.client_auth {
            PscClientAuth::ClientSecretBasic | PscClientAuth::ClientSecretPost => {
                if self.client_secret.is_some() && self.client_secret_file.is_some() {
                    err("psc.client_secret", "set `client_secret` or `client_secret_file`, not both".into());
                }
                if self.client_secret.is_none() {
                    file("psc.client_secret_file", &self.client_secret_file, self.enabled, err);
                }
                if self.client_secret.as_ref().is_some_and(|s| s.0.is_empty()) {
                    err("psc.client_secret", "is empty".into());
                }
            }
            PscClientAuth::PrivateKeyJwt => {
                file("psc.private_key_file", &self.private_key_file, self.enabled, err);
                if !JWS_ALGS.contains(&self.private_key_alg.as_str()) {
                    err("psc.private_key_alg", format!("expected one of {}", JWS_ALGS.join(", ")));
                }
            }
            PscClientAuth::TlsClientAuth => {
                file("psc.tls_cert_file", &self.tls_cert_file, self.enabled, err);
                file("psc.tls_key_file", &self.tls_key_file, self.enabled, err);
            }
        }
        for (key, uri) in
            [("psc.redirect_uri", &self.redirect_uri), ("psc.post_logout_redirect_uri", &self.post_logout_redirect_uri)]
        {
            if let Some(u) = uri
                && let Err(m) = crate::config::check::check_redirect_uri(u)
            {
                err(key, m);
            }
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            err("psc.scopes", "must include \"openid\"".into());
        }
        if self.accepted_acr.iter().any(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic())) {
            err("psc.accepted_acr", "expected non-empty ASCII tokens (e.g. \"eidas1\")".into());
        }
        if self.id_token_algs.is_empty() {
            err("psc.id_token_algs", "at least one algorithm is required".into());
        }
        for (i, a) in self.id_token_algs.iter().enumerate() {
            if !JWS_ALGS.contains(&a.as_str()) {
                err(
                    &format!("psc.id_token_algs[{i}]"),
                    format!("{a:?} is not accepted; expected one of {} (never `none`)", JWS_ALGS.join(", ")),
                );
            }
        }
        if !["any", "json", "jwt"].contains(&self.userinfo.as_str()) {
            err("psc.userinfo", format!("{:?}: expected \"any\", \"json\" or \"jwt\"", self.userinfo));
        }
        file("psc.ca_file", &self.ca_file, false, err);
        for (amr, mie) in &self.amr_map {
            if mie != Mie::Ecps.as_str() && mie != Mie::CpsViaPsc.as_str() {
                err(&format!("psc.amr_map.{amr}"), format!("{mie:?}: expected \"ecps\" or \"cps_via_psc\""));
            }
        }
        for (key, v) in [
            ("psc.timeout_ms", self.timeout_ms),
            ("psc.probe_interval_secs", self.probe_interval_secs),
            ("psc.state_ttl_secs", self.state_ttl_secs),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        if self.state_ttl_secs > 3600 {
            err("psc.state_ttl_secs", "expected at most 3600".into());
        }
        if !(0..=600).contains(&self.clock_skew_secs) {
            err("psc.clock_skew_secs", "expected 0 to 600".into());
        }
    }

    /// The MIE a PSC login is, from the `amr` PSC sent (see `amr_map`).
    pub fn mie_for(&self, amr: &[String]) -> Mie {
        let card = amr.iter().any(|a| self.amr_map.get(a).is_some_and(|m| m == Mie::CpsViaPsc.as_str()));
        if card { Mie::CpsViaPsc } else { Mie::Ecps }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_card_amr_values_make_a_cps_through_psc_and_anything_else_an_ecps() {
        let c = PscConfig::default();
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(c.mie_for(&v(&["sc", "pin", "mfa"])), Mie::CpsViaPsc);
        assert_eq!(c.mie_for(&v(&["mobile", "mfa"])), Mie::Ecps);
        assert_eq!(c.mie_for(&[]), Mie::Ecps);
        let mut c = c;
        c.amr_map.insert("mobile".into(), "cps_via_psc".into());
        c.amr_map.insert("sc".into(), "ecps".into());
        assert_eq!(c.mie_for(&v(&["mobile"])), Mie::CpsViaPsc, "the mapping is configurable");
        assert_eq!(c.mie_for(&v(&["sc", "pin"])), Mie::Ecps);
    }

    fn errors(c: &PscConfig) -> Vec<String> {
        let mut out = Vec::new();
        c.validate(&mut |k: &str, m: String| out.push(format!("`{k}`: {m}")));
        out
    }

    #[test]
    fn the_default_section_is_valid_and_disabled() {
        assert!(errors(&PscConfig::default()).is_empty(), "{:?}", errors(&PscConfig::default()));
        assert!(!PscConfig::default().enabled);
    }

    #[test]
    fn each_bad_key_is_named() {
        let c = PscConfig {
            enabled: true,
            issuer: "http://psc.example/auth/realms/esante-wallet".into(),
            client_id: String::new(),
            client_auth: PscClientAuth::PrivateKeyJwt,
            private_key_alg: "HS256".into(),
            id_token_algs: vec!["none".into()],
            userinfo: "xml".into(),
            amr_map: [("sc".to_string(), "cps".to_string())].into_iter().collect(),
            probe_interval_secs: 0,
            ..Default::default()
        };
        let e = errors(&c).join("\n");
        for key in [
            "psc.issuer",
            "psc.client_id",
            "psc.private_key_file",
            "psc.private_key_alg",
            "psc.id_token_algs[0]",
            "psc.userinfo",
            "psc.amr_map.sc",
            "psc.probe_interval_secs",
        ] {
            assert!(e.contains(&format!("`{key}`")), "{key} is named in:\n{e}");
        }
        let loopback = PscConfig {
            issuer: "http://127.0.0.1:8900/auth/realms/esante-wallet".into(),
            allow_http: true,
            ..Default::default()
        };
        assert!(errors(&loopback).is_empty(), "plain http on loopback with allow_http: {:?}", errors(&loopback));
    }

    #[test]
    fn the_secret_is_never_shown_by_debug() {
        let c = PscConfig { client_secret: Some(crate::secrets::Secret("s3cret-value".into())), ..Default::default() };
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    /// The default card values of docs/psc.md (`amr_map`: `sc`, `card`, `smartcard`, `cps`).
    const DOCUMENTED_CARD_AMR: [&str; 4] = ["sc", "card", "smartcard", "cps"];

    /// `amr` values PSC may send that say nothing of a card: RFC 8176 §2 values, PSC's guides'
    /// e-CPS-like ones, and near misses of the card values (case, spacing, longer words).
    fn not_card() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "pwd",
                "otp",
                "mfa",
                "pin",
                "hwk",
                "swk",
                "sms",
                "mobile",
                "okta_verify",
                "eidas1"
            ]),
            prop::sample::select(vec![
                "SC",
                "Sc",
                "sc ",
                " sc",
                "scard",
                "cards",
                "CPS",
                "cps1",
                "smart card",
                "card-x"
            ]),
        ]
        .prop_map(str::to_owned)
    }

    proptest! {
        /// A login is a card at PSC exactly when one of the documented card values is in the
        /// `amr`, wherever it stands and whatever comes with it.
        #[test]
        fn one_card_value_anywhere_makes_a_cps_through_psc(
            others in prop::collection::vec(not_card(), 0..6),
            card in prop::sample::select(&DOCUMENTED_CARD_AMR[..]),
            at in any::<prop::sample::Index>(),
        ) {
            let c = PscConfig::default();
            prop_assert_eq!(c.mie_for(&others), Mie::Ecps, "{:?}", others);
            let mut with_card = others.clone();
            with_card.insert(at.index(others.len() + 1), card.to_owned());
            prop_assert_eq!(c.mie_for(&with_card), Mie::CpsViaPsc, "{:?}", with_card);
        }
    }
}
