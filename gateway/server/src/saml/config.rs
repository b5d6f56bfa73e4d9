//! `[saml]` and `[[saml.sps]]`: the IdP's signing key and certificate, and the service providers,
//! each registered from its metadata file and mapped to the OIDC client whose policy, minimum
//! level, sensitivity and audit it takes (docs/saml.md).
use serde::{Deserialize, Serialize};

use crate::config::ClientConfig;

/// `[saml]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// The IdP's entityID; default `<issuer>/saml/metadata`.
    pub entity_id: Option<String>,
    /// The signing key (PEM, RSA, PKCS#8 or PKCS#1).
    pub key_file: Option<String>,
    /// Its certificate (PEM), published in the metadata.
    pub cert_file: Option<String>,
    /// A secret of at least 32 bytes (file) that makes persistent NameIDs pairwise: the same
    /// person has a different, stable NameID at each SP. Changing it changes every NameID.
    pub pairwise_secret_file: Option<String>,
    /// How long an assertion may be presented (`NotOnOrAfter`), in seconds.
    pub assertion_ttl_secs: u64,
    /// `[[saml.sps]]`: the service providers (none: `/saml/*` answers that SAML is not set up).
    pub sps: Vec<SpConfig>,
}

/// One service provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpConfig {
    /// Its SAML metadata (an `EntityDescriptor` with an `SPSSODescriptor`), as a file; or
    /// empty with `metadata_url`.
    #[serde(default)]
    pub metadata: String,
    /// Its metadata fetched over HTTPS at start and refreshed (saml/fetch.rs), instead of a file.
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// The CA certificates (PEM) that `metadata_url`'s server is checked against, instead of the
    /// system's roots.
    #[serde(default)]
    pub metadata_ca_file: Option<String>,
    /// How often `metadata_url` is fetched again, at most (default 3600 s); sooner when the
    /// metadata's `cacheDuration` or `validUntil` says so.
    #[serde(default)]
    pub metadata_refresh_secs: Option<u64>,
    /// The SP's entityID, when known in advance: its metadata (file or fetched) must name it.
    /// Without it, a `metadata_url` SP is pinned to the entityID of its first good fetch.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// The OIDC client it is for Vigie; the client lists `<issuer>/saml/callback` in its
    /// `redirect_uris` (the login goes through `/authorize` as that client).
    pub client_id: String,
    /// `persistent` (pairwise per SP), `transient` (new at each login), or an attribute name
    /// (`matricule`, `idnat`, `username`, `email`).
    #[serde(default = "persistent")]
    pub nameid: String,
    /// The attributes sent, by name (see [`ATTRIBUTES`]).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Refuse an AuthnRequest that is not signed (an SP whose metadata says
    /// `AuthnRequestsSigned="true"` is held to it anyway).
    #[serde(default)]
    pub require_signed_requests: bool,
    /// The certificate (PEM) the metadata must be signed with (saml-metadata §3, an enveloped
    /// XML signature on the `EntityDescriptor`): metadata not signed by it is refused, and only
    /// what the signature covers is read.
    #[serde(default)]
    pub metadata_cert: Option<String>,
    /// Send this SP its assertions encrypted (saml-core §2.3.4), to the RSA key of its
    /// metadata's `KeyDescriptor use="encryption"` (or without `use`), or of `encryption_cert`.
    #[serde(default)]
    pub encrypt_assertions: bool,
    /// The SP's encryption certificate (PEM), when its metadata has none or another one must win.
    #[serde(default)]
    pub encryption_cert: Option<String>,
}

/// `url` as it may be logged: its credentials (`user:password@`) and its query (a token, often)
/// replaced by `***`. What is not a URL is not shown at all.
pub fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return "(not a URL)".into() };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("***");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        parsed.set_query(Some("***"));
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

fn persistent() -> String {
    "persistent".into()
}

/// The attributes an SP may be sent, from the identity.
pub const ATTRIBUTES: &[&str] =
    &["username", "given_name", "family_name", "matricule", "idnat", "metier", "grade", "units", "mie", "level"];

/// The NameID formats besides an attribute.
pub const NAMEID_FORMATS: &[&str] = &["persistent", "transient"];

impl SamlConfig {
    /// Whether SAML is set up: a signing key (the metadata answers) or an SP.
    pub fn enabled(&self) -> bool {
        self.key_file.is_some() || !self.sps.is_empty()
    }

    pub fn assertion_ttl(&self) -> u64 {
        if self.assertion_ttl_secs == 0 { 300 } else { self.assertion_ttl_secs }
    }

    pub fn entity_id(&self, issuer: &str) -> String {
        self.entity_id.clone().unwrap_or_else(|| format!("{issuer}/saml/metadata"))
    }

    pub(crate) fn validate(&self, issuer: &str, clients: &[ClientConfig], err: &mut dyn FnMut(&str, String)) {
        if !self.enabled() {
            return;
        }
        if !cfg!(feature = "saml") {
            err(
                "saml",
                "this `vigie` was built without SAML: build it with `--features vigie-gateway/saml` (needs libclang-dev, \
                 libxmlsec1-dev; docs/saml.md) or remove `[saml]`"
                    .into(),
            );
            return;
        }
        for key in ["key_file", "cert_file", "pairwise_secret_file"] {
            let value = match key {
                "key_file" => &self.key_file,
                "cert_file" => &self.cert_file,
                _ => &self.pairwise_secret_file,
            };
            if value.is_none() {
                err(&format!("saml.{key}"), "required when `[saml]` is set up (a key or an SP)".into());
            }
        }
        let callback = format!("{issuer}/saml/callback");
        for (i, sp) in self.sps.iter().enumerate() {
            let key = format!("saml.sps[{i}]");
            match clients.iter().find(|c| c.client_id == sp.client_id) {
                None => err(&format!("{key}.client_id"), format!("no client {:?} in `clients`", sp.client_id)),
                Some(c) if !c.redirect_uris.contains(&callback) => err(
                    &format!("{key}.client_id"),
                    format!("the client {:?} must list {callback:?} in its `redirect_uris`", sp.client_id),
                ),
                Some(_) => {}
            }
            if !NAMEID_FORMATS.contains(&sp.nameid.as_str()) && !ATTRIBUTES.contains(&sp.nameid.as_str()) {
                err(
                    &format!("{key}.nameid"),
                    format!("expected persistent, transient or one of {ATTRIBUTES:?}, found {:?}", sp.nameid),
                );
            }
            match (&sp.metadata_url, sp.metadata.is_empty()) {
                (None, true) => err(&format!("{key}.metadata"), "set `metadata` (a file) or `metadata_url`".into()),
                (Some(_), false) => {
                    err(&format!("{key}.metadata_url"), "set `metadata` or `metadata_url`, not both".into())
                }
                (Some(url), true) if !url.starts_with("https://") => err(
                    &format!("{key}.metadata_url"),
                    format!("expected an https:// URL, found {:?}", redacted_url(url)),
                ),
                _ => {}
            }
            for a in &sp.attributes {
                if !ATTRIBUTES.contains(&a.as_str()) {
                    err(
                        &format!("{key}.attributes"),
                        format!("unknown attribute {a:?}: expected one of {ATTRIBUTES:?}"),
                    );
                }
            }
        }
        #[cfg(feature = "saml")]
        if let Err(problems) = super::idp::Idp::load(self, issuer) {
            for (k, m) in problems {
                err(&k, m);
            }
        }
    }
}
