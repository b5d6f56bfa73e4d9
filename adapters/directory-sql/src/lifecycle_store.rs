//! The life cycle on the directory database (migration `0011_lifecycle.sql`): people as the life
//! cycle sees them, a feed's diff applied all or nothing, end dates enforced (the account disabled
//! with a note of access to end, as for a leaver of the LDAP sync), time-bounded people added by hand.
use std::collections::HashMap;

use vigie_core::directory::{AccessTarget, Account, DirectoryError, Identity};

use crate::db::{Tx, on_pool, on_tx};
use crate::directory::{failed, has_account, store_account, store_identity};
use crate::lifecycle::{FEED_GRANTOR, FeedDiff, Person};
use crate::{HrRow, SqlDirectory};

/// What applying a feed did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Identities created.
    pub joiners: usize,
    /// Identities updated.
    pub movers: usize,
    /// People whose access was ended.
    pub leavers: usize,
    /// People reinstated.
    pub returning: usize,
    /// Accounts created for rows with a username.
    pub accounts_created: usize,
}

/// A person whose access the life cycle just ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Directory id.
    pub identity_id: String,
    /// HR matricule.
    pub matricule: String,
    /// Login name, when the person has an account.
    pub username: Option<String>,
    /// Why (the end date, or absence from the feed).
    pub why: String,
}

/// A time-bounded person added by hand (`vigie users add-temporary`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Temporary {
    /// The identity (its id is chosen by the directory).
    pub identity: Identity,
    /// Login name of the account created.
    pub username: String,
    /// First instant of activity ([`crate::lifecycle::stamp`] form).
    pub start_at: String,
    /// Instant access ends.
    pub end_at: String,
    /// Matricule of the responsible manager (an identity of the directory).
    pub sponsor: String,
    /// Kind of person (`intern`, `contractor`, …).
    pub kind: String,
}

type IdentityRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

