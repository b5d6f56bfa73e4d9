//! `vigie cards …`: the admin API of cards from a terminal, over HTTPS with an admin API token
//! (`--token` or `VIGIE_ADMIN_TOKEN`); `--ca FILE` trusts a private CA (the demo's `ca.pem`).
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the admin API is and how to call it.
#[derive(Args, Debug)]
pub struct ApiTarget {
    /// Base URL of the gateway (its issuer), e.g. https://vigie.chu.example
    #[arg(long, env = "VIGIE_ADMIN_URL", default_value = "https://localhost:8443")]
    pub url: String,
    /// Admin API token (see `vigie admin new-token`).
    #[arg(long, env = "VIGIE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// PEM file of a CA to trust besides the system's (e.g. vigie-demo/ca.pem).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CardsCommand {
    /// Find agents by name, matricule or idNat; with --agent, list that agent's cards.
    List {
        /// Search text (name, matricule, idNat).
        query: Option<String>,
        /// An agent's directory id: list their cards.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// Start tracking a card for an agent.
    Add {
        /// The agent's directory id (see `vigie cards list NAME`).
        agent: String,
        /// cps or cpe.
        #[arg(long, default_value = "cps")]
        kind: String,
        /// requested, ordered or received.
        #[arg(long, default_value = "requested")]
        status: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// Move a card in its life cycle (lost and stolen end its sessions at once).
    Status {
        card: String,
        /// ordered, received, returned, lost, stolen, expired…
        status: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// Bind a card record to the card's certificate (PEM file), after the name check. Without the
    /// card, the binding waits for its holder's first card login; names that differ can only be
    /// overridden on the admin page, with the card in the reader.
    Bind {
        card: String,
        /// The card's authentication certificate (PEM; its CA chain may follow).
        #[arg(long)]
        cert: PathBuf,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// The joiners' card orders (JSON, or the CSV to send on with --csv).
    Orders {
        /// ordered, received or cancelled (default: all).
        #[arg(long)]
        status: Option<String>,
        /// CSV (RFC 4180) instead of JSON.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        api: ApiTarget,
    },
    /// A card's history.
    Events {
        card: String,
        #[command(flatten)]
        api: ApiTarget,
    },
}

fn client(api: &ApiTarget) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .user_agent(concat!("vigie-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &api.ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        b = b.add_root_certificate(
            reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?,
        );
    }
    b.build().context("building the HTTPS client")
}

pub(super) fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Calls the API; returns the JSON answer or an error carrying the problem's detail.
pub(super) async fn call(
    api: &ApiTarget,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let mut req = client(api)?.request(method, &url).bearer_auth(&api.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let detail = value["detail"].as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
        anyhow::bail!("{} ({status})", detail);
    }
    Ok(value)
}

/// Runs a `vigie cards …` command; prints JSON on standard output.
pub fn run(command: CardsCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let out = rt.block_on(async {
        use reqwest::Method;
        match command {
            CardsCommand::List { query, agent, api } => match (agent, query) {
                (Some(agent), _) => {
                    call(&api, Method::GET, &format!("/admin/api/identities/{}/cards", segment(&agent)), None).await
                }
                (None, Some(q)) => {
                    call(&api, Method::GET, &format!("/admin/api/identities?q={}", segment(&q)), None).await
                }
                (None, None) => anyhow::bail!("give a search text (`vigie cards list DURAND`) or `--agent ID`"),
            },
            CardsCommand::Add { agent, kind, status, comment, api } => {
                let body = json!({ "identity_id": agent, "kind": kind, "status": status, "comment": comment });
                call(&api, Method::POST, "/admin/api/cards", Some(body)).await
            }
            CardsCommand::Status { card, status, comment, api } => {
                let body = json!({ "status": status, "comment": comment });
                call(&api, Method::POST, &format!("/admin/api/cards/{}/status", segment(&card)), Some(body)).await
            }
            CardsCommand::Bind { card, cert, api } => {
                let pem = std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
                let body = json!({ "certificate_pem": pem });
                call(&api, Method::POST, &format!("/admin/api/cards/{}/bind", segment(&card)), Some(body)).await
            }
            CardsCommand::Orders { status, csv, api } => {
                let format = if csv { "csv" } else { "json" };
                let status = status.map(|s| format!("&status={}", segment(&s))).unwrap_or_default();
                call(&api, Method::GET, &format!("/admin/cards/orders?format={format}{status}"), None).await
            }
            CardsCommand::Events { card, api } => {
                call(&api, Method::GET, &format!("/admin/api/cards/{}/events", segment(&card)), None).await
            }
        }
    })?;
    // The CSV of `orders --csv` comes as text, printed as it is.
    match out {
        Value::String(text) => print!("{text}"),
        out => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(())
}
