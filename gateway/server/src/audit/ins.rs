//! The patient's INS in audit lines as a keyed HMAC (issue 18, "Minimal and safe content"). An
//! INS-NIR has a small, structured space (sex, year and month of birth, place, rank, key): a plain
//! SHA-256 of it is reversed by enumerating the plausible NIRs, so the trail holds
//! HMAC-SHA256(key, INS) (RFC 2104) under a key kept in a secret file (`audit.ins_key_file`).
//! Whoever holds the key finds a patient's lines: `vigie audit ins-hash <INS> --key FILE`
//! (docs/audit.md, "Patients in the trail").
use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use vigie_core::dmp::InsNir;

/// What a patient reference in the trail starts with (the former unkeyed `sha256:` is gone).
pub const PREFIX: &str = "hmac-sha256:";
/// RFC 2104 §3: a key shorter than the hash's output weakens the HMAC.
const MIN_KEY: usize = 32;

/// The key patient references are made with.
pub struct InsKey {
    key: hmac::Key,
    /// Made at start for want of `audit.ins_key_file`: references cannot be matched afterwards.
    pub ephemeral: bool,
}

impl InsKey {
    /// The key of a secret file: one line, base64url (as [`ensure_file`] writes it), 32 bytes or more.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the INS key {}: check `audit.ins_key_file`", path.display()))?;
        let key = B64.decode(text.trim()).ok().filter(|k| k.len() >= MIN_KEY).with_context(|| {
            format!(
                "the INS key {} must be one line of base64url holding at least {MIN_KEY} random bytes \
                 (`vigie audit keygen --ins-key FILE` writes one)",
                path.display()
            )
        })?;
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, &key), ephemeral: false })
    }

    /// A random key for this process only (no `audit.ins_key_file`).
    pub fn ephemeral() -> Self {
        let mut key = [0u8; MIN_KEY];
        aws_lc_rs::rand::fill(&mut key).expect("system random generator");
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &key), ephemeral: true }
    }

    /// The patient's reference in audit lines: `hmac-sha256:<base64url>`.
    pub fn reference(&self, ins: &InsNir) -> String {
        format!("{PREFIX}{}", B64.encode(hmac::sign(&self.key, ins.as_str().as_bytes())))
    }
}

/// Writes a new INS key to `path` (owner-only, 32 random bytes), unless one is there; returns
/// `path`. The demo and `vigie audit keygen --ins-key` use it.
pub fn ensure_file(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut key = [0u8; MIN_KEY];
        aws_lc_rs::rand::fill(&mut key).expect("system random generator");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{}\n", B64.encode(key)).as_bytes()))
            .with_context(|| format!("writing the INS key {}", path.display()))?;
    }
    InsKey::load(path)?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("vigie-ins-key-{name}-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn the_reference_is_the_rfc_2104_hmac_of_the_ins_under_the_file_s_key_not_its_plain_hash() {
        let path = key_file("ok", &format!("{}\n", B64.encode([7u8; 32])));
        let key = InsKey::load(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let ins = InsNir::parse("207058575627097").unwrap();
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]), ins.as_str().as_bytes());
        assert_eq!(key.reference(&ins), format!("hmac-sha256:{}", B64.encode(expected)));
        assert!(!key.reference(&ins).contains(&crate::secrets::sha256_b64(ins.as_str().as_bytes())));
        assert_ne!(key.reference(&ins), InsKey::ephemeral().reference(&ins), "another key, another reference");
    }

    #[test]
    fn a_short_or_garbled_key_is_refused_saying_how_to_make_one() {
        for (name, content) in [("short", B64.encode([1u8; 16])), ("garbled", "not base64!".into())] {
            let path = key_file(name, &content);
            let e = InsKey::load(&path).err().unwrap().to_string();
            let _ = std::fs::remove_file(&path);
            assert!(e.contains("at least 32 random bytes") && e.contains("--ins-key"), "{e}");
        }
    }
}
