//! The DMP handover archive: a POSIX ustar file (read by any `tar`) holding the traces, a
//! `sha256sum`-format manifest, the manifest's digest signed with the checkpoint key
//! (`SHA256SUMS.sig`, a C2SP signed note as the checkpoints) and the instructions to check it;
//! `vigie audit verify-handover` checks all of it (docs/audit-export.md, "The DMP handover").

/// Lowercase hex SHA-256, as `sha256sum` prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed note's second line: what the note is about.
const NOTE_KIND: &str = "vigie audit handover";

/// The text of the manifest's signed note: the key's name (`audit.origin`), what it is, the digest.
pub fn manifest_note_text(origin: &str, manifest_digest: &str) -> String {
    format!("{origin}\n{NOTE_KIND}\nSHA256SUMS {manifest_digest}\n")
}

/// What the recipient reads first, in French and English.
pub fn readme(manifest_digest: &str) -> String {
    format!(
        "Vérifier cette archive / Checking this archive\n\
         \n\
         Avec Vigie / with Vigie (la clé de vérification / the verifier key: name+keyid+base64):\n\
         \x20  vigie audit verify-handover ARCHIVE.tar --key VERIFIER_KEY\n\
         \x20  vérifie la signature de SHA256SUMS.sig, le manifeste et chaque fichier /\n\
         \x20  checks the signature of SHA256SUMS.sig, the manifest and each file.\n\
         Sans Vigie / without Vigie:\n\
         1. tar -xf ARCHIVE.tar\n\
         2. sha256sum SHA256SUMS    doit afficher / must print:\n   {manifest_digest}\n\
         \x20  (la même valeur que celle transmise à part avec l'archive / the value sent apart from the archive)\n\
         3. sha256sum -c SHA256SUMS  doit répondre OK pour chaque fichier / must say OK for each file\n\
         4. SHA256SUMS.sig : une note signée C2SP (signed-note) Ed25519 sur ce même condensat /\n\
         \x20  a C2SP signed note (Ed25519) over that same digest: https://github.com/C2SP/C2SP/blob/main/signed-note.md\n\
         \n\
         REQUEST.txt          la demande : professionnels, période / the request: professionals, period\n\
         traces.jsonl         les traces telles qu'écrites / the traces as written (JSON lines)\n\
         traces.fhir.ndjson   les mêmes en FHIR R4 AuditEvent / the same as FHIR R4 AuditEvent (NDJSON)\n\
         \n\
         Le patient n'y figure que par le HMAC-SHA256 de son INS sous la cle de l'etablissement\n\
         (vigie audit ins-hash) / a patient appears only as the HMAC-SHA256 of their INS under the\n\
         establishment's key (vigie audit ins-hash).\n"
    )
}

const BLOCK: usize = 512;

/// Writes `value` as a NUL-terminated octal field of `width` bytes.
fn octal(field: &mut [u8], value: u64) -> anyhow::Result<()> {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    anyhow::ensure!(text.len() == field.len(), "a value too large for a tar header field");
    field.copy_from_slice(text.as_bytes());
    Ok(())
}

/// A ustar archive (POSIX.1-1988, `pax` interchange format) of regular files, mode 0444.
pub fn tar(entries: &[(&str, &[u8])], mtime: i64) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, data) in entries {
        anyhow::ensure!(name.len() < 100 && name.is_ascii(), "tar entry name {name:?}: ASCII, under 100 bytes");
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o444)?;
        octal(&mut h[108..116], 0)?;
        octal(&mut h[116..124], 0)?;
        octal(&mut h[124..136], data.len() as u64)?;
        octal(&mut h[136..148], u64::try_from(mtime).unwrap_or(0))?;
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..270].copy_from_slice(b"vigie");
        h[297..302].copy_from_slice(b"vigie");
        // The checksum is computed with its own field as spaces (POSIX ustar).
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(text.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

/// Files by name, with their content.
pub type Files = Vec<(String, Vec<u8>)>;

/// The regular files of a ustar archive, by name (what [`tar`] writes; any POSIX `tar`'s too).
pub fn untar(archive: &[u8]) -> Result<Files, String> {
    let mut files = Vec::new();
    let mut at = 0;
    while at + BLOCK <= archive.len() {
        let h = &archive[at..at + BLOCK];
        if h.iter().all(|&b| b == 0) {
            return Ok(files);
        }
        let field = |r: std::ops::Range<usize>| {
            let raw = &h[r];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).trim().to_string()
        };
        let stored =
            u64::from_str_radix(&field(148..156), 8).map_err(|_| format!("block {}: not a tar header", at / BLOCK))?;
        let sum: u64 =
            h.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u64::from(*b) }).sum();
        if stored != sum {
            return Err(format!("block {}: a tar header whose checksum is wrong (altered)", at / BLOCK));
        }
        let size =
            usize::try_from(u64::from_str_radix(&field(124..136), 8).map_err(|_| "a tar size that is not octal")?)
                .map_err(|_| "a tar entry too large")?;
        let start = at + BLOCK;
        let data = archive
            .get(start..start.checked_add(size).ok_or("a tar entry too large")?)
            .ok_or("the archive is cut short")?;
        if matches!(h[156], b'0' | 0) {
            files.push((field(0..100), data.to_vec()));
        }
        at = start + size.div_ceil(BLOCK) * BLOCK;
    }
    Err("the archive is cut short (no end blocks)".into())
}

