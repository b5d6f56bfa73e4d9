//! [`Provisioning`] on the directory database (migration `0009_scim.sql`): SCIM people are
//! identities and accounts plus a versioned document; SCIM groups grant the Vigie role they are
//! named after to their members.
use async_trait::async_trait;
use vigie_core::directory::{Affectation, DirectoryError, Identity};
use vigie_core::provisioning::{GroupRecord, Provisioning, ProvisioningError, Stored, UserRecord};

use crate::SqlDirectory;
use crate::db::{Tx, on_pool, on_tx};
use crate::directory::{failed, now, validate_identity};

type Result<T> = std::result::Result<T, ProvisioningError>;

fn unavailable(doing: &str, e: &sqlx::Error) -> ProvisioningError {
    from_directory(failed(doing, e))
}

fn from_directory(e: DirectoryError) -> ProvisioningError {
    match e {
        DirectoryError::Invalid(m) => ProvisioningError::Invalid(m),
        DirectoryError::Unavailable(m) => ProvisioningError::Unavailable(m),
        fenced @ DirectoryError::Fenced { .. } => ProvisioningError::Unavailable(fenced.to_string()),
    }
}

/// The `granted_by` of the role grants a group made.
fn group_grantor(group_id: &str) -> String {
    format!("scim-group:{group_id}")
}

/// The affectations of a list of units: the working time shared evenly (the first unit takes
/// what the division leaves), since SCIM says which units, not how much of each.
fn affectations(units: &[String]) -> Result<Vec<Affectation>> {
    let n = units.len();
    if n > 100 {
        return Err(ProvisioningError::Invalid(format!("at most 100 units per person, found {n}")));
    }
    let each = 100usize.checked_div(n).unwrap_or(0);
    Ok(units
        .iter()
        .enumerate()
        .map(|(i, uf)| Affectation { uf: uf.clone(), share: (each + if i == 0 { 100 % n.max(1) } else { 0 }) as u8 })
        .collect())
}

type StoredRow = (String, i64, String, String, String);
type UserRow = (String, i64, String, String, String, Option<bool>);

/// A provisioned person from their row: active unless the account is disabled (or gone).
fn stored_user((id, version, created, last_modified, document, disabled): UserRow) -> Stored {
    Stored { id, version, created, last_modified, document, active: !disabled.unwrap_or(true), members: Vec::new() }
}

impl SqlDirectory {
    /// Who holds `value` in `column` of `identities`, other than `id`.
    async fn identity_holding(&self, tx: &mut Tx, column: &str, value: &str, id: &str) -> Result<Option<String>> {
        let sql = match column {
            "matricule" => "SELECT id FROM identities WHERE matricule = $1 AND id <> $2",
            _ => "SELECT id FROM identities WHERE idnat = $1 AND id <> $2",
        };
        on_tx!(tx, |c| sqlx::query_scalar::<_, String>(sql).bind(value).bind(id).fetch_optional(&mut *c).await)
            .map_err(|e| unavailable("checking a unique value", &e))
    }

