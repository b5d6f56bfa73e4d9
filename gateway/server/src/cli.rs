//! The `vigie` command line.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigie_core::directory::Directory;

use crate::config::Config;
use crate::keys::KeyFile;

#[derive(Parser)]
#[command(name = "vigie", version, about = "Vigie: the identity gateway of a health establishment")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config, runs the embedded demo.
    Serve {
        /// Configuration file (TOML); `VIGIE_…` environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// HTTPS listener (demo default 127.0.0.1:8443; overrides `server.listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where the demo keeps its state (default ./vigie-demo).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a configuration file without starting.
    CheckConfig { file: PathBuf },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Directory users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Clients.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Print the current TOTP code of a base32 secret (for trying the demo).
    Totp { secret: String },
    /// CPS / CPE cards of agents (HR, medical affairs), through the admin API.
    Cards {
        #[command(subcommand)]
        command: crate::admin::cli::CardsCommand,
    },
    /// Admin API tokens.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The policy set (Cedar): check it, or ask it a question, before deploying it.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy directory against the schema (the built-in set without DIR); one line
    /// per problem, `file:line:column: reason`; exit status 1 when invalid.
    Validate { dir: Option<PathBuf> },
    /// Decide one request and print the decision as JSON: allowed, deciding policy ids, the MIE
    /// that would do when refused. Exit status 0 when allowed, 3 when refused.
    Eval {
        /// Policy directory (default: the built-in set).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The principal, JSON (`{"category": "paramedical", "has_idnat": false, …}`).
        #[arg(long, default_value = "{}")]
        principal: String,
        /// login_to_client, access_dmp, sponsor, enrol_mie, administer.
        #[arg(long)]
        action: String,
        /// The resource, JSON: `{"type": "client", "id": "dpi", "sensitive": true}`, `"dmp"`, `"system"`.
        #[arg(long)]
        resource: String,
        /// The context, JSON: `{"authentication": {"mie": "password_totp"}, "network_zone": "internal"}`.
        #[arg(long)]
        context: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Generate an admin API token and the entry to put in `[admin] tokens`.
    NewToken {
        /// Who will hold it (audit lines say `token:<name>`).
        #[arg(long, default_value = "hr-cli")]
        name: String,
        /// Roles it grants (repeat or comma-separate: cards, fido2).
        #[arg(long, value_delimiter = ',', default_value = "cards")]
        role: Vec<String>,
        /// What it may do within its roles (repeat or comma-separate: cards:read, cards:write,
        /// cards:bind, keys:read, keys:enrol, keys:revoke). Default: the read scopes of its roles.
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new key set (a current and a next key of each type).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Rotate: next → current, current → previous (kept until its tokens expire), new next.
    Rotate {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
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

/// Grants or revokes a role of the account `username`, in the deployment's directory.
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

/// Appends one audit line from a maintenance command, synchronously (the process ends right
/// after; the gateway's background writer would not get to flush it). `-` goes to stderr.
pub(crate) fn audit_now(config: &Config, mut event: vigie_core::audit::AuditEvent) -> anyhow::Result<()> {
    use std::io::Write;
    event.at = crate::rfc3339_now();
    let line = format!("{}\n", serde_json::to_string(&event)?);
    if config.audit.file == "-" {
        std::io::stderr().write_all(line.as_bytes())?;
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.audit.file)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("writing the audit line to {}: check `audit.file`", config.audit.file))?;
    }
    Ok(())
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

#[derive(Subcommand)]
enum ClientsCommand {
    /// Generate a client secret and the hash to put in `client_secret_hash`.
    NewSecret,
}

/// Which deployment a maintenance command acts on.
#[derive(clap::Args)]
struct Target {
    /// Configuration file of the deployment.
    #[arg(long, conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// Data directory of the embedded demo.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Target {
    fn config(&self) -> anyhow::Result<Config> {
        match (&self.config, &self.data_dir) {
            (Some(c), _) => Ok(Config::load(c)?),
            (None, d) => demo_config(d.as_deref(), None),
        }
    }
}

fn demo_config(data_dir: Option<&Path>, listen: Option<SocketAddr>) -> anyhow::Result<Config> {
    let dir = data_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(crate::demo::DEFAULT_DATA_DIR));
    let listen = listen.unwrap_or_else(|| crate::demo::DEFAULT_LISTEN.parse().expect("default listen address"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let base = rt.block_on(crate::demo::prepare(&dir, listen))?;
    Ok(Config::from_base(&base)?)
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VIGIE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Keeps resident memory proportional to live data. Each password check (argon2id) takes a
/// 19 MiB block; glibc's default raises its mmap threshold after the first such block is freed
/// and then keeps later ones in its heap for good, so an idle gateway would hold tens of MiB.
/// A fixed threshold sends every block of 1 MiB or more straight back to the system, and two
/// arenas are enough for a handful of threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called once, before any thread
    // of ours exists, with constants glibc documents.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

pub fn main() -> ExitCode {
    tune_allocator();
    // aws-lc-rs is the one crypto provider (reference/dependencies.md, conflict 1).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    crate::jose::install();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigie: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, listen, data_dir } => {
            init_logs();
            let demo = config.is_none();
            let config = match &config {
                Some(path) => {
                    let mut c = Config::load(path)?;
                    if let Some(l) = listen {
                        c.server.listen = l;
                    }
                    c
                }
                None => demo_config(data_dir.as_deref(), listen)?,
            };
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(crate::demo::DEFAULT_DATA_DIR));
            actix_web::rt::System::new().block_on(async move {
                let metrics = crate::wiring::build::install_metrics()?;
                let state = crate::wiring::build::build_state(config, metrics).await?;
                let announce = if demo {
                    let d = crate::demo::seed(&state.config, &data_dir, state.ports.directory.as_ref()).await?;
                    crate::demo::grant_roles(state.ports.directory.as_ref(), state.ports.roles.as_ref()).await?;
                    crate::demo::bind_demo_cpe(&data_dir, state.ports.directory.as_ref(), state.ports.cards.as_ref())
                        .await?;
                    crate::sponsorship::demo::seed_demo(&state.ports, &d).await?;
                    Some(d)
                } else {
                    None
                };
                crate::wiring::serve::serve(state, move |state| {
                    if let Some(description) = announce {
                        // demo.json and the banner appear once the port is ours: a script waiting
                        // for them never talks to another process on that port.
                        let path = crate::demo::describe(&data_dir, &description)?;
                        println!("{}", crate::demo::banner(&state.config, &path));
                    }
                    Ok(())
                })
                .await
            })
        }
        Command::CheckConfig { file } => {
            let c = Config::load(&file)?;
            println!("{}: valid ({} clients, store {:?})", file.display(), c.clients.len(), c.store.kind);
            Ok(())
        }
        Command::Keys { command: KeysCommand::Generate { out } } => {
            if out.exists() {
                anyhow::bail!("{} exists: use `vigie keys rotate` to change keys", out.display());
            }
            KeyFile::generate(crate::now()).write(&out).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Keys { command: KeysCommand::Rotate { target } } => {
            let config = target.config()?;
            let path = &config.keys.file;
            let mut file = KeyFile::read(path)?;
            // The previous key must verify every token it signed: the longest-lived is the ID
            // or access token; refresh tokens are opaque and not signed.
            let keep = config.tokens.id_token_ttl_secs.max(config.tokens.access_token_ttl_secs) as i64 + 60;
            file.rotate(crate::now(), keep);
            crate::keys::KeySet::from_file(&file, crate::now())?;
            file.write(path)?;
            println!("rotated {}; replicas pick the new keys up within 10 s", path.display());
            Ok(())
        }
        Command::Users { command: UsersCommand::Import { file, target } } => {
            let config = target.config()?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows =
                vigie_directory_sql::parse_hr_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let report = rt.block_on(async {
                let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
                let r = vigie_directory_sql::import_rows(&dir, &rows).await?;
                dir.ping().await?;
                Ok::<_, anyhow::Error>(r)
            })?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Users { command: UsersCommand::SetPassword { username, target } } => {
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
        Command::Users { command: UsersCommand::EnrollTotp { username, target } } => {
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
        Command::Clients { command: ClientsCommand::NewSecret } => {
            let secret = crate::secrets::random_token(32);
            println!("client_secret      = {secret}");
            println!("client_secret_hash = \"{}\"", crate::secrets::SecretHash::of_generated(&secret));
            Ok(())
        }
        Command::Users { command: UsersCommand::GrantRole { username, role, target } } => {
            change_role(&target, &username, &role, true)
        }
        Command::Users { command: UsersCommand::RevokeRole { username, role, target } } => {
            change_role(&target, &username, &role, false)
        }
        Command::Users { command: UsersCommand::SetKind { username, kind, target } } => {
            let kind = vigie_core::policy::AccountKind::parse(&kind)
                .with_context(|| format!("unknown account kind {kind:?}: personal or generic"))?;
            set_policy_attribute(&target, &username, PolicyAttribute::Kind(kind))
        }
        Command::Users { command: UsersCommand::SetStatus { username, status, target } } => {
            set_policy_attribute(&target, &username, PolicyAttribute::Status(status))
        }
        Command::Users { command: UsersCommand::Announce { idnat, family, given, unit, days, target } } => {
            let command = crate::psc::AnnounceCommand::Announce { idnat, family, given, unit, days };
            crate::psc::announce_cli(&target.config()?, command)
        }
        Command::Users { command: UsersCommand::Announced { target } } => {
            crate::psc::announce_cli(&target.config()?, crate::psc::AnnounceCommand::List)
        }
        Command::Users { command: UsersCommand::Withdraw { idnat, target } } => {
            crate::psc::announce_cli(&target.config()?, crate::psc::AnnounceCommand::Withdraw { idnat })
        }
        Command::Cards { command } => crate::admin::cli::run(command),
        Command::Admin { command: AdminCommand::NewToken { name, role, scope } } => {
            let roles = role
                .iter()
                .map(|r| vigie_core::roles::Role::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let mut scopes = Vec::new();
            for s in &scope {
                let s = vigie_core::roles::Scope::parse(s).map_err(anyhow::Error::msg)?;
                anyhow::ensure!(roles.contains(&s.role()), "the scope {s} needs the role {} (`--role`)", s.role());
                scopes.push(s);
            }
            if scopes.is_empty() {
                scopes = vigie_core::roles::Scope::ALL
                    .into_iter()
                    .filter(|s| s.read_only() && roles.contains(&s.role()))
                    .collect();
            }
            let (token, hash) = crate::admin::cli::new_token();
            let quoted = |v: Vec<&str>| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
            println!("token = {token}");
            println!("# in the configuration (only the hash):");
            println!(
                "[[admin.tokens]]\nname = {name:?}\ntoken_hash = \"{hash}\"\nroles = [{}]\nscopes = [{}]",
                quoted(roles.iter().map(|r| r.as_str()).collect()),
                quoted(scopes.iter().map(|s| s.as_str()).collect())
            );
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Validate { dir } } => {
            let (what, n) = match &dir {
                Some(d) => (d.display().to_string(), vigie_policies::validate_dir(d)),
                None => (
                    "the built-in set".to_owned(),
                    vigie_policies::CedarEngine::builtin().map(|e| e.policy_ids().len()),
                ),
            };
            let n = n.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{what}: {n} policies, valid against the schema");
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Eval { dir, principal, action, resource, context } } => {
            let engine: Box<dyn vigie_core::policy::PolicyEngine> = match &dir {
                Some(d) => Box::new(vigie_policies::CedarEngine::load(d).map_err(|e| anyhow::anyhow!("{e}"))?),
                None => Box::new(vigie_policies::CedarEngine::builtin().map_err(|e| anyhow::anyhow!("{e}"))?),
            };
            let decision = vigie_policies::eval_json(engine.as_ref(), &principal, &action, &resource, &context)
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", serde_json::to_string_pretty(&decision)?);
            if !decision.allowed {
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Totp { secret } => {
            let key = crate::totp::from_base32(&secret).context("the secret is not base32")?;
            println!("{}", crate::totp::code_at_step(&key, crate::now() / crate::totp::STEP_SECS));
            Ok(())
        }
    }
}