/// What `vigie audit verify-handover` found: the files the manifest vouches for.
pub fn verify(archive: &[u8], key: &crate::audit::note::Verifier) -> Result<Vec<String>, String> {
    let files = untar(archive)?;
    let get = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, d)| d.as_slice());
    let note = get("SHA256SUMS.sig").ok_or("no SHA256SUMS.sig: the archive is not signed")?;
    let note = std::str::from_utf8(note).map_err(|_| "SHA256SUMS.sig is not text")?;
    let text = key.open_text(note).map_err(|e| format!("SHA256SUMS.sig: {e}"))?;
    let mut lines = text.lines().skip(1);
    if lines.next() != Some(NOTE_KIND) {
        return Err(format!("SHA256SUMS.sig is not the note of a handover (its second line is not {NOTE_KIND:?})"));
    }
    let signed = lines.next().and_then(|l| l.strip_prefix("SHA256SUMS ")).ok_or("SHA256SUMS.sig names no digest")?;
    let manifest = get("SHA256SUMS").ok_or("no SHA256SUMS in the archive")?;
    if sha256_hex(manifest) != signed {
        return Err("SHA256SUMS differs from the signed one: the manifest was altered".into());
    }
    let manifest = std::str::from_utf8(manifest).map_err(|_| "SHA256SUMS is not text")?;
    let mut vouched = Vec::new();
    for line in manifest.lines() {
        let (digest, name) =
            line.split_once("  ").ok_or_else(|| format!("SHA256SUMS: not a sha256sum line: {line:?}"))?;
        let data = get(name).ok_or_else(|| format!("{name}: in the manifest, missing from the archive"))?;
        if sha256_hex(data) != digest {
            return Err(format!("{name}: its SHA-256 differs from the manifest's: the file was altered"));
        }
        vouched.push(name.to_owned());
    }
    let apart = ["SHA256SUMS", "SHA256SUMS.sig", "LISEZMOI.txt"];
    if let Some((extra, _)) = files.iter().find(|(n, _)| !apart.contains(&n.as_str()) && !vouched.contains(n)) {
        return Err(format!("{extra}: in the archive but not in the manifest: added after signing"));
    }
    Ok(vouched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256sums() {
        // FIPS 180-2 appendix B.1.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn entries_are_block_aligned_with_a_valid_checksum() {
        let t = tar(&[("a.txt", b"hello"), ("b.txt", b"")], 1_700_000_000).unwrap();
        assert_eq!(t.len(), 5 * BLOCK, "two headers, one data block, two end blocks");
        let h = &t[..BLOCK];
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let sum: u64 =
            h.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u64::from(*b) }).sum();
        assert_eq!(stored, sum);
        assert_eq!(&t[BLOCK..BLOCK + 5], b"hello");
    }

    fn signed_archive(signer: &crate::audit::note::Signer) -> Vec<u8> {
        let traces = b"{\"kind\":\"login\"}\n".as_slice();
        let manifest = format!("{}  traces.jsonl\n", sha256_hex(traces));
        let note = signer.sign(&manifest_note_text(signer.name(), &sha256_hex(manifest.as_bytes())));
        tar(&[("traces.jsonl", traces), ("SHA256SUMS", manifest.as_bytes()), ("SHA256SUMS.sig", note.as_bytes())], 0)
            .unwrap()
    }

    #[test]
    fn a_signed_archive_verifies_and_each_alteration_is_named() {
        use crate::audit::note::{Signer, Verifier};
        let signer = Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap();
        let key = Verifier::parse(&signer.verifier_key()).unwrap();
        let archive = signed_archive(&signer);
        assert_eq!(verify(&archive, &key).unwrap(), vec!["traces.jsonl".to_string()]);
        let files = untar(&archive).unwrap();
        let rebuilt = |f: &dyn Fn(&mut Files)| {
            let mut files = files.clone();
            f(&mut files);
            let entries: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
            verify(&tar(&entries, 0).unwrap(), &key).unwrap_err()
        };
        assert!(rebuilt(&|f| f[0].1[2] = b'K').contains("traces.jsonl: its SHA-256 differs"));
        assert!(rebuilt(&|f| f[1].1.push(b'\n')).contains("the manifest was altered"));
        assert!(rebuilt(&|f| f.push(("extra.txt".into(), b"x".to_vec()))).contains("added after signing"));
        assert!(rebuilt(&|f| drop(f.remove(2))).contains("not signed"));
        let mut header = archive.clone();
        header[5] ^= 1;
        assert!(verify(&header, &key).unwrap_err().contains("checksum is wrong"));
        assert!(verify(&archive[..archive.len() - 2 * BLOCK - 1], &key).is_err(), "cut short");
    }
}
