//! The audit trail (docs/audit.md): events sealed into a hash chain (`chain`), written with group
//! commit by a background thread that acknowledges the security-relevant ones once on disk
//! (`writer`), signed checkpoints in the C2SP signed-note shape (`note`), and the check of a
//! trail and its checkpoints (`verify`, `vigie audit verify`). `vigie_core::audit::AuditSink` is
//! the seam: other sinks (exports) sit beside this one.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

pub mod api;
pub mod chain;
pub mod durable;
pub mod ins;
pub mod note;
pub mod pg;
pub mod purge;
pub mod search;
pub mod spool;
pub mod verify;
mod writer;

pub use writer::{JsonLinesAudit, Status};

/// What the gateway does when the trail cannot be written (docs/audit.md, "When the disk fails").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Refuse what must be traced (logins, tokens, admin acts) with a 503 until the trail is
    /// written again.
    #[default]
    FailClosed,
    /// Write the events to `audit.spool` (the chain goes on there) and keep serving; the alarm
    /// stays up until an operator moved the spool onto a file trail and restarted, or, on
    /// PostgreSQL, until the database answers again and the spool is replayed into it (`spool`).
    Spool,
}

/// The longest `audit.commit_interval_us` accepted (0.1 s).
const MAX_COMMIT_INTERVAL_US: u64 = 100_000;

/// `[audit]`: where the audit trail goes and how it is sealed.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// JSON-lines file of audit records; `-` for standard output (no checkpoints then). Not
    /// used when the trail is in PostgreSQL ([`AuditConfig::postgres_url`]).
    pub file: String,
    /// The PostgreSQL database of the trail (`postgres://…`): one chain for every replica, in
    /// the append-only table `audit_records`. Unset: the directory's database when
    /// `directory.url` is PostgreSQL, else the file.
    pub url: Option<String>,
    /// Ed25519 key (PKCS#8 PEM, `vigie audit keygen`) that signs the checkpoints; separate from
    /// the token keys. Absent: the chain without checkpoints (a warning at start).
    pub checkpoint_key: Option<PathBuf>,
    /// The checkpoints' origin and key name (a schema-less URL, no spaces or `+`).
    pub origin: String,
    /// A checkpoint every this many records…
    pub checkpoint_every: u64,
    /// …or every this many seconds when records came in since the last one.
    pub checkpoint_secs: u64,
    /// A file that receives each checkpoint alone (replaced each time): an outside witness's copy.
    pub witness: Option<PathBuf>,
    /// The least time, in microseconds, from one sync of the trail to the next (group commit):
    /// answers waiting for their trace that come closer together share one sync. It bounds the
    /// syncs of a busy gateway (each costs its CPU) and adds nothing to the answers of a quiet one;
    /// 0 syncs each at once (docs/audit.md, "What the trail costs").
    pub commit_interval_us: u64,
    /// Each answer that waited for its trace says how long, in a `Server-Timing: audit;dur=…`
    /// header (milliseconds; docs/audit.md). Off by default: it tells a client how fast the
    /// trail's disk is, which it has no need to know.
    pub server_timing: bool,
    pub on_failure: OnFailure,
    /// Where events go when the trail cannot be written (`on_failure = "spool"`): another disk.
    pub spool: Option<PathBuf>,
    /// Records per transaction when a spool is replayed into PostgreSQL (docs/audit.md, "When the
    /// database fails"): each batch holds the append lock, which the other replicas wait for.
    pub replay_batch: usize,
    /// The secret key of the patients' references in the trail (HMAC-SHA256 of the INS, one line
    /// of base64url: `vigie audit keygen --ins-key FILE`). Unset: a key for this process only,
    /// and a patient's lines cannot be found afterwards (a warning at start).
    pub ins_key_file: Option<PathBuf>,
    /// `[audit.syslog]`: a copy of each event to a syslog collector (the SIEM), RFC 5424 over TLS
    /// (docs/audit-export.md).
    pub syslog: Option<crate::audit_export::syslog::SyslogConfig>,
    /// `[audit.retention]`: days a record is kept, by event kind (`vihf_issued = 3653`) or
    /// `default`; `vigie audit purge` stubs the older ones (docs/audit.md, "Retention and purge").
    pub retention: std::collections::BTreeMap<String, u64>,
    /// The connection of `vigie audit purge` when the trail is in PostgreSQL: a role allowed to
    /// EXECUTE `vigie_audit_purge` and SELECT the trail, nothing more (docs/audit.md, "Retention
    /// and purge"). Unset: the trail's own URL.
    pub purge_url: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            file: "-".into(),
            url: None,
            checkpoint_key: None,
            origin: "vigie.local/audit".into(),
            checkpoint_every: 1000,
            checkpoint_secs: 60,
            witness: None,
            commit_interval_us: 1000,
            server_timing: false,
            on_failure: OnFailure::FailClosed,
            spool: None,
            replay_batch: spool::BATCH,
            ins_key_file: None,
            syslog: None,
            retention: Default::default(),
            purge_url: None,
        }
    }
}