impl SqlDirectory {
    /// Everyone in the directory, as the life cycle sees them, by matricule. Four reads, whatever
    /// the number of people (a feed of 10,000 reads the directory once).
    pub async fn people(&self) -> Result<Vec<Person>, DirectoryError> {
        let identities = on_pool!(self.pool, |c| sqlx::query_as::<_, IdentityRow>(
            "SELECT id, matricule, family_name, given_name, birth_date, metier, grade, idnat, start_at, end_at, \
             sponsor, person_kind, source, employment_status, lifecycle_ended FROM identities ORDER BY matricule"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the people", &e))?;
        let accounts = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, bool, String)>(
            "SELECT identity_id, username, disabled, kind FROM accounts"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the accounts", &e))?;
        let affectations = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, i32)>(
            "SELECT identity_id, uf, share FROM affectations ORDER BY identity_id, share DESC, uf"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the affectations", &e))?;
        let grants = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String)>(
            "SELECT identity_id, role, granted_by FROM identity_roles ORDER BY identity_id, role"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the roles", &e))?;
        let mut roles: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
        for (id, role, by) in grants {
            let held = roles.entry(id).or_default();
            if by == FEED_GRANTOR {
                held.1.push(role.clone());
            }
            held.0.push(role);
        }
        let mut accounts: HashMap<String, (String, bool, String)> =
            accounts.into_iter().map(|(id, u, d, k)| (id, (u, d, k))).collect();
        let mut units: HashMap<String, Vec<vigie_core::directory::Affectation>> = HashMap::new();
        for (id, uf, share) in affectations {
            let share = u8::try_from(share).unwrap_or_default();
            units.entry(id).or_default().push(vigie_core::directory::Affectation { uf, share });
        }
        identities
            .into_iter()
            .map(|r| {
                let account = accounts.remove(&r.0);
                let (roles, feed_roles) = roles.remove(&r.0).unwrap_or_default();
                let idnat = r.7.map(|s| {
                    vigie_core::IdNat::parse(&s).map_err(|_| {
                        DirectoryError::Unavailable(format!(
                            "the directory database holds an idNat {s:?} that is not one (identity {}): fix the row",
                            r.0
                        ))
                    })
                });
                Ok(Person {
                    identity: Identity {
                        units: units.remove(&r.0).unwrap_or_default(),
                        id: r.0,
                        matricule: r.1,
                        family_name: r.2,
                        given_name: r.3,
                        birth_date: r.4,
                        metier: r.5,
                        grade: r.6,
                        idnat: idnat.transpose()?,
                    },
                    start_at: r.8,
                    end_at: r.9,
                    sponsor: r.10,
                    kind: r.11,
                    source: r.12,
                    status: r.13,
                    lifecycle_ended: r.14,
                    disabled: account.as_ref().map(|a| a.1),
                    account_kind: account.as_ref().map(|a| a.2.clone()),
                    username: account.map(|a| a.0),
                    roles,
                    feed_roles,
                })
            })
            .collect()
    }

    /// Applies a feed's diff in one transaction (nothing is written on error): joiners and movers
    /// stored as the feed says, returners reinstated, leavers ended. `run` names the feed run in
    /// the reasons the ended people's notes carry. `rows` is the feed the diff was made of.
    pub async fn apply_feed(&self, diff: &FeedDiff, rows: &[HrRow], run: &str) -> Result<Applied, DirectoryError> {
        let by_matricule: HashMap<&str, &HrRow> = rows.iter().map(|r| (r.matricule.as_str(), r)).collect();
        let mut applied = Applied::default();
        let mut tx = self.begin_write().await?;
        let stored = diff.joiners.iter().chain(&diff.movers).chain(&diff.returning).chain(&diff.leavers);
        for entry in stored {
            // A leaver absent from the feed has no row: only their access changes.
            let Some(row) = by_matricule.get(entry.matricule.as_str()) else { continue };
            let at_row = |e: DirectoryError| match e {
                DirectoryError::Invalid(m) => DirectoryError::Invalid(format!(
                    "line {} (matricule {:?}): {m}; nothing was applied",
                    row.line, row.matricule
                )),
                other => other,
            };
            let (id, _) = store_identity(&mut tx, &row.identity()).await.map_err(at_row)?;
            set_lifecycle(&mut tx, &id, row).await?;
            if let Some(roles) = &row.roles {
                set_feed_roles(&mut tx, &id, roles).await?;
            }
            if let Some(username) = &row.username
                && !has_account(&mut tx, &id).await.map_err(at_row)?
            {
                let account = Account {
                    identity_id: id.clone(),
                    username: username.clone(),
                    password_hash: None,
                    totp_secret: None,
                    disabled: false,
                };
                store_account(&mut tx, &account).await.map_err(at_row)?;
                applied.accounts_created += 1;
            }
        }
        applied.joiners = diff.joiners.len();
        applied.movers = diff.movers.len();
        for entry in &diff.returning {
            reinstate_in(&mut tx, &entry.matricule).await?;
            applied.returning += 1;
        }
        for entry in &diff.leavers {
            let why = format!("{} (HR feed run {run})", entry.why.as_deref().unwrap_or_default());
            if end_in(&mut tx, &entry.matricule, &why).await? {
                applied.leavers += 1;
            }
        }
        tx.commit().await.map_err(|e| failed("saving the HR feed", &e))?;
        Ok(applied)
    }

    /// Ends the access of everyone whose end date is at or before `now` and whose access the life
    /// cycle has not ended yet. Safe on several replicas at once: each person is ended once.
    pub async fn end_due(&self, now: &str) -> Result<Vec<Ended>, DirectoryError> {
        let due = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String, Option<String>)>(
            "SELECT i.id, i.matricule, i.end_at, a.username FROM identities i \
             LEFT JOIN accounts a ON a.identity_id = i.id \
             WHERE i.end_at IS NOT NULL AND i.end_at <= $1 AND i.lifecycle_ended IS NULL ORDER BY i.end_at"
        )
        .bind(now)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the end dates", &e))?;
        let mut ended = Vec::new();
        for (identity_id, matricule, end_at, username) in due {
            let why = format!("end date {end_at} passed");
            let mut tx = self.begin_write().await?;
            let done = end_in(&mut tx, &matricule, &why).await?;
            tx.commit().await.map_err(|e| failed("ending access at an end date", &e))?;
            if done {
                ended.push(Ended { identity_id, matricule, username, why });
            }
        }
        Ok(ended)
    }

    /// The next instant after `now` at which someone's access opens or ends by date.
    pub async fn next_lifecycle_instant(&self, now: &str) -> Result<Option<String>, DirectoryError> {
        let (end, start) = on_pool!(self.pool, |c| sqlx::query_as::<_, (Option<String>, Option<String>)>(
            "SELECT (SELECT MIN(end_at) FROM identities WHERE end_at > $1 AND lifecycle_ended IS NULL), \
                    (SELECT MIN(start_at) FROM identities WHERE start_at > $1)"
        )
        .bind(now)
        .fetch_one(c)
        .await)
        .map_err(|e| failed("reading the next end date", &e))?;
        Ok([end, start].into_iter().flatten().min())
    }

    /// HR brings back someone whose access the life cycle ended (`vigie users set-status … active`):
    /// the account enabled again. `Err(Invalid)` when their end date has passed (it must move first).
    pub async fn reinstate(&self, username: &str, now: &str) -> Result<bool, DirectoryError> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT i.matricule, i.end_at, i.lifecycle_ended FROM identities i \
             JOIN accounts a ON a.identity_id = i.id WHERE a.username = $1"
        )
        .bind(username)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading a person", &e))?;
        let Some((matricule, end_at, ended)) = row else { return Ok(false) };
        if let Some(end) = end_at.filter(|e| e.as_str() <= now) {
            return Err(DirectoryError::Invalid(format!(
                "the end date of {username} ({end}) has passed: HR must give a later one (a feed with a later \
                 `end_date`) before the account can be active again"
            )));
        }
        if ended.is_none() {
            return Ok(true);
        }
        let mut tx = self.begin_write().await?;
        reinstate_in(&mut tx, &matricule).await?;
        tx.commit().await.map_err(|e| failed("reinstating a person", &e))?;
        Ok(true)
    }

    /// Adds a time-bounded person and their account; refused when the matricule or the username
    /// is taken, or the sponsor is not in the directory.
    pub async fn add_temporary(&self, t: &Temporary) -> Result<String, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let taken =
            on_tx!(tx, |c| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM identities WHERE matricule = $1")
                .bind(&t.identity.matricule)
                .fetch_one(&mut *c)
                .await)
            .map_err(|e| failed("reading a matricule", &e))?;
        if taken > 0 {
            return Err(DirectoryError::Invalid(format!(
                "matricule {:?} is already in the directory: choose another one, or change this person's dates \
                 through the HR feed",
                t.identity.matricule
            )));
        }
        let sponsor = on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM identities WHERE matricule = $1 AND employment_status = 'active' \
             AND lifecycle_ended IS NULL"
        )
        .bind(&t.sponsor)
        .fetch_one(&mut *c)
        .await)
        .map_err(|e| failed("reading the sponsor", &e))?;
        if sponsor == 0 {
            return Err(DirectoryError::Invalid(format!(
                "the sponsor {:?} is not an active person of the directory: give the matricule of the responsible \
                 manager",
                t.sponsor
            )));
        }
        let (id, _) = store_identity(&mut tx, &t.identity).await?;
        on_tx!(tx, |c| sqlx::query(
            "UPDATE identities SET start_at = $1, end_at = $2, sponsor = $3, person_kind = $4, source = 'cli' \
             WHERE id = $5"
        )
        .bind(&t.start_at)
        .bind(&t.end_at)
        .bind(&t.sponsor)
        .bind(&t.kind)
        .bind(&id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("storing a person's dates", &e))?;
        let account = Account {
            identity_id: id.clone(),
            username: t.username.clone(),
            password_hash: None,
            totp_secret: None,
            disabled: false,
        };
        store_account(&mut tx, &account).await?;
        tx.commit().await.map_err(|e| failed("adding a person", &e))?;
        Ok(id)
    }
}

