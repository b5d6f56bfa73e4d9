//! `vigie-conformance`: runs the conformance plans against a live Vigie and writes the reports;
//! `profile-from-demo` turns the embedded demo's `demo.json` into a profile.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigie_conformance::{RunOptions, Verdict, profile::Profile};

#[derive(Parser)]
#[command(
    name = "vigie-conformance",
    version,
    about = "The conformance kit: OIDC provider, RFC 9700 and RIE checks against a live Vigie"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the plans; exits 1 when a check fails.
    Run {
        /// The gateway's issuer URL, e.g. https://vigie.example
        #[arg(long)]
        target: String,
        /// The profile (TOML): test clients, users, card.
        #[arg(long)]
        profile: PathBuf,
        /// Where the reports go (junit.xml, report.json, report.en.html, report.fr.html).
        #[arg(long)]
        out: PathBuf,
        /// Trust only this CA (PEM) for the target: a test deployment's own CA.
        #[arg(long)]
        insecure_ca: Option<PathBuf>,
        /// Run only the modules whose id starts with this (repeatable).
        #[arg(long)]
        only: Vec<String>,
    },
    /// Prints a profile (TOML) made from the embedded demo's demo.json.
    ProfileFromDemo { demo_json: PathBuf },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigie-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::ProfileFromDemo { demo_json } => {
            let text =
                std::fs::read_to_string(&demo_json).with_context(|| format!("reading {}", demo_json.display()))?;
            let demo = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", demo_json.display()))?;
            print!("{}", toml::to_string_pretty(&Profile::from_demo(&demo)?)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { target, profile, out, insecure_ca, only } => {
            let profile = Profile::load(&profile)?;
            let ca_pem = insecure_ca
                .map(|p| std::fs::read_to_string(&p).with_context(|| format!("reading --insecure-ca {}", p.display())))
                .transpose()?;
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(vigie_conformance::run(RunOptions {
                target,
                profile,
                ca_pem,
                out: Some(out.clone()),
                only,
            }))?;
            for o in &report.outcomes {
                let v = match &o.verdict {
                    Verdict::Pass => "pass".to_owned(),
                    Verdict::Fail(w) => format!("FAIL: {w}"),
                    Verdict::NotApplicable(w) => format!("not applicable: {w}"),
                };
                println!("{:<48} {v}", o.id);
            }
            println!("reports in {}", out.display());
            Ok(if report.failures().is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