impl AuditConfig {
    /// `<file>.checkpoints`: the signed checkpoints beside the trail.
    pub fn checkpoint_log(&self) -> PathBuf {
        PathBuf::from(format!("{}.checkpoints", self.file))
    }

    /// The verifier key beside the signing key (`<key>.pub`), as `vigie audit keygen` writes it.
    pub fn verifier_key_file(&self) -> Option<PathBuf> {
        self.checkpoint_key.as_ref().map(|k| PathBuf::from(format!("{}.pub", k.display())))
    }

    /// Where the trail is kept when it is in PostgreSQL: `audit.url`, else `directory_url` when
    /// that is a PostgreSQL URL (replicas share it); `None`: the file.
    pub fn postgres_url<'a>(&'a self, directory_url: &'a str) -> Option<&'a str> {
        let postgres = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
        match &self.url {
            Some(url) => Some(url.as_str()),
            None => Some(directory_url).filter(|u| postgres(u)),
        }
    }

    /// Checks serde cannot make, each under its key.
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        purge::Retention::validate(&self.retention, err);
        if self.replay_batch == 0 {
            err(
                "audit.replay_batch",
                format!(
                    "must be at least 1: the records each transaction of a spool's replay appends (default {})",
                    spool::BATCH
                ),
            );
        }
        if self.commit_interval_us > MAX_COMMIT_INTERVAL_US {
            err(
                "audit.commit_interval_us",
                format!(
                    "{} is more than {MAX_COMMIT_INTERVAL_US} (0.1 s): every answer that waits for its trace may wait \
                     this long; 1000 is the default, 0 syncs each answer's trace at once",
                    self.commit_interval_us
                ),
            );
        }
        if let Some(syslog) = &self.syslog {
            for (key, problem) in syslog.problems() {
                err(key, problem);
            }
        }
    }

    /// With the DMP on (`dmp_enabled`), a VIHF can name a patient (their INS): their lines in the
    /// trail must stay matchable for the 10 years the DMP's traces are kept, which a key of one
    /// process is not — so `audit.ins_key_file` is required (the embedded demo makes one, so it
    /// passes). Without the DMP no line names a patient: the process's own key and its warning do.
    pub fn validate_ins_key(&self, dmp_enabled: bool, err: &mut dyn FnMut(&str, String)) {
        if dmp_enabled && self.ins_key_file.is_none() {
            err(
                "audit.ins_key_file",
                "required when `dmp.enabled`: a VIHF's patient is traced by a keyed HMAC of their INS, and the DMP's \
                 traces must be matchable to a patient for 10 years; make the key once with `vigie audit keygen \
                 --ins-key /etc/vigie/audit-ins.key`, set `audit.ins_key_file` to it, and keep it with the \
                 gateway's secrets (docs/audit.md, \"Patients in the trail\")"
                    .into(),
            );
        }
    }

    /// The key of patient references (`ins::InsKey`): the file's, else one for this process.
    pub fn ins_key(&self) -> anyhow::Result<ins::InsKey> {
        match &self.ins_key_file {
            Some(path) => ins::InsKey::load(path),
            None => Ok(ins::InsKey::ephemeral()),
        }
    }

    pub fn signer(&self) -> anyhow::Result<Option<note::Signer>> {
        self.checkpoint_key.as_ref().map(|k| note::Signer::load(&self.origin, k)).transpose()
    }
}

