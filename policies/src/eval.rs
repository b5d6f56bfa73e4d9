//! What `vigie policy validate` and `vigie policy eval` call: check a directory before deploying
//! it, and ask one question with JSON arguments, through the same code path as the gateway.
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};
use vigie_core::policy::{
    Action, Decision, PolicyContext, PolicyEngine, PolicyRequest, Principal, Resource, factors_of,
};
use vigie_core::{Authentication, Factor, Mie};

use crate::cedar::{CedarEngine, PolicyError};

/// Loads and validates the policy directory `dir` as the gateway would; the number of policies.
pub fn validate_dir(dir: &Path) -> Result<usize, PolicyError> {
    CedarEngine::load(dir).map(|e| e.policy_ids().len())
}

/// How the principal authenticated, in `eval`'s context argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalAuthentication {
    mie: Mie,
    /// Defaults to the factors a login with `mie` proves.
    #[serde(default)]
    factors: Option<Vec<Factor>>,
    /// Seconds since the login; 0 by default.
    #[serde(default)]
    age_secs: i64,
}

/// Answers one question given as JSON, as `vigie policy eval` does:
///
/// - `principal`: an object with the fields of [`Principal`]; those left out default to
///   `{"id": "eval", "category": "unknown", "roles": [], "units": [], "has_idnat": false,
///   "employment_status": "active", "account_kind": "personal"}`;
/// - `action`: `login_to_client`, `access_dmp`, `sponsor`, `enrol_mie` or `administer`;
/// - `resource`: `dmp`, `system`, or an object tagged by `type`: `{"type": "client", "id": …,
///   "sensitive": true, "required_level": "two_factor_phishing_resistant", "audience": …}`,
///   `{"type": "colleague", "id": …, "units": […]}`;
/// - `context`: `{"authentication": {"mie": "password_totp", "age_secs": 30, "factors": [...]},
///   "network_zone": "internal", "degraded": false, "hour": 10, "password_totp_transition": false,
///   "sponsorships_today": 0}`;
///   everything but `authentication.mie` may be left out (zone `internal`, not degraded, 12 h).
///
/// Unknown fields are refused, so that a typo does not silently change the question.
pub fn eval_json(
    engine: &dyn PolicyEngine,
    principal: &str,
    action: &str,
    resource: &str,
    context: &str,
) -> Result<Decision, String> {
    let principal_defaults = json!({
        "id": "eval", "profession_code": null, "category": "unknown", "roles": [], "units": [],
        "has_idnat": false, "employment_status": "active", "account_kind": "personal",
    });
    let principal: Principal = from_overlay("principal", principal_defaults, principal)?;

    let action = Action::parse(action).ok_or_else(|| {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        format!("action: unknown action {action:?}; one of {}", names.join(", "))
    })?;

    let resource = parse_resource(resource)?;

    let mut context: Value = serde_json::from_str(context).map_err(|e| format!("context: {e}"))?;
    let authentication = match context.as_object_mut().and_then(|m| m.remove("authentication")) {
        Some(a) => {
            serde_json::from_value::<EvalAuthentication>(a).map_err(|e| format!("context.authentication: {e}"))?
        }
        None => return Err("context: missing field `authentication` ({\"mie\": \"cps\", …})".into()),
    };
    let context_defaults =
        json!({"network_zone": "internal", "degraded": false, "hour": 12, "password_totp_transition": false});
    let context: PolicyContext = from_overlay("context", context_defaults, &context.to_string())?;
    if context.hour > 23 {
        return Err(format!("context.hour: {} is not an hour of the day (0-23)", context.hour));
    }
    if authentication.age_secs < 0 {
        return Err("context.authentication.age_secs: must not be negative".into());
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let factors = authentication.factors.unwrap_or_else(|| factors_of(authentication.mie));
    let auth = Authentication::hypothetical(
        principal.id.clone(),
        authentication.mie,
        factors,
        now.saturating_sub(authentication.age_secs),
    );
    Ok(engine.decide(&PolicyRequest {
        principal: &principal,
        action,
        resource: &resource,
        authentication: &auth,
        context: &context,
        now,
    }))
}

fn parse_resource(text: &str) -> Result<Resource, String> {
    let trimmed = text.trim();
    let value: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| format!("resource: {e}"))?
    } else {
        json!({ "type": trimmed.trim_matches('"') })
    };
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let defaults = match kind.as_str() {
        "client" => json!({"type": "client", "id": "eval-client", "sensitive": false, "required_level": null,
                           "audience": "staff"}),
        "colleague" => json!({"type": "colleague", "id": "eval-colleague", "units": []}),
        "dmp" | "system" => json!({ "type": kind }),
        other => return Err(format!("resource: unknown type {other:?}; one of client, dmp, colleague, system")),
    };
    from_overlay("resource", defaults, &value.to_string())
}

/// `given` (a JSON object) over `defaults`, refusing keys the defaults do not have.
fn from_overlay<T: serde::de::DeserializeOwned>(what: &str, defaults: Value, given: &str) -> Result<T, String> {
    let given: Value = serde_json::from_str(given).map_err(|e| format!("{what}: {e}"))?;
    let Value::Object(given) = given else {
        return Err(format!("{what}: expected a JSON object"));
    };
    let Value::Object(mut merged) = defaults else {
        return Err(format!("{what}: defaults are not an object"));
    };
    let mut unknown: Vec<&String> = given.keys().filter(|k| !merged.contains_key(*k)).collect();
    if !unknown.is_empty() {
        unknown.sort();
        let known: Vec<&String> = merged.keys().collect();
        return Err(format!("{what}: unknown field(s) {unknown:?}; known: {known:?}"));
    }
    merged.extend(given);
    serde_json::from_value(Value::Object(merged)).map_err(|e| format!("{what}: {e}"))
}