/// The feed's dates, sponsor and kind of a person, who becomes HR's.
async fn set_lifecycle(tx: &mut Tx, id: &str, row: &HrRow) -> Result<(), DirectoryError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE identities SET start_at = $1, end_at = $2, sponsor = $3, person_kind = $4, source = 'hr' WHERE id = $5"
    )
    .bind(&row.start_at)
    .bind(&row.end_at)
    .bind(&row.sponsor)
    .bind(&row.kind)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(|e| failed("storing a person's dates", &e))?;
    Ok(())
}

/// The roles the feed grants a person become `listed`: those it granted before and no longer
/// lists taken back, the new ones granted as [`FEED_GRANTOR`]; a role another source granted is
/// left as it is (listed or not). The caller tells the replicas once the transaction is committed.
pub(crate) async fn set_feed_roles(tx: &mut Tx, id: &str, listed: &[String]) -> Result<(), DirectoryError> {
    let held = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
        "SELECT role FROM identity_roles WHERE identity_id = $1 AND granted_by = $2"
    )
    .bind(id)
    .bind(FEED_GRANTOR)
    .fetch_all(&mut *c)
    .await)
    .map_err(|e| failed("reading the roles the HR feed granted", &e))?;
    for role in held.iter().filter(|r| !listed.contains(r)) {
        on_tx!(tx, |c| sqlx::query(
            "DELETE FROM identity_roles WHERE identity_id = $1 AND role = $2 AND granted_by = $3"
        )
        .bind(id)
        .bind(role)
        .bind(FEED_GRANTOR)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("taking back a role the HR feed granted", &e))?;
    }
    let now = crate::directory::now()?;
    for role in listed.iter().filter(|r| !held.contains(r)) {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO identity_roles (identity_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (identity_id, role) DO NOTHING"
        )
        .bind(id)
        .bind(role)
        .bind(&now)
        .bind(FEED_GRANTOR)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("granting a role of the HR feed", &e))?;
    }
    Ok(())
}

