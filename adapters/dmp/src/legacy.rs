//! RSA PKCS#1 v1.5 with SHA-1 (`xmldsig#rsa-sha1`), which the DMP's published VIHF examples use:
//! aws-lc-rs only signs with SHA-256 and up, so this calls AWS-LC's `RSA_sign` (the same library
//! and the same constant-time, blinded RSA code) on a key parsed once.

use std::ptr::NonNull;

use aws_lc_sys as sys;

/// An AWS-LC `RSA` private key.
pub(crate) struct Sha1Signer(NonNull<sys::RSA>);

// SAFETY: AWS-LC rsa.h: "RSA_sign … These functions are considered non-mutating for
// thread-safety purposes and may be used concurrently"; the key is never mutated after parsing,
// and freed only in Drop (exclusive access).
unsafe impl Send for Sha1Signer {}
unsafe impl Sync for Sha1Signer {}

impl Sha1Signer {
    /// From a PKCS#8 `PrivateKeyInfo` (DER) holding an RSA key.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Option<Self> {
        // SAFETY: CBS borrows `der` for the duration of the parse only; EVP_parse_private_key
        // returns an owned EVP_PKEY or null; EVP_PKEY_get1_RSA returns a new reference (or null)
        // that we own, and we free the EVP_PKEY we own.
        unsafe {
            let mut cbs = sys::CBS { data: std::ptr::null(), len: 0 };
            sys::CBS_init(&mut cbs, der.as_ptr(), der.len());
            let pkey = sys::EVP_parse_private_key(&mut cbs);
            if pkey.is_null() {
                return None;
            }
            let rsa = sys::EVP_PKEY_get1_RSA(pkey);
            sys::EVP_PKEY_free(pkey);
            NonNull::new(rsa).map(Sha1Signer)
        }
    }

    /// From a PKCS#1 `RSAPrivateKey` (DER).
    pub(crate) fn from_pkcs1(der: &[u8]) -> Option<Self> {
        // SAFETY: reads `der` only during the call; returns an owned RSA or null.
        NonNull::new(unsafe { sys::RSA_private_key_from_bytes(der.as_ptr(), der.len()) }).map(Sha1Signer)
    }

    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.1) over a SHA-1 digest.
    pub(crate) fn sign_sha1_digest(&self, digest: &[u8; 20]) -> Option<Vec<u8>> {
        // SAFETY: the key is valid (owned, non-null); `out` has RSA_size bytes, the most RSA_sign
        // writes; `len` receives the count written.
        unsafe {
            let size = sys::RSA_size(self.0.as_ptr()) as usize;
            let mut out = vec![0u8; size];
            let mut len: std::os::raw::c_uint = 0;
            let ok = sys::RSA_sign(
                sys::NID_sha1,
                digest.as_ptr(),
                digest.len(),
                out.as_mut_ptr(),
                &mut len,
                self.0.as_ptr(),
            );
            if ok != 1 {
                return None;
            }
            out.truncate(len as usize);
            Some(out)
        }
    }
}

impl Drop for Sha1Signer {
    fn drop(&mut self) {
        // SAFETY: we own this reference (from EVP_PKEY_get1_RSA) and drop it once.
        unsafe { sys::RSA_free(self.0.as_ptr()) }
    }
}
