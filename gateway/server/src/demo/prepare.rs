//! The demo's configuration: the data directory prepared (PKI, keys, secrets) and the demo
//! clients, one per way an application authenticates.
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use super::pki::{ensure_card_pki, ensure_pki};
use super::secrets::{ensure_admin_token, ensure_secrets, jwt_client_jwks, secret_of};
use super::users::DEMO_STRUCTURE_ID;
use crate::config::*;
use crate::keys::KeyFile;
use crate::secrets::SecretHash;

fn client(
    id: &str,
    method: ClientAuthMethod,
    secret: Option<&str>,
    redirect: &[String],
    logout: &[String],
    alg: SigningAlg,
) -> ClientConfig {
    ClientConfig {
        client_id: id.into(),
        client_secret_hash: secret.map(SecretHash::of_generated),
        auth_method: method,
        jwks: None,
        jwks_uri: None,
        redirect_uris: redirect.to_vec(),
        post_logout_redirect_uris: logout.to_vec(),
        backchannel_logout_uri: None,
        scopes: ["openid", "profile", "hospital", "offline_access"].map(String::from).to_vec(),
        id_token_signed_response_alg: alg,
        require_pkce: true,
        policy: "default".into(),
        name: None,
        acr: None,
        acr_values_map: Default::default(),
        sensitive: false,
        audience: "staff".into(),
        fi_tiers: None,
        dmp: false,
    }
}

/// Where the conformance kit receives the back-channel logout tokens of `demo-bcl`.
pub const DEMO_BACKCHANNEL_LISTEN: &str = "127.0.0.1:8770";

