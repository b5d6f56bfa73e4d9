//! HR's announcements of professionals not yet in the directory, from the command line: what
//! lets `psc.jit` create an identity at a first PSC login.
use serde_json::json;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

/// `vigie users announce|announced|withdraw`: HR's announcements of professionals (for `psc.jit`).
pub enum AnnounceCommand {
    Announce { idnat: String, family: String, given: String, unit: Option<String>, days: u32 },
    List,
    Withdraw { idnat: String },
}

/// Runs an announcement command on the deployment's directory, audited.
pub fn announce_cli(config: &crate::config::Config, command: AnnounceCommand) -> anyhow::Result<()> {
    use vigie_core::IdNat;
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let parse = |s: &str| IdNat::parse(s).map_err(|e| anyhow::anyhow!("{s:?} is not an idNat: {e}"));
        let (object, reason) = match command {
            AnnounceCommand::List => {
                let now = crate::now();
                for a in dir.announcements().await? {
                    let state = if a.expired_at(now) { "lapsed" } else { "open" };
                    println!("{}", serde_json::to_string(&json!({ "state": state, "announcement": a }))?);
                }
                return Ok(());
            }
            AnnounceCommand::Announce { idnat, family, given, unit, days } => {
                let idnat = parse(&idnat)?;
                let a = dir
                    .announce(&vigie_directory_sql::announced::NewAnnouncement {
                        idnat: &idnat,
                        family_name: &family,
                        given_name: &given,
                        unit: unit.as_deref(),
                        announced_by: &actor,
                        days,
                    })
                    .await?;
                println!("{} {} {} announced until {}", a.idnat, a.given_name, a.family_name, a.expires_at);
                if !config.psc.jit {
                    println!("note: `psc.jit` is off: the announcement is kept but creates nobody until it is on");
                }
                (format!("announcement:{}", a.idnat), format!("announced until {}", a.expires_at))
            }
            AnnounceCommand::Withdraw { idnat } => {
                let idnat = parse(&idnat)?;
                if !dir.withdraw_announcement(&idnat).await? {
                    anyhow::bail!("no announcement for {}", idnat.as_str());
                }
                println!("announcement of {} withdrawn", idnat.as_str());
                (format!("announcement:{}", idnat.as_str()), "withdrawn".to_owned())
            }
        };
        crate::cli::audit_now(
            config,
            AuditEvent {
                kind: Some(AuditKind::IdentityAnnounced),
                outcome: Some(Outcome::Success),
                actor: Some(actor.clone()),
                object: Some(object),
                reason: Some(reason),
                ..Default::default()
            },
        )
    })
}
