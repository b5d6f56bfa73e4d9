//! Professionals announced by HR before their first login (migration `0005_announced.sql`): with
//! `psc.jit`, the first login through Pro Santé Connect of an announced idNat creates the identity.
//!
//! An announcement is single use: [`SqlDirectory::create_announced`] deletes it (`DELETE …
//! RETURNING`: one deleter gets the row) and creates the identity in one write transaction, so
//! two replicas finishing two logins at once create one.
use vigie_core::IdNat;
pub use vigie_core::directory::Announcement;
use vigie_core::directory::{Affectation, DirectoryError, Identity};

use crate::SqlDirectory;
use crate::db::{on_pool, on_tx};
use crate::directory::{failed, store_identity};
use crate::rules;

/// Longest an announcement may stay open, in days.
pub const MAX_ANNOUNCEMENT_DAYS: u32 = 366;

/// What HR announces.
#[derive(Clone, Debug)]
pub struct NewAnnouncement<'a> {
    /// The professional's idNat.
    pub idnat: &'a IdNat,
    /// Family name.
    pub family_name: &'a str,
    /// Given name.
    pub given_name: &'a str,
    /// Functional unit code of their first affectation.
    pub unit: Option<&'a str>,
    /// Who announces (audit and listing).
    pub announced_by: &'a str,
    /// Days the announcement stays usable, 1..=366.
    pub days: u32,
}

/// `t` (Unix seconds) as RFC 3339 UTC, the form the directory stores times in.
pub(crate) fn format_time(t: i64) -> Result<String, DirectoryError> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| DirectoryError::Invalid(format!("{t} is not a representable time")))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

type Row = (String, String, String, Option<String>, String, String, String);

/// The columns of a [`Row`], in order.
macro_rules! columns {
    () => {
        "idnat, family_name, given_name, unit, announced_by, announced_at, expires_at"
    };
}

fn from_row((idnat, family_name, given_name, unit, announced_by, announced_at, expires_at): Row) -> Announcement {
    Announcement { idnat, family_name, given_name, unit, announced_by, announced_at, expires_at }
}

/// The matricule of an identity created at its first login through PSC (HR has none yet).
pub fn jit_matricule(idnat: &IdNat) -> String {
    format!("PSC-{}", idnat.as_str())
}

