//! The embedded demo: a test PKI, signing keys, demo identities and clients in a data
//! directory, SQLite + in-process store, and `demo.json` telling a person or a script how to
//! try it. Running it again reuses what the data directory holds.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, Directory, Identity};

use crate::config::*;
use crate::keys::KeyFile;
use crate::secrets::{SecretHash, hash_password, random_token};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_DATA_DIR: &str = "vigie-demo";

/// What the demo generates once and keeps: secrets of demo clients and users.
#[derive(Serialize, Deserialize)]
struct DemoSecrets {
    clients: Vec<(String, String)>,
    users: Vec<(String, String, String)>,
    jwt_client_key_pem: String,
    jwt_client_kid: String,
}

struct DemoUser {
    username: &'static str,
    matricule: &'static str,
    given: &'static str,
    family: &'static str,
    birth: &'static str,
    metier: &'static str,
    grade: &'static str,
    idnat: Option<&'static str>,
    units: &'static [(&'static str, u8)],
}

const USERS: &[DemoUser] = &[
    DemoUser {
        username: "demo.infirmiere",
        matricule: "M000101",
        given: "Camille",
        family: "Martin",
        birth: "1988-03-14",
        metier: "Infirmier",
        grade: "IDE",
        idnat: None,
        units: &[("UF1203", 100)],
    },
    DemoUser {
        username: "demo.medecin",
        matricule: "M000102",
        given: "Paul",
        family: "Durand",
        birth: "1975-11-02",
        metier: "Médecin",
        grade: "PH",
        idnat: Some("810100000011"),
        units: &[("UF1203", 50), ("UF2101", 50)],
    },
    DemoUser {
        username: "demo.interne",
        matricule: "M000103",
        given: "Léa",
        family: "Bernard",
        birth: "1998-07-21",
        metier: "Médecin",
        grade: "Interne",
        idnat: Some("810100000029"),
        units: &[("UF2101", 100)],
    },
    // Professionals of the PSC stand-in (conformance/psc-sandbox), linked by their idNat.
    DemoUser {
        username: "demo.durand",
        matricule: "M000105",
        given: "Marie",
        family: "Durand",
        birth: "1980-02-11",
        metier: "Médecin",
        grade: "PH",
        idnat: Some("810001234567"),
        units: &[("UF2101", 100)],
    },
    DemoUser {
        username: "demo.petit",
        matricule: "M000106",
        given: "Luc",
        family: "Petit",
        birth: "1990-09-30",
        metier: "Masseur-kinésithérapeute",
        grade: "MK",
        idnat: Some("0751234567"),
        units: &[("UF3001", 100)],
    },
    // HR: binds and tracks the cards of agents (role `cards`, page /admin/cards).
    DemoUser {
        username: "demo.rh",
        matricule: "M000104",
        given: "Sophie",
        family: "Lambert",
        birth: "1982-05-09",
        metier: "Gestionnaire RH",
        grade: "Adjoint administratif",
        idnat: None,
        units: &[("UF9001", 100)],
    },
];

/// Administrative roles of demo users.
const DEMO_ROLES: &[(&str, vigie_core::roles::Role)] = &[("demo.rh", vigie_core::roles::Role::Cards)];

/// The demo's admin API token (kept in the data directory, like the other demo secrets).
fn ensure_admin_token(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let (token, _) = crate::admin::cli::new_token();
    write_secret(&path, &token)?;
    Ok(token)
}

/// Grants the demo users their administrative roles.
pub async fn grant_roles(directory: &dyn Directory, roles: &dyn vigie_core::roles::Roles) -> anyhow::Result<()> {
    for (username, role) in DEMO_ROLES {
        if let Some(account) = directory.account_by_username(username).await? {
            roles.grant(&account.identity_id, *role, "demo").await?;
        }
    }
    Ok(())
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Vigie demo CA");
    dn.push(DnType::OrganizationName, "Vigie demo (not for production)");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

/// The demo CA and the listener's certificate, for localhost.
fn ensure_pki(dir: &Path) -> anyhow::Result<()> {
    if dir.join("tls.key").is_file() && dir.join("ca.pem").is_file() && dir.join("tls.crt").is_file() {
        return Ok(());
    }
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
    server.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse()?));
    server.subject_alt_names.push(SanType::IpAddress("::1".parse()?));
    server.distinguished_name.push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    write_secret(&dir.join("ca-key.pem"), &ca_key.serialize_pem())?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("tls.crt"), format!("{}{}", server_cert.pem(), ca_cert.pem()))?;
    write_secret(&dir.join("tls.key"), &server_key.serialize_pem())?;
    Ok(())
}