    /// Writes what Vigie reads of a provisioned person into `identities`, `affectations` and
    /// `accounts`, inside the caller's transaction. Keeps what SCIM does not carry (birth date,
    /// grade, password, TOTP secret, account kind).
    async fn write_person(&self, tx: &mut Tx, id: &str, user: &UserRecord, exists: bool) -> Result<()> {
        let matricule = user.matricule.clone().unwrap_or_else(|| format!("scim:{id}"));
        let units = affectations(&user.units)?;
        let identity = Identity {
            id: id.to_owned(),
            matricule: matricule.clone(),
            family_name: user.family_name.clone(),
            given_name: user.given_name.clone(),
            birth_date: None,
            metier: user.metier.clone(),
            grade: None,
            idnat: user.idnat.clone(),
            units: units.clone(),
        };
        validate_identity(&identity).map_err(from_directory)?;
        crate::rules::check_username(&user.user_name).map_err(ProvisioningError::Invalid)?;
        if self.identity_holding(tx, "matricule", &matricule, id).await?.is_some() {
            return Err(ProvisioningError::Uniqueness(format!(
                "employeeNumber {matricule:?} is already another person's matricule"
            )));
        }
        if let Some(idnat) = &user.idnat
            && self.identity_holding(tx, "idnat", idnat.as_str(), id).await?.is_some()
        {
            return Err(ProvisioningError::Uniqueness(format!(
                "idNat {} is already another person's: an idNat names one person",
                idnat.as_str()
            )));
        }
        let holder = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
            "SELECT identity_id FROM accounts WHERE username = $1 AND identity_id <> $2"
        )
        .bind(&user.user_name)
        .bind(id)
        .fetch_optional(&mut *c)
        .await)
        .map_err(|e| unavailable("checking a username", &e))?;
        if holder.is_some() {
            return Err(ProvisioningError::Uniqueness(format!(
                "userName {:?} is already another account's login",
                user.user_name
            )));
        }
        let at = now().map_err(from_directory)?;
        let idnat = user.idnat.as_ref().map(|i| i.as_str().to_owned());
        // The same parameters either way: an adopted or replaced identity keeps its birth date
        // and grade (SCIM does not carry them).
        let sql = if exists {
            "UPDATE identities SET matricule = $2, family_name = $3, given_name = $4, metier = $5, idnat = $6, \
             updated_at = $7 WHERE id = $1"
        } else {
            "INSERT INTO identities (id, matricule, family_name, given_name, metier, idnat, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
        };
        let written = on_tx!(tx, |c| sqlx::query(sql)
            .bind(id)
            .bind(&matricule)
            .bind(&user.family_name)
            .bind(&user.given_name)
            .bind(&user.metier)
            .bind(&idnat)
            .bind(&at)
            .execute(&mut *c)
            .await
            .map(|_| ()));
        written.map_err(|e| unavailable("writing a person", &e))?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM affectations WHERE identity_id = $1")
            .bind(id)
            .execute(&mut *c)
            .await
            .map(|_| ()))
        .map_err(|e| unavailable("replacing units", &e))?;
        for unit in &units {
            on_tx!(tx, |c| sqlx::query("INSERT INTO affectations (identity_id, uf, share) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(&unit.uf)
                .bind(i32::from(unit.share))
                .execute(&mut *c)
                .await
                .map(|_| ()))
            .map_err(|e| unavailable("writing units", &e))?;
        }
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO accounts (identity_id, username, disabled) VALUES ($1, $2, $3) \
             ON CONFLICT (identity_id) DO UPDATE SET username = excluded.username, disabled = excluded.disabled"
        )
        .bind(id)
        .bind(&user.user_name)
        .bind(!user.active)
        .execute(&mut *c)
        .await
        .map(|_| ()))
        .map_err(|e| unavailable("writing an account", &e))?;
        crate::people_search::index_person(tx, id).await.map_err(from_directory)
    }

    /// Moves a stored record to its next version with its new document, if it is at
    /// `if_version` (any, when `None`); the update holds the row until the transaction ends.
    async fn bump(&self, tx: &mut Tx, table: &str, id: &str, document: &str, if_version: Option<i64>) -> Result<()> {
        let sql = match table {
            "scim_users" => {
                "UPDATE scim_users SET version = version + 1, document = $2, updated_at = $3 \
                 WHERE identity_id = $1 AND (CAST($4 AS BIGINT) IS NULL OR version = $4)"
            }
            _ => {
                "UPDATE scim_groups SET version = version + 1, document = $2, updated_at = $3 \
                 WHERE id = $1 AND (CAST($4 AS BIGINT) IS NULL OR version = $4)"
            }
        };
        let at = now().map_err(from_directory)?;
        let n = on_tx!(tx, |c| sqlx::query(sql)
            .bind(id)
            .bind(document)
            .bind(&at)
            .bind(if_version)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| unavailable("updating a resource", &e))?;
        if n > 0 {
            return Ok(());
        }
        match self.version_of(tx, table, id).await? {
            None => Err(ProvisioningError::NotFound),
            Some(v) => Err(ProvisioningError::VersionMismatch(v)),
        }
    }

    /// Whether the record exists and is at `if_version` (any, when `None`), inside the write.
    async fn check_version(&self, tx: &mut Tx, table: &str, id: &str, if_version: Option<i64>) -> Result<()> {
        match (self.version_of(tx, table, id).await?, if_version) {
            (None, _) => Err(ProvisioningError::NotFound),
            (Some(v), Some(want)) if v != want => Err(ProvisioningError::VersionMismatch(v)),
            _ => Ok(()),
        }
    }

    async fn version_of(&self, tx: &mut Tx, table: &str, id: &str) -> Result<Option<i64>> {
        let sql = match table {
            "scim_users" => "SELECT version FROM scim_users WHERE identity_id = $1",
            _ => "SELECT version FROM scim_groups WHERE id = $1",
        };
        on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_optional(&mut *c).await)
            .map_err(|e| unavailable("reading a version", &e))
    }

    async fn read_user(&self, id: &str) -> Result<Option<Stored>> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, UserRow>(
            "SELECT s.identity_id, s.version, s.created_at, s.updated_at, s.document, a.disabled \
             FROM scim_users s LEFT JOIN accounts a ON a.identity_id = s.identity_id WHERE s.identity_id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)
        .map_err(|e| unavailable("reading a person", &e))?;
        Ok(row.map(stored_user))
    }

    async fn members_of(&self, group_id: &str) -> Result<Vec<String>> {
        on_pool!(self.pool, |c| sqlx::query_scalar::<_, String>(
            "SELECT identity_id FROM scim_group_members WHERE group_id = $1 ORDER BY identity_id"
        )
        .bind(group_id)
        .fetch_all(c)
        .await)
        .map_err(|e| unavailable("reading members", &e))
    }

    async fn stored_group(&self, row: StoredRow) -> Result<Stored> {
        let (id, version, created, last_modified, document) = row;
        let members = self.members_of(&id).await?;
        Ok(Stored { id, version, created, last_modified, document, active: true, members })
    }

    /// Replaces a group's members and the role grants that follow them, in the caller's
    /// transaction: a member who leaves loses the role only if this group granted it.
    async fn write_members(&self, tx: &mut Tx, group_id: &str, group: &GroupRecord) -> Result<()> {
        for member in &group.members {
            let provisioned =
                on_tx!(tx, |c| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM scim_users WHERE identity_id = $1")
                    .bind(member)
                    .fetch_one(&mut *c)
                    .await)
                .map_err(|e| unavailable("checking a member", &e))?;
            if provisioned == 0 {
                return Err(ProvisioningError::Invalid(format!(
                    "member {:?} is not a provisioned User: create the User first",
                    member.chars().take(64).collect::<String>()
                )));
            }
        }
        let grantor = group_grantor(group_id);
        on_tx!(tx, |c| sqlx::query("DELETE FROM identity_roles WHERE granted_by = $1")
            .bind(&grantor)
            .execute(&mut *c)
            .await
            .map(|_| ()))
        .map_err(|e| unavailable("taking back a group's roles", &e))?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *c)
            .await
            .map(|_| ()))
        .map_err(|e| unavailable("replacing members", &e))?;
        let at = now().map_err(from_directory)?;
        for member in &group.members {
            on_tx!(tx, |c| sqlx::query(
                "INSERT INTO scim_group_members (group_id, identity_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            )
            .bind(group_id)
            .bind(member)
            .execute(&mut *c)
            .await
            .map(|_| ()))
            .map_err(|e| unavailable("writing members", &e))?;
            if let Some(role) = group.role {
                on_tx!(tx, |c| sqlx::query(
                    "INSERT INTO identity_roles (identity_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (identity_id, role) DO NOTHING"
                )
                .bind(member)
                .bind(role.as_str())
                .bind(&at)
                .bind(&grantor)
                .execute(&mut *c)
                .await
                .map(|_| ()))
                .map_err(|e| unavailable("granting a group's role", &e))?;
            }
        }
        Ok(())
    }

    async fn display_name_taken(&self, tx: &mut Tx, name: &str, id: &str) -> Result<()> {
        let holder = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
            "SELECT id FROM scim_groups WHERE display_name = $1 AND id <> $2"
        )
        .bind(name)
        .bind(id)
        .fetch_optional(&mut *c)
        .await)
        .map_err(|e| unavailable("checking a group name", &e))?;
        match holder {
            Some(_) => Err(ProvisioningError::Uniqueness(format!("displayName {name:?} is already another group's"))),
            None => Ok(()),
        }
    }
}

