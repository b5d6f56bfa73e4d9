//! [`Fido2Credentials`] on the directory database: the security keys of each identity
//! (migration `0003_fido2.sql`), with the signature counter compared and moved in one statement.
use async_trait::async_trait;
use vigie_core::directory::DirectoryError;
use vigie_core::fido2::{CounterCheck, Fido2Credential, Fido2Credentials};

use crate::SqlDirectory;
use crate::db::{on_pool, on_tx};
use crate::directory::failed;

type Row = (String, String, String, String, String, bool, String, i64, String, Option<String>);

/// The columns of a [`Row`], in order.
macro_rules! columns {
    () => {
        "credential_id, identity_id, user_handle, name, aaguid, attested, public_key, sign_count, created_at, last_used_at"
    };
}

fn from_row(r: Row) -> Result<Fido2Credential, DirectoryError> {
    let (id, identity_id, user_handle, name, aaguid, attested, public_key, sign_count, created_at, last_used_at) = r;
    let sign_count = u32::try_from(sign_count).map_err(|_| {
        DirectoryError::Unavailable(format!(
            "the directory database holds a signature counter {sign_count} out of range for FIDO2 credential {id}: \
             it was edited by hand? fix the row"
        ))
    })?;
    Ok(Fido2Credential {
        id,
        identity_id,
        user_handle,
        name,
        aaguid,
        attested,
        public_key,
        sign_count,
        created_at,
        last_used_at,
    })
}

#[async_trait]
impl Fido2Credentials for SqlDirectory {
    async fn add_credential(&self, c: &Fido2Credential) -> Result<(), DirectoryError> {
        if c.id.is_empty() || c.id.len() > 1400 {
            return Err(DirectoryError::Invalid("a FIDO2 credential id has 1 to 1023 bytes (WebAuthn §4)".into()));
        }
        if c.name.trim().is_empty() || c.name.chars().count() > 64 {
            return Err(DirectoryError::Invalid("a security key's name has 1 to 64 characters".into()));
        }
        let mut tx = self.begin_write().await?;
        let taken = on_tx!(tx, |db| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM fido2_credentials WHERE credential_id = $1"
        )
        .bind(&c.id)
        .fetch_one(&mut *db)
        .await)
        .map_err(|e| failed("looking up a FIDO2 credential", &e))?;
        if taken > 0 {
            // WebAuthn §7.1 step 22: a credential id registered to anyone is refused.
            return Err(DirectoryError::Invalid("this security key is already registered".into()));
        }
        on_tx!(tx, |db| sqlx::query(concat!(
            "INSERT INTO fido2_credentials (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&c.id)
        .bind(&c.identity_id)
        .bind(&c.user_handle)
        .bind(c.name.trim())
        .bind(&c.aaguid)
        .bind(c.attested)
        .bind(&c.public_key)
        .bind(i64::from(c.sign_count))
        .bind(&c.created_at)
        .bind(&c.last_used_at)
        .execute(&mut *db)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| {
            if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
                DirectoryError::Invalid(format!("no identity {:?} in the directory", c.identity_id))
            } else if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                // Registered meanwhile by a concurrent request (PostgreSQL: the check above does
                // not lock a row that does not exist yet; the primary key decides).
                DirectoryError::Invalid("this security key is already registered".into())
            } else {
                failed("storing a FIDO2 credential", &e)
            }
        })?;
        tx.commit().await.map_err(|e| failed("storing a FIDO2 credential", &e))
    }

    async fn credential(&self, id: &str) -> Result<Option<Fido2Credential>, DirectoryError> {
        on_pool!(self.pool, |db| sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM fido2_credentials WHERE credential_id = $1"
        ))
        .bind(id)
        .fetch_optional(db)
        .await)
        .map_err(|e| failed("looking up a FIDO2 credential", &e))?
        .map(from_row)
        .transpose()
    }

    async fn credentials_of(&self, identity_id: &str) -> Result<Vec<Fido2Credential>, DirectoryError> {
        on_pool!(self.pool, |db| sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM fido2_credentials WHERE identity_id = $1 ORDER BY created_at, credential_id"
        ))
        .bind(identity_id)
        .fetch_all(db)
        .await)
        .map_err(|e| failed("listing FIDO2 credentials", &e))?
        .into_iter()
        .map(from_row)
        .collect()
    }

    async fn record_use(
        &self,
        id: &str,
        sign_count: u32,
        public_key: &str,
        at: &str,
    ) -> Result<CounterCheck, DirectoryError> {
        // WebAuthn §7.2 step 22: a non-zero counter must be above the stored one. The
        // comparison is in the UPDATE itself, so concurrent uses cannot both pass it.
        let new = i64::from(sign_count);
        let updated = on_pool!(self.pool, |db| sqlx::query(
            "UPDATE fido2_credentials SET sign_count = $2, public_key = $3, last_used_at = $4 \
             WHERE credential_id = $1 AND (sign_count < $2 OR ($2 = 0 AND sign_count = 0))",
        )
        .bind(id)
        .bind(new)
        .bind(public_key)
        .bind(at)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("recording a FIDO2 login", &e))?;
        if updated == 1 {
            return Ok(CounterCheck::Accepted);
        }
        Ok(match self.credential(id).await? {
            Some(c) => CounterCheck::Regressed { stored: c.sign_count },
            None => CounterCheck::Unknown,
        })
    }

    async fn remove_credential(&self, identity_id: &str, id: &str) -> Result<bool, DirectoryError> {
        let done = on_pool!(self.pool, |db| sqlx::query(
            "DELETE FROM fido2_credentials WHERE identity_id = $1 AND credential_id = $2"
        )
        .bind(identity_id)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("removing a FIDO2 credential", &e))?;
        Ok(done > 0)
    }
}

