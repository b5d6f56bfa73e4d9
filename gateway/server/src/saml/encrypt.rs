//! Encrypted assertions (saml-core §2.3.4 `EncryptedAssertion`, §6.2): the already signed
//! `<Assertion>` becomes an xmlenc `EncryptedData` (xmlenc-core §3.4) under a fresh content key,
//! the key sent as an `EncryptedKey` (§3.5) under the SP's RSA encryption certificate with
//! RSA-OAEP. We write this XML from our own values (never parse it), with aws-lc for the crypto.
use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
use aws_lc_rs::cipher::{AES_128, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// xmlenc-core1 §5.2.4. The default: an authenticated cipher, so a tampered ciphertext is
/// refused as such instead of being decrypted — CBC lets an attacker who can submit altered
/// ciphertexts learn the plaintext from the SP's padding errors (Jager and Somorovsky, "How
/// to break XML Encryption", 2011).
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
/// xmlenc-core §5.2.2: only for an SP whose metadata lists it and not GCM (an older SP).
pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
/// xmlenc-core §5.4.2: RSA-OAEP with MGF1 and SHA-1, the key transport every SAML SP reads
/// (OAEP's security does not rest on SHA-1's collision resistance).
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

/// How one SP's assertions are encrypted.
pub struct Encryption {
    key: OaepPublicEncryptingKey,
    /// The SP's metadata asks for AES-128-CBC and does not offer GCM.
    cbc: bool,
}

impl Encryption {
    /// For the RSA key of this certificate (DER), with the block ciphers the SP's metadata
    /// lists under its encryption `KeyDescriptor` (none listed: GCM).
    pub fn new(cert_der: &[u8], methods: &[String]) -> Result<Encryption, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|_| "the encryption certificate is not an X.509 certificate".to_owned())?;
        let not_rsa = "the encryption certificate's key is not an RSA key (2048 bits or more) for RSA-OAEP";
        let key = PublicEncryptingKey::from_der(cert.public_key().raw).map_err(|_| not_rsa.to_owned())?;
        let key = OaepPublicEncryptingKey::new(key).map_err(|_| not_rsa.to_owned())?;
        let cbc = methods.iter().any(|m| m == AES128_CBC) && !methods.iter().any(|m| m == AES256_GCM);
        if !methods.is_empty() && !cbc && !methods.iter().any(|m| m == AES256_GCM || m == RSA_OAEP_MGF1P) {
            return Err(format!(
                "the SP's metadata lists only encryption methods Vigie does not use ({methods:?}): it encrypts with \
                 {AES256_GCM} (or {AES128_CBC}) and {RSA_OAEP_MGF1P}"
            ));
        }
        Ok(Encryption { key, cbc })
    }

    /// The block cipher's algorithm URI.
    pub fn method(&self) -> &'static str {
        if self.cbc { AES128_CBC } else { AES256_GCM }
    }

    /// `<saml2:EncryptedAssertion>` holding `assertion` (a signed `<saml2:Assertion>` element
    /// that declares its own namespaces).
    pub fn assertion(&self, assertion: &str) -> Result<String, String> {
        let failed = |_| "the assertion could not be encrypted".to_owned();
        let mut cek = vec![0u8; if self.cbc { 16 } else { 32 }];
        aws_lc_rs::rand::fill(&mut cek).map_err(failed)?;
        let mut data = assertion.as_bytes().to_vec();
        let cipher = if self.cbc {
            // xmlenc-core §5.2: the IV, then the ciphertext; PKCS#7 padding meets §5.2's rule.
            let key = PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_128, &cek).map_err(failed)?)
                .map_err(failed)?;
            let context = key.encrypt(&mut data).map_err(failed)?;
            let iv: &[u8] = (&context).try_into().map_err(failed)?;
            [iv, &data].concat()
        } else {
            // xmlenc-core1 §5.2.4: the 96-bit IV, the ciphertext, then the 128-bit tag.
            let key = RandomizedNonceKey::new(&AES_256_GCM, &cek).map_err(failed)?;
            let nonce = key.seal_in_place_append_tag(Aad::empty(), &mut data).map_err(failed)?;
            [nonce.as_ref().as_slice(), &data].concat()
        };
        let mut wrapped = vec![0u8; self.key.ciphertext_size()];
        let wrapped = self.key.encrypt(&OAEP_SHA1_MGF1SHA1, &cek, &mut wrapped, None).map_err(failed)?;
        Ok(format!(
            concat!(
                r#"<saml2:EncryptedAssertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion">"#,
                r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
                r#"<xenc:EncryptionMethod Algorithm="{method}"/>"#,
                r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
                r#"<xenc:EncryptionMethod Algorithm="{transport}"><ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/></xenc:EncryptionMethod>"#,
                r#"<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData>"#,
                r#"</xenc:EncryptedKey></ds:KeyInfo>"#,
                r#"<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData>"#,
                r#"</xenc:EncryptedData></saml2:EncryptedAssertion>"#
            ),
            method = self.method(),
            transport = RSA_OAEP_MGF1P,
            key = STANDARD.encode(wrapped),
            data = STANDARD.encode(cipher),
        ))
    }
}

/// `response` (a signed Response) with its one Assertion replaced by `encrypted(assertion)`.
/// The Assertion's signature is exclusive-c14n over the element alone, so it still verifies
/// once the SP has decrypted it back into place.
pub fn replace_assertion(response: &str, encrypted: impl Fn(&str) -> Result<String, String>) -> Result<String, String> {
    const OPEN: &str = "<saml2:Assertion";
    const CLOSE: &str = "</saml2:Assertion>";
    let (Some(start), Some(end)) = (response.find(OPEN), response.rfind(CLOSE)) else {
        return Err("the signed Response has no Assertion to encrypt".into());
    };
    let end = end + CLOSE.len();
    Ok(format!("{}{}{}", &response[..start], encrypted(&response[start..end])?, &response[end..]))
}
