//! `vigie audit search`: the trail's records by person, client, event kind, time range and
//! result, newest first, as a table, JSON lines or CSV (docs/audit.md, "Searching"). With
//! `--config`, the search is itself written to the trail (who searched what).
use std::io::Write;
use std::path::PathBuf;

use crate::audit::search::{self, Page, Query, Trail};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// The records as written, one JSON object a line.
    Jsonl,
    /// RFC 4180 CSV with a header line (a spreadsheet).
    Csv,
}

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Configuration: the trail `serve` writes (PostgreSQL, else `audit.file`, its rotated
    /// copies and the spool); the search is audited there.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The trail in this PostgreSQL database (`postgres://…`) rather than the configured one.
    #[arg(long, conflicts_with = "files")]
    pub url: Option<String>,
    /// A person: directory id or idNat (repeat for several).
    #[arg(long = "person")]
    pub persons: Vec<String>,
    /// The OAuth client.
    #[arg(long)]
    pub client: Option<String>,
    /// An event kind (`login`, `vihf_issued`…; repeat for several).
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// `success` or `failure`.
    #[arg(long)]
    pub result: Option<String>,
    /// From this time (RFC 3339, or `YYYY-MM-DD` meaning its midnight UTC), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this time (same forms), exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// At most this many records (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Only records older than this position (the `next` a previous page printed).
    #[arg(long)]
    pub before: Option<u64>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Trail files, oldest first (instead of `--config`).
    pub files: Vec<PathBuf>,
}

impl SearchArgs {
    fn query(&self) -> anyhow::Result<Query> {
        let bad = |m: String| anyhow::anyhow!(m);
        if !(1..=search::MAX_LIMIT).contains(&self.limit) {
            anyhow::bail!("--limit must be from 1 to {}", search::MAX_LIMIT);
        }
        Ok(Query {
            persons: self.persons.clone(),
            client: self.client.clone(),
            kinds: self.kinds.iter().map(|k| search::parse_kind(k)).collect::<Result<_, _>>().map_err(bad)?,
            outcome: self.result.as_deref().map(search::parse_outcome).transpose().map_err(bad)?,
            from: self.from.as_deref().map(|v| search::parse_time("--from", v)).transpose().map_err(bad)?,
            to: self.to.as_deref().map(|v| search::parse_time("--to", v)).transpose().map_err(bad)?,
            before: self.before,
            limit: self.limit,
        })
    }
}

pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    let query = args.query()?;
    let config = args.config.as_ref().map(|c| crate::config::Config::load(c)).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let page = rt.block_on(async {
        let trail = match (&args.url, &config, args.files.is_empty()) {
            (Some(url), ..) => Trail::Postgres(vigie_directory_sql::audit_trail::PgAuditTrail::open(url, 1).await?),
            (None, _, false) => Trail::Files(args.files.clone()),
            (None, Some(c), true) => Trail::open(&c.audit, &c.directory.url).await?,
            (None, None, true) => anyhow::bail!("name the trail: --config, --url or trail files"),
        };
        let page = search::search(&trail, &query).await;
        trail.close().await;
        page
    })?;
    if let Some(config) = &config {
        let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        super::audit_now(config, search::searched(&format!("cli:{who}"), &query, page.records.len()))?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(render(&page, args.format)?.as_bytes())?;
    if let Some(next) = page.next {
        eprintln!("more: the next page with --before {next}");
    }
    Ok(())
}

/// The columns of the table and the CSV.
const COLUMNS: [&str; 10] =
    ["position", "at", "kind", "outcome", "subject", "idnat", "client_id", "method", "ip", "request_id"];

fn cells(r: &search::Record) -> Vec<String> {
    let field = |name: &str| match r.raw.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    std::iter::once(r.position.to_string()).chain(COLUMNS[1..].iter().map(|c| field(c))).collect()
}

pub(crate) fn render(page: &Page, format: Format) -> anyhow::Result<String> {
    let mut text = String::new();
    match format {
        Format::Jsonl => {
            for r in &page.records {
                text.push_str(&serde_json::to_string(&r.raw)?);
                text.push('\n');
            }
        }
        Format::Csv => {
            text.push_str(&crate::csv::record(COLUMNS));
            for r in &page.records {
                text.push_str(&crate::csv::record(cells(r)));
            }
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = page.records.iter().map(cells).collect();
            let widths: Vec<usize> = (0..COLUMNS.len())
                .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([COLUMNS[i].len()]).max().unwrap_or(0))
                .collect();
            let line = |cells: &[String]| {
                let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                padded.join("  ").trim_end().to_owned() + "\n"
            };
            text.push_str(&line(&COLUMNS.map(str::to_owned)));
            for row in &rows {
                text.push_str(&line(row));
            }
            text.push_str(&format!("{} record(s)\n", rows.len()));
        }
    }
    Ok(text)
}
