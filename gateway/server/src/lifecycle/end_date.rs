//! `vigie users set-end-date`: HR moves a person's end date (extends a mission, or shortens it);
//! the reminders of the old date are forgotten, the new one is reminded afresh.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_directory_sql::lifecycle;

use crate::config::Config;

/// Moves the end date of `who` (matricule or login name) to `until` (`YYYY-MM-DD`: access ends
/// with that day; an RFC 3339 instant; `none`: no end date), audited with the operator.
pub async fn set(config: &Config, who: &str, until: &str) -> anyhow::Result<String> {
    let end_at = match until {
        "none" => None,
        d => Some(
            lifecycle::parse_instant(d, lifecycle::DateEdge::End).map_err(|e| anyhow::anyhow!("the end date: {e}"))?,
        ),
    };
    if let Some(end) = &end_at
        && end.as_str() <= lifecycle::stamp(time::OffsetDateTime::now_utc()).as_str()
    {
        anyhow::bail!("the end date {end} has passed: to end access now, `vigie users set-status {who} left`");
    }
    let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
    let Some(matricule) = dir.set_end_date(who, end_at.as_deref()).await? else {
        anyhow::bail!("nobody has the matricule or login name {who:?}: `vigie users list` lists them");
    };
    let to = end_at.as_deref().unwrap_or("no end date");
    crate::cli::audit_now(
        config,
        AuditEvent {
            kind: Some(AuditKind::Lifecycle),
            outcome: Some(Outcome::Success),
            actor: Some(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))),
            object: Some(format!("person:{matricule}")),
            reason: Some(format!("end date set: {to}")),
            ..Default::default()
        },
    )?;
    crate::policy::view::tell_replicas(config).await;
    Ok(format!("{matricule}: end date {to}"))
}