/// The trail as `serve` opens it: in PostgreSQL when [`AuditConfig::postgres_url`] says so
/// (`directory_url`: the directory's), else in `audit.file`.
pub fn open(config: &AuditConfig, directory_url: &str) -> anyhow::Result<JsonLinesAudit> {
    if config.on_failure == OnFailure::Spool && config.spool.is_none() {
        anyhow::bail!("`audit.on_failure = \"spool\"` needs `audit.spool`, a file on another disk");
    }
    let postgres = config.postgres_url(directory_url);
    if let Some(url) = postgres.filter(|u| !u.starts_with("postgres://") && !u.starts_with("postgresql://")) {
        let shown = url.split(':').next().unwrap_or_default();
        anyhow::bail!(
            "`audit.url` must be a PostgreSQL URL (`postgres://user@host/database`), not `{shown}:…`; leave it unset \
             for the file trail (`audit.file`)"
        );
    }
    let log = match (&postgres, &config.spool) {
        // On PostgreSQL the checkpoints go to the table; a spool's own chain gets them beside it.
        (Some(_), Some(spool)) => PathBuf::from(format!("{}.checkpoints", spool.display())),
        _ => config.checkpoint_log(),
    };
    let checkpoints = match config.signer()? {
        Some(signer) if config.file != "-" || postgres.is_some() => Some(writer::Checkpoints {
            signer,
            every: config.checkpoint_every.max(1),
            interval: Duration::from_secs(config.checkpoint_secs.max(1)),
            log,
            witness: config.witness.clone(),
        }),
        _ => {
            tracing::warn!(
                "no signed audit checkpoints (`audit.checkpoint_key` unset or the trail on stdout): the chain alone shows edits, not a rewrite of the whole trail"
            );
            None
        }
    };
    let spool = config.spool.clone().filter(|_| config.on_failure == OnFailure::Spool);
    let replay = spool::Pace { batch: config.replay_batch, ..Default::default() };
    let commit_interval = Duration::from_micros(config.commit_interval_us);
    let options = writer::Options { checkpoints, spool, replay, commit_interval };
    match postgres {
        Some(url) => JsonLinesAudit::open_postgres(url, options).context(
            "opening the audit trail in PostgreSQL: check `audit.url` (else `directory.url`), that the server is up \
             and that the role may create the trail's tables (or that they exist: docs/audit.md)",
        ),
        None => JsonLinesAudit::open_with(&config.file, options)
            .with_context(|| format!("opening the audit file {:?}: check `audit.file`", config.file)),
    }
}

/// The acts whose HTTP answer waits until their trace is on disk (issue 18: login success, token
/// exchange / VIHF, admin acts); the others are written by the next batch without waiting.
pub fn must_be_durable(event: &AuditEvent) -> bool {
    use AuditKind::*;
    match event.kind {
        Some(Login) => event.outcome == Some(Outcome::Success),
        Some(
            TokenIssued | TokenRefreshed | VihfIssued | CardCreated | CardStatusChanged | CardBound | RoleChanged
            | IdentityAnnounced | EnrolmentCode | KeyRevoked | AccessEnded | AdminApi | SponsorshipGranted
            | Provisioned,
        ) => true,
        _ => false,
    }
}

