//! The one typed configuration: a TOML file with `VIGIE_…` environment overrides
//! (`VIGIE_STORE__URL` sets `store.url`), validated at start with one line per bad key.
//! Each section's type and checks live with its feature (re-exported here, so
//! `crate::config::ClientConfig` and the like still name them); this file keeps the top.
pub mod check;
mod load;
pub mod server;
pub mod store;

pub use crate::admin::config::{AdminConfig, AdminTokenConfig};
pub use crate::audit::AuditConfig;
pub use crate::demo::config::DemoConfig;
pub use crate::keys::{KeysConfig, SigningAlg};
pub use crate::login::config::{AttestationMode, CardsConfig, LoginConfig, WebauthnConfig};
pub use crate::oidc::config::{ClientAuthMethod, ClientConfig, FiTiersConfig, TokenConfig};
pub use crate::policy::config::PolicyConfig;
pub use crate::session::config::SessionConfig;
pub use check::{AcrValuesMap, MIE_LABELS, acr_values_map_problems, check_redirect_uri, is_amr_token};
pub use load::ConfigErrors;
pub use server::ServerConfig;
pub use store::{DirectoryConfig, StoreConfig, StoreKind};

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (OIDC Discovery §3): an `https` URL with no query or fragment.
    pub issuer: String,
    /// Sponsorship of a colleague without a usable card (`[sponsorship]`, see docs/sponsorship.md).
    #[serde(default)]
    pub sponsorship: crate::sponsorship::config::SponsorshipConfig,
    /// Outgoing e-mail through SMTP (`[mail]`): the sponsorship notices.
    #[serde(default)]
    pub mail: vigie_mail::MailConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    pub directory: DirectoryConfig,
    pub keys: KeysConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub tokens: TokenConfig,
    #[serde(default)]
    pub login: LoginConfig,
    #[serde(default)]
    pub cards: CardsConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub webauthn: WebauthnConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// The former place of `[audit.syslog]`: refused with a message naming the new key.
    #[serde(default)]
    pub audit_export: Option<figment::value::Value>,
    #[serde(default)]
    pub demo: DemoConfig,
    /// SCIM 2.0 provisioning (`[scim]`, see docs/scim.md).
    #[serde(default)]
    pub scim: crate::scim::ScimConfig,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Login through Pro Santé Connect (`[psc]`, see docs/psc.md).
    #[serde(default)]
    pub psc: crate::psc::PscConfig,
    /// The DMP in AIR simplifié: VIHF issuance and the SOAP relay (`[dmp]`, see docs/dmp.md).
    #[serde(default)]
    pub dmp: crate::dmp::DmpConfig,
    /// Circuit breakers of the upstreams and degraded mode (`[health]`, see docs/degraded-mode.md).
    #[serde(default)]
    pub health: crate::health::HealthConfig,
    /// Forward-auth for the reverse proxy in front of apps that speak nothing (`[forward_auth]`,
    /// see docs/forward-auth.md).
    #[serde(default)]
    pub forward_auth: crate::forward_auth::ForwardAuthConfig,
    /// The life cycle of people: the HR feed, time-bounded people (`[lifecycle]`, see
    /// docs/identity-lifecycle.md).
    #[serde(default)]
    pub lifecycle: crate::lifecycle::config::LifecycleConfig,
    /// The idNat derived from the RPPS (`[derivation]`, see docs/identity-lifecycle.md).
    #[serde(default)]
    pub derivation: crate::derivation::config::DerivationConfig,
    /// The SAML 2.0 IdP (`[saml]`, `[[saml.sps]]`, see docs/saml.md).
    #[serde(default)]
    pub saml: crate::saml::SamlConfig,
}

/// The top-level keys of [`Config`]: the only `VIGIE_…` variables read.
const TOP_LEVEL_KEYS: &[&str] = &[
    "issuer",
    "server",
    "store",
    "directory",
    "keys",
    "session",
    "sponsorship",
    "mail",
    "tokens",
    "login",
    "cards",
    "policy",
    "webauthn",
    "admin",
    "audit",
    "audit_export",
    "demo",
    "clients",
    "dmp",
    "psc",
    "health",
    "scim",
    "forward_auth",
    "lifecycle",
    "derivation",
    "saml",
];

impl Config {
    /// The URL of one of the gateway's paths.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Semantic checks serde cannot make. Each section checks itself, in the order the lines
    /// have always come out in (hence a section checked in more than one place).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut err = |key: &str, msg: String| errors.push(format!("`{key}`: {msg}"));
        self.cards.validate(&mut err);
        self.policy.validate(&mut err);
        self.psc.validate(&mut err);
        self.health.validate(&mut err);
        self.login.validate(&mut err);
        self.audit.validate(&mut err);
        self.audit.validate_ins_key(self.dmp.enabled, &mut err);
        if self.audit_export.is_some() {
            err(
                "audit_export",
                "moved: `[audit_export.syslog]` is now `[audit.syslog]`, with the same keys (environment: \
                 VIGIE_AUDIT__SYSLOG__…): rename the section (docs/audit-export.md)"
                    .into(),
            );
        }

        match url::Url::parse(&self.issuer) {
            Ok(u) if u.scheme() == "https" && u.query().is_none() && u.fragment().is_none() => {
                if self.issuer.ends_with('/') {
                    err("issuer", "must not end with '/' (OIDC Discovery §4.3 compares it exactly)".into());
                }
            }
            _ => err("issuer", format!("expected an https URL with no query or fragment, found {:?}", self.issuer)),
        }
        self.server.validate_files(&mut err);
        self.keys.validate(&mut err);
        self.server.validate_plain_http(&mut err);
        self.webauthn.validate(&self.issuer, &mut err);
        self.sponsorship.validate(&mut err);
        self.mail.validate(&mut err);
        self.server.validate_limits(&mut err);
        self.store.validate(&mut err);
        self.directory.validate(&mut err);
        let counts = self.session.counts().into_iter().chain(self.tokens.counts()).chain(self.login.counts());
        for (key, v) in counts {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        self.tokens.validate(&mut err);
        self.session.validate(&mut err);
        self.admin.validate(&mut err);
        self.scim.validate(&mut err);
        self.forward_auth.validate(&self.clients, &mut err);
        self.lifecycle.validate(&mut err);
        self.derivation.validate(&mut err);
        self.saml.validate(&self.issuer, &self.clients, &mut err);
        crate::oidc::config::validate_clients(&self.clients, &mut err);
        if let Err(bad) = self.dmp.load() {
            for (key, m) in bad {
                err(&key, m);
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_example_configuration_is_valid_but_for_its_files() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/vigie.example.toml");
        let errors = Config::load(std::path::Path::new(path)).unwrap_err().0;
        assert!(!errors.is_empty());
        for e in &errors {
            // Only the TLS, key and PSC secret files of a real deployment are missing here.
            assert!(
                e.contains("server.tls_") || e.contains("keys.file") || e.contains("psc.client_secret_file"),
                "unexpected error: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_toml_never_panics(s in "\\PC{0,400}") {
            if let Ok(c) = Figment::from(Toml::string(&s)).extract::<Config>() {
                let _ = c.validate();
            }
        }

    }
}
