//! `vigie directory sync`: one sync of the establishment's directory (`[directory.ldap]`) into
//! Vigie's, from the command line, full or changed-since (the pass itself: `crate::directory_sync`).
use clap::Subcommand;

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
    },
}

pub(super) fn run(command: DirectoryCommand) -> anyhow::Result<()> {
    let DirectoryCommand::Sync { target, changed } = command;
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
        // No lease: an operator's run (a `serve` pass at the same time writes the same values).
        let report = crate::directory_sync::sync(&ldap, &directory, &audit, pass, &|| true).await;
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