impl SqlDirectory {
    /// Announces a professional (or renews the announcement of the same idNat). Refused when an
    /// identity already has this idNat: that person logs in as themselves, nothing to create.
    pub async fn announce(&self, a: &NewAnnouncement<'_>) -> Result<Announcement, DirectoryError> {
        let check = || -> Result<(), String> {
            rules::check_text("family name", a.family_name, true)?;
            rules::check_text("given name", a.given_name, true)?;
            if let Some(u) = a.unit {
                rules::check_uf(u)?;
            }
            if !(1..=MAX_ANNOUNCEMENT_DAYS).contains(&a.days) {
                return Err(format!("an announcement lasts 1 to {MAX_ANNOUNCEMENT_DAYS} days, not {}", a.days));
            }
            Ok(())
        };
        check().map_err(|e| DirectoryError::Invalid(format!("announcement of {}: {e}", a.idnat.as_str())))?;
        let now = now();
        let announcement = Announcement {
            idnat: a.idnat.as_str().to_owned(),
            family_name: a.family_name.trim().to_owned(),
            given_name: a.given_name.trim().to_owned(),
            unit: a.unit.map(str::to_owned),
            announced_by: a.announced_by.to_owned(),
            announced_at: format_time(now)?,
            expires_at: format_time(now + i64::from(a.days) * 86_400)?,
        };
        let mut tx = self.begin_write().await?;
        let known =
            on_tx!(tx, |c| sqlx::query_scalar::<_, String>("SELECT matricule FROM identities WHERE idnat = $1")
                .bind(a.idnat.as_str())
                .fetch_optional(&mut *c)
                .await)
            .map_err(|e| failed("looking up an idNat", &e))?;
        if let Some(matricule) = known {
            return Err(DirectoryError::Invalid(format!(
                "idNat {} already belongs to the identity with matricule {matricule:?}: they can log in, there is \
                 nothing to announce",
                a.idnat.as_str()
            )));
        }
        on_tx!(tx, |c| sqlx::query(concat!(
            "INSERT INTO announced_professionals (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (idnat) DO UPDATE SET family_name = excluded.family_name, \
             given_name = excluded.given_name, unit = excluded.unit, announced_by = excluded.announced_by, \
             announced_at = excluded.announced_at, expires_at = excluded.expires_at"
        ))
        .bind(&announcement.idnat)
        .bind(&announcement.family_name)
        .bind(&announcement.given_name)
        .bind(&announcement.unit)
        .bind(&announcement.announced_by)
        .bind(&announcement.announced_at)
        .bind(&announcement.expires_at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("storing an announcement", &e))?;
        tx.commit().await.map_err(|e| failed("storing an announcement", &e))?;
        Ok(announcement)
    }

    /// Every announcement, expired ones included (the caller says which), by idNat.
    pub async fn announcements(&self) -> Result<Vec<Announcement>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM announced_professionals ORDER BY idnat"
        ))
        .fetch_all(c)
        .await)
        .map_err(|e| failed("listing announcements", &e))?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Withdraws the announcement of this idNat; false when there was none.
    pub async fn withdraw_announcement(&self, idnat: &IdNat) -> Result<bool, DirectoryError> {
        let done = on_pool!(self.pool, |c| sqlx::query("DELETE FROM announced_professionals WHERE idnat = $1")
            .bind(idnat.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("withdrawing an announcement", &e))?;
        Ok(done > 0)
    }

    /// Just-in-time creation: when this idNat is announced and the announcement has not lapsed,
    /// uses it up and creates the identity (names as PSC asserted them, else as HR announced
    /// them; the announced unit), in one transaction. `None` when nothing (valid) was announced.
    pub async fn create_announced(
        &self,
        idnat: &IdNat,
        family_name: Option<&str>,
        given_name: Option<&str>,
    ) -> Result<Option<(String, Announcement)>, DirectoryError> {
        let mut tx = self.begin_write().await?;
        // Taken and deleted in one statement: of two logins at once (two replicas, on
        // PostgreSQL), only the one whose DELETE removed the row gets it back.
        let row = on_tx!(tx, |c| sqlx::query_as::<_, Row>(concat!(
            "DELETE FROM announced_professionals WHERE idnat = $1 RETURNING ",
            columns!()
        ))
        .bind(idnat.as_str())
        .fetch_optional(&mut *c)
        .await)
        .map_err(|e| failed("using up an announcement", &e))?;
        let Some(announcement) = row.map(from_row) else { return Ok(None) };
        if announcement.expired_at(now()) {
            // A lapsed announcement goes, and creates nothing.
            tx.commit().await.map_err(|e| failed("removing a lapsed announcement", &e))?;
            return Ok(None);
        }
        let name = |asserted: Option<&str>, announced: &str| {
            asserted
                .map(str::trim)
                .filter(|n| rules::check_text("name", n, true).is_ok())
                .unwrap_or(announced)
                .to_owned()
        };
        let identity = Identity {
            id: String::new(),
            matricule: jit_matricule(idnat),
            family_name: name(family_name, &announcement.family_name),
            given_name: name(given_name, &announcement.given_name),
            birth_date: None,
            metier: None,
            grade: None,
            idnat: Some(idnat.clone()),
            units: announcement.unit.iter().map(|uf| Affectation { uf: uf.clone(), share: 100 }).collect(),
        };
        let (id, _created) = store_identity(&mut tx, &identity).await?;
        tx.commit().await.map_err(|e| failed("creating an announced identity", &e))?;
        Ok(Some((id, announcement)))
    }
}
