//! `vigie feeds …`: the HR feed's recorded runs (docs/identity-lifecycle.md, "Feed runs"), read
//! from the directory as the console's feeds page shows them: the last runs, one run's diff and
//! error lines.
use clap::Subcommand;
use vigie_directory_sql::{FeedRun, SqlDirectory};

use super::Target;
use crate::lifecycle::runs::{self, Diff, ErrorLine, Kind};

#[derive(Subcommand)]
pub(super) enum FeedsCommand {
    /// The last runs of the HR feed, newest first: when, from where, who started it, dry or
    /// applied, the counts, the safety stop if it fired.
    Runs {
        /// How many (at most 200).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// One run: its counts, its diff (the first 50 people of each kind) and its error lines.
    Show {
        /// The run's id (`vigie feeds runs`).
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

pub(super) fn run(command: FeedsCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match command {
        FeedsCommand::Runs { limit, json, target } => {
            let config = target.config()?;
            let list = rt.block_on(async {
                let dir = SqlDirectory::open(&config.directory.url).await?;
                Ok::<_, anyhow::Error>(dir.feed_runs(limit).await?)
            })?;
            if json {
                let all: Vec<_> = list.iter().map(runs::summary_json).collect();
                println!("{}", serde_json::json!({ "runs": all }));
            } else {
                for r in &list {
                    println!("{}", line(r));
                }
                println!("{} run(s); `vigie feeds show ID` for a run's diff and errors", list.len());
            }
            Ok(())
        }
        FeedsCommand::Show { id, json, target } => {
            let config = target.config()?;
            let found = rt.block_on(async {
                let dir = SqlDirectory::open(&config.directory.url).await?;
                Ok::<_, anyhow::Error>(dir.feed_run(&id).await?)
            })?;
            let r = found.ok_or_else(|| anyhow::anyhow!("no feed run {id:?}: `vigie feeds runs` lists them"))?;
            if json {
                println!("{}", runs::whole_json(&r));
            } else {
                print!("{}", text(&r));
            }
            Ok(())
        }
    }
}

fn line(r: &FeedRun) -> String {
    let stop = r.safety_stop.as_ref().map(|_| " — safety stop").unwrap_or_default();
    format!(
        "{} {} {:<12} {} by {}: +{} ~{} -{} ↺{} ={} errors {}{stop}",
        r.id,
        r.started_at,
        r.result,
        r.source,
        r.started_by,
        r.joiners,
        r.movers,
        r.leavers,
        r.returners,
        r.unchanged,
        r.errors
    )
}

fn kind_text(out: &mut String, title: &str, k: &Kind) {
    use std::fmt::Write as _;
    if k.people.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for p in &k.people {
        let user = p.username.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
        let why = p.why.as_deref().map(|w| format!(": {w}")).unwrap_or_default();
        let _ = writeln!(out, "  {}{user}{why}", p.matricule);
        for c in &p.changes {
            let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "    {}: {} -> {}", c.field, v(&c.before), v(&c.after));
        }
    }
    if k.more > 0 {
        let _ = writeln!(out, "  … and {} more", k.more);
    }
}

fn text(r: &FeedRun) -> String {
    use std::fmt::Write as _;
    let (diff, errors): (Diff, Vec<ErrorLine>) = runs::details(r);
    let mut out = format!("{}\n", line(r));
    if let Some(stop) = &r.safety_stop {
        let _ = writeln!(out, "safety stop: {stop}");
    }
    kind_text(&mut out, "joiners", &diff.joiners);
    kind_text(&mut out, "movers", &diff.movers);
    kind_text(&mut out, "leavers", &diff.leavers);
    kind_text(&mut out, "returning", &diff.returning);
    for e in &errors {
        let col = e.column.as_deref().map(|c| format!(", column `{c}`")).unwrap_or_default();
        let _ = writeln!(out, "error: line {}{col}: {}", e.line, e.reason);
    }
    out
}
