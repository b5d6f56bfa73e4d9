//! The idNat derived from the national directory (issue 17, docs/identity-lifecycle.md,
//! "Derivation from the RPPS"): the extraction file read (`extraction`), matches proposed to HR and
//! confirmed links refreshed at each load (`matching`), on the directory's `rpps` store; or the
//! Annuaire Santé's FHIR API asked instead (`fhir`, its pages read by `bundle`), which also
//! refreshes the confirmed professionals' standing (`refresh`).
pub mod bundle;
pub mod config;
pub mod confirm;
pub mod extraction;
pub mod fhir;
pub mod matching;
pub mod refresh;