/// The demo card PKI: an IGC-Santé-like test CA (`vigie_igc_sante::demopki`, with the real subject
/// layouts) and a CPS for the demo médecin, so that `curl --cert` can log in with a card. Its CRL
/// (empty, valid a year) is served by the demo at `/demo-pki/card-ca.crl`. Regenerated when a
/// file is missing or the CRL is within a month of its nextUpdate.
fn ensure_card_pki(dir: &Path) -> anyhow::Result<()> {
    use vigie_igc_sante::demopki::{CardSpec, DemoPki};
    let files = [
        "card-ca.pem",
        "card-ca.crl",
        "card-medecin.pem",
        "card-medecin.key",
        "card-medecin.chain.pem",
        "card-rh.pem",
        "card-rh.key",
        "card-rh.chain.pem",
    ];
    let crl_fresh = std::fs::read(dir.join("card-ca.crl"))
        .ok()
        .and_then(|der| vigie_igc_sante::parse_crl(&der).ok())
        .is_some_and(|crl| crl.next_update > crate::now() + 30 * 86_400);
    if crl_fresh && files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(());
    }
    let pki = DemoPki::generate().map_err(|e| anyhow::anyhow!("generating the demo card PKI: {e}"))?;
    let medecin = USERS.iter().find(|u| u.username == DEMO_CARD_USER).context("the demo card holder")?;
    let spec = CardSpec::cps(
        medecin.idnat.context("the demo card holder has an idNat")?,
        &medecin.family.to_uppercase(),
        &medecin.given.to_uppercase(),
        medecin.metier,
    );
    let card = pki.issue(&spec).map_err(|e| anyhow::anyhow!("issuing the demo card: {e}"))?;
    let now = crate::now();
    let crl = pki.crl_der(&[], now - 60, now + 365 * 86_400).map_err(|e| anyhow::anyhow!("demo card CRL: {e}"))?;
    std::fs::write(dir.join("card-ca.pem"), pki.anchors_pem())?;
    std::fs::write(dir.join("card-ca.crl"), crl)?;
    write_card(dir, "card-medecin", &card)?;
    // HR staff hold a CPE of the establishment (administration needs a phishing-resistant MIE).
    let rh = USERS.iter().find(|u| u.username == DEMO_CPE_USER).context("the demo CPE holder")?;
    let spec = CardSpec::cpe_nominative(
        "CHU DE DEMONSTRATION",
        DEMO_STRUCTURE_ID,
        "000000104",
        &rh.family.to_uppercase(),
        &rh.given.to_uppercase(),
    );
    let cpe = pki.issue(&spec).map_err(|e| anyhow::anyhow!("issuing the demo CPE: {e}"))?;
    write_card(dir, "card-rh", &cpe)?;
    Ok(())
}

/// The demo user who holds a CPE, bound to them at seed as HR would.
const DEMO_CPE_USER: &str = "demo.rh";
/// The demo establishment's structure id on its CPE cards.
const DEMO_STRUCTURE_ID: &str = "1760000018";

/// Binds the demo CPE to its holder in the card registry, once (HR's own card: someone had to
/// bind the first one).
pub async fn bind_demo_cpe(
    data_dir: &Path,
    directory: &dyn Directory,
    cards: &dyn vigie_core::cards::CardRegistry,
) -> anyhow::Result<()> {
    let dir = data_dir.canonicalize()?;
    let Some(account) = directory.account_by_username(DEMO_CPE_USER).await? else { return Ok(()) };
    let pem = std::fs::read(dir.join("card-rh.pem"))?;
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls::pki_types::CertificateDer<'_>| c.to_vec())
        .map_err(|e| anyhow::anyhow!("the demo CPE: {e}"))?;
    let card = vigie_igc_sante::card_identity(&der).map_err(|e| anyhow::anyhow!("the demo CPE: {e}"))?;
    if cards.card_by_certificate(&card.issuer_dn, &card.serial_hex).await?.is_some() {
        return Ok(());
    }
    let record =
        cards.create_card(&account.identity_id, "cpe", vigie_core::cards::CardStatus::Received, "demo", None).await?;
    cards.bind(&record.id, &card.issuer_dn, &card.serial_hex, &card.subject.cn, "demo", None).await?;
    Ok(())
}

