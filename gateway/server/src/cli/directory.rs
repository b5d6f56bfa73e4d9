//! `vigie directory sync`: one sync of the establishment's directory (`[directory.ldap]`) into
//! Vigie's, from the command line, full or changed-since (the pass itself: `crate::directory_sync`).
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::directory_sync::Lease;

use super::Target;

#[derive(Subcommand)]
pub(super) enum DirectoryCommand {
    /// Read every user of `[directory.ldap]` and bring them into the directory: joiners created,
    /// movers updated (names, login name, and unit, métier, grade, idNat where mapped), accounts
    /// disabled or expired there, or gone from it (leavers), disabled here, their sessions ended by
    /// the next sweep of `serve` (and enabled again when they are again). A full pass, unless
    /// `--changed`.
    Sync {
        #[command(flatten)]
        target: Target,
        /// Read only the entries changed since the last pass (as `serve`'s periodic passes do):
        /// leavers are not looked for. A full pass all the same when there was none within
        /// `full_sync_interval_secs` or the last mark cannot be used (another AD DC).
        #[arg(long)]
        changed: bool,
        /// While another sync runs (a replica of `serve`, another `vigie directory sync`: one at
        /// a time, by the lease in the shared store), wait for it this many seconds at most
        /// rather than stop at once saying who holds it.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
}

pub(super) fn run(command: DirectoryCommand) -> anyhow::Result<()> {
    let DirectoryCommand::Sync { target, changed, wait } = command;
    let pass = if changed { crate::directory_sync::Pass::Changed } else { crate::directory_sync::Pass::Full };
    let config = target.config()?;
    let ldap = crate::wiring::files::ldap_source(&config)?
        .ok_or_else(|| anyhow::anyhow!("no `[directory.ldap]` in the configuration: nothing to sync from"))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let directory =
            crate::wiring::build::open_directory(&config, crate::wiring::build::serving_newer(&config)).await?;
        let audit = |event| {
            if let Err(e) = super::audit_now(&config, event) {
                tracing::error!(error = %e, "directory sync: an audit line could not be written");
            }
        };
        let report = match lease(&config, Duration::from_secs(wait)).await {
            Ok(Some(lease)) => {
                let report = crate::directory_sync::sync(&ldap, &directory, &audit, pass, Some(&lease)).await;
                lease.release().await;
                report
            }
            Ok(None) => crate::directory_sync::sync(&ldap, &directory, &audit, pass, None).await,
            Err(e) => Err(e),
        };
        directory.close().await;
        let report = report?;
        if report.disabled + report.left > 0 {
            // The sessions end at the next sweep of a running `serve` (the notes are in the
            // directory's database); its caches are told here.
            crate::policy::view::tell_replicas(&config).await;
        }
        println!("{report}");
        Ok(())
    })
}

/// The lease `serve`'s replicas take for their passes, so that this run is the only sync:
/// `None` with the embedded store (it lives inside one `serve`, out of reach: nothing to
/// coordinate with but that process, whose writes are the same). While another holds it, polled
/// for `wait`, then an error saying who holds it.
async fn lease(config: &crate::config::Config, wait: Duration) -> anyhow::Result<Option<Lease>> {
    if config.store.kind == crate::config::StoreKind::Embedded {
        eprintln!(
            "note: the store is embedded: this sync is not kept apart from a running `vigie serve`'s periodic \
             passes (one node; both write the same values)"
        );
        return Ok(None);
    }
    let store = crate::wiring::build::open_store(config, crate::wiring::files::store_tls(config)?).await?;
    let every = config.directory.ldap.as_ref().map_or(0, |l| l.sync_interval_secs);
    let deadline = Instant::now() + wait;
    loop {
        match Lease::take(
            store.clone(),
            crate::session::keys::directory_sync_lease(crate::directory_sync::SOURCE),
            crate::directory_sync::lease_ttl(every),
            "vigie directory sync",
        )
        .await?
        {
            Ok(lease) => return Ok(Some(lease)),
            Err(holder) if Instant::now() >= deadline => anyhow::bail!(
                "another directory sync is running ({holder}): nothing was synced; run again once it ends, or with \
                 `--wait 300` to wait for it"
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
