//! The login sections, each with its checks: `[login]` (lockouts, rate limits, the published
//! `amr`, other schemes' `acr`), `[webauthn]` (FIDO2 keys) and `[cards]` (CPS/CPE card login).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::check::{AcrValuesMap, Cidr, MIE_LABELS, acr_values_map_problems};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins on one account before it is locked for `lockout_secs`.
    pub max_failures_per_account: u64,
    pub lockout_secs: u64,
    /// Login attempts from one IP per `ip_window_secs` before 429.
    pub max_attempts_per_ip: u64,
    pub ip_window_secs: u64,
    /// Login flows (authorization requests that lead to the login page) one IP may open per
    /// `ip_window_secs`; beyond, the client gets `temporarily_unavailable`. Each flow is kept in
    /// the store for `tokens.login_flow_ttl_secs`, so this bounds what one address can store.
    pub max_flows_per_ip: u64,
    /// The `amr` values (RFC 8176) published for a login method, by MIE label (`cps`, `cpe`,
    /// `fido2`, `password_totp`, …), replacing those derived from the verified factors
    /// (`Authentication::amr`: a card gives `sc`, `pin`, `mfa`). For relying parties that
    /// expect other values, e.g. `cps = ["sc", "pin", "mfa", "hwk"]`.
    pub amr: std::collections::BTreeMap<String, Vec<String>>,
    /// `acr` values of other schemes a relying party may send in `acr_values` (e.g. Pro Santé
    /// Connect's `eidas1`), each mapped to the Vigie `acr` that meets it: the login must reach
    /// that level, and the ID token answers the value asked for. Over the built-in
    /// `eidas1 = "urn:vigie:loa:2fa-phr"` (`crate::oidc::authorize::BUILT_IN_ACR_MAP`); a
    /// client's own `acr_values_map` wins over this one.
    pub acr_values_map: AcrValuesMap,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            lockout_secs: 15 * 60,
            max_attempts_per_ip: 30,
            ip_window_secs: 60,
            // Generous: a terminal server or a NAT puts a whole ward behind one address.
            max_flows_per_ip: 300,
            amr: Default::default(),
            acr_values_map: Default::default(),
        }
    }
}

impl LoginConfig {
    /// The `amr` claim of an authentication: configured for its MIE, or derived from its factors.
    pub fn amr_for(&self, auth: &vigie_core::Authentication) -> Vec<String> {
        match self.amr.get(auth.mie.as_str()) {
            Some(values) => values.clone(),
            None => auth.amr().into_iter().map(String::from).collect(),
        }
    }
}

impl LoginConfig {
    /// The keys that must be positive, with their values.
    pub(crate) fn counts(&self) -> [(&'static str, u64); 5] {
        [
            ("login.max_failures_per_account", self.max_failures_per_account),
            ("login.lockout_secs", self.lockout_secs),
            ("login.max_attempts_per_ip", self.max_attempts_per_ip),
            ("login.ip_window_secs", self.ip_window_secs),
            ("login.max_flows_per_ip", self.max_flows_per_ip),
        ]
    }

    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        for (mie, values) in &self.amr {
            if !MIE_LABELS.contains(&mie.as_str()) {
                err(
                    &format!("login.amr.{mie}"),
                    format!("unknown login method; expected one of {}", MIE_LABELS.join(", ")),
                );
            }
            // RFC 8176 §2: values are case-sensitive strings; ours must be non-empty tokens.
            if values.is_empty() || values.iter().any(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic())) {
                err(
                    &format!("login.amr.{mie}"),
                    "must be a non-empty list of non-empty ASCII tokens (RFC 8176)".into(),
                );
            }
        }

        for (value, m) in acr_values_map_problems(&self.acr_values_map) {
            err(&format!("login.acr_values_map.{value}"), m);
        }
    }
}

/// FIDO2 / WebAuthn: the relying party, key enrolment and its safeguards.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// RP ID (WebAuthn §5.1.2): a registrable domain suffix of the origin's host. Default: the
    /// issuer's host. Keys registered under one RP ID do not work under another.
    pub rp_id: Option<String>,
    /// The origin browsers run the ceremonies from. Default: the issuer's origin.
    pub origin: Option<String>,
    /// The name shown by the browser when registering a key.
    pub rp_name: String,
    /// What a key must prove of its model at registration (WebAuthn L2 §6.5, §7.1 steps 19–21).
    pub attestation: AttestationMode,
    /// PEM files of attestation CAs (a vendor's attestation root): a key whose attestation
    /// chains to one of them is a hardware key of a model they vouch for.
    pub attestation_ca_files: Vec<PathBuf>,
    /// The FIDO Metadata Service BLOB (FIDO MDS3 §3), downloaded from
    /// `https://mds3.fidoalliance.org/` by the operator (refresh it monthly): the attestation
    /// roots of each certified model, by AAGUID; models reported compromised are left out.
    pub mds_blob_file: Option<PathBuf>,
    /// The root the BLOB's signing chain must end at (FIDO's: GlobalSign Root CA - R3).
    pub mds_root_ca_file: Option<PathBuf>,
    /// AAGUIDs (WebAuthn §6.5.1) of the authenticator models allowed to register; empty = any
    /// model the attestation roots vouch for. Read from the verified attestation only, so it
    /// needs `attestation = "required"`.
    pub aaguid_allow_list: Vec<String>,
    /// Lifetime of a challenge (registration or login).
    pub ceremony_ttl_secs: u64,
    /// A signed-in user may register a key only this soon after a two-factor login.
    pub enrolment_max_auth_age_secs: u64,
    /// Lifetime of an enrolment code issued by HR.
    pub enrolment_code_ttl_secs: u64,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self {
            rp_id: None,
            origin: None,
            rp_name: "Vigie".into(),
            attestation: AttestationMode::Required,
            attestation_ca_files: Vec::new(),
            mds_blob_file: None,
            mds_root_ca_file: None,
            aaguid_allow_list: Vec::new(),
            ceremony_ttl_secs: 300,
            enrolment_max_auth_age_secs: 600,
            enrolment_code_ttl_secs: 72 * 3600,
        }
    }
}

