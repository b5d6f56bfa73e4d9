//! The demo's secrets, generated once and kept in the data directory: client secrets, user
//! passwords and TOTP secrets, the `private_key_jwt` client's key, the admin API token.
use std::path::Path;

use anyhow::Context;
use rcgen::KeyPair;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::users::{DemoUser, USERS};
use crate::secrets::random_token;

/// What the demo generates once and keeps: secrets of demo clients and users.
#[derive(Serialize, Deserialize)]
pub(super) struct DemoSecrets {
    pub(super) clients: Vec<(String, String)>,
    pub(super) users: Vec<(String, String, String)>,
    pub(super) jwt_client_key_pem: String,
    pub(super) jwt_client_kid: String,
}

/// The demo's admin API token (kept in the data directory, like the other demo secrets).
pub(super) fn ensure_admin_token(dir: &Path) -> anyhow::Result<String> {
    ensure_token(dir, "admin-token")
}

/// A bearer token kept in `dir/file`, made on the first start.
fn ensure_token(dir: &Path, file: &str) -> anyhow::Result<String> {
    let path = dir.join(file);
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let (token, _) = crate::cli::new_token();
    write_secret(&path, &token)?;
    Ok(token)
}

/// The demo's SCIM provisioning token (role and scope `provisioning`), kept across starts.
pub(super) fn ensure_scim_token(dir: &Path) -> anyhow::Result<String> {
    ensure_token(dir, "scim-token")
}

/// Writes a file only its owner may read.
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
const SECRET_CLIENTS: [&str; 5] = ["demo-app", "demo-cli", "demo-dpi", "demo-psc", "demo-bcl"];

pub(super) fn ensure_secrets(dir: &Path) -> anyhow::Result<DemoSecrets> {
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

pub(super) fn secret_of<'a>(s: &'a DemoSecrets, client: &str) -> &'a str {
    s.clients.iter().find(|(c, _)| c == client).map(|(_, v)| v.as_str()).unwrap_or_default()
}

/// The public JWK of the demo `private_key_jwt` client.
pub(super) fn jwt_client_jwks(s: &DemoSecrets) -> anyhow::Result<serde_json::Value> {
    let key = jsonwebtoken::EncodingKey::from_ec_pem(s.jwt_client_key_pem.as_bytes())?;
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)?;
    jwk.common.key_id = Some(s.jwt_client_kid.clone());
    Ok(json!({ "keys": [jwk] }))
}
