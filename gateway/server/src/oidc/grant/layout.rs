//! The binary layout of a refresh-token family's record (layout 2): what a node keeps per live
//! grant for as long as its refresh token lives, so every byte counts (issue 15: a single node
//! holds ~100,000 of them after a 10-s SSO load). Its tests hold those of every layout a
//! version may still find in a shared store (2, 1 and the object before).
//!
//! `[2,` then the fields in order: strings as a LEB128 length and their UTF-8 bytes, integers as
//! LEB128 (signed ones zigzagged), the assurance level as its index in
//! [`AssuranceLevel::ALL`], the MIE and the factors as their index in [`NAMES`] (or `0xff` and
//! the name), options as a 0/1 byte then the value. The identity id when it is a UUID, the
//! session id and the secret's SHA-256 when they are base64url, as their bytes (after a 1;
//! otherwise a 0 and the text). The prefix is chosen so that the previous version, which reads
//! `[1,` (positional JSON) and objects, refuses a record of this layout with its "upgrade every
//! replica" error instead of misreading it.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use vigie_core::AssuranceLevel;

use super::RefreshRecord;

/// What leads a record of this layout.
pub const PREFIX: &[u8] = b"[2,";

/// The serde names of the MIE and factors, written as their index here: append only (a record
/// lives 12 h and replicas of two versions share them), never reorder. A name not here is
/// written as text after [`NAME_AS_TEXT`].
const NAMES: [&str; 14] = [
    "cps",
    "cpe",
    "fido2",
    "ecps",
    "cps_via_psc",
    "password_totp",
    "sponsorship",
    "pwd",
    "otp",
    "sc",
    "pin",
    "hwk",
    "swk",
    "user",
];
const NAME_AS_TEXT: u8 = 0xff;

/// A value written as its bytes (a UUID, base64url), or as its text.
const AS_BYTES: u8 = 1;
const AS_TEXT: u8 = 0;

/// Writes `record` in layout 2 (the family id is the key's, not written).
pub fn encode(record: &RefreshRecord) -> Vec<u8> {
    let a = &record.authentication;
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(PREFIX);
    put_str(&mut out, &record.client_id);
    put_str(&mut out, &record.scopes.join(" "));
    put_uuid(&mut out, &a.identity_id);
    put_name(&mut out, &name_of(&a.mie));
    put_uint(&mut out, a.factors.len() as u64);
    for f in &a.factors {
        put_name(&mut out, &name_of(f));
    }
    put_uint(&mut out, zigzag(a.at));
    // Every level is in ALL (a test says so): the fallback is never written.
    out.push(AssuranceLevel::ALL.iter().position(|l| *l == a.level).unwrap_or(u8::MAX as usize) as u8);
    put_opt(&mut out, a.credential.as_deref());
    // Professional claims (PSC logins only) as their JSON: rare, and free to grow fields.
    let professional = a.professional.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default());
    put_opt(&mut out, professional.as_deref());
    put_b64(&mut out, &record.sid);
    put_uint(&mut out, zigzag(record.family_expires_at));
    put_uint(&mut out, u64::from(record.generation));
    put_b64(&mut out, &record.secret_hash);
    put_opt(&mut out, record.acr.as_deref());
    out
}

/// Reads a record of layout 2 (`bytes` starts with [`PREFIX`]) of family `family`; the error
/// says what is wrong with the bytes.
pub fn decode(family: &str, bytes: &[u8]) -> Result<RefreshRecord, String> {
    let mut r = Reader { bytes: bytes.strip_prefix(PREFIX).ok_or("not a layout-2 family record")? };
    let client_id = r.string()?;
    let scopes: Vec<String> = r.string()?.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    let identity_id = r.uuid()?;
    let mie = r.name()?;
    let count = r.uint()?;
    // Each factor takes a byte at least: a count beyond the bytes left is a damaged record.
    if count > r.bytes.len() as u64 {
        return Err("the record is cut short".into());
    }
    let factors = (0..count).map(|_| r.name()).collect::<Result<Vec<_>, _>>()?;
    let at = unzigzag(r.uint()?);
    let level = *AssuranceLevel::ALL.get(usize::from(r.byte()?)).ok_or("unknown assurance level")?;
    let credential = r.option()?;
    let professional = r.option()?;
    let sid = r.b64()?;
    let family_expires_at = unzigzag(r.uint()?);
    let generation = u32::try_from(r.uint()?).map_err(|_| "generation out of range")?;
    let secret_hash = r.b64()?;
    let acr = r.option()?;
    if !r.bytes.is_empty() {
        return Err("bytes after the record".into());
    }
    // Through serde, as any stored authentication (and the object layout) is read: only
    // verifiers build an authentication.
    let mut authentication = serde_json::json!({
        "identity_id": identity_id, "mie": mie, "factors": factors, "at": at, "level": level,
    });
    if let Some(credential) = credential {
        authentication["credential"] = credential.into();
    }
    if let Some(professional) = professional {
        authentication["professional"] = serde_json::from_str(&professional).map_err(|e| e.to_string())?;
    }
    let record = serde_json::json!({
        "client_id": client_id, "scopes": scopes, "authentication": authentication, "sid": sid,
        "grant_id": family, "family_expires_at": family_expires_at, "generation": generation,
        "secret_hash": secret_hash, "acr": acr,
    });
    serde_json::from_value(record).map_err(|e| e.to_string())
}

