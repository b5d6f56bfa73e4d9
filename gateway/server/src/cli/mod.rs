//! The `vigie` command line: the commands, what they act on (`--config` or the demo's data
//! directory), and a module per family of commands.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

mod audit;
mod audit_export;
pub(crate) mod audit_search;
pub mod cards;
mod derivation;
mod directory;
mod feeds;
mod migrate;
mod people;
mod policy;
mod secrets;
mod serve;
mod users;

pub use secrets::new_token;

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
    /// Validate a configuration file and every file it names (keys, anchors, certificates,
    /// policies…) without starting: what passes starts.
    CheckConfig { file: PathBuf },
    /// Bring the directory database's schema up to date (`directory.url`), and the audit trail's when it is in PostgreSQL, then exit.
    Migrate {
        #[command(flatten)]
        target: Target,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: secrets::KeysCommand,
    },
    /// Directory users.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Clients.
    Clients {
        #[command(subcommand)]
        command: secrets::ClientsCommand,
    },
    /// Print the current TOTP code of a base32 secret (for trying the demo).
    Totp { secret: String },
    /// CPS / CPE cards of agents (HR, medical affairs), through the admin API.
    Cards {
        #[command(subcommand)]
        command: cards::CardsCommand,
    },
    /// People (HR's console): search, a person's record, ending their sessions, through the admin API.
    People {
        #[command(subcommand)]
        command: people::PeopleCommand,
    },
    /// Admin API tokens.
    Admin {
        #[command(subcommand)]
        command: secrets::AdminCommand,
    },
    /// The policy set (Cedar): check it, or ask it a question, before deploying it.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// The establishment's AD / OpenLDAP (`[directory.ldap]`, docs/directory.md).
    Directory {
        #[command(subcommand)]
        command: directory::DirectoryCommand,
    },
    /// The audit trail: its checkpoint key, its verification (docs/audit.md), its export (JSON
    /// lines, FHIR `AuditEvent`) and the DMP handover (docs/audit-export.md).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The idNat derived from the RPPS (Annuaire Santé): load its extraction, propose matches,
    /// confirm them (docs/identity-lifecycle.md).
    Rpps {
        #[command(subcommand)]
        command: derivation::RppsCommand,
    },
    /// The HR feed's recorded runs: counts, diff, error lines (docs/identity-lifecycle.md).
    Feeds {
        #[command(subcommand)]
        command: feeds::FeedsCommand,
    },
}

/// Which deployment a maintenance command acts on.
#[derive(clap::Args)]
pub(super) struct Target {
    /// Configuration file of the deployment.
    #[arg(long, conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// Data directory of the embedded demo.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Target {
    pub(super) fn config(&self) -> anyhow::Result<Config> {
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

/// Appends one audit line from a maintenance command, synchronously (the process ends right
/// after; the gateway's background writer would not get to flush it). `-` goes to stderr.
pub(crate) fn audit_now(config: &Config, mut event: vigie_core::audit::AuditEvent) -> anyhow::Result<()> {
    event.at = crate::rfc3339_now();
    crate::audit::append_now(&config.audit, &config.directory.url, &event)
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
        Command::Serve { config, listen, data_dir } => serve::run(config, listen, data_dir),
        Command::CheckConfig { file } => {
            let c = Config::load(&file)?;
            // Every file `serve` reads at start, read the same way; nothing is written, no
            // connection is opened.
            crate::wiring::files::load(&c, crate::wiring::files::Mode::Check)?;
            println!("{}: valid ({} clients, store {:?})", file.display(), c.clients.len(), c.store.kind);
            Ok(())
        }
        Command::Migrate { target } => migrate::run(&target),
        Command::Keys { command } => secrets::keys(command),
        Command::Users { command } => users::run(command),
        Command::Clients { command } => secrets::clients(command),
        Command::Cards { command } => cards::run(command),
        Command::People { command } => people::run(command),
        Command::Admin { command } => secrets::admin(command),
        Command::Policy { command } => policy::run(command),
        Command::Directory { command } => directory::run(command),
        Command::Audit { command } => audit::run(command),
        Command::Rpps { command } => derivation::run(command),
        Command::Feeds { command } => feeds::run(command),
        Command::Totp { secret } => {
            let key = crate::totp::from_base32(&secret).context("the secret is not base32")?;
            println!("{}", crate::totp::code_at_step(&key, crate::now() / crate::totp::STEP_SECS));
            Ok(())
        }
    }
}
