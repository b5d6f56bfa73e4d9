//! `vigie users …`: the deployment's directory from a terminal: HR imports and the HR feed,
//! time-bounded people, lists for auditors, passwords, TOTP, administrative roles, the attributes
//! the policies read, PSC announcements.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use vigie_core::directory::Directory;

use super::{Target, audit_now};
use vigie_directory_sql::lifecycle;

#[derive(Subcommand)]
pub(super) enum UsersCommand {
    /// Import identities from an HR CSV export, once (the columns: docs/identity-lifecycle.md;
    /// `vigie users feed` also ends leavers and keeps the dates).
    Import {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Run the HR feed: joiners, movers, leavers (no longer in the feed, or end date passed),
    /// applied all or nothing; refused past `lifecycle.hr_feed.max_leavers_percent` unless
    /// `--force`. The columns and an example: docs/identity-lifecycle.md.
    Feed {
        /// The CSV file, or a drop directory (its newest file); absent: the configured source,
        /// `lifecycle.hr_feed.path` or the HTTPS pull of `lifecycle.hr_feed.url`.
        file: Option<PathBuf>,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the diff and the result as JSON.
        #[arg(long)]
        json: bool,
        /// Apply even when the leavers pass the safety stop.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Add a time-bounded person (short mission, intern, contractor, agency staff) and their
    /// account: never active before `--from` nor after `--until`, at most
    /// `lifecycle.max_temporary_days` (docs/identity-lifecycle.md).
    AddTemporary {
        /// Login name of their account.
        username: String,
        /// A matricule for them (HR's, or one the establishment gives short missions).
        #[arg(long)]
        matricule: String,
        #[arg(long)]
        family: String,
        #[arg(long)]
        given: String,
        /// Matricule of the responsible manager.
        #[arg(long)]
        sponsor: String,
        /// `contractor`, `intern`, `agency`, `mission` or `staff`.
        #[arg(long, default_value = "contractor")]
        kind: String,
        /// First day (YYYY-MM-DD) or instant (RFC 3339); now when absent.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD: access ends with it) or the instant access ends (RFC 3339).
        #[arg(long)]
        until: String,
        /// Functional unit (UF) they work in.
        #[arg(long)]
        unit: Option<String>,
        /// Métier.
        #[arg(long)]
        metier: Option<String>,
        /// Their e-mail address: the reminders before the end date go to it (and to the sponsor's).
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Move a person's end date (extend or shorten a mission): `YYYY-MM-DD` (access ends with that
    /// day), an RFC 3339 instant, or `none`; its reminders are sent afresh (docs/identity-lifecycle.md).
    SetEndDate {
        /// Matricule or login name.
        who: String,
        until: String,
        #[command(flatten)]
        target: Target,
    },
    /// Issue an HR enrolment code with which a person registers a FIDO2 key at `/account/enrol`
    /// (single use, valid `webauthn.enrolment_code_ttl_secs`; any code they had stops working).
    /// Shown once here; never logged nor audited (docs/identity-lifecycle.md).
    EnrolmentCodes {
        /// The person: login name or matricule.
        #[arg(long)]
        issue: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// List people: those whose access ends within a period (`--expiring-within 7d`), the generic
    /// (shared) accounts (`--kind generic`), or everyone.
    List {
        /// A period: `7d`, `36h`.
        #[arg(long)]
        expiring_within: Option<String>,
        /// `generic` or `personal`: people whose account is of that kind.
        #[arg(long)]
        kind: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
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
        UsersCommand::Feed { file, dry_run, json, force, target } => {
            feed(&target, file.as_deref(), dry_run, json, force)
        }
        UsersCommand::EnrolmentCodes { issue, json, target } => enrolment_code(&target, &issue, json),
        UsersCommand::AddTemporary {
            username,
            matricule,
            family,
            given,
            sponsor,
            kind,
            from,
            until,
            unit,
            metier,
            email,
            target,
        } => {
            let person =
                TemporaryArgs { username, matricule, family, given, sponsor, kind, from, until, unit, metier, email };
            add_temporary(&target, person)
        }
        UsersCommand::SetEndDate { who, until, target } => {
            let config = target.config()?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            println!("{}", rt.block_on(crate::lifecycle::end_date::set(&config, &who, &until))?);
            Ok(())
        }
        UsersCommand::List { expiring_within, kind, json, target } => list(&target, expiring_within, kind, json),
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
                // HR brings back someone the life cycle ended: their account is enabled again
                // (refused while their end date has passed).
                if s == "active" {
                    dir.reinstate(username, &lifecycle::stamp(time::OffsetDateTime::now_utc())).await?;
                }
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

/// `vigie users feed`. A pull from the command line is whole (not conditional): HR runs it to see
/// the export as it is.
fn feed(target: &Target, file: Option<&std::path::Path>, dry_run: bool, json: bool, force: bool) -> anyhow::Result<()> {
    use crate::lifecycle::feed::{RunOptions, RunOutcome};
    use crate::lifecycle::pull::{self, Pulled};
    let config = target.config()?;
    let configured = config.lifecycle.hr_feed.as_ref();
    let max_leavers_percent = configured.map_or(5.0, |f| f.max_leavers_percent);
    let options = RunOptions { dry_run, force, max_leavers_percent };
    // A file named on the command line, else the configured file drop, else the configured pull.
    let (file, pulled) = match (file, configured) {
        (Some(f), _) => (Some(crate::lifecycle::feed::feed_file(f)?), None),
        (None, Some(feed)) if feed.url.is_some() => (None, Some(feed)),
        (None, Some(feed)) => (Some(crate::lifecycle::feed::feed_file(&feed.path)?), None),
        (None, None) => anyhow::bail!(
            "no feed given: name the CSV file or drop directory, or configure `lifecycle.hr_feed` \
             (docs/identity-lifecycle.md)"
        ),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let audit = |event| {
            if let Err(e) = audit_now(&config, event) {
                eprintln!("vigie: {e:#}");
            }
        };
        let outcome = async {
            match (&file, pulled) {
                (Some(file), _) => crate::lifecycle::feed::run(&dir, file, options, None, &audit).await,
                (None, Some(feed)) => {
                    let url = feed.url.as_deref().unwrap_or_default();
                    let Pulled::Export { text, .. } = pull::pull(&pull::client(feed)?, feed, url, None).await? else {
                        anyhow::bail!("the HR server answered 304 to an unconditional pull");
                    };
                    crate::lifecycle::feed::run_text(&dir, &text, url, &pull::name_of(url), options, None, &audit).await
                }
                (None, None) => anyhow::bail!("no feed to run"),
            }
        }
        .await;
        // Every run, failed ones included, is on the console's feeds page (`vigie feeds runs`).
        let source = file.as_ref().map(|f| f.display().to_string()).or_else(|| pulled.and_then(|f| f.url.clone()));
        let by = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
        crate::lifecycle::runs::record(&dir, &source.unwrap_or_default(), &by, dry_run, &outcome).await;
        let outcome = outcome?;
        crate::lifecycle::orders::after_run(&dir, &config.lifecycle, &outcome, &audit).await;
        let mut codes = Vec::new();
        if let RunOutcome::Applied { diff, .. } = &outcome {
            crate::policy::view::tell_replicas(&config).await;
            // Each joiner gets a code for a first key, shown once below (a run of `serve` issues
            // none: nobody would see it; HR issues them with `vigie users enrolment-codes`).
            let joiners: std::collections::HashSet<&str> = diff.joiners.iter().map(|e| e.matricule.as_str()).collect();
            for p in dir.people().await?.into_iter().filter(|p| joiners.contains(p.identity.matricule.as_str())) {
                let i = &p.identity;
                codes.push(
                    crate::lifecycle::enrolment::issue(
                        &dir,
                        &config,
                        &i.id,
                        &i.matricule,
                        p.username.clone(),
                        "hr-feed",
                    )
                    .await?,
                );
            }
        }
        Ok::<_, anyhow::Error>((outcome, codes))
    })?;
    let (outcome, codes) = outcome;
    let source = match &outcome {
        RunOutcome::DryRun { file, .. }
        | RunOutcome::Unchanged { file, .. }
        | RunOutcome::Applied { file, .. }
        | RunOutcome::Refused { file, .. }
        | RunOutcome::NotModified { file, .. } => file.clone(),
    };
    if json {
        let mut out = serde_json::to_value(&outcome)?;
        if let Some(o) = out.as_object_mut().filter(|_| !codes.is_empty()) {
            o.insert("enrolment_codes".into(), serde_json::to_value(&codes)?);
        }
        println!("{out}");
    } else {
        let what = match &outcome {
            RunOutcome::DryRun { .. } => "dry run, nothing changed",
            RunOutcome::Unchanged { .. } => "nothing to change",
            RunOutcome::Applied { .. } => "applied",
            RunOutcome::Refused { .. } => "REFUSED, nothing changed",
            RunOutcome::NotModified { .. } => "not modified since the last run",
        };
        print!("HR feed {source} ({what}): {}", outcome.diff());
        for c in &codes {
            println!("{}", code_line(c));
        }
    }
    if let RunOutcome::Refused { reason, .. } = outcome {
        anyhow::bail!("{reason}");
    }
    Ok(())
}

/// One issued code, as HR reads it off the terminal.
fn code_line(c: &crate::lifecycle::enrolment::HrCode) -> String {
    let who = c.username.as_ref().map_or_else(|| c.matricule.clone(), |u| format!("{} ({u})", c.matricule));
    format!("enrolment code {who}  {}  until {}  at {}", c.code, c.expires_at, c.enrol_url)
}

/// `vigie users enrolment-codes --issue <person>`.
fn enrolment_code(target: &Target, who: &str, json: bool) -> anyhow::Result<()> {
    let config = target.config()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let code = rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let people = dir.people().await?;
        let p = people.iter().find(|p| p.username.as_deref() == Some(who) || p.identity.matricule == who).ok_or_else(
            || anyhow::anyhow!("no person with login name or matricule {who:?}: check `vigie users list`"),
        )?;
        if p.lifecycle_ended.is_some() || p.disabled == Some(true) {
            anyhow::bail!("{who}'s access is ended or disabled: bring them back before issuing an enrolment code");
        }
        let i = &p.identity;
        crate::lifecycle::enrolment::issue(&dir, &config, &i.id, &i.matricule, p.username.clone(), "cli").await
    })?;
    if json {
        println!("{}", serde_json::to_string(&code)?);
    } else {
        println!("{}", code_line(&code));
    }
    Ok(())
}

/// The arguments of `vigie users add-temporary`.
struct TemporaryArgs {
    username: String,
    matricule: String,
    family: String,
    given: String,
    sponsor: String,
    kind: String,
    from: Option<String>,
    until: String,
    unit: Option<String>,
    metier: Option<String>,
    email: Option<String>,
}

/// `vigie users add-temporary`.
fn add_temporary(target: &Target, a: TemporaryArgs) -> anyhow::Result<()> {
    let config = target.config()?;
    let now = time::OffsetDateTime::now_utc();
    let start_at = match &a.from {
        Some(d) => {
            lifecycle::parse_instant(d, lifecycle::DateEdge::Start).map_err(|e| anyhow::anyhow!("--from: {e}"))?
        }
        None => lifecycle::stamp(now),
    };
    let end_at =
        lifecycle::parse_instant(&a.until, lifecycle::DateEdge::End).map_err(|e| anyhow::anyhow!("--until: {e}"))?;
    lifecycle::check_person_kind(&a.kind).map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    if let Some(e) = &a.email {
        vigie_mail::parse_address(e).map_err(|e| anyhow::anyhow!("--email: {e}: name@domain"))?;
    }
    let parse = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339);
    let (start, end) = (parse(&start_at)?, parse(&end_at)?);
    if end <= start.max(now) {
        anyhow::bail!("--until: the end ({end_at}) must be after the start ({start_at}) and after now");
    }
    let max = time::Duration::days(i64::from(config.lifecycle.max_temporary_days));
    if end - start > max {
        anyhow::bail!(
            "--until: a stay of at most {} days (`lifecycle.max_temporary_days`); the HR feed keeps longer ones",
            config.lifecycle.max_temporary_days
        );
    }
    let identity = vigie_core::directory::Identity {
        id: String::new(),
        matricule: a.matricule.clone(),
        family_name: a.family,
        given_name: a.given,
        birth_date: None,
        metier: a.metier,
        grade: None,
        idnat: None,
        units: a.unit.into_iter().map(|uf| vigie_core::directory::Affectation { uf, share: 100 }).collect(),
    };
    let person = vigie_directory_sql::Temporary {
        identity,
        username: a.username.clone(),
        start_at: start_at.clone(),
        end_at: end_at.clone(),
        sponsor: a.sponsor.clone(),
        kind: a.kind.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let id = dir.add_temporary(&person).await?;
        if let Some(email) = &a.email {
            vigie_core::sponsorship::Sponsorships::set_email(&dir, &id, Some(email)).await?;
        }
        println!("{} ({}): {} from {start_at} until {end_at}, sponsor {}", a.username, a.matricule, a.kind, a.sponsor);
        audit_now(
            &config,
            vigie_core::audit::AuditEvent {
                kind: Some(vigie_core::audit::AuditKind::Lifecycle),
                outcome: Some(vigie_core::audit::Outcome::Success),
                subject: Some(id),
                username: Some(a.username.clone()),
                actor: Some(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))),
                object: Some(format!("person:{}", a.matricule)),
                reason: Some(format!("added for a time: {} until {end_at}, sponsor {}", a.kind, a.sponsor)),
                ..Default::default()
            },
        )
    })
}