/// The professional's idNat for a login or token line (issue 18: the DMP handover and `vigie audit
/// search --person` select by it): what a national provider (PSC) asserted at this login, else the
/// directory's — read through the identity cache, which the login's policy check has just
/// refreshed, so no extra directory read on the hot path. `None` for someone without one (or when
/// the directory cannot be read: the line is written all the same, without it).
pub async fn idnat_of(
    identities: &crate::state::IdentityCache,
    directory: &dyn vigie_core::directory::Directory,
    auth: &vigie_core::Authentication,
) -> Option<String> {
    if let Some(p) = &auth.professional {
        return Some(p.idnat.clone());
    }
    let identity = identities.get(directory, &auth.identity_id).await.ok().flatten()?;
    identity.idnat.as_ref().map(|i| i.as_str().to_owned())
}

/// Appends one record from a maintenance command, synced before it returns, chained after the
/// trail's last record under the lock the gateway's writer takes too (so a running gateway and a
/// command never fork the chain): the file's `flock`, or PostgreSQL's append lock. `-` goes to
/// stderr unchained.
pub fn append_now(config: &AuditConfig, directory_url: &str, event: &AuditEvent) -> anyhow::Result<()> {
    use std::io::Write;
    let json = serde_json::to_string(event)?;
    if let Some(url) = config.postgres_url(directory_url) {
        // A runtime of its own on a thread of its own: a command may call this from async code.
        return std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(async {
                    let trail = vigie_directory_sql::audit_trail::PgAuditTrail::open(url, 1).await?;
                    let appended = trail.append(|head| vec![pg::seal(head.as_ref(), &json)]).await;
                    trail.close().await;
                    appended.map(drop)
                })
                .context("writing the audit record to PostgreSQL: check `audit.url` (else `directory.url`)")
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the audit append panicked")))
        });
    }
    if config.file == "-" {
        std::io::stderr().write_all(format!("{json}\n").as_bytes())?;
        return Ok(());
    }
    let context = || format!("writing the audit line to {}: check `audit.file`", config.file);
    let mut file =
        std::fs::OpenOptions::new().create(true).read(true).append(true).open(&config.file).with_context(context)?;
    file.lock().with_context(context)?;
    let r = chain::resume(&mut file).with_context(context)?;
    if r.torn > 0 {
        file.set_len(r.len).with_context(context)?;
    }
    let mut link = r.link;
    let line = link.seal(&json);
    file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).with_context(context)?;
    Ok(())
}

/// Writes a new checkpoint key to `path` (owner-only) and its verifier key to `<path>.pub`,
/// unless the key is there already; returns `path`. `vigie audit keygen` and the demo use it.
pub fn ensure_key(path: &std::path::Path, origin: &str) -> anyhow::Result<PathBuf> {
    if !path.exists() {
        let pem = note::Signer::generate_pem()?;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // Owner-only from its creation: the key signs what the trail was.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(pem.as_bytes()))
            .with_context(|| format!("writing the checkpoint key {}", path.display()))?;
    }
    let signer = note::Signer::load(origin, path)?;
    let public = PathBuf::from(format!("{}.pub", path.display()));
    std::fs::write(&public, format!("{}\n", signer.verifier_key()))
        .with_context(|| format!("writing the verifier key {}", public.display()))?;
    Ok(path.to_path_buf())
}

