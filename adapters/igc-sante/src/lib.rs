//! IGC-Santé smart cards (CPS, CPE): who a card's authentication certificate names, whether to
//! accept it (path to configured anchors, dates, usages, revocation by cached CRLs), and, behind
//! the `testpki` feature, a generated test PKI with the real subject layouts.
mod ca;
pub mod config;
pub mod crl;
#[cfg(feature = "testpki")]
pub mod demopki;
pub mod identity;
#[cfg(feature = "testpki")]
pub use demopki as testpki;
pub mod validate;

pub use config::{AfterGrace, TrustConfig};
pub use crl::{CrlCache, CrlError, CrlOrigin, CrlScope, CrlStatus, ParsedCrl, Revocation, parse_crl};
pub use identity::{CardError, CardIdentity, CardKind, CardSubject, card_identity, subject_identity};
pub use validate::{CardRejection, CardValidator, RevocationCheck, TrustError, ValidatedCard};
