//! The reminders' claims (`reminders.rs`, migration `0017_reminders.sql`) on a real SQLite file and
//! a real PostgreSQL server: who ends soon with their manager, each reminder claimed once, a freed
//! claim claimed again, a moved end date reminded afresh.
#[macro_use]
mod common;

use common::{camille, execute, ines};
use vigie_core::directory::Directory;
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::reminders::{Recipient, Reminder};

#[tokio::test]
async fn a_reminder_is_claimed_once_freed_on_failure_and_afresh_for_a_moved_end_date_on_both_databases() {
    for db in common::each_db("reminders").await {
        let dir = SqlDirectory::open(&db.url()).await.unwrap();
        let person = dir.upsert_identity(&camille()).await.unwrap();
        dir.upsert_identity(&ines()).await.unwrap();
        // Camille ends on the 10th, Inès (her manager) has an address, Camille none.
        execute(
            &db,
            "UPDATE identities SET end_at = '2030-01-10T12:00:00Z', sponsor = (SELECT matricule FROM identities \
             WHERE matricule <> '004512') WHERE matricule = '004512'",
        )
        .await;
        execute(&db, "UPDATE identities SET email = 'ines@chu.example' WHERE matricule <> '004512'").await;
        let soon = dir.expiring("2030-01-08T00:00:00Z", "2030-01-11T00:00:00Z").await.unwrap();
        assert_eq!(soon.len(), 1, "{soon:?} on {}", db.url());
        let (_, manager, email) = soon[0].sponsor.clone().expect("her manager");
        assert_eq!((soon[0].email.clone(), email.as_deref()), (None, Some("ines@chu.example")));
        assert_eq!(manager, format!("{} {}", ines().given_name, ines().family_name));
        assert!(dir.expiring("2030-01-01T00:00:00Z", "2030-01-05T00:00:00Z").await.unwrap().is_empty());

        let r =
            Reminder { identity_id: &person, end_at: "2030-01-10T12:00:00Z", days: 3, recipient: Recipient::Sponsor };
        let now = "2030-01-08T00:00:00Z";
        assert!(dir.claim_reminder(r, now).await.unwrap());
        assert!(!dir.claim_reminder(r, now).await.unwrap(), "claimed twice on {}", db.url());
        dir.settle_reminder(r, None, now).await.unwrap();
        assert!(dir.claim_reminder(r, now).await.unwrap(), "a freed claim is claimed again");
        dir.settle_reminder(r, Some("sent"), now).await.unwrap();
        assert_eq!(dir.forget_stale_reminders("2031-01-01T00:00:00Z").await.unwrap(), 0, "a sent one is kept");
        assert!(!dir.claim_reminder(r, now).await.unwrap());

        assert_eq!(dir.set_end_date("004512", Some("2030-02-10T12:00:00Z")).await.unwrap().as_deref(), Some("004512"));
        assert_eq!(dir.set_end_date("nobody", None).await.unwrap(), None);
        dir.set_end_date("004512", Some("2030-01-10T12:00:00Z")).await.unwrap();
        assert_eq!(dir.forget_stale_reminders(now).await.unwrap(), 0, "back to the same date before a look: kept");
        dir.set_end_date("004512", Some("2030-02-10T12:00:00Z")).await.unwrap();
        assert_eq!(dir.forget_stale_reminders(now).await.unwrap(), 1, "the old date's claim is forgotten");
        dir.set_end_date("004512", Some("2030-01-10T12:00:00Z")).await.unwrap();
        assert!(dir.claim_reminder(r, now).await.unwrap(), "moved out and back in: reminded again");
    }
}
