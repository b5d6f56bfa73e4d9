//! The sponsorship port (seeds 000, "parrainage"): e-mail addresses of identities, the hashed
//! answers to security questions, the sponsorships granted with their temporary credentials, and
//! who shares a functional unit with whom. Hashing is the caller's: a store keeps and compares
//! nothing secret itself.
use async_trait::async_trait;

use crate::directory::{DirectoryError, Identity};

/// A sponsorship to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSponsorship<'a> {
    /// The colleague who vouched (directory id).
    pub sponsor_id: &'a str,
    /// The professional vouched for.
    pub sponsored_id: &'a str,
    /// `forgotten`, `lost`, `stolen`, `unusable` or `awaiting`.
    pub reason: &'a str,
    /// When (Unix seconds).
    pub at: i64,
    /// Hash of the temporary credential.
    pub code_hash: &'a str,
    /// When the credential stops working (Unix seconds).
    pub expires_at: i64,
}

/// A temporary credential still in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The sponsorship's id.
    pub id: String,
    /// Who vouched.
    pub sponsor_id: String,
    /// Hash of the code.
    pub code_hash: String,
    /// When it ends (Unix seconds).
    pub expires_at: i64,
}

/// Where sponsorships and what they need are kept (the directory's database).
#[async_trait]
pub trait Sponsorships: Send + Sync {
    /// Sets (or clears) the e-mail address of an identity; false when there is no such identity.
    /// The address is checked by the caller (`vigie-mail` parses it); the store checks only its
    /// length and the absence of control characters.
    async fn set_email(&self, identity_id: &str, email: Option<&str>) -> Result<bool, DirectoryError>;

    /// The e-mail address of an identity, if the directory has one.
    async fn email_of(&self, identity_id: &str) -> Result<Option<String>, DirectoryError>;

    /// Replaces every security answer of an identity with these `(question id, answer hash)`, at
    /// once.
    async fn set_security_answers(&self, identity_id: &str, answers: &[(String, String)])
    -> Result<(), DirectoryError>;

    /// The `(question id, answer hash)` an identity enrolled, by question id.
    async fn security_answers(&self, identity_id: &str) -> Result<Vec<(String, String)>, DirectoryError>;

    /// Records a sponsorship and its temporary credential; returns its id.
    async fn record_sponsorship(&self, s: &NewSponsorship<'_>) -> Result<String, DirectoryError>;

    /// How many sponsorships this sponsor granted since `since` (Unix seconds).
    async fn sponsorships_by_since(&self, sponsor_id: &str, since: i64) -> Result<u64, DirectoryError>;

    /// The temporary credentials of an identity still in force at `now`, newest first.
    async fn active_grants(&self, sponsored_id: &str, now: i64) -> Result<Vec<Grant>, DirectoryError>;

    /// The identities sharing at least one functional unit with `identity_id` (not itself) whose
    /// names, matricule or idNat match `query` (accents, case and separators ignored), by name,
    /// with their units; at most `limit`. An empty query lists them all (within `limit`).
    async fn colleagues(&self, identity_id: &str, query: &str, limit: usize) -> Result<Vec<Identity>, DirectoryError>;
}
