//! `vigie people …`: the people console from a terminal — search, a person's record, ending their
//! sessions — through the admin API (`/admin/api/people…`) with an admin API token holding
//! `people:read` / `people:write`, as `vigie cards …` does.
use clap::Subcommand;
use serde_json::json;

use super::cards::{ApiTarget, call, segment};

#[derive(Subcommand, Debug)]
pub enum PeopleCommand {
    /// Find people by the start of their name, login, matricule or idNat (accents and case ignored).
    Search {
        /// Search text.
        query: String,
        /// Skip this many results (the next page).
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Results per page (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// A person's record: identity and its source, status and dates, units, roles, MIEs, live
    /// sessions, recent logins and refusals (from the audit trail; `"status": "unavailable"` when
    /// it cannot be read), life-cycle events.
    Show {
        /// The person's directory id (see `vigie people search`).
        id: String,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// End a person's sessions (all of them, or one with --session): their tokens, refresh tokens
    /// included, are revoked and the applications told.
    EndSessions {
        /// The person's directory id.
        id: String,
        /// One session's `sid` (see `vigie people show`); all sessions without it.
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        api: ApiTarget,
    },
}

/// Runs a `vigie people …` command; prints JSON on standard output.
pub(super) fn run(command: PeopleCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let out = rt.block_on(async {
        use reqwest::Method;
        match command {
            PeopleCommand::Search { query, offset, limit, api } => {
                let path = format!("/admin/api/people?q={}&offset={offset}&limit={limit}", segment(&query));
                call(&api, Method::GET, &path, None).await
            }
            PeopleCommand::Show { id, api } => {
                call(&api, Method::GET, &format!("/admin/api/people/{}", segment(&id)), None).await
            }
            PeopleCommand::EndSessions { id, session, api } => {
                let path = format!("/admin/api/people/{}/sessions/end", segment(&id));
                call(&api, Method::POST, &path, Some(json!({ "sid": session }))).await
            }
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
