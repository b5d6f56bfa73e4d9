//! `vigie audit …`: the audit trail read back (the export to other tools: `audit_export`).
use clap::Subcommand;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Events of trail files over a period, for some professionals, as JSON lines or FHIR R4
    /// `AuditEvent` (NDJSON) — docs/audit-export.md.
    Export(super::audit_export::ExportArgs),
}

/// Runs a `vigie audit …` command.
pub(super) fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export(args) => {
            let n = super::audit_export::run(&args)?;
            eprintln!("{n} event(s) exported");
            Ok(())
        }
    }
}
