//! `vigie rpps …`: the idNat derived from the RPPS (docs/identity-lifecycle.md, "Derivation from
//! the RPPS"): load the extraction, propose matches, HR confirms, list what waits; look a
//! professional up in the Annuaire Santé's FHIR API (`derivation.fhir_url`).
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_directory_sql::SqlDirectory;

use super::{Target, audit_now};
use crate::config::Config;
use crate::derivation::bundle::Professional;
use crate::derivation::fhir::Fhir;
use crate::derivation::{extraction, matching};

#[derive(Subcommand)]
pub(super) enum RppsCommand {
    /// Load the RPPS personne-activité extraction (PS_LibreAcces, `|`-separated), replacing the
    /// previous load at once; then refresh the confirmed professionals and flag the struck off
    /// (`derivation.on_struck_off`).
    Load {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Match identities without an idNat against the loaded extraction (names, profession, birth
    /// date where known), or, when none is loaded, against the Annuaire Santé's FHIR API
    /// (`derivation.fhir_url`); the proposals wait for HR (`vigie rpps list`, `vigie rpps confirm`).
    Propose {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Re-read every confirmed professional from the Annuaire Santé's FHIR API
    /// (`derivation.fhir_url`): profession and specialty updated, a Practitioner no longer active
    /// or whose roles ended flagged (`derivation.on_struck_off`). Reads all before writing any.
    Refresh {
        /// Say what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Ask the Annuaire Santé's FHIR API (`derivation.fhir_url`) for a professional: by idNat or
    /// RPPS number, or by exercise names ("family given"); prints each candidate with profession,
    /// specialty and whether they exercise. Changes nothing.
    Lookup {
        /// An idNat_PS / RPPS number, or "FAMILY Given" (one argument, quoted).
        query: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The pending proposals, and the confirmed professionals the RPPS flagged.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// HR confirms that the identity (matricule) is this professional of the RPPS: the identity
    /// gets the idNat (ID token `idnat` claim, VIHF). Audited. The idNat is looked up in the loaded
    /// extraction, or in the FHIR API when the extraction does not list it and one is configured.
    Confirm {
        /// Matricule of the identity.
        identity: String,
        /// The idNat (`Identification nationale PP`) of the loaded extraction.
        idnat: String,
        #[command(flatten)]
        target: Target,
    },
    /// HR rejects a pending proposal (the identity is not this professional): it goes and is not
    /// proposed again. Audited.
    Reject {
        /// Matricule of the identity.
        identity: String,
        /// The proposed idNat.
        idnat: String,
        #[command(flatten)]
        target: Target,
    },
}

fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(super) fn run(command: RppsCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match command {
        RppsCommand::Load { file, target } => {
            let config = target.config()?;
            rt.block_on(load(&config, &file))
        }
        RppsCommand::Propose { json, target } => {
            let config = target.config()?;
            rt.block_on(async {
                let dir = SqlDirectory::open(&config.directory.url).await?;
                let api = Fhir::from_config(&config.derivation)?;
                let source = match (&api, dir.rpps_loaded().await?) {
                    (_, true) => matching::Source::Extraction,
                    (Some(api), false) => matching::Source::Fhir(api),
                    (None, false) => anyhow::bail!(
                        "no RPPS extraction loaded yet: run `vigie rpps load FILE` first, or set derivation.fhir_url"
                    ),
                };
                let found = matching::propose(&dir, source).await?;
                if json {
                    println!("{}", serde_json::to_string(&found)?);
                } else {
                    for f in &found {
                        println!("{:<6} {} → {} ({})", f.strength, f.matricule, f.idnat, f.why);
                    }
                    let strong = found.iter().filter(|f| f.strength == "strong").count();
                    println!(
                        "{} proposal(s): {strong} strong, {} weak; HR confirms with `vigie rpps confirm`",
                        found.len(),
                        found.len() - strong
                    );
                }
                Ok(())
            })
        }
        RppsCommand::List { json, target } => {
            let config = target.config()?;
            rt.block_on(async {
                let dir = SqlDirectory::open(&config.directory.url).await?;
                let proposals = dir.rpps_proposals().await?;
                let flagged: Vec<_> = dir.rpps_links().await?.into_iter().filter(|l| l.struck_off.is_some()).collect();
                if json {
                    println!("{}", serde_json::json!({"proposals": proposals, "struck_off": flagged}));
                } else {
                    for p in &proposals {
                        println!("proposed  {:<6} {} → {} ({})", p.strength, p.matricule, p.idnat, p.why);
                    }
                    for l in &flagged {
                        let dmp = if l.dmp_withheld.is_some() { "; DMP withheld" } else { "" };
                        println!(
                            "struck    {} ({}): {}{dmp}",
                            l.matricule,
                            l.idnat,
                            l.struck_off.as_deref().unwrap_or("")
                        );
                    }
                }
                Ok(())
            })
        }
        RppsCommand::Refresh { dry_run, json, target } => {
            let config = target.config()?;
            rt.block_on(crate::derivation::refresh::cli(&config, dry_run, json))
        }
        RppsCommand::Lookup { query, json, target } => {
            let config = target.config()?;
            rt.block_on(lookup(&config, &query, json))
        }
        RppsCommand::Confirm { identity, idnat, target } => {
            let config = target.config()?;
            rt.block_on(decide(&config, &identity, &idnat, true))
        }
        RppsCommand::Reject { identity, idnat, target } => {
            let config = target.config()?;
            rt.block_on(decide(&config, &identity, &idnat, false))
        }
    }
}

async fn load(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let input = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let input = std::io::BufReader::with_capacity(1 << 16, input);
    let today = today();
    let mut lines = extraction::Extraction::open(input, &config.derivation.columns, &today)
        .with_context(|| format!("{} is not an RPPS extraction", file.display()))?;
    let encoding = lines.encoding();
    let dir = SqlDirectory::open(&config.directory.url).await?;
    let mut load = dir.rpps_load().await?;
    // The first bad line stops the load: the previous index stays whole (one transaction).
    for entry in lines.by_ref() {
        match entry {
            Ok(e) => {
                if let Err(err) = load.add(&e).await {
                    load.abort().await;
                    return Err(err.into());
                }
            }
            Err(err) => {
                load.abort().await;
                anyhow::bail!("{}: {err}; nothing loaded, the previous load stays", file.display());
            }
        }
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let rows = load.finish(&name, encoding.as_str()).await?;
    println!(
        "{}: {rows} line(s) loaded ({}) in {:.1} s",
        file.display(),
        encoding.as_str(),
        started.elapsed().as_secs_f64()
    );
    let changes = matching::refresh(&dir, config.derivation.on_struck_off, &today).await?;
    for c in &changes {
        let (outcome, reason) = match &c.struck_off {
            Some(why) => {
                let dmp =
                    if c.dmp_withheld { "; VIHF issuance withheld (derivation.on_struck_off = deny_dmp)" } else { "" };
                (Outcome::Failure, format!("struck off: {why}{dmp}"))
            }
            None => (Outcome::Success, "listed active in the RPPS again".to_owned()),
        };
        println!("{} ({}): {reason}", c.matricule, c.idnat);
        audit_now(
            config,
            AuditEvent {
                kind: Some(AuditKind::Lifecycle),
                outcome: Some(outcome),
                subject: Some(c.identity_id.clone()),
                idnat: Some(c.idnat.clone()),
                actor: Some(format!("rpps-load:{name}")),
                object: Some(format!("derivation:{}", c.matricule)),
                reason: Some(reason),
                ..Default::default()
            },
        )?;
    }
    if !changes.is_empty() {
        crate::policy::view::tell_replicas(config).await;
    }
    Ok(())
}

/// The identity id of a matricule.
async fn identity_of(dir: &SqlDirectory, matricule: &str) -> anyhow::Result<String> {
    dir.people()
        .await?
        .into_iter()
        .find(|p| p.identity.matricule == matricule)
        .map(|p| p.identity.id)
        .with_context(|| format!("no identity with matricule {matricule:?}: `vigie users list` shows them"))
}

async fn decide(config: &Config, matricule: &str, idnat: &str, confirm: bool) -> anyhow::Result<()> {
    let dir = SqlDirectory::open(&config.directory.url).await?;
    let id = identity_of(&dir, matricule).await?;
    let d = if confirm {
        crate::derivation::confirm::confirm(&dir, &config.derivation, &id, idnat, &operator()).await?
    } else {
        crate::derivation::confirm::reject(&dir, &id, idnat, &operator()).await?
    };
    match &d.rpps_names {
        Some(names) => println!(
            "{matricule}: idNat {} ({names}, {}) — {}",
            d.idnat,
            d.profession.as_deref().unwrap_or("profession not given"),
            d.proposal
        ),
        None => println!("{matricule}: proposal of {} rejected, not proposed again — {}", d.idnat, d.proposal),
    }
    audit_now(config, crate::derivation::confirm::audit_event(&d, &operator()))?;
    if confirm {
        crate::policy::view::tell_replicas(config).await;
    }
    Ok(())
}

async fn lookup(config: &Config, query: &str, json: bool) -> anyhow::Result<()> {
    let api = Fhir::from_config(&config.derivation)?
        .context("no Annuaire Santé API configured: set derivation.fhir_url and derivation.fhir_api_key_file")?;
    let query = query.trim();
    let found = if !query.is_empty()
        && query.chars().all(|c| c.is_ascii_alphanumeric())
        && query.chars().any(|c| c.is_ascii_digit())
    {
        api.by_identifier(query).await?
    } else {
        let (family, given) = query.split_once(char::is_whitespace).unwrap_or((query, ""));
        anyhow::ensure!(!family.is_empty(), "expected an idNat, an RPPS number or \"FAMILY Given\"");
        api.by_name(family, given.trim()).await?
    };
    if json {
        println!("{}", serde_json::to_string(&found)?);
        return Ok(());
    }
    for p in &found {
        println!("{}", describe(p));
    }
    println!("{} candidate(s); HR confirms one with `vigie rpps confirm MATRICULE IDNAT`", found.len());
    Ok(())
}

/// One line of `vigie rpps lookup`.
fn describe(p: &Professional) -> String {
    let label = |c: &Option<(String, String)>| c.as_ref().map(|(code, l)| format!("{l} ({code})"));
    let specialties: Vec<String> = p.specialties.iter().map(|(c, l)| format!("{l} ({c})")).collect();
    let modes: Vec<String> =
        p.activities.iter().filter(|a| a.active).filter_map(|a| a.mode.as_ref().map(|(_, l)| l.clone())).collect();
    let status = match (p.active, p.exercising()) {
        (false, _) => "deleted from the directory".to_owned(),
        (true, false) => "no activity in exercise".to_owned(),
        (true, true) if modes.is_empty() => "exercising".to_owned(),
        (true, true) => format!("exercising ({})", modes.join(", ")),
    };
    format!(
        "{} (RPPS {}) {} {} — {}; {}; specialty: {}; {status}",
        p.idnat,
        p.rpps,
        p.family_name,
        p.given_name,
        label(&p.profession).unwrap_or_else(|| "profession not given".into()),
        label(&p.category).map(|c| format!("category {c}")).unwrap_or_else(|| "category not given".into()),
        if specialties.is_empty() { "none".to_owned() } else { specialties.join(", ") },
    )
}