/// `7d`, `36h`, `90m` as a duration.
fn period(s: &str) -> anyhow::Result<time::Duration> {
    let bad = || anyhow::anyhow!("--expiring-within: {s:?} is not a period: a number and d, h or m (7d, 36h)");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    match unit {
        "d" => Ok(time::Duration::days(n)),
        "h" => Ok(time::Duration::hours(n)),
        "m" => Ok(time::Duration::minutes(n)),
        _ => Err(bad()),
    }
}

/// `vigie users list`.
fn list(target: &Target, expiring_within: Option<String>, kind: Option<String>, json: bool) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let until = expiring_within.as_deref().map(period).transpose()?.map(|p| lifecycle::stamp(now + p));
    if let Some(k) = &kind
        && vigie_core::policy::AccountKind::parse(k).is_none()
    {
        anyhow::bail!("--kind: unknown account kind {k:?}: personal or generic");
    }
    let config = target.config()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let people = rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        dir.people().await
    })?;
    let now = lifecycle::stamp(now);
    let listed = people.into_iter().filter(|p| {
        let expiring = until.as_ref().is_none_or(|until| {
            p.end_at.as_ref().is_some_and(|end| end.as_str() > now.as_str() && end <= until)
                && p.lifecycle_ended.is_none()
        });
        expiring && kind.as_ref().is_none_or(|k| p.account_kind.as_ref() == Some(k))
    });
    for p in listed {
        if json {
            println!("{}", serde_json::to_string(&p)?);
        } else {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            println!(
                "{}\t{}\t{} {}\t{}\tkind {}\tuntil {}\tsponsor {}\t{}",
                p.identity.matricule,
                show(&p.username),
                p.identity.given_name,
                p.identity.family_name,
                show(&p.account_kind),
                show(&p.kind),
                show(&p.end_at),
                show(&p.sponsor),
                p.lifecycle_ended.as_ref().map_or(p.status.clone(), |why| format!("ended: {why}")),
            );
        }
    }
    Ok(())
}
