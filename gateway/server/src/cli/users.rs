//! `vigie users …`: the deployment's directory from a terminal: HR imports, passwords, TOTP,
//! administrative roles, the attributes the policies read, PSC announcements.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use vigie_core::directory::Directory;

use super::{Target, audit_now};

#[derive(Subcommand)]
pub(super) enum UsersCommand {
    /// Import identities from an HR CSV export (see adapters/directory-sql/examples/hr-export.csv).
    Import {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Set an account's password, read from standard input (one line; at least 12 characters).
    SetPassword {
        username: String,
        #[command(flatten)]
        target: Target,
    },
    /// Give an account a new TOTP secret; prints it and an otpauth:// URI for the user's app.
    EnrollTotp {
        username: String,
        #[command(flatten)]
        target: Target,
    },
    /// Give an account an administrative role (cards: HR / medical affairs manage cards).
    GrantRole {
        username: String,
        role: String,
        #[command(flatten)]
        target: Target,
    },
    /// Take an administrative role from an account.
    RevokeRole {
        username: String,
        role: String,
        #[command(flatten)]
        target: Target,
    },
    /// Mark an account `personal` or `generic` (a shared account: the policies keep it off
    /// sensitive clients and the DMP).
    SetKind {
        username: String,
        kind: String,
        #[command(flatten)]
        target: Target,
    },
    /// Set a person's employment status: `active`, `suspended`, `left` (the policies refuse
    /// everything but `active`).
    SetStatus {
        username: String,
        status: String,
        #[command(flatten)]
        target: Target,
    },
    /// Announce a professional before their first day: with `psc.jit`, their first login through
    /// Pro Santé Connect creates their identity (once).
    Announce {
        /// Their idNat (`8`+RPPS, `0`+ADELI), as PSC will assert it.
        idnat: String,
        #[arg(long)]
        family: String,
        #[arg(long)]
        given: String,
        /// Functional unit (UF) of their first affectation.
        #[arg(long)]
        unit: Option<String>,
        /// Days the announcement stays usable.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[command(flatten)]
        target: Target,
    },
    /// List the announced professionals (JSON lines).
    Announced {
        #[command(flatten)]
        target: Target,
    },
    /// Withdraw an announcement.
    Withdraw {
        idnat: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Runs a `vigie users …` command.
pub(super) fn run(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Import { file, target } => {
            let config = target.config()?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows =
                vigie_directory_sql::parse_hr_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let report = rt.block_on(async {
                let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
                let r = vigie_directory_sql::import_rows(&dir, &rows).await?;
                dir.ping().await?;
                crate::policy::view::tell_replicas(&config).await;
                Ok::<_, anyhow::Error>(r)
            })?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        UsersCommand::SetPassword { username, target } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']).to_owned();
            if password.chars().count() < MIN_PASSWORD_CHARS {
                anyhow::bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
            }
            with_account(&target, &username, |a| {
                a.password_hash = Some(crate::secrets::hash_password(&password));
                Ok(())
            })?;
            println!("password of {username} set");
            Ok(())
        }
        UsersCommand::EnrollTotp { username, target } => {
            let issuer = target.config()?.issuer;
            let mut secret = vec![0u8; 20];
            aws_lc_rs::rand::fill(&mut secret).context("system random generator")?;
            let b32 = crate::totp::base32(&secret);
            with_account(&target, &username, |a| {
                a.totp_secret = Some(secret);
                Ok(())
            })?;
            let label =
                url::form_urlencoded::byte_serialize(format!("Vigie:{username}").as_bytes()).collect::<String>();
            let host = url::Url::parse(&issuer).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default();
            println!("totp secret (base32): {b32}");
            // Key Uri Format (Google Authenticator): SHA1, 6 digits, 30 s, as RFC 6238 §4 defaults.
            println!("otpauth://totp/{label}?secret={b32}&issuer=Vigie%20{host}&algorithm=SHA1&digits=6&period=30");
            Ok(())
        }
        UsersCommand::GrantRole { username, role, target } => change_role(&target, &username, &role, true),
        UsersCommand::RevokeRole { username, role, target } => change_role(&target, &username, &role, false),
        UsersCommand::SetKind { username, kind, target } => {
            let kind = vigie_core::policy::AccountKind::parse(&kind)
                .with_context(|| format!("unknown account kind {kind:?}: personal or generic"))?;
            set_policy_attribute(&target, &username, PolicyAttribute::Kind(kind))
        }
        UsersCommand::SetStatus { username, status, target } => {
            set_policy_attribute(&target, &username, PolicyAttribute::Status(status))
        }
        UsersCommand::Announce { idnat, family, given, unit, days, target } => {
            let command = crate::psc::AnnounceCommand::Announce { idnat, family, given, unit, days };
            crate::psc::announce_cli(&target.config()?, command)
        }
        UsersCommand::Announced { target } => {
            crate::psc::announce_cli(&target.config()?, crate::psc::AnnounceCommand::List)
        }
        UsersCommand::Withdraw { idnat, target } => {
            crate::psc::announce_cli(&target.config()?, crate::psc::AnnounceCommand::Withdraw { idnat })
        }
    }
}

/// An attribute the policies read, set from the command line.
enum PolicyAttribute {
    Kind(vigie_core::policy::AccountKind),
    Status(String),
}

/// Sets an attribute the policies read (account kind, employment status), and audits it.
fn set_policy_attribute(target: &Target, username: &str, attribute: PolicyAttribute) -> anyhow::Result<()> {
    use vigie_core::directory::PolicyAttributes;
    let config = target.config()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let (found, what) = match &attribute {
            PolicyAttribute::Kind(k) => {
                (dir.set_account_kind(username, *k).await?, format!("account kind {}", k.as_str()))
            }
            PolicyAttribute::Status(s) => {
                (dir.set_employment_status(username, s).await?, format!("employment status {s}"))
            }
        };
        if !found {
            anyhow::bail!("no account {username:?}: import the user first (`vigie users import`)");
        }
        crate::policy::view::tell_replicas(&config).await;
        println!("{username}: {what}");
        audit_now(
            &config,
            vigie_core::audit::AuditEvent {
                kind: Some(vigie_core::audit::AuditKind::RoleChanged),
                outcome: Some(vigie_core::audit::Outcome::Success),
                username: Some(username.to_owned()),
                actor: Some(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))),
                object: Some(what.clone()),
                reason: Some("set".into()),
                ..Default::default()
            },
        )
    })
}

