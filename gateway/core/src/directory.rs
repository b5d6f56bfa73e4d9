//! The directory port: identities of the establishment and their accounts and credentials.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::idnat::IdNat;

/// An affectation to a functional unit (UF) with a share of working time, in percent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affectation {
    /// Functional unit code.
    pub uf: String,
    /// Share of working time in this unit, 1..=100.
    pub share: u8,
}

/// A person of the establishment, as HR knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Stable directory id (the `sub` of tokens).
    pub id: String,
    /// HR matricule.
    pub matricule: String,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Birth date, ISO 8601 (`YYYY-MM-DD`).
    pub birth_date: Option<String>,
    /// Métier (profession).
    pub metier: Option<String>,
    /// Grade.
    pub grade: Option<String>,
    /// National identifier, when the person has one.
    pub idnat: Option<IdNat>,
    /// Affectations to functional units.
    pub units: Vec<Affectation>,
}

/// A login account of an identity and its password/TOTP credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The identity this account belongs to.
    pub identity_id: String,
    /// Login name.
    pub username: String,
    /// PHC string of the password hash (argon2id), if a password is set.
    pub password_hash: Option<String>,
    /// TOTP shared secret (raw bytes), if enrolled.
    pub totp_secret: Option<Vec<u8>>,
    /// A disabled account cannot log in.
    pub disabled: bool,
}

/// One professional HR announced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Announcement {
    /// The idNat_PS PSC will assert (`SubjectNameID`).
    pub idnat: String,
    /// Family name, as HR knows it.
    pub family_name: String,
    /// Given name, as HR knows it.
    pub given_name: String,
    /// The functional unit (UF) of the first affectation, if HR named one.
    pub unit: Option<String>,
    /// Who announced them (`cli:<user>`).
    pub announced_by: String,
    /// When (RFC 3339 UTC).
    pub announced_at: String,
    /// Until when it can be used (RFC 3339 UTC).
    pub expires_at: String,
}

impl Announcement {
    /// Whether it can no longer be used at `now` (Unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        time::OffsetDateTime::parse(&self.expires_at, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
            .is_none_or(|t| t <= now)
    }
}

/// A directory failure.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The backend could not be reached or failed.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The data given is inconsistent (duplicate matricule, unknown identity, ...).
    #[error("directory refused the change: {0}")]
    Invalid(String),
    /// A job's write refused by its [`Fence`]: a later holder of the job's lease has written
    /// since (this holder was paused, or its write slow, past the lease). Nothing of it was kept.
    #[error(
        "the directory refused a write of the `{job}` job: another replica holds its lease and has written since; \
         nothing of this write was kept, and that replica runs the job"
    )]
    Fenced {
        /// The job whose lease it is (`ldap`, `hr-feed`, `reminders`, `rpps-refresh`).
        job: String,
    },
}

/// The fencing token of a job's lease (M. Kleppmann, "How to do distributed locking", 2016): a
/// number that grows with each take of the lease, carried by each write its holder makes. A
/// directory given one refuses, in the write's own transaction, a write whose token is lower than
/// the highest it has seen for that job: a holder paused past its lease between the check that it
/// still holds it and the commit of its write cannot write after the one that took over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    job: String,
    token: u64,
}

impl Fence {
    /// The fence of `job` at `token`, as the lease's take issued it.
    pub fn new(job: &str, token: u64) -> Fence {
        Fence { job: job.to_owned(), token }
    }

