//! Signed checkpoints of the trail in the C2SP signed-note shape
//! (<https://github.com/C2SP/C2SP/blob/main/signed-note.md>), text as in C2SP tlog-checkpoint:
//! origin, size (the last sequence number), base64 head hash, then an extension line with the
//! time. The head is the chain's last hash, not a Merkle root: a checkpoint proves the trail up to
//! `size` as it was when signed (docs/audit.md, "Checkpoints").
//!
//! The key is Ed25519, separate from the token keys: a PKCS#8 PEM file (`audit.checkpoint_key`),
//! its verifier key (`name+keyid+base64(0x01||public key)`, the form of Go's `note` package) in
//! `<key>.pub`, given to whoever verifies.
use anyhow::{Context, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::chain::{Link, sha256};

/// signed-note "Signature types": Ed25519.
const ED25519_TYPE: u8 = 0x01;
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// signed-note "Signatures": key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4].
fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 34);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ED25519_TYPE);
    input.extend_from_slice(public);
    sha256(&input)[..4].try_into().expect("four bytes")
}

/// signed-note: key names are non-empty, without spaces or `+`.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        bail!("the checkpoint key name {name:?} must be non-empty, without spaces or '+' (`audit.origin`)");
    }
    Ok(())
}

/// The checkpoint signer.
pub struct Signer {
    name: String,
    pair: Ed25519KeyPair,
}

impl Signer {
    /// A new key in PKCS#8 PEM (written by `vigie audit keygen` and the demo).
    pub fn generate_pem() -> anyhow::Result<String> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let b64 = B64.encode(doc.as_ref());
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
        Ok(format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", lines.join("\n")))
    }

    pub fn from_pem(name: &str, pem: &str) -> anyhow::Result<Self> {
        check_name(name)?;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = B64.decode(body).context("the checkpoint key is not PEM (`vigie audit keygen` writes one)")?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| anyhow::anyhow!("the checkpoint key is not an Ed25519 PKCS#8 key (`vigie audit keygen`)"))?;
        Ok(Self { name: name.into(), pair })
    }

    pub fn load(name: &str, path: &std::path::Path) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading the checkpoint key {}: check `audit.checkpoint_key`", path.display()))?;
        Self::from_pem(name, &pem).with_context(|| format!("in {}", path.display()))
    }

    /// The key's name (`audit.origin`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key to hand out: `name+<key id hex>+base64(0x01 || public key)`.
    pub fn verifier_key(&self) -> String {
        let public = self.pair.public_key().as_ref();
        let mut typed = vec![ED25519_TYPE];
        typed.extend_from_slice(public);
        format!("{}+{}+{}", self.name, super::chain::hex(&key_id(&self.name, public)), B64.encode(typed))
    }

    /// The signed note of the chain at `link`, at `time` (RFC 3339).
    pub fn checkpoint(&self, link: &Link, time: &str) -> String {
        self.checkpoint_of(link, None, time)
    }

    /// [`Signer::checkpoint`] naming the chain it covers: `chain` is the hash of the chain's
    /// first record (`chain::first_hash`), an extension line `chain <hex>` (C2SP tlog-checkpoint
    /// lets extension lines follow the head hash). After a logrotate the old chain's checkpoints
    /// and the new one's share one `.checkpoints` file: `verify` checks each chain against its own.
    pub fn checkpoint_of(&self, link: &Link, chain: Option<&[u8; 32]>, time: &str) -> String {
        let chain = chain.map(|c| format!("chain {}\n", super::chain::hex(c))).unwrap_or_default();
        self.sign(&format!("{}\n{}\n{}\n{chain}time {time}\n", self.name, link.seq, B64.encode(link.head)))
    }

    /// `text` (lines, each ending in a newline) as a signed note by this key.
    pub fn sign(&self, text: &str) -> String {
        let public = self.pair.public_key().as_ref();
        let mut sig = key_id(&self.name, public).to_vec();
        sig.extend_from_slice(self.pair.sign(text.as_bytes()).as_ref());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(sig))
    }
}

/// A verifier key, parsed.
pub struct Verifier {
    name: String,
    id: [u8; 4],
    public: Vec<u8>,
}

/// A checkpoint whose signature verified.
#[derive(Debug)]
pub struct Checkpoint {
    pub size: u64,
    pub head: [u8; 32],
    pub time: String,
    /// The hash of the first record of the chain it covers; `None` in a checkpoint written
    /// before chains were named (it then applies to the one chain verified).
    pub chain: Option<[u8; 32]>,
}