/// The demo user who has a card.
const DEMO_CARD_USER: &str = "demo.medecin";

pub(crate) fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The demo clients that have a secret.
const SECRET_CLIENTS: [&str; 4] = ["demo-app", "demo-cli", "demo-dpi", "demo-psc"];

fn ensure_secrets(dir: &Path) -> anyhow::Result<DemoSecrets> {
    let path = dir.join("demo-secrets.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut s: DemoSecrets = serde_json::from_str(&text)
            .with_context(|| format!("{} is corrupt: delete the data directory", path.display()))?;
        // A data directory made by an older demo lacks the clients added since.
        let missing: Vec<&str> =
            SECRET_CLIENTS.into_iter().filter(|c| !s.clients.iter().any(|(id, _)| id == c)).collect();
        if !missing.is_empty() {
            s.clients.extend(missing.into_iter().map(|c| (c.to_string(), random_token(32))));
            write_secret(&path, &serde_json::to_string_pretty(&s)?)?;
        }
        // Likewise for the demo users added since.
        let missing: Vec<&DemoUser> =
            USERS.iter().filter(|u| !s.users.iter().any(|(n, _, _)| n == u.username)).collect();
        if !missing.is_empty() {
            for u in missing {
                let mut totp = vec![0u8; 20];
                aws_lc_rs::rand::fill(&mut totp).expect("system random generator");
                s.users.push((
                    u.username.to_string(),
                    format!("Vigie-{}", random_token(9)),
                    crate::totp::base32(&totp),
                ));
            }
            write_secret(&path, &serde_json::to_string_pretty(&s)?)?;
        }
        return Ok(s);
    }
    let jwt_key = KeyPair::generate()?;
    let s = DemoSecrets {
        clients: SECRET_CLIENTS.iter().map(|c| (c.to_string(), random_token(32))).collect(),
        users: USERS
            .iter()
            .map(|u| {
                let mut totp = vec![0u8; 20];
                aws_lc_rs::rand::fill(&mut totp).expect("system random generator");
                (u.username.to_string(), format!("Vigie-{}", random_token(9)), crate::totp::base32(&totp))
            })
            .collect(),
        jwt_client_key_pem: jwt_key.serialize_pem(),
        jwt_client_kid: random_token(8),
    };
    write_secret(&path, &serde_json::to_string_pretty(&s)?)?;
    Ok(s)
}

fn secret_of<'a>(s: &'a DemoSecrets, client: &str) -> &'a str {
    s.clients.iter().find(|(c, _)| c == client).map(|(_, v)| v.as_str()).unwrap_or_default()
}

/// The public JWK of the demo `private_key_jwt` client.
fn jwt_client_jwks(s: &DemoSecrets) -> anyhow::Result<serde_json::Value> {
    let key = jsonwebtoken::EncodingKey::from_ec_pem(s.jwt_client_key_pem.as_bytes())?;
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)?;
    jwk.common.key_id = Some(s.jwt_client_kid.clone());
    Ok(json!({ "keys": [jwk] }))
}

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
            ..Default::default()
        },
        store: StoreConfig::default(),
        directory: DirectoryConfig {
            url: format!("sqlite://{}", dir.join("directory.db").display()),
            identity_cache_secs: 30,
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
            tokens: vec![AdminTokenConfig {
                name: "demo-rh".into(),
                token_hash: SecretHash::of_generated(&ensure_admin_token(&dir)?),
                roles: vec!["cards".into(), "fido2".into()],
                // The demo shows every call of the API.
                scopes: Some(vigie_core::roles::Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect()),
                // The demo's configuration is made at each start: the token lives on.
                expires_at: Some(crate::rfc3339(crate::now() + 30 * 86_400)),
            }],
        },
        audit: AuditConfig { file: dir.join("audit.jsonl").display().to_string() },
        demo: DemoConfig { app: true, ca_file: Some(dir.join("ca.pem")), card_crl: Some(dir.join("card-ca.crl")) },
        clients: vec![demo_app, cli, spa, jwt, dpi, psc],
        psc: crate::psc::demo_config(listen.port()),
        dmp: crate::dmp::demo_config(&dir, DEMO_STRUCTURE_ID),
        health: Default::default(),
    })
}

