//! The idNat derived from the national directory (issue 17, docs/identity-lifecycle.md,
//! "Derivation from the RPPS"): the extraction file read (`extraction`), matches proposed to HR and
//! confirmed links refreshed at each load (`matching`), on the directory's `rpps` store.
pub mod config;
pub mod extraction;
pub mod matching;