/// `webauthn.attestation`: whether a key must prove its model (WebAuthn L2 §5.4.7, §6.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationMode {
    /// Direct attestation, verified to `attestation_ca_files` or the MDS BLOB's roots: keys
    /// without it (software authenticators, `none` or self attestation) are refused.
    #[default]
    Required,
    /// No attestation asked for: any authenticator registers, and none counts as a hardware
    /// key (its logins carry `swk`, never `hwk`).
    None,
}

impl WebauthnConfig {
    /// The RP ID and origin in force, from the issuer unless configured.
    pub fn relying_party(&self, issuer: &str) -> Result<(String, url::Url), String> {
        let origin =
            url::Url::parse(self.origin.as_deref().unwrap_or(issuer)).map_err(|e| format!("not a URL: {e}"))?;
        let host = origin.host_str().ok_or("the origin has no host")?.to_owned();
        let rp_id = self.rp_id.clone().unwrap_or(host.clone());
        // WebAuthn §5.1.2: the RP ID is the origin's effective domain or a registrable suffix of it.
        if !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
            return Err(format!("the RP ID {rp_id:?} is not the origin host {host:?} or a suffix of it"));
        }
        Ok((rp_id, origin))
    }
}

impl WebauthnConfig {
    pub(crate) fn validate(&self, issuer: &str, err: &mut dyn FnMut(&str, String)) {
        if let Err(m) = self.relying_party(issuer) {
            err("webauthn.origin", m);
        }
        for (i, a) in self.aaguid_allow_list.iter().enumerate() {
            if uuid::Uuid::parse_str(a).is_err() {
                err(&format!("webauthn.aaguid_allow_list[{i}]"), format!("{a:?} is not an AAGUID (a UUID)"));
            }
        }
        if self.attestation == AttestationMode::None && !self.aaguid_allow_list.is_empty() {
            err(
                "webauthn.aaguid_allow_list",
                "needs `webauthn.attestation = \"required\"`: without verified attestation a key's model is \
                 only its own claim"
                    .into(),
            );
        }
        if let Err(e) = super::attestation::trust_roots(self, crate::now()) {
            err(&e.key, e.message);
        }
        for (key, v) in [
            ("webauthn.ceremony_ttl_secs", self.ceremony_ttl_secs),
            ("webauthn.enrolment_max_auth_age_secs", self.enrolment_max_auth_age_secs),
            ("webauthn.enrolment_code_ttl_secs", self.enrolment_code_ttl_secs),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
    }
}

/// Card login (CPS, CPE): TLS client certificates validated against IGC-Santé.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardsConfig {
    /// Ask browsers for a card certificate (optional: people without a card still connect) and
    /// offer card login. Default: `false`.
    pub enabled: bool,
    /// Header in which an ingress that terminates TLS passes the client certificate
    /// (URL-encoded PEM; ingress-nginx: `ssl-client-cert`). Read only from `ingress_header_from`;
    /// from anyone else it is refused and audited. Empty: never read.
    pub ingress_header: String,
    /// The ingresses (addresses or CIDRs) that terminate TLS for card login and pass the card in
    /// `ingress_header`. Their own list, not `server.trusted_proxies`: a proxy trusted to name the
    /// client's address is not thereby trusted to vouch for a card. Empty (the default): none.
    pub ingress_header_from: Vec<Cidr>,
    /// How long a card bound without being read (its certificate sent to the admin API) waits
    /// for its holder to present it, seconds; after that it must be bound again. Default 30 days.
    pub pending_presentation_secs: u64,
    /// Trust anchors, CRLs, grace (see `vigie_igc_sante::TrustConfig`).
    pub trust: vigie_igc_sante::TrustConfig,
}

impl Default for CardsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ingress_header: "ssl-client-cert".into(),
            ingress_header_from: Vec::new(),
            pending_presentation_secs: 30 * 86_400,
            trust: Default::default(),
        }
    }
}

impl CardsConfig {
    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if self.enabled && self.trust.anchors.is_empty() && self.trust.anchors_pem.is_empty() {
            err("cards.trust.anchors", "card login is enabled but no trust anchor is configured".into());
        }
        if !self.ingress_header.is_empty()
            && actix_web::http::header::HeaderName::from_bytes(self.ingress_header.as_bytes()).is_err()
        {
            err("cards.ingress_header", "not a valid HTTP header name".into());
        }
        if !(1..=365 * 86_400).contains(&self.pending_presentation_secs) {
            err("cards.pending_presentation_secs", "expected 1 to 31536000 (a year)".into());
        }
        if self.ingress_header.is_empty() && !self.ingress_header_from.is_empty() {
            err(
                "cards.ingress_header_from",
                "set, but `cards.ingress_header` is empty: no header would be read".into(),
            );
        }
    }
}
