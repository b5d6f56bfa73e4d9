//! The DMP handover archive: a POSIX ustar file (read by any `tar`) holding the traces, a
//! `sha256sum`-format manifest and the instructions to check it. The manifest's own digest is
//! given apart from the archive (the covering letter): whoever holds it can tell the archive was
//! not changed on the way. Not signed yet (see docs/audit-export.md).

/// Lowercase hex SHA-256, as `sha256sum` prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the recipient reads first, in French and English.
pub fn readme(manifest_digest: &str) -> String {
    format!(
        "Vérifier cette archive / Checking this archive\n\
         \n\
         1. tar -xf ARCHIVE.tar\n\
         2. sha256sum SHA256SUMS    doit afficher / must print:\n   {manifest_digest}\n\
         \x20  (la même valeur que celle transmise à part avec l'archive / the value sent apart from the archive)\n\
         3. sha256sum -c SHA256SUMS  doit répondre OK pour chaque fichier / must say OK for each file\n\
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
}
