//! The e-mail reminders before an end date on the directory database (migration
//! `0017_reminders.sql`): who ends soon, with whom to write to, and each reminder claimed once.
use vigie_core::directory::DirectoryError;

use crate::SqlDirectory;
use crate::db::{on_pool, on_tx};
use crate::directory::failed;

/// A person whose access ends within the reminders' longest threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiring {
    /// Directory id.
    pub identity_id: String,
    /// HR matricule.
    pub matricule: String,
    /// "Given Family".
    pub name: String,
    /// The instant access ends ([`crate::lifecycle::stamp`] form).
    pub end_at: String,
    /// Their e-mail address, when the directory has one.
    pub email: Option<String>,
    /// The responsible manager, when the person has one in the directory: id, name, e-mail.
    pub sponsor: Option<(String, String, Option<String>)>,
}

/// Who a reminder goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// The person whose access ends.
    Person,
    /// Their responsible manager.
    Sponsor,
}

impl Recipient {
    /// `person` or `sponsor`, as stored and audited.
    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Person => "person",
            Recipient::Sponsor => "sponsor",
        }
    }
}

/// One reminder: to whom, for which end date and threshold.
#[derive(Clone, Copy, Debug)]
pub struct Reminder<'a> {
    /// Directory id of the person whose access ends.
    pub identity_id: &'a str,
    /// The end date reminded of.
    pub end_at: &'a str,
    /// The threshold, in days before `end_at`.
    pub days: u32,
    /// To whom.
    pub recipient: Recipient,
}

/// A person ending soon as read, with their manager's columns (NULL when they have none).
#[derive(sqlx::FromRow)]
struct ExpiringRow {
    id: String,
    matricule: String,
    name: String,
    end_at: String,
    email: Option<String>,
    sponsor_id: Option<String>,
    sponsor_name: Option<String>,
    sponsor_email: Option<String>,
}

impl SqlDirectory {
    /// Everyone still active whose end date is after `now` and at or before `until`, soonest first.
    pub async fn expiring(&self, now: &str, until: &str) -> Result<Vec<Expiring>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, ExpiringRow>(
            "SELECT i.id, i.matricule, i.given_name || ' ' || i.family_name AS name, i.end_at, i.email, \
                    s.id AS sponsor_id, s.given_name || ' ' || s.family_name AS sponsor_name, s.email AS sponsor_email \
             FROM identities i LEFT JOIN identities s ON s.matricule = i.sponsor \
             WHERE i.end_at > $1 AND i.end_at <= $2 AND i.lifecycle_ended IS NULL \
               AND i.employment_status = 'active' ORDER BY i.end_at"
        )
        .bind(now)
        .bind(until)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the end dates to remind", &e))?;
        let present = |e: Option<String>| e.filter(|e| !e.is_empty());
        Ok(rows
            .into_iter()
            .map(|r| Expiring {
                identity_id: r.id,
                matricule: r.matricule,
                name: r.name,
                end_at: r.end_at,
                email: present(r.email),
                sponsor: r.sponsor_id.map(|id| (id, r.sponsor_name.unwrap_or_default(), present(r.sponsor_email))),
            })
            .collect())
    }

    /// Claims a reminder before sending it: `true` for the one caller (of every process) that
    /// should send it, `false` when it was sent, is being sent, or had nobody to go to.
    /// A transaction: the reminders' lease fence, when given ([`SqlDirectory::fenced`]), is
    /// checked in it.
    pub async fn claim_reminder(&self, r: Reminder<'_>, now: &str) -> Result<bool, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let done = on_tx!(tx, |c| sqlx::query(
            "INSERT INTO lifecycle_reminders (identity_id, end_at, days, recipient, state, at) \
             VALUES ($1, $2, $3, $4, 'sending', $5) ON CONFLICT DO NOTHING"
        )
        .bind(r.identity_id)
        .bind(r.end_at)
        .bind(i64::from(r.days))
        .bind(r.recipient.as_str())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("claiming a reminder", &e))?;
        tx.commit().await.map_err(|e| failed("claiming a reminder", &e))?;
        Ok(done == 1)
    }

    /// Settles a claimed reminder: `Some("sent")` / `Some("no_address")` keep it done; `None` frees
    /// the claim so that the next wake tries again (the relay failed).
    pub async fn settle_reminder(&self, r: Reminder<'_>, state: Option<&str>, now: &str) -> Result<(), DirectoryError> {
        let Some(state) = state else {
            return on_pool!(self.pool, |c| sqlx::query(
                "DELETE FROM lifecycle_reminders WHERE identity_id = $1 AND end_at = $2 AND days = $3 AND recipient = $4"
            )
            .bind(r.identity_id)
            .bind(r.end_at)
            .bind(i64::from(r.days))
            .bind(r.recipient.as_str())
            .execute(c)
            .await
            .map(|_| ()))
            .map_err(|e| failed("freeing a reminder", &e));
        };
        on_pool!(self.pool, |c| sqlx::query(
            "UPDATE lifecycle_reminders SET state = $5, at = $6 \
             WHERE identity_id = $1 AND end_at = $2 AND days = $3 AND recipient = $4"
        )
        .bind(r.identity_id)
        .bind(r.end_at)
        .bind(i64::from(r.days))
        .bind(r.recipient.as_str())
        .bind(state)
        .bind(now)
        .execute(c)
        .await
        .map(|_| ()))
        .map_err(|e| failed("settling a reminder", &e))
    }

    /// Forgets the reminders of end dates that are no longer the person's (a date moved: the new
    /// one is reminded afresh) and the claims older than `stale_before` still `sending` (the
    /// process that claimed them died mid-send). The number of rows forgotten.
    /// A transaction: the reminders' lease fence, when given, is checked in it.
    pub async fn forget_stale_reminders(&self, stale_before: &str) -> Result<u64, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let forgotten = on_tx!(tx, |c| sqlx::query(
            "DELETE FROM lifecycle_reminders WHERE (state = 'sending' AND at < $1) OR NOT EXISTS \
             (SELECT 1 FROM identities i WHERE i.id = lifecycle_reminders.identity_id AND i.end_at = lifecycle_reminders.end_at)"
        )
        .bind(stale_before)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("forgetting old reminders", &e))?;
        tx.commit().await.map_err(|e| failed("forgetting old reminders", &e))?;
        Ok(forgotten)
    }

    /// Moves the end date of the person with this matricule or login name (`end_at` in
    /// [`crate::lifecycle::stamp`] form, or `None`: no end date); their matricule, or `None` when
    /// nobody has that name.
    pub async fn set_end_date(&self, who: &str, end_at: Option<&str>) -> Result<Option<String>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_scalar::<_, String>(
            "UPDATE identities SET end_at = $1 WHERE matricule = $2 \
             OR id = (SELECT identity_id FROM accounts WHERE username = $2) RETURNING matricule"
        )
        .bind(end_at)
        .bind(who)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("moving an end date", &e))
    }
}