/// Ends a person's access: status `left`, account disabled, a note of access to end (which the
/// sweep of `serve` completes: sessions, refresh families). `false` when already ended.
async fn end_in(tx: &mut Tx, matricule: &str, why: &str) -> Result<bool, DirectoryError> {
    let id = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
        "UPDATE identities SET employment_status = 'left', lifecycle_ended = $1 \
         WHERE matricule = $2 AND lifecycle_ended IS NULL RETURNING id"
    )
    .bind(why)
    .bind(matricule)
    .fetch_optional(&mut *c)
    .await)
    .map_err(|e| failed("ending a person's access", &e))?;
    let Some(id) = id else { return Ok(false) };
    on_tx!(tx, |c| sqlx::query("UPDATE accounts SET disabled = TRUE WHERE identity_id = $1")
        .bind(&id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(|e| failed("disabling an account", &e))?;
    crate::revocations::add(tx, &AccessTarget::Identity(id), why).await?;
    Ok(true)
}

/// Undoes [`end_in`]: status `active`, account enabled.
async fn reinstate_in(tx: &mut Tx, matricule: &str) -> Result<(), DirectoryError> {
    let id = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
        "UPDATE identities SET employment_status = 'active', lifecycle_ended = NULL \
         WHERE matricule = $1 AND lifecycle_ended IS NOT NULL RETURNING id"
    )
    .bind(matricule)
    .fetch_optional(&mut *c)
    .await)
    .map_err(|e| failed("reinstating a person", &e))?;
    if let Some(id) = id {
        on_tx!(tx, |c| sqlx::query("UPDATE accounts SET disabled = FALSE WHERE identity_id = $1")
            .bind(&id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("enabling an account", &e))?;
    }
    Ok(())
}
