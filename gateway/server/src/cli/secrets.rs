//! `vigie keys …`, `vigie clients new-secret`, `vigie admin new-token`: the secrets a deployment's
//! configuration names (the signing key file; of client secrets and admin tokens, only the hash).
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::Target;
use crate::keys::KeyFile;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
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
pub(super) enum ClientsCommand {
    /// Generate a client secret and the hash to put in `client_secret_hash`.
    NewSecret,
}

#[derive(Subcommand)]
pub(super) enum AdminCommand {
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

/// Runs a `vigie keys …` command.
pub(super) fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            if out.exists() {
                anyhow::bail!("{} exists: use `vigie keys rotate` to change keys", out.display());
            }
            KeyFile::generate(crate::now()).write(&out).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        KeysCommand::Rotate { target } => {
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
    }
}

/// Runs a `vigie clients …` command.
pub(super) fn clients(command: ClientsCommand) -> anyhow::Result<()> {
    match command {
        ClientsCommand::NewSecret => {
            let secret = crate::secrets::random_token(32);
            println!("client_secret      = {secret}");
            println!("client_secret_hash = \"{}\"", crate::secrets::SecretHash::of_generated(&secret));
            Ok(())
        }
    }
}

/// Runs a `vigie admin …` command.
pub(super) fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::NewToken { name, role, scope } => {
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
            let (token, hash) = new_token();
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
    }
}

/// `vigie admin new-token`: a token and the hash to put in `[admin] tokens`.
pub fn new_token() -> (String, String) {
    let token = format!("vga_{}", crate::secrets::random_token(32));
    let hash = crate::secrets::SecretHash::of_generated(&token);
    (token, hash)
}