/// What `demo.json` will say, gathered while seeding.
pub struct Description(serde_json::Value);

impl Description {
    /// The demo users' login names.
    pub fn usernames(&self) -> Vec<String> {
        let users = self.0["users"].as_array().map(Vec::as_slice).unwrap_or_default();
        users.iter().filter_map(|u| u["username"].as_str().map(str::to_owned)).collect()
    }
}

/// Seeds the demo identities (once) and gathers what `demo.json` will say.
pub async fn seed(config: &Config, data_dir: &Path, directory: &dyn Directory) -> anyhow::Result<Description> {
    let dir = data_dir.canonicalize()?;
    let secrets = ensure_secrets(&dir)?;
    let mut users = Vec::new();
    for u in USERS {
        let (_, password, totp) =
            secrets.users.iter().find(|(n, _, _)| n == u.username).context("demo secrets lack a user")?;
        let existing = directory.account_by_username(u.username).await?;
        if existing.is_none() {
            let identity = Identity {
                id: String::new(),
                matricule: u.matricule.into(),
                family_name: u.family.into(),
                given_name: u.given.into(),
                birth_date: Some(u.birth.into()),
                metier: Some(u.metier.into()),
                grade: Some(u.grade.into()),
                idnat: u.idnat.map(IdNat::parse).transpose()?,
                units: u.units.iter().map(|(uf, share)| Affectation { uf: uf.to_string(), share: *share }).collect(),
            };
            let id = directory.upsert_identity(&identity).await?;
            directory
                .upsert_account(&Account {
                    identity_id: id,
                    username: u.username.into(),
                    password_hash: Some(hash_password(password)),
                    totp_secret: crate::totp::from_base32(totp),
                    disabled: false,
                })
                .await?;
        }
        let mut entry = json!({
            "username": u.username, "password": password, "totp_secret": totp,
            "name": format!("{} {}", u.given, u.family), "metier": u.metier,
        });
        let roles: Vec<&str> = DEMO_ROLES.iter().filter(|(n, _)| *n == u.username).map(|(_, r)| r.as_str()).collect();
        if !roles.is_empty() {
            entry["roles"] = json!(roles);
        }
        if let Some(i) = u.idnat {
            entry["idnat"] = json!(i);
        }
        let card_files = match u.username {
            DEMO_CPE_USER => Some("card-rh"),
            DEMO_CARD_USER => Some("card-medecin"),
            _ => None,
        };
        if let Some(stem) = card_files {
            entry["card"] = card_json(&dir, stem)?;
        }
        // Sponsorship: where the notices go, and the answers to the security questions.
        entry["email"] = json!(crate::sponsorship::demo::demo_email(u.username));
        entry["security_answers"] =
            crate::sponsorship::demo::DEMO_ANSWERS.iter().map(|(q, a)| (q.to_string(), json!(a))).collect();
        users.push(entry);
    }
    let clients: Vec<_> = config
        .clients
        .iter()
        .map(|c| {
            let mut e = json!({
                "client_id": c.client_id, "auth_method": c.auth_method.as_str(),
                "redirect_uris": c.redirect_uris, "post_logout_redirect_uris": c.post_logout_redirect_uris,
                "id_token_signed_response_alg": c.id_token_signed_response_alg.as_str(),
                "client_secret": serde_json::Value::Null,
                "acr": c.acr,
                "sensitive": c.sensitive,
            });
            if c.client_secret_hash.is_some() {
                e["client_secret"] = json!(secret_of(&secrets, &c.client_id));
            }
            if let Some(fi) = &c.fi_tiers {
                e["fi_tiers"] = json!(fi);
            }
            if c.auth_method == ClientAuthMethod::PrivateKeyJwt {
                e["private_key_pem"] = json!(secrets.jwt_client_key_pem);
                e["kid"] = json!(secrets.jwt_client_kid);
            }
            e
        })
        .collect();
    let issuer = &config.issuer;
    let doc = json!({
        "issuer": issuer,
        "data_dir": dir,
        "demo_app_url": format!("{issuer}/demo-app/"),
        "account_keys_url": format!("{issuer}/account/keys"),
        "discovery_url": format!("{issuer}/.well-known/openid-configuration"),
        "clients": clients,
        "users": users,
        "ca_pem": std::fs::read_to_string(dir.join("ca.pem"))?,
        "card_ca_pem": std::fs::read_to_string(dir.join("card-ca.pem"))?,
        "audit_file": config.audit.file,
        "psc": crate::psc::demo_json(config),
        "dmp": crate::dmp::demo_json(config, &dir)?,
        // HR's card page (sign in as a user with the `cards` role) and the admin API behind
        // `vigie cards …` (bearer token).
        "admin_page_url": format!("{issuer}/admin/cards"),
        "admin_api": {
            "url": format!("{issuer}/admin/api"),
            "token": ensure_admin_token(&dir)?,
            "roles": config.admin.tokens.first().map(|t| t.roles.clone()).unwrap_or_default(),
            "scopes": config.admin.tokens.first().and_then(|t| t.scopes.clone()).unwrap_or_default(),
        },
    });
    Ok(Description(doc))
}

