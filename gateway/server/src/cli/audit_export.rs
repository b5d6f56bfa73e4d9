//! `vigie audit export`: the events of audit trail files (JSON lines) over a period, for some
//! professionals, as JSON lines again or as FHIR R4 `AuditEvent` resources (NDJSON, the FHIR
//! bulk-data shape: one resource a line). Reads the trail's lines whatever fields surround the
//! event (a sequence number, hashes: kept or ignored), skips the lines that are not events
//! (checkpoints), and names the lines it cannot read.
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;
use vigie_core::audit::AuditEvent;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// FHIR R4 `AuditEvent`, one resource a line (`application/fhir+ndjson`).
    Fhir,
    /// The trail's own JSON lines, unchanged.
    Jsonl,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Output shape.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// From this time on (RFC 3339, or a day `YYYY-MM-DD` meaning its midnight UTC), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this time (same forms), exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// Only events of these professionals: an idNat or a directory id (repeat the option).
    #[arg(long = "subject")]
    pub subjects: Vec<String>,
    /// Who observed the events, in FHIR `source.site` (the gateway's issuer URL).
    #[arg(long, default_value = "vigie")]
    pub observer: String,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Trail files (JSON lines); `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// A time bound: RFC 3339, or a day at midnight UTC.
fn bound(option: &str, value: Option<&str>) -> anyhow::Result<Option<i64>> {
    let Some(v) = value else { return Ok(None) };
    let t = crate::parse_rfc3339(v).or_else(|| crate::parse_rfc3339(&format!("{v}T00:00:00Z")));
    t.map(Some).with_context(|| format!("--{option} {v:?}: expected 2026-12-05 or 2026-12-05T08:00:00Z"))
}

/// The event of one trail line: the line itself, or its `event` member when the trail wraps
/// events (sequence and hash around them). `None` for a line that is not an event.
fn event_of(line: &Value) -> Option<(AuditEvent, &Value)> {
    let body = match line.get("event") {
        Some(inner) if inner.is_object() && line.get("kind").is_none() => inner,
        _ => line,
    };
    body.get("kind")?;
    serde_json::from_value(body.clone()).ok().map(|e| (e, body))
}

/// What is kept.
struct Filter {
    from: Option<i64>,
    to: Option<i64>,
    subjects: Vec<String>,
}

impl Filter {
    fn keeps(&self, e: &AuditEvent) -> bool {
        let at = crate::parse_rfc3339(&e.at);
        let in_period = match (at, self.from, self.to) {
            (None, None, None) => true,
            (None, ..) => false,
            (Some(t), from, to) => from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u),
        };
        let who = [&e.idnat, &e.subject];
        in_period
            && (self.subjects.is_empty() || who.iter().any(|w| w.as_ref().is_some_and(|w| self.subjects.contains(w))))
    }
}

/// The events of trail files the filter keeps, each with its line's event object (as written).
/// Lines that are not JSON are named in the error, after the others are read.
fn read(files: &[PathBuf], filter: &Filter) -> anyhow::Result<Vec<(AuditEvent, Value)>> {
    let mut kept = Vec::new();
    let mut unreadable = Vec::new();
    for file in files {
        let input: Box<dyn BufRead> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(file).with_context(|| format!("opening the trail file {}", file.display()))?,
            ))
        };
        for (n, line) in input.lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", file.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                unreadable.push(format!("{}:{}", file.display(), n + 1));
                continue;
            };
            if let Some((event, body)) = event_of(&value).filter(|(e, _)| filter.keeps(e)) {
                let body = body.clone();
                kept.push((event, body));
            }
        }
    }
    if !unreadable.is_empty() {
        anyhow::bail!(
            "{} line(s) are not JSON: {} (check the trail with `vigie audit verify`); nothing was written",
            unreadable.len(),
            unreadable.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(kept)
}

/// The events in one output shape, one a line.
fn render(events: &[(AuditEvent, Value)], format: Format, observer: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    for (event, body) in events {
        let line = match format {
            Format::Jsonl => serde_json::to_string(body)?,
            Format::Fhir => serde_json::to_string(&crate::audit_export::fhir::audit_event(event, observer))?,
        };
        text.push_str(&line);
        text.push('\n');
    }
    Ok(text)
}

/// Runs `vigie audit export`; the number of events written.
pub fn run(args: &ExportArgs) -> anyhow::Result<usize> {
    let filter = Filter {
        from: bound("from", args.from.as_deref())?,
        to: bound("to", args.to.as_deref())?,
        subjects: args.subjects.clone(),
    };
    let events = read(&args.files, &filter)?;
    let text = render(&events, args.format, &args.observer)?;
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(events.len())
}

#[derive(clap::Args)]
pub struct HandoverArgs {
    /// The professionals asked for: idNat or directory id (repeat the option). Required.
    #[arg(long = "subject", required = true)]
    pub subjects: Vec<String>,
    /// Start of the period (RFC 3339 or `YYYY-MM-DD`), inclusive.
    #[arg(long)]
    pub from: String,
    /// End of the period (same forms), exclusive.
    #[arg(long)]
    pub to: String,
    /// The gateway's issuer URL, in the FHIR resources' `source.site`.
    #[arg(long, default_value = "vigie")]
    pub observer: String,
    /// The archive to write (tar).
    #[arg(long)]
    pub out: PathBuf,
    /// The checkpoint key (PKCS#8 PEM, `audit.checkpoint_key`) that signs the manifest
    /// (`SHA256SUMS.sig`); with --config, the configuration's.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The key's name (`audit.origin`).
    #[arg(long, default_value = "vigie.local/audit")]
    pub origin: String,
    /// The configuration whose `audit.checkpoint_key` and `audit.origin` sign the manifest.
    #[arg(long, conflicts_with = "key")]
    pub config: Option<PathBuf>,
    /// Trail files (JSON lines).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `vigie audit handover`: the archive, and the SHA-256 of its manifest (for the letter
/// that goes with it). Returns (events, manifest digest).
pub fn handover(args: &HandoverArgs) -> anyhow::Result<(usize, String)> {
    let filter = Filter {
        from: bound("from", Some(&args.from))?,
        to: bound("to", Some(&args.to))?,
        subjects: args.subjects.clone(),
    };
    let events = read(&args.files, &filter)?;
    let made = crate::rfc3339_now();
    let request = format!(
        "Traces de connexion et d'accès DMP remises par Vigie / audit traces handed over by Vigie\n\
         professionnels / professionals: {}\nperiode / period: [{}, {}[\nevenements / events: {}\n\
         produit le / made at: {made} (vigie {})\nsources: {}\n",
        args.subjects.join(", "),
        args.from,
        args.to,
        events.len(),
        env!("CARGO_PKG_VERSION"),
        args.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
    );
    let files = [
        ("REQUEST.txt", request),
        ("traces.jsonl", render(&events, Format::Jsonl, &args.observer)?),
        ("traces.fhir.ndjson", render(&events, Format::Fhir, &args.observer)?),
    ];
    let manifest: String = files
        .iter()
        .map(|(name, body)| format!("{}  {name}\n", crate::audit_export::handover::sha256_hex(body.as_bytes())))
        .collect();
    let digest = crate::audit_export::handover::sha256_hex(manifest.as_bytes());
    let readme = crate::audit_export::handover::readme(&digest);
    let signer = match (&args.key, &args.config) {
        (Some(key), _) => Some(crate::audit::note::Signer::load(&args.origin, key)?),
        (None, Some(c)) => Some(
            crate::config::Config::load(c)?
                .audit
                .signer()?
                .context("the configuration has no `audit.checkpoint_key` to sign the handover with")?,
        ),
        (None, None) => None,
    };
    let note = signer.map(|s| s.sign(&crate::audit_export::handover::manifest_note_text(s.name(), &digest)));
    if note.is_none() {
        eprintln!(
            "warning: the archive is not signed (give --key or --config): only the digest sent apart vouches for it"
        );
    }
    let mut entries: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_bytes())).collect();
    entries.push(("SHA256SUMS", manifest.as_bytes()));
    if let Some(note) = &note {
        entries.push(("SHA256SUMS.sig", note.as_bytes()));
    }
    entries.push(("LISEZMOI.txt", readme.as_bytes()));
    let mtime = crate::now();
    let archive = crate::audit_export::handover::tar(&entries, mtime)?;
    std::fs::write(&args.out, archive).with_context(|| format!("writing {}", args.out.display()))?;
    Ok((events.len(), digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_event_and_a_flat_one_are_read_a_checkpoint_is_not() {
        let flat = serde_json::json!({"seq": 3, "hash": "x", "at": "2026-12-05T10:00:00Z", "kind": "login"});
        let wrapped =
            serde_json::json!({"seq": 4, "prev": "x", "event": {"at": "2026-12-05T10:00:01Z", "kind": "logout"}});
        let checkpoint = serde_json::json!({"checkpoint": {"size": 4, "head": "y"}});
        assert!(event_of(&flat).is_some());
        assert_eq!(event_of(&wrapped).map(|(_, b)| b["kind"].clone()), Some("logout".into()));
        assert!(event_of(&checkpoint).is_none());
    }

    #[test]
    fn the_period_is_from_inclusive_to_exclusive_and_subjects_match_idnat_or_id() {
        let f = Filter {
            from: bound("from", Some("2026-12-05")).unwrap(),
            to: bound("to", Some("2026-12-06T00:00:00Z")).unwrap(),
            subjects: vec!["810100000011".into()],
        };
        let e = |at: &str, idnat: Option<&str>| AuditEvent {
            at: at.into(),
            idnat: idnat.map(str::to_owned),
            ..Default::default()
        };
        assert!(f.keeps(&e("2026-12-05T00:00:00Z", Some("810100000011"))));
        assert!(!f.keeps(&e("2026-12-06T00:00:00Z", Some("810100000011"))));
        assert!(!f.keeps(&e("2026-12-05T10:00:00Z", Some("810100000012"))));
        assert!(bound("from", Some("yesterday")).unwrap_err().to_string().contains("expected 2026-12-05"));
    }
}