fn commit_error(e: sqlx::Error) -> ProvisioningError {
    unavailable("saving a change", &e)
}

#[async_trait]
impl Provisioning for SqlDirectory {
    async fn create_user(&self, user: &UserRecord) -> Result<Stored> {
        let mut tx = self.begin_write().await.map_err(from_directory)?;
        // A matricule HR already imported links the provisioned person to that identity, unless
        // it was provisioned already.
        let existing = match &user.matricule {
            Some(m) => on_tx!(tx, |c| sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT i.id, s.identity_id FROM identities i LEFT JOIN scim_users s ON s.identity_id = i.id \
                 WHERE i.matricule = $1"
            )
            .bind(m)
            .fetch_optional(&mut *c)
            .await)
            .map_err(|e| unavailable("looking up a matricule", &e))?,
            None => None,
        };
        let (id, exists) = match existing {
            Some((_, Some(_))) => {
                return Err(ProvisioningError::Uniqueness(format!(
                    "employeeNumber {:?} is already a provisioned User's",
                    user.matricule.as_deref().unwrap_or_default()
                )));
            }
            Some((id, None)) => (id, true),
            None => (uuid::Uuid::now_v7().to_string(), false),
        };
        self.write_person(&mut tx, &id, user, exists).await?;
        let at = now().map_err(from_directory)?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO scim_users (identity_id, external_id, document, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $4)"
        )
        .bind(&id)
        .bind(&user.external_id)
        .bind(&user.document)
        .bind(&at)
        .execute(&mut *c)
        .await
        .map(|_| ()))
        .map_err(|e| unavailable("recording a provisioned person", &e))?;
        tx.commit().await.map_err(commit_error)?;
        self.read_user(&id).await?.ok_or(ProvisioningError::NotFound)
    }

    async fn user(&self, id: &str) -> Result<Option<Stored>> {
        self.read_user(id).await
    }

    async fn users(&self) -> Result<Vec<Stored>> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, UserRow>(
            "SELECT s.identity_id, s.version, s.created_at, s.updated_at, s.document, a.disabled \
             FROM scim_users s LEFT JOIN accounts a ON a.identity_id = s.identity_id \
             ORDER BY s.created_at, s.identity_id"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| unavailable("listing people", &e))?;
        Ok(rows.into_iter().map(stored_user).collect())
    }

    async fn replace_user(&self, id: &str, user: &UserRecord, if_version: Option<i64>) -> Result<Stored> {
        let mut tx = self.begin_write().await.map_err(from_directory)?;
        self.bump(&mut tx, "scim_users", id, &user.document, if_version).await?;
        on_tx!(tx, |c| sqlx::query("UPDATE scim_users SET external_id = $2 WHERE identity_id = $1")
            .bind(id)
            .bind(&user.external_id)
            .execute(&mut *c)
            .await
            .map(|_| ()))
        .map_err(|e| unavailable("updating a person", &e))?;
        self.write_person(&mut tx, id, user, true).await?;
        tx.commit().await.map_err(commit_error)?;
        self.read_user(id).await?.ok_or(ProvisioningError::NotFound)
    }

    async fn delete_user(&self, id: &str, if_version: Option<i64>) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(from_directory)?;
        self.check_version(&mut tx, "scim_users", id, if_version).await?;
        let groups = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
            "SELECT group_id FROM scim_group_members WHERE identity_id = $1"
        )
        .bind(id)
        .fetch_all(&mut *c)
        .await)
        .map_err(|e| unavailable("reading memberships", &e))?;
        for group in groups {
            on_tx!(tx, |c| sqlx::query("DELETE FROM identity_roles WHERE identity_id = $1 AND granted_by = $2")
                .bind(id)
                .bind(group_grantor(&group))
                .execute(&mut *c)
                .await
                .map(|_| ()))
            .map_err(|e| unavailable("taking back roles", &e))?;
        }
        for sql in [
            "DELETE FROM scim_group_members WHERE identity_id = $1",
            "UPDATE accounts SET disabled = TRUE WHERE identity_id = $1",
            "DELETE FROM scim_users WHERE identity_id = $1",
        ] {
            on_tx!(tx, |c| sqlx::query(sql).bind(id).execute(&mut *c).await.map(|_| ()))
                .map_err(|e| unavailable("deleting a person", &e))?;
        }
        tx.commit().await.map_err(commit_error)
    }

    async fn create_group(&self, group: &GroupRecord) -> Result<Stored> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.begin_write().await.map_err(from_directory)?;
        self.display_name_taken(&mut tx, &group.display_name, &id).await?;
        let at = now().map_err(from_directory)?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO scim_groups (id, display_name, external_id, role, document, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)"
        )
        .bind(&id)
        .bind(&group.display_name)
        .bind(&group.external_id)
        .bind(group.role.map(|r| r.as_str()))
        .bind(&group.document)
        .bind(&at)
        .execute(&mut *c)
        .await
        .map(|_| ()))
        .map_err(|e| unavailable("creating a group", &e))?;
        self.write_members(&mut tx, &id, group).await?;
        tx.commit().await.map_err(commit_error)?;
        self.group(&id).await?.ok_or(ProvisioningError::NotFound)
    }

    async fn group(&self, id: &str) -> Result<Option<Stored>> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, StoredRow>(
            "SELECT id, version, created_at, updated_at, document FROM scim_groups WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)
        .map_err(|e| unavailable("reading a group", &e))?;
        match row {
            Some(row) => self.stored_group(row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn groups(&self) -> Result<Vec<Stored>> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, StoredRow>(
            "SELECT id, version, created_at, updated_at, document FROM scim_groups ORDER BY created_at, id"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| unavailable("listing groups", &e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.stored_group(row).await?);
        }
        Ok(out)
    }

    async fn replace_group(&self, id: &str, group: &GroupRecord, if_version: Option<i64>) -> Result<Stored> {
        let mut tx = self.begin_write().await.map_err(from_directory)?;
        self.bump(&mut tx, "scim_groups", id, &group.document, if_version).await?;
        self.display_name_taken(&mut tx, &group.display_name, id).await?;
        on_tx!(tx, |c| sqlx::query(
            "UPDATE scim_groups SET display_name = $2, external_id = $3, role = $4 WHERE id = $1"
        )
        .bind(id)
        .bind(&group.display_name)
        .bind(&group.external_id)
        .bind(group.role.map(|r| r.as_str()))
        .execute(&mut *c)
        .await
        .map(|_| ()))
        .map_err(|e| unavailable("updating a group", &e))?;
        self.write_members(&mut tx, id, group).await?;
        tx.commit().await.map_err(commit_error)?;
        self.group(id).await?.ok_or(ProvisioningError::NotFound)
    }

    async fn delete_group(&self, id: &str, if_version: Option<i64>) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(from_directory)?;
        self.check_version(&mut tx, "scim_groups", id, if_version).await?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM identity_roles WHERE granted_by = $1")
            .bind(group_grantor(id))
            .execute(&mut *c)
            .await
            .map(|_| ()))
        .map_err(|e| unavailable("taking back a group's roles", &e))?;
        for sql in ["DELETE FROM scim_group_members WHERE group_id = $1", "DELETE FROM scim_groups WHERE id = $1"] {
            on_tx!(tx, |c| sqlx::query(sql).bind(id).execute(&mut *c).await.map(|_| ()))
                .map_err(|e| unavailable("deleting a group", &e))?;
        }
        tx.commit().await.map_err(commit_error)
    }
}