/// The `/readyz` check `audit`, and whether it makes the replica not ready.
pub fn readiness(audit: &crate::state::Audit, config: &AuditConfig) -> (serde_json::Value, bool) {
    use serde_json::json;
    match audit.status() {
        None => (json!({ "status": "up" }), false),
        Some(s) if s.spool_refused() => (
            json!({ "status": "degraded", "detail": "a spool of an earlier outage does not verify: it is kept, not replayed into the trail (`vigie audit verify SPOOL`)" }),
            false,
        ),
        Some(s) if s.spool_pending() => (
            json!({ "status": "degraded", "detail": "a spool of an earlier outage waits to be replayed into the trail" }),
            false,
        ),
        Some(s) if s.healthy() => (json!({ "status": "up" }), false),
        Some(s) if s.spooling() => (
            json!({ "status": "degraded", "detail": "the audit trail cannot be written: events go to the spool" }),
            false,
        ),
        Some(_) => (
            json!({ "status": "down", "detail": "the audit trail cannot be written: what must be traced is refused" }),
            config.on_failure == OnFailure::FailClosed,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example configuration with `extra` appended, loaded: its errors.
    fn errors_with(extra: &str) -> Vec<String> {
        let example = include_str!("../../../../deploy/config/vigie.example.toml");
        let path = std::env::temp_dir().join(format!("vigie-audit-config-{}-{}.toml", std::process::id(), extra.len()));
        std::fs::write(&path, format!("{example}\n{extra}")).unwrap();
        let errors = crate::config::Config::load(&path).unwrap_err().0;
        let _ = std::fs::remove_file(&path);
        errors
    }

    #[test]
    fn the_former_audit_export_section_is_refused_naming_the_new_key() {
        let errors = errors_with("[audit_export.syslog]\nurl = \"tcp://127.0.0.1:514\"\n");
        assert!(
            errors.iter().any(|e| e.starts_with("`audit_export`: moved") && e.contains("`[audit.syslog]`")),
            "{errors:#?}"
        );
    }

    #[test]
    fn the_syslog_export_is_read_and_checked_under_audit() {
        let errors = errors_with("[audit.syslog]\nurl = \"udp://127.0.0.1:514\"\n");
        assert!(errors.iter().any(|e| e.starts_with("`audit.syslog.url`")), "{errors:#?}");
    }

    #[test]
    fn a_retention_for_no_known_kind_is_named_in_the_configuration_errors() {
        let errors = errors_with("[audit.retention]\nvihf = 3653\nlogin = 0\n");
        assert!(errors.iter().any(|e| e.starts_with("`audit.retention.vihf`: not an event kind")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("`audit.retention.login`: must be at least 1")), "{errors:#?}");
    }

    #[test]
    fn a_replay_batch_of_zero_is_named_in_the_configuration_errors() {
        let mut errors = Vec::new();
        let config = AuditConfig { replay_batch: 0, ..Default::default() };
        config.validate(&mut |key, problem| errors.push(format!("`{key}`: {problem}")));
        assert!(errors.iter().any(|e| e.starts_with("`audit.replay_batch`: must be at least 1")), "{errors:#?}");
    }

    #[test]
    fn a_commit_interval_past_a_tenth_of_a_second_is_refused_naming_the_key() {
        let errors = |us| {
            let mut errors = Vec::new();
            AuditConfig { commit_interval_us: us, ..AuditConfig::default() }
                .validate(&mut |key, e| errors.push(format!("`{key}`: {e}")));
            errors
        };
        let refused = errors(2_000_000);
        assert!(
            refused.iter().any(|e| e.starts_with("`audit.commit_interval_us`: 2000000 is more than 100000")),
            "{refused:#?}"
        );
        assert_eq!(errors(0), Vec::<String>::new());
        assert_eq!(errors(MAX_COMMIT_INTERVAL_US), Vec::<String>::new());
    }

    #[test]
    fn the_trail_is_in_postgresql_when_the_directory_is_unless_audit_url_says_otherwise() {
        let mut c = AuditConfig::default();
        assert_eq!(c.postgres_url("postgres://vigie@db/vigie"), Some("postgres://vigie@db/vigie"));
        assert_eq!(c.postgres_url("sqlite:///var/lib/vigie/directory.db"), None);
        c.url = Some("postgresql://audit@db2/trail".into());
        assert_eq!(c.postgres_url("sqlite:///x.db"), Some("postgresql://audit@db2/trail"));
    }
}