#[cfg(test)]
mod tests {
    use vigie_core::directory::{Directory, Identity};

    use super::*;

    async fn directory_with_person() -> (SqlDirectory, String) {
        let d = SqlDirectory::open("sqlite::memory:").await.expect("open");
        let id = d
            .upsert_identity(&Identity {
                id: String::new(),
                matricule: "M001".into(),
                family_name: "Martin".into(),
                given_name: "Claire".into(),
                birth_date: None,
                metier: None,
                grade: None,
                idnat: None,
                units: vec![],
            })
            .await
            .expect("identity");
        (d, id)
    }

    fn key(id: &str, identity_id: &str, count: u32) -> Fido2Credential {
        Fido2Credential {
            id: id.into(),
            identity_id: identity_id.into(),
            user_handle: "0191c8a4-0000-7000-8000-000000000001".into(),
            name: "Clé bleue".into(),
            aaguid: "01020304-0506-0708-0102-030405060708".into(),
            attested: true,
            public_key: "{}".into(),
            sign_count: count,
            created_at: "2026-11-22T09:00:00Z".into(),
            last_used_at: None,
        }
    }

    #[tokio::test]
    async fn a_key_is_stored_listed_and_removed_by_its_owner_only() {
        let (d, who) = directory_with_person().await;
        d.add_credential(&key("AAEC", &who, 0)).await.expect("add");
        assert_eq!(d.credentials_of(&who).await.expect("list"), vec![key("AAEC", &who, 0)]);
        let unattested = Fido2Credential { attested: false, ..key("SOFT", &who, 0) };
        d.add_credential(&unattested).await.expect("add");
        assert_eq!(d.credential("SOFT").await.expect("get"), Some(unattested), "attested or not, as stored");
        let again = d.add_credential(&key("AAEC", &who, 0)).await;
        assert!(matches!(again, Err(DirectoryError::Invalid(m)) if m.contains("already registered")));
        let nobody = d.add_credential(&key("BBBB", "no-such-identity", 0)).await;
        assert!(matches!(nobody, Err(DirectoryError::Invalid(ref m)) if m.contains("no identity")), "{nobody:?}");
        assert!(!d.remove_credential("someone-else", "AAEC").await.expect("remove"));
        assert!(d.remove_credential(&who, "AAEC").await.expect("remove"));
        assert_eq!(d.credential("AAEC").await.expect("get"), None);
    }

    #[tokio::test]
    async fn a_counter_that_does_not_increase_is_refused_and_left_alone() {
        let (d, who) = directory_with_person().await;
        d.add_credential(&key("AAEC", &who, 5)).await.expect("add");
        assert_eq!(d.record_use("AAEC", 6, "{\"v\":6}", "t6").await.expect("use"), CounterCheck::Accepted);
        assert_eq!(
            d.record_use("AAEC", 6, "{\"v\":66}", "t7").await.expect("use"),
            CounterCheck::Regressed { stored: 6 }
        );
        assert_eq!(d.record_use("AAEC", 2, "{}", "t8").await.expect("use"), CounterCheck::Regressed { stored: 6 });
        assert_eq!(d.record_use("AAEC", 0, "{}", "t9").await.expect("use"), CounterCheck::Regressed { stored: 6 });
        let stored = d.credential("AAEC").await.expect("get").expect("present");
        assert_eq!(
            (stored.sign_count, stored.public_key.as_str(), stored.last_used_at.as_deref()),
            (6, "{\"v\":6}", Some("t6"))
        );
        assert_eq!(d.record_use("nope", 9, "{}", "t").await.expect("use"), CounterCheck::Unknown);
    }

    #[tokio::test]
    async fn a_disabled_account_is_reported() {
        let (d, who) = directory_with_person().await;
        assert!(!d.account_disabled(&who).await.expect("no account yet"));
        let mut account = vigie_core::directory::Account {
            identity_id: who.clone(),
            username: "cmartin".into(),
            password_hash: None,
            totp_secret: None,
            disabled: true,
        };
        d.upsert_account(&account).await.expect("account");
        assert!(d.account_disabled(&who).await.expect("read"));
        account.disabled = false;
        d.upsert_account(&account).await.expect("account");
        assert!(!d.account_disabled(&who).await.expect("read"));
    }

    #[tokio::test]
    async fn a_key_without_a_counter_keeps_zero() {
        let (d, who) = directory_with_person().await;
        d.add_credential(&key("ZERO", &who, 0)).await.expect("add");
        assert_eq!(d.record_use("ZERO", 0, "{}", "t1").await.expect("use"), CounterCheck::Accepted);
        assert_eq!(d.record_use("ZERO", 0, "{}", "t2").await.expect("use"), CounterCheck::Accepted);
    }
}