/// The serde name of a unit variant (`"cps"`, `"sc"`): stable across versions, as the JSON
/// layouts already rely on it.
fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `text` as its bytes when it is canonical, non-empty base64url (random ids, hashes), else as
/// itself.
fn put_b64(out: &mut Vec<u8>, text: &str) {
    match B64.decode(text).ok().filter(|b| !b.is_empty() && B64.encode(b) == text) {
        Some(bytes) => {
            out.push(AS_BYTES);
            put_uint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
        None => {
            out.push(AS_TEXT);
            put_str(out, text);
        }
    }
}

/// `id` as its 16 bytes when it is a UUID as the directory writes them (lowercase, hyphens at
/// 8, 13, 18, 23), else as itself.
fn put_uuid(out: &mut Vec<u8>, id: &str) {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let canonical = id.len() == 36 && hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match u128::from_str_radix(&hex, 16).ok().filter(|n| canonical && uuid_text(*n) == id) {
        Some(n) => {
            out.push(AS_BYTES);
            out.extend_from_slice(&n.to_be_bytes());
        }
        None => {
            out.push(AS_TEXT);
            put_str(out, id);
        }
    }
}

fn uuid_text(n: u128) -> String {
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    match NAMES.iter().position(|n| *n == name) {
        Some(i) => out.push(i as u8),
        None => {
            out.push(NAME_AS_TEXT);
            put_str(out, name);
        }
    }
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_uint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// The bytes not read yet.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("the record is cut short".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// A LEB128 integer of at most 64 bits, in its shortest form.
    fn uint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("an integer over 64 bits".into());
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err("an integer not in its shortest form".into());
                }
                return Ok(n);
            }
        }
        Err("an integer over 64 bits".into())
    }

    fn string(&mut self) -> Result<String, String> {
        let len = usize::try_from(self.uint()?).map_err(|_| "a string too long")?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string not in UTF-8".into())
    }

    fn b64(&mut self) -> Result<String, String> {
        match self.byte()? {
            AS_BYTES => {
                let len = usize::try_from(self.uint()?).map_err(|_| "a value too long")?;
                let bytes = self.take(len)?;
                if bytes.is_empty() {
                    return Err("an empty value written as bytes".into());
                }
                Ok(B64.encode(bytes))
            }
            AS_TEXT => self.string(),
            _ => Err("a value neither bytes nor text".into()),
        }
    }

    fn uuid(&mut self) -> Result<String, String> {
        match self.byte()? {
            AS_BYTES => {
                let mut n = [0; 16];
                n.copy_from_slice(self.take(16)?);
                Ok(uuid_text(u128::from_be_bytes(n)))
            }
            AS_TEXT => self.string(),
            _ => Err("an id neither bytes nor text".into()),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.byte()? {
            NAME_AS_TEXT => self.string(),
            i => NAMES.get(usize::from(i)).map(|n| (*n).to_owned()).ok_or_else(|| "an unknown name index".into()),
        }
    }

    fn option(&mut self) -> Result<Option<String>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            _ => Err("an option neither absent nor present".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use vigie_core::{Factor, Mie, ProfessionalClaims};

    use super::*;
    use crate::oidc::grant::family_of_code;
    use crate::secrets::random_token;
    use crate::session::keys;

    // The layouts as records: the versions before (1, and the object), and this one's.

    /// A family record exactly as the previous version wrote it (`serde_json` of the struct).
    const PREVIOUS_LAYOUT: &str = r#"{"client_id":"demo-app","scopes":["openid","profile"],"authentication":{"identity_id":"0193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b","mie":"cps","factors":["sc","pin"],"at":1764931234,"level":"two_factor_phishing_resistant","credential":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},"sid":"Zk9vY2FyZC1zaWQtMDAwMQ","grant_id":"R3JhbnQtZmFtaWx5LTAwMQ","family_expires_at":1764960034,"generation":3,"secret_hash":"K7gNU3sdo-OL0wNhqoVWhr3g6s1xYv72ol_pe_Unols","acr":"urn:vigie:loa:2fa"}"#;

    fn previous_record() -> RefreshRecord {
        serde_json::from_str(PREVIOUS_LAYOUT).unwrap()
    }

    /// Found by the `family_record` fuzz target: the object layout names its family, the newer
    /// ones take it from the key, so a record under another family's key changed family when
    /// rewritten.
    #[test]
    fn an_object_record_naming_another_family_than_its_key_is_refused() {
        let key = keys::refresh_family("f");
        let err = RefreshRecord::decode(&key, "f", PREVIOUS_LAYOUT.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("another family than its key"), "{err}");
    }

    #[test]
    fn a_family_written_by_the_previous_version_is_still_read() {
        let key = keys::refresh_family("R3JhbnQtZmFtaWx5LTAwMQ");
        let r = RefreshRecord::decode(&key, "R3JhbnQtZmFtaWx5LTAwMQ", PREVIOUS_LAYOUT.as_bytes()).unwrap();
        assert_eq!(r.client_id, "demo-app");
        assert_eq!(r.scopes, ["openid", "profile"]);
        assert_eq!(r.authentication.identity_id, "0193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b");
        assert_eq!(r.authentication.mie, vigie_core::Mie::Cps);
        assert_eq!(
            r.authentication.credential.as_deref(),
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        );
        assert_eq!((r.sid.as_str(), r.grant_id.as_str()), ("Zk9vY2FyZC1zaWQtMDAwMQ", "R3JhbnQtZmFtaWx5LTAwMQ"));
        assert_eq!((r.family_expires_at, r.generation), (1764960034, 3));
        assert_eq!(r.secret_hash, "K7gNU3sdo-OL0wNhqoVWhr3g6s1xYv72ol_pe_Unols");
        assert_eq!(r.acr.as_deref(), Some("urn:vigie:loa:2fa"));
    }

    #[test]
    fn a_compact_family_reads_back_as_written() {
        let mut written = previous_record();
        for acr in [None, Some("urn:vigie:loa:2fa".to_owned())] {
            written.acr = acr;
            let bytes = written.encode();
            assert_eq!(bytes.first(), Some(&b'['));
            let read = RefreshRecord::decode("rt:x", &written.grant_id, &bytes).unwrap();
            assert_eq!(serde_json::to_value(&read).unwrap(), serde_json::to_value(&written).unwrap());
        }
    }

    #[test]
    fn during_an_upgrade_families_are_written_as_the_previous_version_reads_them() {
        let record = previous_record();
        let bytes = record.stored(false);
        let previous: RefreshRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json::to_value(&previous).unwrap(), serde_json::to_value(&record).unwrap());
        assert_eq!(record.stored(true), record.encode());
    }

    #[test]
    fn a_family_of_an_unknown_layout_is_refused_with_what_to_do() {
        let err = RefreshRecord::decode("rt:x", "x", br#"[9,"a"]"#).unwrap_err().to_string();
        assert!(err.contains("upgrade every replica"), "{err}");
        assert!(RefreshRecord::decode("rt:x", "x", b"[1,").is_err());
    }

    /// What one redeemed code leaves in the store for as long as its refresh token lives: the
    /// family's record, which is also the mark of the used code (the code itself is taken). Key
    /// and value stay within 512 bytes for every local MIE, a FIDO2 credential id of 64 bytes
    /// included.
    #[test]
    fn a_live_grant_keeps_at_most_512_bytes() {
        let code = random_token(32);
        let mut record = previous_record();
        record.grant_id = family_of_code(&code);
        record.sid = random_token(16);
        record.scopes = ["openid", "profile", "hospital", "offline_access"].map(String::from).to_vec();
        let fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned();
        for credential in [None, Some(fingerprint), Some(random_token(64))] {
            record.authentication.credential = credential;
            let bytes = keys::refresh_family(&record.grant_id).len() + record.encode().len();
            assert!(bytes <= 512, "{bytes} bytes per live grant");
        }
        // The previous version kept, per grant, the record as an object (every field name, the
        // family id again) and a second entry marking the used code.
        let previous = keys::refresh_family(&record.grant_id).len()
            + serde_json::to_vec(&record).unwrap().len()
            + keys::used_authorization_code(&code).len()
            + record.grant_id.len();
        let now = keys::refresh_family(&record.grant_id).len() + record.encode().len();
        assert!(now * 3 < previous * 2, "{now} bytes now, {previous} before");
    }

    /// A family record exactly as the version before this one wrote it (layout 1, a positional
    /// JSON array): still read, as Redis holds such records through an upgrade.
    const LAYOUT_1: &str = r#"[1,"demo-app","openid profile",["0193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b","cps",["sc","pin"],1764931234,"two_factor_phishing_resistant","9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",null],"Zk9vY2FyZC1zaWQtMDAwMQ",1764960034,3,"K7gNU3sdo-OL0wNhqoVWhr3g6s1xYv72ol_pe_Unols","urn:vigie:loa:2fa"]"#;

    #[test]
    fn a_family_of_layout_1_is_still_read_and_rewritten_smaller() {
        let family = "R3JhbnQtZmFtaWx5LTAwMQ";
        let r = RefreshRecord::decode("rt:x", family, LAYOUT_1.as_bytes()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::to_value(previous_record()).unwrap());
        let binary = r.encode();
        assert!(binary.starts_with(b"[2,"), "{binary:?}");
        assert!(binary.len() * 3 < LAYOUT_1.len() * 2, "{} bytes, {} in layout 1", binary.len(), LAYOUT_1.len());
        let again = RefreshRecord::decode("rt:x", family, &binary).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&r).unwrap());
    }

    /// The same record in layout 2, as this version writes it: pinned, since replicas of the next
    /// version must read what this one wrote (the order of the names, the field order).
    const LAYOUT_2_HEX: &str = "\
        5b322c0864656d6f2d6170700e6f70656e69642070726f66696c65010193a5f27c1e7d3a9b2e5f4c3d2e1a0b0002090a\
        c4da95930d01014039663836643038313838346337643635396132666561613063353561643031356133626634663162\
        326230623832326364313564366331356230663030613038000110664f6f636172642d7369642d30303031c49c99930d\
        0301202bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b011175726e3a76696769653a6c\
        6f613a326661";

    #[test]
    fn a_family_of_layout_2_is_written_and_read_as_pinned() {
        let hex = |s: &str| {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>()
        };
        let bytes = hex(LAYOUT_2_HEX);
        let r = RefreshRecord::decode("rt:x", "R3JhbnQtZmFtaWx5LTAwMQ", &bytes).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::to_value(previous_record()).unwrap());
        assert_eq!(previous_record().encode(), bytes);
    }

    #[test]
    fn a_damaged_binary_family_is_refused_naming_its_key() {
        let bytes = previous_record().encode();
        let err = RefreshRecord::decode("rt:x", "x", &bytes[..bytes.len() - 5]).unwrap_err().to_string();
        assert!(err.contains("rt:x") && err.contains("cut short"), "{err}");
    }

    /// The previous version's record with these fields changed.
    fn record(acr: Option<String>, credential: Option<String>, secret_hash: String) -> RefreshRecord {
        let mut r = previous_record();
        (r.acr, r.authentication.credential, r.secret_hash) = (acr, credential, secret_hash);
        r
    }

    fn same(a: &RefreshRecord, b: &RefreshRecord) -> bool {
        serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
    }

    #[test]
    fn every_name_is_a_mie_or_a_factor() {
        for name in NAMES {
            let v = serde_json::Value::String(name.into());
            let mie = serde_json::from_value::<Mie>(v.clone()).is_ok();
            let factor = serde_json::from_value::<Factor>(v).is_ok();
            assert!(mie ^ factor, "{name}");
        }
    }

    #[test]
    fn ids_that_are_not_canonical_uuids_are_kept_as_text() {
        for id in [
            "0193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b",
            "0193A5F2-7C1E-7D3A-9B2E-5F4C3D2E1A0B",
            "0193a5f27c1e7d3a9b2e5f4c3d2e1a0b",
            "+193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b",
            "0193a5f2-7c1e-7d3a-9b2e5-f4c3d2e1a0b",
            "",
            "é",
        ] {
            let mut out = Vec::new();
            put_uuid(&mut out, id);
            assert_eq!(Reader { bytes: &out }.uuid().unwrap(), id);
            assert_eq!(out[0] == AS_BYTES, id == "0193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b", "{id}");
        }
        for text in ["", "a", "ab", "abc=", "Zk9vY2FyZC1zaWQtMDAwMQ", "Zk9vY2FyZC1zaWQtMDAwMR", "a+b/"] {
            let mut out = Vec::new();
            put_b64(&mut out, text);
            assert_eq!(Reader { bytes: &out }.b64().unwrap(), text);
        }
    }

    #[test]
    fn every_level_has_an_index() {
        for level in AssuranceLevel::ALL {
            assert!(AssuranceLevel::ALL.iter().position(|l| *l == level).is_some_and(|i| i < u8::MAX as usize));
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_is_under_half_its_json() {
        let hash = crate::secrets::sha256_b64(b"secret");
        for r in [
            record(None, None, hash.clone()),
            record(Some("urn:vigie:loa:2fa".into()), Some("9f86d081884c7d659a2f".into()), String::new()),
            record(None, None, "not base64 ☃".into()),
        ] {
            let bytes = encode(&r);
            let back = decode(&r.grant_id, &bytes).unwrap();
            assert!(same(&r, &back), "{r:?} read back as {back:?}");
        }
        let r = record(None, None, hash);
        let (binary, json) = (encode(&r).len(), serde_json::to_vec(&r).unwrap().len());
        assert!(binary * 2 < json, "{binary} bytes, {json} as a JSON object");
    }

    #[test]
    fn professional_claims_read_back() {
        let mut r = record(None, None, crate::secrets::sha256_b64(b"s"));
        let claims = ProfessionalClaims {
            source: "https://auth.esante.gouv.fr".into(),
            idnat: "810002909371".into(),
            profession: Some("10".into()),
            roles: vec!["10^1.2.250.1.213.1.1.5.5".into()],
            ..Default::default()
        };
        r.authentication.professional = Some(claims);
        assert!(same(&r, &decode(&r.grant_id, &encode(&r)).unwrap()));
    }

    #[test]
    fn damaged_records_are_refused_with_the_reason() {
        let bytes = encode(&record(None, None, crate::secrets::sha256_b64(b"s")));
        for cut in PREFIX.len()..bytes.len() {
            assert!(decode("f", &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode("f", &longer).unwrap_err(), "bytes after the record");
        assert!(decode("f", b"[1,\"demo-app\"]").is_err());
        // An overlong integer: 0 written on two bytes.
        let mut overlong = PREFIX.to_vec();
        overlong.extend_from_slice(&[0x80, 0x00]);
        assert_eq!(decode("f", &overlong).unwrap_err(), "an integer not in its shortest form");
        let mut huge = PREFIX.to_vec();
        huge.extend_from_slice(&[0xff; 10]);
        assert_eq!(decode("f", &huge).unwrap_err(), "an integer over 64 bits");
    }

    #[test]
    fn integers_round_trip_at_their_edges() {
        for n in [0, 1, -1, i64::MIN, i64::MAX, 1764931234] {
            let mut out = Vec::new();
            put_uint(&mut out, zigzag(n));
            assert_eq!(unzigzag(Reader { bytes: &out }.uint().unwrap()), n);
        }
    }

    proptest! {
        #[test]
        fn any_record_reads_back(
            client in "\\PC{0,40}",
            scopes in proptest::collection::vec("[a-z_]{1,12}", 0..5),
            identity in "\\PC{0,40}",
            credential in proptest::option::of("\\PC{0,80}"),
            acr in proptest::option::of("\\PC{0,30}"),
            sid in "\\PC{0,30}",
            at in any::<i64>(),
            expires in any::<i64>(),
            generation in any::<u32>(),
            secret in proptest::option::of(any::<[u8; 8]>()),
        ) {
            let hash = secret.map(|s| crate::secrets::sha256_b64(&s)).unwrap_or_default();
            let mut r = record(acr, credential, hash);
            (r.client_id, r.scopes, r.sid, r.family_expires_at, r.generation) = (client, scopes, sid, expires, generation);
            r.authentication.identity_id = identity;
            r.authentication.at = at;
            let back = decode(&r.grant_id, &encode(&r)).unwrap();
            prop_assert!(same(&r, &back));
        }

        #[test]
        fn any_bytes_are_read_or_refused_without_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = PREFIX.to_vec();
            bytes.extend_from_slice(&tail);
            if let Ok(r) = decode("f", &bytes) {
                // What was accepted is a record like any other: written again, it reads back.
                prop_assert!(same(&r, &decode("f", &encode(&r)).unwrap()));
            }
        }
    }
}