    /// The job whose lease it is.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The token: greater for each later take of the lease.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// Identities and accounts.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The account with this login name.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, DirectoryError>;
    /// The identity with this directory id.
    async fn identity(&self, id: &str) -> Result<Option<Identity>, DirectoryError>;
    /// The identity with this national identifier (how a CPS binds: its CN is the idNat).
    async fn identity_by_idnat(&self, idnat: &IdNat) -> Result<Option<Identity>, DirectoryError>;
    /// The login name of the identity's account, if it has one (a login hint naming the person
    /// by idNat pre-fills it).
    async fn username_of(&self, identity_id: &str) -> Result<Option<String>, DirectoryError>;
    /// Whether the login account of this identity is disabled: a disabled account logs in with
    /// no MIE (card, key, PSC, password) and its refresh tokens stop working. An identity without
    /// an account is not disabled.
    async fn account_disabled(&self, identity_id: &str) -> Result<bool, DirectoryError>;
    /// Just-in-time creation at a first login through Pro Santé Connect (`psc.jit`): when HR
    /// announced this idNat and the announcement has not lapsed, uses it up and creates the
    /// identity (names as PSC asserted them, else as HR announced them; the announced unit), at
    /// most once across replicas; the new identity's id and the announcement. `None` when nothing
    /// (valid) was announced; a directory that keeps no announcements always answers `None`.
    async fn create_announced(
        &self,
        idnat: &IdNat,
        family_name: Option<&str>,
        given_name: Option<&str>,
    ) -> Result<Option<(String, Announcement)>, DirectoryError>;
    /// Creates or updates an identity keyed by its matricule; returns its directory id.
    async fn upsert_identity(&self, identity: &Identity) -> Result<String, DirectoryError>;
    /// Creates or replaces the account of an identity.
    async fn upsert_account(&self, account: &Account) -> Result<(), DirectoryError>;
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), DirectoryError>;
    /// The identity linked to this entry of the establishment's directory (`objectGUID` /
    /// `entryUUID`, see [`Directory::link_to_directory`]), else the one with this matricule:
    /// indexed lookups, made for every entry of a sync.
    async fn identity_for_directory_entry(
        &self,
        directory_id: &str,
        matricule: &str,
    ) -> Result<Option<Identity>, DirectoryError>;
    /// Links the identity to that entry (taken from any other identity); `true` when it changed.
    /// A linked identity came from the directory: when its entry is gone, it has left.
    async fn link_to_directory(&self, identity_id: &str, directory_id: &str) -> Result<bool, DirectoryError>;
    /// `(identity id, directory id, login name)` of the identities linked to a directory entry
    /// whose account is enabled.
    async fn directory_linked_enabled(&self) -> Result<Vec<(String, String, String)>, DirectoryError>;
    /// Disables the identity's account and durably notes that the person's access must end
    /// ([`PendingRevocations`]), both or neither; `false` when there was nothing to disable.
    async fn disable_account(&self, identity_id: &str, reason: &str) -> Result<bool, DirectoryError>;
    /// Where the last sync of `source` (e.g. `ldap`) left the establishment's directory: the mark
    /// a changed-since pass starts from (text the source wrote; `None`: it gives none) and when
    /// its last full pass ended (unix seconds). `None` before the first pass.
    async fn directory_sync_state(&self, source: &str) -> Result<Option<(Option<String>, i64)>, DirectoryError>;
    /// Records where a pass of `source` left it (see [`Directory::directory_sync_state`]).
    async fn set_directory_sync_state(
        &self,
        source: &str,
        mark: Option<&str>,
        full_pass_at: i64,
    ) -> Result<(), DirectoryError>;
    /// Gives the identity `identity_id` a new matricule (its entry in the establishment's
    /// directory changed it); `false` when there is no such identity. Fails when another identity
    /// holds that matricule.
    async fn change_matricule(&self, identity_id: &str, matricule: &str) -> Result<bool, DirectoryError>;
    /// Why the DMP is withheld from this identity whatever the policy says (its derivation from
    /// the RPPS found it struck off, under `derivation.on_struck_off = "deny_dmp"`), if it is.
    async fn dmp_withheld(&self, identity_id: &str) -> Result<Option<String>, DirectoryError>;
}

/// What the policy engine reads of a person beyond the HR record: the kind of their account and
/// their employment status (`active`, `suspended`, `left`).
#[async_trait]
pub trait PolicyAttributes: Send + Sync {
    /// The account kind and employment status of an identity (`personal`, `active` when unknown).
    async fn policy_attributes(
        &self,
        identity_id: &str,
    ) -> Result<(crate::policy::AccountKind, String), DirectoryError>;
    /// Marks the account with this login name personal or generic; false when there is none.
    async fn set_account_kind(&self, username: &str, kind: crate::policy::AccountKind) -> Result<bool, DirectoryError>;
    /// Sets the employment status of the identity of this login name; false when there is none.
    async fn set_employment_status(&self, username: &str, status: &str) -> Result<bool, DirectoryError>;
}

/// The employment statuses the directory keeps.
pub const EMPLOYMENT_STATUSES: [&str; 3] = ["active", "suspended", "left"];

/// What lost access: a person (every session of theirs), or one MIE instance (a card's
/// fingerprint, a FIDO2 credential id: the sessions it opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessTarget {
    /// An identity id.
    Identity(String),
    /// A credential as sessions know it (`Authentication::credential`).
    Credential(String),
}

impl AccessTarget {
    /// The stored form, `identity:<id>` or `credential:<credential>`.
    pub fn as_stored(&self) -> String {
        match self {
            AccessTarget::Identity(id) => format!("identity:{id}"),
            AccessTarget::Credential(c) => format!("credential:{c}"),
        }
    }

    /// The target of a stored form, `None` when it is neither.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s.split_once(':') {
            Some(("identity", id)) if !id.is_empty() => Some(AccessTarget::Identity(id.to_owned())),
            Some(("credential", c)) if !c.is_empty() => Some(AccessTarget::Credential(c.to_owned())),
            _ => None,
        }
    }
}

/// An ending of access recorded but not yet confirmed done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRevocation {
    /// The record's id.
    pub id: String,
    /// Whose or what's sessions end.
    pub target: AccessTarget,
    /// Why (a status change, a revoked key), for the audit line.
    pub reason: String,
}

/// Durable notes that some access must end (a person left, a card was lost, a key revoked),
/// kept until the gateway has ended the sessions, refresh families and VIHF issuance they name.
/// A note is written with (or before) the change that takes the access away, so an ending that
/// failed half-way (the store down, a crash, a command-line change the running gateway must
/// carry out) is completed later instead of forgotten.
#[async_trait]
pub trait PendingRevocations: Send + Sync {
    /// Records that `target`'s access must end; durable when it returns.
    async fn add_pending_revocation(&self, target: &AccessTarget, reason: &str) -> Result<String, DirectoryError>;
    /// Every ending not yet confirmed done, oldest first.
    async fn pending_revocations(&self) -> Result<Vec<PendingRevocation>, DirectoryError>;
    /// Confirms an ending done: the note goes.
    async fn revocation_done(&self, id: &str) -> Result<(), DirectoryError>;
}