/// Grants or revokes a role of the account `username`, in the deployment's directory.
fn change_role(target: &Target, username: &str, role: &str, grant: bool) -> anyhow::Result<()> {
    use vigie_core::roles::Roles;
    let role = vigie_core::roles::Role::parse(role).map_err(anyhow::Error::msg)?;
    let config = target.config()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let account = dir
            .account_by_username(username)
            .await?
            .with_context(|| format!("no account {username:?}: import the user first (`vigie users import`)"))?;
        let changed = if grant {
            dir.grant(&account.identity_id, role, "cli").await?;
            println!("role {role} granted to {username}");
            "granted"
        } else if dir.revoke(&account.identity_id, role).await? {
            println!("role {role} revoked from {username}");
            "revoked"
        } else {
            println!("{username} did not have the role {role}");
            return Ok(());
        };
        crate::policy::view::tell_replicas(&config).await;
        audit_now(
            &config,
            vigie_core::audit::AuditEvent {
                kind: Some(vigie_core::audit::AuditKind::RoleChanged),
                outcome: Some(vigie_core::audit::Outcome::Success),
                subject: Some(account.identity_id.clone()),
                username: Some(username.to_owned()),
                actor: Some(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))),
                object: Some(format!("role:{role}")),
                reason: Some(changed.into()),
                ..Default::default()
            },
        )
    })
}

/// Minimum password length (ANSSI's recommendations for a password that is one factor of two).
const MIN_PASSWORD_CHARS: usize = 12;

fn with_account(
    target: &Target,
    username: &str,
    change: impl FnOnce(&mut vigie_core::directory::Account) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let config = target.config()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let mut account = dir
            .account_by_username(username)
            .await?
            .with_context(|| format!("no account {username:?}: import the user first (`vigie users import`)"))?;
        change(&mut account)?;
        dir.upsert_account(&account).await?;
        Ok(())
    })
}
