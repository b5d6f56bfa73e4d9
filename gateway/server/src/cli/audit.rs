//! `vigie audit …`: the audit trail read back (the export to other tools: `audit_export`).
use clap::Subcommand;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Events of trail files over a period, for some professionals, as JSON lines or FHIR R4
    /// `AuditEvent` (NDJSON) — docs/audit-export.md.
    Export(super::audit_export::ExportArgs),
    /// All traces of some professionals over a period as one tar archive with a SHA-256
    /// manifest and how to check it (the DMP's handover to the Assurance Maladie).
    Handover(super::audit_export::HandoverArgs),
}

/// Runs a `vigie audit …` command.
pub(super) fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export(args) => {
            let n = super::audit_export::run(&args)?;
            eprintln!("{n} event(s) exported");
            Ok(())
        }
        AuditCommand::Handover(args) => {
            let (n, digest) = super::audit_export::handover(&args)?;
            println!("{}: {n} event(s); SHA-256 of SHA256SUMS: {digest}", args.out.display());
            println!("give this digest with the archive, apart from it (letter, phone): the recipient checks it");
            Ok(())
        }
    }
}
