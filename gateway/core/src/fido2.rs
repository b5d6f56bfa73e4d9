//! The FIDO2 credential port: the security keys registered by each identity, with what the
//! gateway needs to verify an assertion (an opaque public-key record) and to spot a cloned key
//! (the signature counter, WebAuthn §6.1.1).
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::directory::DirectoryError;

/// A registered FIDO2 credential (a discoverable credential on a security key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fido2Credential {
    /// The credential id, base64url without padding (WebAuthn §4 "Credential ID"). Unique.
    pub id: String,
    /// The identity (directory id) the key belongs to.
    pub identity_id: String,
    /// The WebAuthn user handle given to the key at registration (a UUID): the authenticator
    /// returns it with every discoverable assertion, and it must name the credential's owner.
    pub user_handle: String,
    /// A name chosen by the user ("YubiKey bleue").
    pub name: String,
    /// The authenticator model's AAGUID (WebAuthn §6.5.1) as its verified attestation proves
    /// it; `00000000-…` when the key was registered without verified attestation (its own
    /// claim is not recorded: anyone can claim a model).
    pub aaguid: String,
    /// Whether the key's attestation was verified to a trusted attestation root at registration
    /// (WebAuthn §7.1 steps 21–23): only such a key is a hardware key (`hwk`). Keys registered
    /// before attestation was verified are not.
    #[serde(default)]
    pub attested: bool,
    /// The verifier's public-key record (JSON written by the gateway; opaque to adapters).
    pub public_key: String,
    /// The last signature counter seen (WebAuthn §6.1.1 `signCount`).
    pub sign_count: u32,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When it last logged in (RFC 3339).
    pub last_used_at: Option<String>,
}

/// What recording a use of a credential found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterCheck {
    /// The counter increased (or the key keeps no counter): recorded.
    Accepted,
    /// The key reported a counter that is not above the stored one: a sign of a cloned key
    /// (WebAuthn §7.2 step 22). Nothing was changed.
    Regressed {
        /// The counter stored before this use.
        stored: u32,
    },
    /// No such credential (revoked meanwhile).
    Unknown,
}

/// The FIDO2 credentials of the directory.
///
/// Guarantees every adapter must keep: credential ids are unique across identities; `record_use`
/// compares and updates the counter atomically, so two replicas verifying assertions of one key
/// at once cannot both move it past the same value.
#[async_trait]
pub trait Fido2Credentials: Send + Sync {
    /// Stores a new credential. Refused ([`DirectoryError::Invalid`]) when its id is registered.
    async fn add_credential(&self, credential: &Fido2Credential) -> Result<(), DirectoryError>;
    /// The credential with this id.
    async fn credential(&self, id: &str) -> Result<Option<Fido2Credential>, DirectoryError>;
    /// The credentials of an identity, oldest first.
    async fn credentials_of(&self, identity_id: &str) -> Result<Vec<Fido2Credential>, DirectoryError>;
    /// Records a successful assertion: the new counter, the updated public-key record and the
    /// time, only if `sign_count` is above the stored counter or both are zero (a key without a
    /// counter).
    async fn record_use(
        &self,
        id: &str,
        sign_count: u32,
        public_key: &str,
        at: &str,
    ) -> Result<CounterCheck, DirectoryError>;
    /// Removes a credential of this identity; tells whether there was one.
    async fn remove_credential(&self, identity_id: &str, id: &str) -> Result<bool, DirectoryError>;
}
