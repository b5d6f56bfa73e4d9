//! `vigie migrate`: brings the directory's schema up to date, and the audit trail's tables when
//! the trail is in PostgreSQL (`audit.url`, else a PostgreSQL `directory.url`), and says from
//! which version to which, without starting the gateway (a deployment's migration job, the
//! chart's Job; `serve` also migrates).
use super::Target;

/// Opens the directory as `serve` does (migrations behind the migration lock), reports, closes.
/// A schema newer than this version's migrations is refused: migrate never goes backwards.
pub(super) fn run(target: &Target) -> anyhow::Result<()> {
    let config = target.config()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let directory = crate::wiring::build::open_directory(&config, vigie_directory_sql::NewerSchema::Refuse).await?;
        let versions = directory.schema_versions();
        directory.close().await;
        let database = match directory.dialect() {
            vigie_directory_sql::Dialect::Sqlite => "SQLite",
            vigie_directory_sql::Dialect::Postgres => "PostgreSQL",
        };
        // The URL is not printed: a PostgreSQL one may carry the password.
        let version = |v: Option<i64>| v.map_or_else(|| "none (new database)".to_owned(), |v| v.to_string());
        if versions.before == versions.after {
            println!(
                "directory ({database}): schema at version {}, up to date; nothing applied",
                version(versions.after)
            );
        } else {
            println!(
                "directory ({database}): schema migrated from version {} to {}",
                version(versions.before),
                version(versions.after)
            );
        }
        if let Some(url) = config.audit.postgres_url(&config.directory.url) {
            let (trail, before, after) = vigie_directory_sql::audit_trail::PgAuditTrail::open_migrated(url, 1)
                .await
                .map_err(|e| anyhow::anyhow!("{e}: check `audit.url` (else `directory.url`)"))?;
            trail.close().await;
            if before == after {
                println!("audit trail (PostgreSQL): schema at version {}, up to date; nothing applied", version(after));
            } else {
                println!(
                    "audit trail (PostgreSQL): schema migrated from version {} to {}",
                    version(before),
                    version(after)
                );
            }
        }
        Ok(())
    })
}