/// Prepares the data directory and returns the demo configuration (before env overrides).
pub async fn prepare(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<Config> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let dir = data_dir.canonicalize()?;
    ensure_pki(&dir)?;
    ensure_card_pki(&dir)?;
    let keys = dir.join("keys.json");
    if !keys.is_file() {
        KeyFile::generate(crate::now()).write(&keys)?;
    }
    let secrets = ensure_secrets(&dir)?;
    let issuer = format!("https://localhost:{}", listen.port());
    let app_base = format!("{issuer}/demo-app");
    let mut demo_app = client(
        "demo-app",
        ClientAuthMethod::ClientSecretBasic,
        Some(secret_of(&secrets, "demo-app")),
        &[format!("{app_base}/callback")],
        &[format!("{app_base}/logged-out")],
        SigningAlg::ES256,
    );
    demo_app.backchannel_logout_uri = Some(format!("{app_base}/backchannel-logout"));
    demo_app.name = Some("Application de démonstration".into());
    let cli = client(
        "demo-cli",
        ClientAuthMethod::ClientSecretPost,
        Some(secret_of(&secrets, "demo-cli")),
        &["http://127.0.0.1:8765/callback".into()],
        &["http://127.0.0.1:8765/logged-out".into()],
        SigningAlg::RS256,
    );
    let spa = client(
        "demo-spa",
        ClientAuthMethod::None,
        None,
        &["http://localhost:8766/callback".into()],
        &["http://localhost:8766/logged-out".into()],
        SigningAlg::PS256,
    );
    let mut jwt = client(
        "demo-jwt",
        ClientAuthMethod::PrivateKeyJwt,
        None,
        &["http://127.0.0.1:8767/callback".into()],
        &["http://127.0.0.1:8767/logged-out".into()],
        SigningAlg::ES256,
    );
    jwt.jwks = Some(jwt_client_jwks(&secrets)?);
    // A DPI: a "sensitive" service of the RIE, so the default policies ask for a two-factor MIE
    // of the RIE (card, FIDO2 key, e-CPS); a password + TOTP session is stepped up.
    let mut dpi = client(
        "demo-dpi",
        ClientAuthMethod::ClientSecretBasic,
        Some(secret_of(&secrets, "demo-dpi")),
        &["http://127.0.0.1:8768/callback".into()],
        &["http://127.0.0.1:8768/logged-out".into()],
        SigningAlg::ES256,
    );
    dpi.name = Some("Dossier patient (démonstration)".into());
    dpi.sensitive = true;
    // The DPI turns its users' access tokens into VIHFs for the DMP (docs/dmp.md).
    dpi.dmp = true;
    crate::dmp::ensure_demo_pki(&dir, "CHU DE DEMONSTRATION", DEMO_STRUCTURE_ID)?;
    // Pro Santé Connect using Vigie as its FI tiers (docs/fi-tiers.md): a confidential client
    // whose ID tokens carry `tid`, `oid` and PSC's `amr`; a phishing-resistant login, 4 h at most
    // old. The redirect URI stands for PSC's broker endpoint (tests/oidc-client plays PSC).
    let mut psc = client(
        "demo-psc",
        ClientAuthMethod::ClientSecretBasic,
        Some(secret_of(&secrets, "demo-psc")),
        &["http://127.0.0.1:8769/callback".into()],
        &["http://127.0.0.1:8769/logged-out".into()],
        SigningAlg::RS256,
    );
    psc.name = Some("Pro Santé Connect (démonstration)".into());
    psc.scopes = ["openid", "profile"].map(String::from).to_vec();
    psc.acr = Some(vigie_core::AssuranceLevel::TwoFactorPhishingResistant.acr().into());
    psc.fi_tiers = Some(FiTiersConfig {
        tid: format!("VIGIE_{DEMO_STRUCTURE_ID}"),
        amr: Default::default(),
        max_auth_age_secs: 4 * 3600,
    });
    // The conformance kit's back-channel test client (docs/conformance.md): its logout tokens go
    // to a fixed loopback address where the kit listens while it runs
    // `oidcc-backchannel-rp-initiated-logout` (RFC 8252 §7.3: plain HTTP on loopback).
    let mut bcl = client(
        "demo-bcl",
        ClientAuthMethod::ClientSecretBasic,
        Some(secret_of(&secrets, "demo-bcl")),
        &["http://127.0.0.1:8771/callback".into()],
        &["http://127.0.0.1:8771/logged-out".into()],
        SigningAlg::ES256,
    );
    bcl.name = Some("Client de test back-channel (kit de conformité)".into());
    bcl.backchannel_logout_uri = Some(format!("http://{DEMO_BACKCHANNEL_LISTEN}/backchannel"));

    Ok(Config {
        issuer,
        // Sponsorship works in the demo; its e-mails go nowhere unless `VIGIE_MAIL__…` names a relay.
        sponsorship: crate::sponsorship::config::SponsorshipConfig {
            helpdesk_phone: "01 23 45 67 89".into(),
            ..Default::default()
        },
        mail: vigie_mail::MailConfig { from: "Vigie démo <vigie@demo.invalid>".into(), ..Default::default() },
        server: ServerConfig {
            listen,
            tls_cert: dir.join("tls.crt"),
            tls_key: dir.join("tls.key"),
            // Nothing routes to the demo: no reason to wait after SIGTERM.
            drain_secs: 0,
            ..Default::default()
        },
        store: StoreConfig::default(),
        directory: DirectoryConfig {
            url: format!("sqlite://{}", dir.join("directory.db").display()),
            identity_cache_secs: 30,
            max_connections: None,
            statement_timeout_ms: None,
            connect_timeout_ms: None,
            accept_newer_schema: true,
            ldap: None,
        },
        keys: KeysConfig { file: keys },
        session: SessionConfig::default(),
        tokens: TokenConfig::default(),
        login: LoginConfig::default(),
        policy: PolicyConfig::default(),
        cards: CardsConfig {
            enabled: true,
            trust: vigie_igc_sante::TrustConfig {
                anchors: vec![dir.join("card-ca.pem")],
                crl_cache_dir: Some(dir.join("crl-cache")),
                crl_urls: vec![format!("https://localhost:{}/demo-pki/card-ca.crl", listen.port())],
                ..Default::default()
            },
            ..Default::default()
        },
        // The demo cannot know which keys visitors bring (nor trust Chromium's virtual one): any
        // key registers, and none counts as a hardware key (`swk`, not `hwk`).
        webauthn: WebauthnConfig { attestation: AttestationMode::None, ..Default::default() },
        admin: AdminConfig {
            tokens: vec![
                AdminTokenConfig {
                    name: "demo-rh".into(),
                    token_hash: SecretHash::of_generated(&ensure_admin_token(&dir)?),
                    roles: vec!["cards".into(), "fido2".into()],
                    // The demo shows every call of the API.
                    scopes: Some(
                        vigie_core::roles::Scope::ALL
                            .iter()
                            .filter(|s| {
                                matches!(s.role(), vigie_core::roles::Role::Cards | vigie_core::roles::Role::Fido2)
                            })
                            .map(|s| s.as_str().to_owned())
                            .collect(),
                    ),
                    // The demo's configuration is made at each start: the token lives on.
                    expires_at: Some(crate::rfc3339(crate::now() + 30 * 86_400)),
                },
                AdminTokenConfig {
                    // An identity-governance tool's token: SCIM provisioning only (docs/scim.md).
                    name: "demo-scim".into(),
                    token_hash: SecretHash::of_generated(&super::secrets::ensure_scim_token(&dir)?),
                    roles: vec!["provisioning".into()],
                    scopes: Some(vec!["provisioning".into()]),
                    expires_at: Some(crate::rfc3339(crate::now() + 30 * 86_400)),
                },
            ],
        },
        scim: crate::scim::ScimConfig { enabled: true, ..Default::default() },
        forward_auth: Default::default(),
        // The SAML IdP's key and certificate when it is built in: `/saml/metadata` answers.
        #[cfg(feature = "saml")]
        saml: crate::saml::demo::ensure(&dir)?,
        #[cfg(not(feature = "saml"))]
        saml: Default::default(),
        audit: AuditConfig {
            file: dir.join("audit.jsonl").display().to_string(),
            checkpoint_key: Some(crate::audit::ensure_key(&dir.join("audit-checkpoint.pem"), "vigie.demo/audit")?),
            origin: "vigie.demo/audit".into(),
            ins_key_file: Some(crate::audit::ins::ensure_file(&dir.join("audit-ins.key"))?),
            ..Default::default()
        },
        audit_export: Default::default(),
        demo: DemoConfig { app: true, ca_file: Some(dir.join("ca.pem")), card_crl: Some(dir.join("card-ca.crl")) },
        clients: vec![demo_app, cli, spa, jwt, dpi, psc, bcl],
        psc: crate::psc::demo_config(listen.port()),
        dmp: crate::dmp::demo_config(&dir, DEMO_STRUCTURE_ID),
        health: Default::default(),
        lifecycle: Default::default(),
        derivation: Default::default(),
    })
}
