//! The bytes of a `SAMLRequest` before any XML parser sees them: base64 of raw DEFLATE for
//! HTTP-Redirect (saml-bindings §3.4.4.1), base64 for HTTP-POST (§3.5.4), inflated up to
//! [`MAX_REQUEST`] and refused beyond (a DEFLATE bomb), UTF-8. No samael here, so that the fuzz
//! crate, built without the `saml` feature, reaches it (fuzz/fuzz_targets/saml_request.rs).
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// An AuthnRequest, inflated, larger than this is refused: real ones are a few KiB.
pub const MAX_REQUEST: u64 = 64 * 1024;

/// Why a `SAMLRequest` parameter was refused, in words for the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotBase64,
    NotDeflate,
    TooLarge,
    NotUtf8,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::NotBase64 => "SAMLRequest is not base64",
            Refused::NotDeflate => "SAMLRequest is not raw DEFLATE",
            Refused::TooLarge => "SAMLRequest inflates to more than 64 KiB",
            Refused::NotUtf8 => "SAMLRequest is not UTF-8 XML",
        }
    }
}

/// HTTP-Redirect: base64, then raw DEFLATE (RFC 1951, no zlib header).
pub fn redirect_request(encoded: &str) -> Result<String, Refused> {
    let raw = STANDARD.decode(encoded.as_bytes()).map_err(|_| Refused::NotBase64)?;
    let mut out = Vec::new();
    // One byte past the cap tells "exactly the cap" from "more": a bomb is refused, never cut.
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(MAX_REQUEST + 1)
        .read_to_end(&mut out)
        .map_err(|_| Refused::NotDeflate)?;
    if out.len() as u64 > MAX_REQUEST {
        return Err(Refused::TooLarge);
    }
    String::from_utf8(out).map_err(|_| Refused::NotUtf8)
}

/// HTTP-POST: base64 (line breaks allowed, as form encoders wrap it), no compression.
pub fn post_request(encoded: &str) -> Result<String, Refused> {
    let compact: String = encoded.split_whitespace().collect();
    // Not even decoded when its base64 is already too long.
    if compact.len() as u64 > MAX_REQUEST.div_ceil(3) * 4 {
        return Err(Refused::TooLarge);
    }
    let raw = STANDARD.decode(compact).map_err(|_| Refused::NotBase64)?;
    if raw.len() as u64 > MAX_REQUEST {
        return Err(Refused::TooLarge);
    }
    String::from_utf8(raw).map_err(|_| Refused::NotUtf8)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    fn deflate(bytes: &[u8]) -> String {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).expect("deflate");
        STANDARD.encode(e.finish().expect("deflate"))
    }

    #[test]
    fn a_request_that_inflates_past_the_cap_is_refused_not_cut() {
        let at_cap = "a".repeat(MAX_REQUEST as usize);
        assert_eq!(redirect_request(&deflate(at_cap.as_bytes())).as_deref(), Ok(at_cap.as_str()));
        let bomb = "a".repeat(MAX_REQUEST as usize + 1);
        assert_eq!(redirect_request(&deflate(bomb.as_bytes())), Err(Refused::TooLarge));
        assert_eq!(post_request(&STANDARD.encode(bomb)), Err(Refused::TooLarge));
    }

    #[test]
    fn each_refusal_says_which_layer() {
        assert_eq!(redirect_request("not base64!"), Err(Refused::NotBase64));
        assert_eq!(redirect_request(&STANDARD.encode([0xff, 0xff, 0xff])), Err(Refused::NotDeflate));
        assert_eq!(redirect_request(&deflate(&[0xc3, 0x28])), Err(Refused::NotUtf8));
        assert_eq!(post_request(&STANDARD.encode([0xc3, 0x28])), Err(Refused::NotUtf8));
    }

    proptest! {
        #[test]
        fn what_an_sp_encodes_decodes_back(xml in "\\PC{0,2000}") {
            prop_assert_eq!(redirect_request(&deflate(xml.as_bytes())), Ok(xml.clone()));
            let b64 = STANDARD.encode(&xml);
            // Wrapped at 76 columns as MIME encoders do.
            let wrapped: Vec<String> = b64.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            prop_assert_eq!(post_request(&wrapped.join("\r\n")), Ok(xml));
        }

        #[test]
        fn any_input_is_decoded_within_the_cap_or_refused(input in "\\PC{0,400}") {
            for xml in [redirect_request(&input), post_request(&input)].into_iter().flatten() {
                prop_assert!(xml.len() as u64 <= MAX_REQUEST);
            }
        }
    }
}
