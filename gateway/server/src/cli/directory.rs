//! `vigie directory sync`: a full sync of the establishment's directory (`[directory.ldap]`) into
//! Vigie's: joiners created, movers updated, accounts disabled in the directory disabled here.
//! Linked by matricule (the HR key both share) and keyed by identity, so a renamed login keeps it.
use clap::Subcommand;
use vigie_core::directory::{Account, Directory, Identity};
use vigie_core::roles::IdentitySearch;
use vigie_directory_ldap::{AccountState, LdapSource, LdapUser};

use super::Target;

#[derive(Subcommand)]
pub(super) enum DirectoryCommand {
    /// Read every user of `[directory.ldap]` and bring them into the directory: joiners created,
    /// movers updated (names, login name, and unit, métier, grade, idNat where mapped), accounts
    /// disabled or expired there disabled here (and enabled again when they are again).
    Sync {
        #[command(flatten)]
        target: Target,
    },
}

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub disabled: usize,
    /// Entries without a matricule: nothing links them to HR's record.
    pub skipped: usize,
}

pub(super) fn run(command: DirectoryCommand) -> anyhow::Result<()> {
    let DirectoryCommand::Sync { target } = command;
    let config = target.config()?;
    let ldap = crate::wiring::files::ldap_source(&config)?
        .ok_or_else(|| anyhow::anyhow!("no `[directory.ldap]` in the configuration: nothing to sync from"))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let directory =
            crate::wiring::build::open_directory(&config, crate::wiring::build::serving_newer(&config)).await?;
        let report = sync(&ldap, &directory, &directory).await?;
        directory.close().await;
        println!(
            "directory sync: {} created, {} updated, {} unchanged, {} disabled, {} skipped (no matricule)",
            report.created, report.updated, report.unchanged, report.disabled, report.skipped
        );
        Ok(())
    })
}

/// One full pass. A failure stops it (what was written stays: each user is one upsert).
pub async fn sync(ldap: &LdapSource, directory: &dyn Directory, search: &dyn IdentitySearch) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for user in ldap.users().await? {
        let Some(matricule) = user.matricule.clone().filter(|m| !m.trim().is_empty()) else {
            tracing::warn!(dn = %user.dn, "directory entry without a matricule: not synced");
            report.skipped += 1;
            continue;
        };
        // The account of this login name first (indexed); the identity search, which reads every
        // identity, only for a login Vigie does not know (a joiner, or a renamed login).
        let by_login = match directory.account_by_username(&user.login).await? {
            Some(account) => directory.identity(&account.identity_id).await?.filter(|i| i.matricule == matricule),
            None => None,
        };
        let existing = match by_login {
            Some(identity) => Some(identity),
            None => search.search_identities(&matricule, 50).await?.into_iter().find(|i| i.matricule == matricule),
        };
        let identity = merged(existing.as_ref(), &user, &matricule);
        let id = directory.upsert_identity(&identity).await?;
        let old_username = directory.username_of(&id).await?;
        let old = match &old_username {
            Some(name) => directory.account_by_username(name).await?,
            None => None,
        };
        let disabled = matches!(user.state, Some(AccountState::Disabled | AccountState::Expired));
        let account = Account {
            identity_id: id.clone(),
            username: user.login.clone(),
            // Kept as they were: the TOTP is Vigie's; a password hash is unused once the
            // directory checks passwords, and is dropped by nobody here.
            password_hash: old.as_ref().and_then(|a| a.password_hash.clone()),
            totp_secret: old.as_ref().and_then(|a| a.totp_secret.clone()),
            disabled,
        };
        let account_changed = old.as_ref() != Some(&account);
        if account_changed {
            directory.upsert_account(&account).await?;
        }
        if disabled && old.as_ref().is_none_or(|a| !a.disabled) {
            tracing::info!(username = %user.login, identity = %id, "account disabled: disabled or expired in the directory");
            report.disabled += 1;
        }
        match existing {
            None => report.created += 1,
            Some(before) if before != Identity { id: before.id.clone(), ..identity } || account_changed => {
                report.updated += 1
            }
            Some(_) => report.unchanged += 1,
        }
    }
    Ok(report)
}

/// The identity as the directory says it, over what Vigie had: what the directory does not hold
/// (birth date; unit, métier, grade, idNat when not mapped or empty) is kept.
fn merged(existing: Option<&Identity>, user: &LdapUser, matricule: &str) -> Identity {
    let keep = |new: &Option<String>, old: Option<&Option<String>>| new.clone().or_else(|| old.cloned().flatten());
    Identity {
        id: existing.map(|i| i.id.clone()).unwrap_or_default(),
        matricule: matricule.to_owned(),
        family_name: user.family_name.clone().or_else(|| existing.map(|i| i.family_name.clone())).unwrap_or_default(),
        given_name: user.given_name.clone().or_else(|| existing.map(|i| i.given_name.clone())).unwrap_or_default(),
        birth_date: existing.and_then(|i| i.birth_date.clone()),
        metier: keep(&user.metier, existing.map(|i| &i.metier)),
        grade: keep(&user.grade, existing.map(|i| &i.grade)),
        idnat: user
            .idnat
            .as_deref()
            .and_then(|s| vigie_core::idnat::IdNat::parse(s).ok())
            .or_else(|| existing.and_then(|i| i.idnat.clone())),
        units: if user.units.is_empty() {
            existing.map(|i| i.units.clone()).unwrap_or_default()
        } else {
            let share = (100 / user.units.len()).max(1) as u8;
            user.units.iter().map(|uf| vigie_core::directory::Affectation { uf: uf.clone(), share }).collect()
        },
    }
}
