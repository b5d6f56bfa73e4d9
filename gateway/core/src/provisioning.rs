//! The provisioning port: people and groups pushed by an identity-governance tool or an HR
//! connector (SCIM 2.0, RFC 7643 / RFC 7644), kept in the directory with a version for ETags.
use async_trait::async_trait;

use crate::idnat::IdNat;
use crate::roles::Role;

/// A person as a provisioning client describes them: what Vigie reads (login name, names,
/// matricule, idNat, métier, units, whether the account is active) and the client's whole
/// document, kept as given so that a read gives back what was written (RFC 7644 §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The login name (`userName`): unique, the account's username.
    pub user_name: String,
    /// The client's own id for the person (`externalId`).
    pub external_id: Option<String>,
    /// Whether the account may log in (`active`); false ends the person's access.
    pub active: bool,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// HR matricule (enterprise `employeeNumber`); when absent the directory makes one up that
    /// names the provisioned record, so that HR's later import can be told apart.
    pub matricule: Option<String>,
    /// National identifier of a health professional.
    pub idnat: Option<IdNat>,
    /// Métier (profession).
    pub metier: Option<String>,
    /// Functional units (UF codes), in order: the first is the main one.
    pub units: Vec<String>,
    /// The client's document (JSON text), without `id` and `meta`.
    pub document: String,
}

/// A group as a provisioning client describes it. A group whose display name is a Vigie role
/// label (`cards`, `fido2`) grants that role to its members, and takes it back when they leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// `displayName`: unique.
    pub display_name: String,
    /// The client's own id for the group (`externalId`).
    pub external_id: Option<String>,
    /// Identity ids of the members: each a provisioned person.
    pub members: Vec<String>,
    /// The role the group grants, when its name is one.
    pub role: Option<Role>,
    /// The client's document (JSON text), without `id`, `meta` and `members`.
    pub document: String,
}

/// A stored resource: its id, version and times, and the document last written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The resource's id (a user's is its identity id).
    pub id: String,
    /// Incremented by each change: the ETag (RFC 7644 §3.14).
    pub version: i64,
    /// RFC 3339 UTC.
    pub created: String,
    /// RFC 3339 UTC.
    pub last_modified: String,
    /// The client's document (JSON text).
    pub document: String,
    /// A user's `active`; always true for a group.
    pub active: bool,
    /// A group's members (identity ids); empty for a user.
    pub members: Vec<String>,
}

/// What a change was refused for. Messages name the attribute and never the database.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// No resource with this id.
    #[error("no such resource")]
    NotFound,
    /// A unique value (`userName`, `employeeNumber`, idNat, `displayName`) is already another
    /// resource's (RFC 7644 §3.3: 409 `uniqueness`).
    #[error("{0}")]
    Uniqueness(String),
    /// The version given (`If-Match`) is not the stored one (RFC 7644 §3.14: 412).
    #[error("the resource was changed since version {0}")]
    VersionMismatch(i64),
    /// A value the directory refuses (a member that is no provisioned person, a bad matricule).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

/// People and groups of a provisioning client. Each change is one transaction: a create, a
/// replacement or a deletion is whole or not at all, and a replacement or deletion given an
/// expected version applies only if the stored version is still that one (across replicas).
#[async_trait]
pub trait Provisioning: Send + Sync {
    /// Creates the identity, its account and the provisioned record.
    async fn create_user(&self, user: &UserRecord) -> Result<Stored, ProvisioningError>;
    /// The provisioned person with this identity id.
    async fn user(&self, id: &str) -> Result<Option<Stored>, ProvisioningError>;
    /// Every provisioned person, oldest first.
    async fn users(&self) -> Result<Vec<Stored>, ProvisioningError>;
    /// Replaces what Vigie reads and the document; disables or enables the account by `active`.
    async fn replace_user(
        &self,
        id: &str,
        user: &UserRecord,
        if_version: Option<i64>,
    ) -> Result<Stored, ProvisioningError>;
    /// Ends the provisioned record: the account is disabled and its group memberships (and the
    /// roles they granted) go; the identity stays (ids are never reused, cards keep their history).
    async fn delete_user(&self, id: &str, if_version: Option<i64>) -> Result<(), ProvisioningError>;
    /// Creates a group; members get the role it grants.
    async fn create_group(&self, group: &GroupRecord) -> Result<Stored, ProvisioningError>;
    /// The group with this id.
    async fn group(&self, id: &str) -> Result<Option<Stored>, ProvisioningError>;
    /// Every group, oldest first.
    async fn groups(&self) -> Result<Vec<Stored>, ProvisioningError>;
    /// Replaces a group and its members; roles follow the members.
    async fn replace_group(
        &self,
        id: &str,
        group: &GroupRecord,
        if_version: Option<i64>,
    ) -> Result<Stored, ProvisioningError>;
    /// Deletes a group; the roles it granted go.
    async fn delete_group(&self, id: &str, if_version: Option<i64>) -> Result<(), ProvisioningError>;
}
