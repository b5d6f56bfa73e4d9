//! IGC-Santé smart cards (CPS, CPE): who a card's authentication certificate names, whether to
//! accept it (path to configured anchors, dates, usages, revocation by cached CRLs), the embedded
//! demo's card PKI (feature `demo-pki`) and, for tests only, cards that must be refused (feature
//! `test-fixtures`, never enabled by a production build).
mod ca;
pub mod config;
pub mod crl;
#[cfg(feature = "demo-pki")]
pub mod demopki;
pub mod identity;
#[cfg(feature = "test-fixtures")]
pub mod testpki;
pub mod validate;

pub use config::{AfterGrace, TrustConfig};
pub use crl::{CrlCache, CrlError, CrlOrigin, CrlScope, CrlStatus, ParsedCrl, Revocation, parse_crl};
pub use identity::{CardError, CardIdentity, CardKind, CardSubject, card_identity, subject_identity};
pub use validate::{CardRejection, CardValidator, RevocationCheck, TrustError, ValidatedCard};
