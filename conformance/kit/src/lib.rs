//! The conformance kit: plans of checks, each named after its source (OIDF module, RFC section,
//! RIE rule), run against a live Vigie over HTTP, with reports an auditor and a CI can read.
/// A [`Module`] from its description and its async check function.
macro_rules! module {
    ($id:literal, $plan:literal, $source:literal, $ten:literal, $tfr:literal, $een:literal, $efr:literal, $f:path) => {
        $crate::Module {
            id: $id,
            plan: $plan,
            source: $source,
            title_en: $ten,
            title_fr: $tfr,
            expected_en: $een,
            expected_fr: $efr,
            run: |c| Box::pin($f(c)),
        }
    };
}

pub mod agent;
pub mod backchannel;
pub mod dmp;
pub mod flow;
pub mod logout;
pub mod oidc;
pub mod profile;
pub mod psc;
pub mod report;
pub mod rie;
pub mod security;
pub mod softkey;
pub mod tls;
pub mod vihf;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Instant;

use serde::Serialize;

use agent::{Agent, Exchange};
use profile::Profile;

/// What a check concluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(String),
    NotApplicable(String),
}

/// A module's check: its verdict, or an error that fails it with its message.
pub type Check = for<'a> fn(&'a flow::Ctx) -> CheckFuture<'a>;
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Verdict>> + 'a>>;

/// A check's description, in both languages of the report.
pub struct Module {
    pub id: &'static str,
    pub plan: &'static str,
    /// The requirement's source: spec and section, or référentiel and rule.
    pub source: &'static str,
    pub title_en: &'static str,
    pub title_fr: &'static str,
    pub expected_en: &'static str,
    pub expected_fr: &'static str,
    pub run: Check,
}

/// One check's result, with its evidence (secrets masked).
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub id: String,
    pub plan: String,
    pub source: String,
    pub title_en: String,
    pub title_fr: String,
    pub expected_en: String,
    pub expected_fr: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub millis: u128,
    pub evidence: Vec<Exchange>,
}

/// A run: its parameters and its outcomes.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub started: String,
    pub kit_version: String,
    /// What the target says of itself (`/version` or the `server` header), if anything.
    pub target_version: Option<String>,
    pub profile_clients: Vec<String>,
    pub profile_users: Vec<String>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| matches!(o.verdict, Verdict::Fail(_))).collect()
    }
}

/// The parameters of `vigie-conformance run`.
pub struct RunOptions {
    pub target: String,
    pub profile: Profile,
    /// A CA to trust for the target (a test deployment's own CA): `--insecure-ca`.
    pub ca_pem: Option<String>,
    pub out: Option<PathBuf>,
    /// Only the modules whose id starts with one of these (all when empty).
    pub only: Vec<String>,
}

/// Every module of every plan, in the order they run.
pub fn modules() -> Vec<Module> {
    let mut m = oidc::modules();
    m.extend(logout::modules());
    m.extend(security::modules());
    m.extend(tls::modules());
    m.extend(rie::modules());
    m.extend(psc::modules());
    m.extend(dmp::modules());
    m
}

/// Runs the plans against the target and writes the reports into `out` (if given).
pub async fn run(opts: RunOptions) -> anyhow::Result<Report> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let agent = Agent::new(&opts.target, opts.ca_pem.as_deref(), None)?;
    let ctx = flow::Ctx::new(agent, opts.profile.clone(), opts.ca_pem.clone());
    let target_version = ctx.target_version().await;
    let mut outcomes = Vec::new();
    for m in modules() {
        if !opts.only.is_empty() && !opts.only.iter().any(|p| m.id.starts_with(p.as_str())) {
            continue;
        }
        let _ = ctx.agent.take_evidence();
        let start = Instant::now();
        let verdict = match (m.run)(&ctx).await {
            Ok(v) => v,
            Err(e) => Verdict::Fail(format!("{e:#}")),
        };
        outcomes.push(Outcome {
            id: m.id.into(),
            plan: m.plan.into(),
            source: m.source.into(),
            title_en: m.title_en.into(),
            title_fr: m.title_fr.into(),
            expected_en: m.expected_en.into(),
            expected_fr: m.expected_fr.into(),
            verdict,
            millis: start.elapsed().as_millis(),
            evidence: ctx.agent.take_evidence(),
        });
    }
    let report = Report {
        target: opts.target.clone(),
        started: report::now_rfc3339(),
        kit_version: env!("CARGO_PKG_VERSION").into(),
        target_version,
        profile_clients: opts.profile.clients.iter().map(|c| c.id.clone()).collect(),
        profile_users: opts.profile.users.iter().map(|u| u.username.clone()).collect(),
        outcomes,
    };
    if let Some(dir) = &opts.out {
        report::write_all(&report, dir)?;
    }
    Ok(report)
}