/// Writes a demo card's certificate, chain and key as `<stem>.pem`, `.chain.pem`, `.key` (what
/// [`card_json`] reads back).
fn write_card(dir: &Path, stem: &str, card: &vigie_igc_sante::demopki::DemoCard) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("{stem}.pem")), &card.cert_pem)?;
    std::fs::write(dir.join(format!("{stem}.chain.pem")), &card.chain_pem)?;
    write_secret(&dir.join(format!("{stem}.key")), &card.key_pem)
}

/// A demo card as `demo.json` gives it: certificate, chain and key (PEM), and their files.
fn card_json(dir: &Path, stem: &str) -> anyhow::Result<serde_json::Value> {
    let file = |ext: &str| dir.join(format!("{stem}.{ext}"));
    Ok(json!({
        "cert_pem": std::fs::read_to_string(file("pem"))?,
        "chain_pem": std::fs::read_to_string(file("chain.pem"))?,
        "key_pem": std::fs::read_to_string(file("key"))?,
        "cert_file": file("pem"),
        "key_file": file("key"),
    }))
}

/// Writes `demo.json`; returns its path.
pub fn describe(data_dir: &Path, description: &Description) -> anyhow::Result<PathBuf> {
    let path = data_dir.canonicalize()?.join("demo.json");
    write_secret(&path, &serde_json::to_string_pretty(&description.0)?)?;
    Ok(path)
}

/// What the demo prints at start.
pub fn banner(config: &Config, demo_json: &Path) -> String {
    let text = std::fs::read_to_string(demo_json).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut out = String::new();
    out.push_str("\nVigie — embedded demo (SQLite + in-process store, generated test PKI; not for production)\n\n");
    out.push_str(&format!("  Demo app:   {}/demo-app/   (open it in a browser)\n", config.issuer));
    out.push_str(&format!("  Discovery:  {}/.well-known/openid-configuration\n", config.issuer));
    out.push_str(&format!(
        "  Demo CA:    {}   (trust it, or accept the browser warning)\n",
        doc["data_dir"].as_str().map(|d| format!("{d}/ca.pem")).unwrap_or_default()
    ));
    out.push_str(&format!(
        "  Everything: {}\n\n  Users (password + TOTP; current code: `vigie totp <secret>`):\n",
        demo_json.display()
    ));
    for u in doc["users"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    {:<16} password {:<18} totp secret {}\n",
            u["username"].as_str().unwrap_or_default(),
            u["password"].as_str().unwrap_or_default(),
            u["totp_secret"].as_str().unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "\n  Cards (HR): {}   (sign in as demo.rh)\n  Admin API token (vigie cards --token): {}\n",
        doc["admin_page_url"].as_str().unwrap_or_default(),
        doc["admin_api"]["token"].as_str().unwrap_or_default()
    ));
    out.push_str("\n  Clients:\n");
    for c in doc["clients"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    {:<9} {:<20} {}\n",
            c["client_id"].as_str().unwrap_or_default(),
            c["auth_method"].as_str().unwrap_or_default(),
            c["redirect_uris"][0].as_str().unwrap_or_default()
        ));
    }
    out
}
