//! `vigie audit …`: the checkpoint key made, and a trail verified (its chain and its signed
//! checkpoints), naming the first broken record (docs/audit.md); the trail exported and handed
//! over (`audit_export`, docs/audit-export.md).
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::note::Verifier;
use crate::audit::verify::verify;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Make the Ed25519 key that signs the checkpoints (PKCS#8 PEM, owner-only) and its verifier
    /// key in `<OUT>.pub` (give that one to whoever verifies). An existing key is kept.
    Keygen {
        #[arg(long, required_unless_present = "ins_key")]
        out: Option<PathBuf>,
        /// Also (or only) make the secret key of patient references (`audit.ins_key_file`): 32
        /// random bytes, base64url, owner-only. An existing key is kept.
        #[arg(long)]
        ins_key: Option<PathBuf>,
        /// The checkpoints' origin and key name (`audit.origin`).
        #[arg(long, default_value = "vigie.local/audit")]
        origin: String,
    },
    /// The reference of a patient in the trail: HMAC-SHA256 of their INS under the key of
    /// `audit.ins_key_file` (docs/audit.md, "Patients in the trail"): search the trail for it.
    InsHash {
        /// The patient's INS (INS-NIR, 15 digits).
        ins: String,
        /// The key file (`audit.ins_key_file`).
        #[arg(long, required_unless_present = "config")]
        key: Option<PathBuf>,
        /// …or the configuration naming it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a handover archive: the signature of its manifest (`SHA256SUMS.sig`) by the verifier
    /// key, the manifest, each file. Exit status 0 when intact, 1 naming what was altered.
    VerifyHandover {
        /// The archive (`vigie audit handover --out`).
        archive: PathBuf,
        /// The verifier key (`name+keyid+base64`, the `.pub` beside the checkpoint key), or a file
        /// holding it.
        #[arg(long)]
        key: String,
    },
    /// Verify a trail: each record's hash, the chain of sequence numbers and hashes, and every
    /// signed checkpoint. Exit status 0 when intact, 1 with the first broken record named
    /// (`file:line: record seq N: what`).
    Verify {
        /// Configuration: the trail (`audit.file`, then `audit.spool` when it holds records; or
        /// the PostgreSQL table, `audit.url` else `directory.url`, its spool verified apart),
        /// its checkpoints and the verifier key beside `audit.checkpoint_key`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The trail in this PostgreSQL database (`postgres://…`, as `audit.url`) rather than
        /// in files: the table `audit_records` and its checkpoints.
        #[arg(long, conflicts_with = "files")]
        url: Option<String>,
        /// The verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: Option<String>,
        /// Checkpoint files (default `<first FILE>.checkpoints` when it exists); a witness's
        /// copy (one signed note) is read as well.
        #[arg(long)]
        checkpoints: Vec<PathBuf>,
        /// Trail files, read in order as one chain (the trail, then its spool).
        files: Vec<PathBuf>,
    },
    /// Purge the trail (the PostgreSQL table, or the file) of the records past their retention (`[audit.retention]`): each
    /// becomes a stub keeping its link, and one note signed with the checkpoint key lists them,
    /// so the trail still verifies (docs/audit.md, "Retention and purge").
    Purge {
        /// Configuration: the trail (`audit.url`/`directory.url` through `audit.purge_url`, or
        /// `audit.file`), `audit.retention`, `audit.checkpoint_key`.
        #[arg(long)]
        config: PathBuf,
        /// Say what would be purged; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Search the trail by person (id or idNat), client, event kind, time range and result, newest
    /// first, as a table, JSON lines or CSV (docs/audit.md, "Searching").
    Search(super::audit_search::SearchArgs),
    /// Events of trail files over a period, for some professionals, as JSON lines or FHIR R4
    /// `AuditEvent` (NDJSON) — docs/audit-export.md.
    Export(super::audit_export::ExportArgs),
    /// All traces of some professionals over a period as one tar archive with a SHA-256
    /// manifest and how to check it (the DMP's handover to the Assurance Maladie).
    Handover(super::audit_export::HandoverArgs),
}

pub(super) fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Search(args) => super::audit_search::run(&args),
        AuditCommand::Purge { config, dry_run } => purge(&crate::config::Config::load(&config)?, dry_run),
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
        AuditCommand::Keygen { out, ins_key, origin } => {
            if let Some(out) = out {
                crate::audit::ensure_key(&out, &origin)?;
                println!("checkpoint key: {} (keep it secret); verifier key: {}.pub", out.display(), out.display());
            }
            if let Some(path) = ins_key {
                crate::audit::ins::ensure_file(&path)?;
                println!("INS key: {} (keep it secret: with it an INS is matched to its lines)", path.display());
            }
            Ok(())
        }
        AuditCommand::VerifyHandover { archive, key } => {
            let key = Verifier::parse(&read_key(&key)?)?;
            let bytes =
                std::fs::read(&archive).with_context(|| format!("reading the archive {}", archive.display()))?;
            match crate::audit_export::handover::verify(&bytes, &key) {
                Ok(files) => {
                    println!("intact: the manifest is signed by {}; {} verified", key.name(), files.join(", "));
                    Ok(())
                }
                Err(e) => {
                    println!("ALTERED: {e}");
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::InsHash { ins, key, config } => {
            let path = match (key, config) {
                (Some(key), _) => key,
                (None, Some(c)) => crate::config::Config::load(&c)?
                    .audit
                    .ins_key_file
                    .context("the configuration has no `audit.ins_key_file`: give --key")?,
                (None, None) => anyhow::bail!("give --key FILE or --config FILE"),
            };
            let ins = vigie_core::dmp::InsNir::parse(ins.trim())
                .map_err(|e| anyhow::anyhow!("{ins:?} is not an INS-NIR (15 digits, its key right): {e}"))?;
            println!("{}", crate::audit::ins::InsKey::load(&path)?.reference(&ins));
            Ok(())
        }
        AuditCommand::Verify { config, url, key, checkpoints, files } => {
            let config = config.map(|c| crate::config::Config::load(&c)).transpose()?;
            let key = match key.or_else(|| {
                let file = config.as_ref()?.audit.verifier_key_file()?;
                Some(file.display().to_string())
            }) {
                Some(k) => Some(Verifier::parse(&read_key(&k)?)?),
                None => None,
            };
            let postgres =
                url.as_deref().or_else(|| config.as_ref()?.audit.postgres_url(&config.as_ref()?.directory.url));
            if let (Some(url), true) = (postgres, files.is_empty()) {
                let spool = config.as_ref().and_then(|c| c.audit.spool.as_deref());
                return verify_table(url, key.as_ref(), spool);
            }
            let mut files = files;
            if files.is_empty() {
                let Some(c) = &config else { anyhow::bail!("name the trail's files, or give --config") };
                files.push(PathBuf::from(&c.audit.file));
                files.extend(c.audit.spool.clone().filter(|s| std::fs::metadata(s).is_ok_and(|m| m.len() > 0)));
            }
            let mut checkpoints = checkpoints;
            if checkpoints.is_empty() {
                let beside = PathBuf::from(format!("{}.checkpoints", files[0].display()));
                checkpoints.extend(Some(beside).filter(|p| p.exists()));
            }
            if key.is_none() && !checkpoints.is_empty() {
                eprintln!("warning: no verifier key (--key or --config): the checkpoints are not checked");
            }
            report(verify(&files, &checkpoints, key.as_ref()))
        }
    }
}

/// `vigie audit purge`: the PostgreSQL table (through `audit.purge_url`, else the trail's URL)
/// or the file trail, under the same retention and the same signed purge note.
fn purge(config: &crate::config::Config, dry_run: bool) -> anyhow::Result<()> {
    let audit = &config.audit;
    let signer = audit.signer()?.context(
        "`audit.checkpoint_key` is not set: a purge is signed with the checkpoint key, or `verify` could not tell it \
         from tampering",
    )?;
    let retention = crate::audit::purge::Retention(&audit.retention);
    let now = time::OffsetDateTime::now_utc();
    let o = if let Some(url) = audit.postgres_url(&config.directory.url) {
        let url = audit.purge_url.as_deref().unwrap_or(url);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let trail = vigie_directory_sql::audit_trail::PgAuditTrail::connect(url, 1).await?;
            let outcome = crate::audit::pg::purge_table(&trail, &signer, &retention, now, dry_run).await;
            trail.close().await;
            outcome
        })?
    } else {
        if audit.file == "-" {
            anyhow::bail!("`audit.file` is standard output: there is no trail to purge");
        }
        let trail = PathBuf::from(&audit.file);
        // Rotated copies first (logrotate's `audit.jsonl.N`, …): each is a chain of its own (the
        // writer starts a new one in the new file), purged under a note in `<copy>.checkpoints`.
        let copies = crate::audit::search::rotated(&trail)?;
        for copy in copies.iter().filter(|c| **c != trail) {
            let notes = PathBuf::from(format!("{}.checkpoints", copy.display()));
            let o = crate::audit::purge::purge(copy, &notes, &signer, &retention, now, dry_run)
                .with_context(|| format!("purging the rotated copy {}", copy.display()))?;
            print!("{}: ", copy.display());
            summary(&o, dry_run);
        }
        crate::audit::purge::purge(&trail, &audit.checkpoint_log(), &signer, &retention, now, dry_run)?
    };
    summary(&o, dry_run);
    Ok(())
}

/// What one purge did, in two lines or three.
fn summary(o: &crate::audit::purge::Outcome, dry_run: bool) {
    let verb = if dry_run { "would purge" } else { "purged" };
    match (o.purged.first(), o.purged.last()) {
        (Some(first), Some(last)) => {
            println!("{verb} {} record(s) past their retention (between seq {first} and {last})", o.purged.len())
        }
        _ => println!("nothing past its retention"),
    }
    println!("{} kept within their retention; {} purged before", o.kept, o.already);
    if o.undated > 0 {
        println!("{} record(s) without a readable time (`at`): kept", o.undated);
    }
}

/// A verifier key given inline (`name+keyid+base64`) or as a file holding it.
fn read_key(k: &str) -> anyhow::Result<String> {
    match std::fs::read_to_string(k) {
        Ok(text) => Ok(text),
        Err(_) if k.contains('+') => Ok(k.to_owned()),
        Err(e) => Err(e).with_context(|| format!("reading the verifier key {k}")),
    }
}

/// The trail in PostgreSQL (`audit_records`, `audit_checkpoints`), then a spool of this host,
/// which is a chain of its own (docs/audit.md).
fn verify_table(url: &str, key: Option<&Verifier>, spool: Option<&std::path::Path>) -> anyhow::Result<()> {
    if key.is_none() {
        eprintln!("warning: no verifier key (--key or --config): the checkpoints are not checked");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(async {
        let trail = vigie_directory_sql::audit_trail::PgAuditTrail::open(url, 1).await?;
        let result = crate::audit::pg::verify_table(&trail, key).await;
        trail.close().await;
        result
    })?;
    print!("audit_records (PostgreSQL): ");
    report(result)?;
    if let Some(spool) = spool.filter(|s| std::fs::metadata(s).is_ok_and(|m| m.len() > 0)) {
        let beside = PathBuf::from(format!("{}.checkpoints", spool.display()));
        let checkpoints: Vec<PathBuf> = Some(beside).filter(|p| p.exists()).into_iter().collect();
        print!("{} (this host's spool, a chain of its own): ", spool.display());
        report(verify(&[spool.to_path_buf()], &checkpoints, key))?;
    }
    Ok(())
}

/// Prints what `verify` found; exits with status 1 on a break.
fn report(result: Result<crate::audit::verify::Report, crate::audit::verify::Broken>) -> anyhow::Result<()> {
    match result {
        Ok(r) => {
            println!(
                "intact: {} records (seq 1..{}), {} checkpoints verified, the last covering seq {}{}",
                r.records,
                r.last,
                r.checkpoints,
                r.covered,
                if r.unchained > 0 { format!("; {} lines before the chain began", r.unchained) } else { String::new() }
            );
            if r.torn > 0 {
                println!(
                    "the last line is half a record ({} bytes): the gateway died while writing it, never acknowledged; it is cut off at the next start",
                    r.torn
                );
            }
            if r.chains > 1 {
                println!(
                    "{} chains (rotated copies, then the trail), each checked against its own checkpoints; the counts are \
                     their sums, the sequence numbers the last chain's",
                    r.chains
                );
            }
            if r.unattributed > 0 {
                println!(
                    "{} checkpoints name no chain (written before chains were named): not checked; verify each file alone",
                    r.unattributed
                );
            }
            for p in &r.purged {
                println!("records {}..{} purged by policy on {}", p.first, p.last, p.on);
            }
            if r.last > r.covered {
                println!("records {}..{} are chained but no checkpoint covers them yet", r.covered + 1, r.last);
            }
            Ok(())
        }
        Err(broken) => {
            println!("BROKEN: {broken}");
            std::process::exit(1);
        }
    }
}