impl Verifier {
    /// The key's name (`audit.origin`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn parse(key: &str) -> anyhow::Result<Self> {
        let bad = || {
            anyhow::anyhow!("the verifier key must read name+keyid+base64 (the `.pub` file `vigie audit keygen` wrote)")
        };
        let mut parts = key.trim().splitn(3, '+');
        let (name, id, typed) =
            (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        let typed = B64.decode(typed).map_err(|_| bad())?;
        let public = match typed.split_first() {
            Some((&ED25519_TYPE, public)) if public.len() == 32 => public.to_vec(),
            _ => bail!("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)"),
        };
        let expected = key_id(name, &public);
        if super::chain::hex(&expected) != id {
            bail!("the verifier key's id {id} does not match its name and public key");
        }
        Ok(Self { name: name.into(), id: expected, public })
    }

    /// Checks a signed note and reads its checkpoint; the error says what is wrong with it.
    pub fn open(&self, note: &str) -> Result<Checkpoint, String> {
        let text = self.open_text(note)?;
        let mut lines = text.lines();
        let (_origin, size, head) = (lines.next(), lines.next(), lines.next());
        let size = size.and_then(|s| s.parse().ok()).ok_or("no size on its second line")?;
        let head: [u8; 32] = head
            .and_then(|h| B64.decode(h).ok())
            .and_then(|h| h.try_into().ok())
            .ok_or("no head hash on its third line")?;
        let extensions: Vec<&str> = lines.collect();
        let time = extensions.iter().find_map(|l| l.strip_prefix("time ")).unwrap_or_default().to_string();
        let chain = match extensions.iter().find_map(|l| l.strip_prefix("chain ")) {
            Some(c) => Some(super::chain::unhex(c).ok_or("a chain line that is not a hash")?),
            None => None,
        };
        Ok(Checkpoint { size, head, time, chain })
    }

    /// Checks a signed note's signature by this key; its text.
    pub fn open_text<'n>(&self, note: &'n str) -> Result<&'n str, String> {
        let split = note.rfind("\n\n").ok_or("not a signed note (no blank line before the signatures)")?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        let mut known = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(format!("not a signature line: {line:?}"));
            };
            let (name, sig) = rest.rsplit_once(' ').ok_or("a signature line without a signature")?;
            let sig = B64.decode(sig).map_err(|_| "a signature that is not base64")?;
            if name != self.name || sig.len() < 4 || sig[..4] != self.id {
                continue; // signed-note: signatures of unknown keys are ignored.
            }
            known = true;
            UnparsedPublicKey::new(&ED25519, &self.public)
                .verify(text.as_bytes(), &sig[4..])
                .map_err(|_| "its signature does not verify: forged or altered".to_string())?;
        }
        if !known {
            return Err(format!("no signature by the key {} (signed by another key, or forged)", self.name));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_with_the_verifier_key_and_says_what_it_covers() {
        let s = signer();
        let link = Link { seq: 42, head: [7; 32] };
        let note = s.checkpoint(&link, "2026-12-05T10:00:00Z");
        assert!(note.contains("\n\n\u{2014} vigie.test/audit "), "{note}");
        let c = Verifier::parse(&s.verifier_key()).unwrap().open(&note).unwrap();
        assert_eq!((c.size, c.head, c.time.as_str(), c.chain), (42, [7; 32], "2026-12-05T10:00:00Z", None));
    }

    #[test]
    fn a_checkpoint_names_its_chain_on_a_signed_extension_line() {
        let s = signer();
        let note = s.checkpoint_of(&Link { seq: 3, head: [7; 32] }, Some(&[9; 32]), "2026-12-05T10:00:00Z");
        assert!(note.contains(&format!("\nchain {}\ntime ", "09".repeat(32))), "{note}");
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v.open(&note).unwrap().chain, Some([9; 32]));
        let moved = note.replace(&"09".repeat(32), &"08".repeat(32));
        assert!(v.open(&moved).unwrap_err().contains("does not verify"), "the chain id is signed");
    }

    #[test]
    fn an_altered_or_foreign_checkpoint_is_refused() {
        let (s, other) = (signer(), signer());
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        let note = s.checkpoint(&Link { seq: 42, head: [7; 32] }, "2026-12-05T10:00:00Z");
        let altered = note.replacen("\n42\n", "\n41\n", 1);
        assert!(v.open(&altered).unwrap_err().contains("does not verify"));
        let foreign = other.checkpoint(&Link { seq: 42, head: [7; 32] }, "2026-12-05T10:00:00Z");
        assert!(v.open(&foreign).unwrap_err().contains("no signature by the key"));
    }

    /// The example of Go's `golang.org/x/mod/sumdb/note` (the reference implementation of
    /// signed notes): its verifier key parses (so our key id is theirs) and its note verifies.
    #[test]
    fn the_reference_implementation_s_example_verifies() {
        let v = Verifier::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap();
        let text =
            "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let note = format!(
            "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        // Not a checkpoint (no size line), but the signature is checked before the text is read.
        assert_eq!(v.open(&note).unwrap_err(), "no size on its second line");
        assert!(v.open(&note.replace("problem,", "problem;")).unwrap_err().contains("does not verify"));
    }
}
