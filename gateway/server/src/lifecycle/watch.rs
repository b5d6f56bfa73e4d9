//! The end-date watch, on every replica of `serve`: it wakes at the next instant someone's access
//! ends or opens (and looks again every few seconds), ends the access of those whose end date has passed
//! (account disabled, a note the revocation sweep completes: sessions, refresh families) and tells
//! every replica to drop its cached principals. Between two wakes, each decision already reads the
//! dates (the directory's policy attributes), so nobody outlives their end date by a cache.
use std::time::Duration;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_directory_sql::lifecycle::stamp;

use crate::state::{Audit, Part, Ports};

/// Longest sleep between two looks at the directory: a date a feed or a command sets a moment
/// ahead is seen within it. A look is one indexed query.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Starts the watch.
pub fn spawn(ports: Part<Ports>, audit: Part<Audit>) {
    actix_web::rt::spawn(async move {
        loop {
            let wait = match next_wait(&ports).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "life cycle: the end dates could not be read; tried again in a few seconds");
                    (LOOK_EVERY, false)
                }
            };
            tokio::time::sleep(wait.0).await;
            if let Err(e) = end_due(&ports, &audit, wait.1).await {
                tracing::warn!(error = %e, "life cycle: access at an end date not ended yet; tried again in a few seconds");
            }
        }
    });
}

/// How long to sleep, and whether the wake is at someone's instant.
async fn next_wait(ports: &Ports) -> Result<(Duration, bool), vigie_core::directory::DirectoryError> {
    let now = time::OffsetDateTime::now_utc();
    let Some(next) = ports.lifecycle.next_lifecycle_instant(&stamp(now)).await? else { return Ok((LOOK_EVERY, false)) };
    let at = time::OffsetDateTime::parse(&next, &time::format_description::well_known::Rfc3339).map_err(|e| {
        vigie_core::directory::DirectoryError::Unavailable(format!("an instant {next:?} of the directory: {e}"))
    })?;
    let wait = Duration::try_from(at - now).unwrap_or_default();
    Ok(if wait < LOOK_EVERY { (wait, true) } else { (LOOK_EVERY, false) })
}

/// Ends what is due, audits each person ended (by one replica: the one whose write ended them),
/// and tells the replicas when someone's access changed.
async fn end_due(ports: &Ports, audit: &Audit, at_instant: bool) -> Result<(), vigie_core::directory::DirectoryError> {
    let ended = ports.lifecycle.end_due(&stamp(time::OffsetDateTime::now_utc())).await?;
    for e in &ended {
        tracing::info!(matricule = %e.matricule, identity = %e.identity_id, "life cycle: access ended: {}", e.why);
        audit.record(AuditEvent {
            kind: Some(AuditKind::Lifecycle),
            outcome: Some(Outcome::Success),
            subject: Some(e.identity_id.clone()),
            username: e.username.clone(),
            actor: Some("lifecycle-watch".into()),
            object: Some(format!("person:{}", e.matricule)),
            reason: Some(format!("ended: {}", e.why)),
            ..Default::default()
        });
        super::orders::cancel_for(&ports.lifecycle, &e.identity_id, &format!("access ended: {}", e.why), &|ev| {
            audit.record(ev)
        })
        .await;
    }
    if at_instant || !ended.is_empty() {
        super::tell(ports.store.as_ref()).await;
    }
    Ok(())
}
