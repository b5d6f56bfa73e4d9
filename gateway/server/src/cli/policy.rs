//! `vigie policy …`: the policy set (Cedar) checked, or asked a question, before it is deployed.
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub(super) enum PolicyCommand {
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

/// Runs a `vigie policy …` command.
pub(super) fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Validate { dir } => {
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
        PolicyCommand::Eval { dir, principal, action, resource, context } => {
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
    }
}
