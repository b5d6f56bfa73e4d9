//! IGC-Santé smart cards (CPS, CPE): what an authentication certificate says about its holder.
//! Parsing only; chain validation and revocation belong to the TLS layer and come later.
pub mod identity;

pub use identity::{CardError, CardIdentity, CardKind, CardSubject, card_identity, subject_identity};
