//! The demo's seeding: identities and accounts (once), HR's roles and CPE, and `demo.json`
//! telling a person or a script how to try it.
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;
use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, Directory, Identity};

use super::pki::card_json;
use super::secrets::{ensure_admin_token, ensure_secrets, secret_of, write_secret};
use super::users::{DEMO_CARD_USER, DEMO_CPE_USER, DEMO_ROLES, USERS};
use crate::config::{ClientAuthMethod, Config};
use crate::secrets::hash_password;

/// Grants the demo users their administrative roles.
pub async fn grant_roles(directory: &dyn Directory, roles: &dyn vigie_core::roles::Roles) -> anyhow::Result<()> {
    for (username, role) in DEMO_ROLES {
        if let Some(account) = directory.account_by_username(username).await? {
            roles.grant(&account.identity_id, *role, "demo").await?;
        }
    }
    Ok(())
}

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
                "backchannel_logout_uri": c.backchannel_logout_uri,
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
        // SCIM 2.0 provisioning (docs/scim.md): the base URL and a token scoped to it alone.
        "scim_api": {
            "url": format!("{issuer}/scim/v2"),
            "token": super::secrets::ensure_scim_token(&dir)?,
        },
    });
    Ok(Description(doc))
}

/// Writes `demo.json`; returns its path.
pub fn describe(data_dir: &Path, description: &Description) -> anyhow::Result<PathBuf> {
    let path = data_dir.canonicalize()?.join("demo.json");
    write_secret(&path, &serde_json::to_string_pretty(&description.0)?)?;
    Ok(path)
}
