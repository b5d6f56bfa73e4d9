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

/// Writes a file only its owner may read, whole or not at all: the content goes to a fresh file
/// created owner-only (never readable by others, not even for an instant), then replaces `path`
/// by rename — a script or test polling `demo.json` never reads it half-written.
pub(crate) fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("secret");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(content.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
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

#[cfg(test)]
mod tests {
    use super::write_secret;

    /// A reader polling the file while it is rewritten sees the old or the new content, never a
    /// truncated one (the rolling test once read `demo.json` half-written and failed to parse it).
    #[test]
    fn a_rewritten_file_is_never_read_half_written_and_stays_owner_only() {
        let dir = std::env::temp_dir().join(format!("vigie-write-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("demo.json");
        let doc = |i: usize| serde_json::json!({ "round": i, "pad": "x".repeat(256 * 1024) }).to_string();
        write_secret(&path, &doc(0)).expect("first write");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let text = std::fs::read_to_string(&path).expect("the file is always there");
                    serde_json::from_str::<serde_json::Value>(&text).expect("a whole document");
                    reads += 1;
                }
                reads
            })
        };
        for i in 1..40 {
            write_secret(&path, &doc(i)).expect("rewrite");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("the reader saw only whole documents") > 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(left, vec![std::ffi::OsString::from("demo.json")], "no temporary file left");
    }
}
