//! DMP access in AIR simplifié: the VIHF (a SAML 2.0 assertion, reference/dmp-vihf-cps.md §1, signed
//! with the establishment's seal), its `wsse:Security` header in SOAP 1.2 calls, and the mutual-TLS
//! relay that carries those calls to the DMP.
//!
//! # Why no XML-signature library
//! The usual stacks were set aside: `samael` needs libxmlsec1, libxml2, OpenSSL and bindgen at build
//! time, cannot write `AuthnContextDecl` or escape attribute values, and hard-codes a SHA-1 digest;
//! a direct libxmlsec1 binding brings the same C stack and its parser of untrusted XML into the
//! gateway. A VIHF is a document *we* write, from a fixed skeleton. So [`Sealer::issue`] writes it
//! directly in its exclusive-canonical form (W3C xml-exc-c14n, with the C14N 1.0 §2.3 rules: no
//! self-closing tags, attributes in canonical order, namespaces declared where exc-c14n renders
//! them, text and attribute values escaped as c14n does). The enveloped-signature transform of that
//! assertion is then exactly the bytes written minus the `ds:Signature`, and its digest is computed
//! over them with no parsing and no canonicaliser; `SignedInfo` is likewise written canonical and
//! signed with aws-lc (RSA PKCS#1 v1.5, SHA-256 by default, SHA-1 on option), the key parsed once.
//! Exclusive c14n makes the result independent of where the assertion is later embedded (the SOAP
//! envelope's namespaces do not enter it). That this is right is shown by others' code, not ours:
//! the tests verify every VIHF with the `xmlsec1` CLI (libxmlsec1 + libxml2's canonicaliser),
//! standalone and inside SOAP envelopes with other namespaces in scope, and with a SAML library in
//! Python (the DMP stand-in's `check_vihf.py`).
//!
//! Parsing (finding where the header goes in a SOAP body) uses `quick-xml`, a tokenizer without
//! entity expansion or DTD processing.
mod dn;
mod envelope;
mod ins;
mod legacy;
mod relay;
mod roles;
mod seal;
mod settings;
mod vihf;
mod xml;

pub use dn::rfc2253;
pub use envelope::{
    EnvelopeError, INS_OIDS, SOAP12_NS, SoapCall, WSSE_NS, insert_security, parse_media_type, patients_named,
};
#[cfg(feature = "test-fixtures")]
pub use ins::nir_key;
pub use ins::{InsError, InsNir};
pub use relay::{DmpRelay, RelayError, is_service_name, with_action};
pub use roles::{HlRole, PROFESSIONS_OID, SPECIALTIES_OID, roles_for};
pub use seal::{SealError, SealedVihfs, Sealer};
pub use settings::{
    MOBILE_TWO_FACTOR_CONTRACT, MOBILE_TWO_FACTOR_UNREGISTERED, PrimaryAuthPlacement, Purpose, SMARTCARD_PKI,
    SettingsError, SignatureAlg, TIME_SYNC_TOKEN, VihfSettings, default_authn_context, default_purposes,
};
pub use vihf::{Vihf, VihfError, VihfRequest};
pub use xml::BadChar;
