//! The principal of a policy decision: a person's directory attributes and roles, read once per
//! identity and period, and the broad category and profession code of their métier.
use std::sync::Arc;

use vigie_core::directory::Identity;
use vigie_core::policy::Principal;

use crate::state::{PolicyGate, Ports};

/// The broad category of a métier (the HR label), for policies.
fn category_of(metier: Option<&str>) -> &'static str {
    let m = metier.map(fold).unwrap_or_default();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["medecin", "chirurgien", "interne", "sage-femme", "sage femme", "dentiste"]) {
        "medical"
    } else if has(&["pharmacien", "preparateur"]) {
        "pharmacy"
    } else if has(&["infirm", "kinesi", "aide-soignant", "aide soignant", "manipulateur", "orthophon", "psycho"]) {
        "paramedical"
    } else if has(&["secretaire", "administratif", "adjoint", "accueil", "cadre administratif"]) {
        "administrative"
    } else if m.is_empty() {
        "unknown"
    } else {
        "technical"
    }
}

/// The profession code of the ANS nomenclature (TRE_G15) for a métier, when it is a
/// profession of the RPPS.
pub fn profession_code_of(metier: Option<&str>) -> Option<&'static str> {
    let m = metier.map(fold)?;
    let code = if m.contains("medecin") || m.contains("interne") {
        "10"
    } else if m.contains("pharmacien") {
        "21"
    } else if m.contains("dentiste") {
        "40"
    } else if m.contains("sage-femme") || m.contains("sage femme") {
        "50"
    } else if m.contains("infirm") {
        "60"
    } else if m.contains("kinesi") {
        "70"
    } else {
        return None;
    };
    Some(code)
}

fn fold(s: &str) -> String {
    vigie_core::names::fold(s).to_lowercase()
}

/// The principal for an identity: directory attributes and roles. Principals are reused for
/// `directory.identity_cache_secs` like identities: the directory (identity, roles, account kind)
/// is read at most once per identity and period on the authorize path, not at every SSO round
/// trip. A role granted or an HR change drops the cache on every replica within about a second
/// (`policy::view`); the period bounds it only when the change could not be signalled.
pub async fn principal_of(gate: &PolicyGate, ports: &Ports, identity_id: &str) -> Result<Principal, String> {
    if let Some(hit) = gate.principals.get(identity_id, gate.principal_ttl) {
        return Ok(hit);
    }
    // Taken before the directory is read: a change signalled meanwhile keeps this read out.
    let generation = gate.principals.generation();
    let identity = gate.identities.get(ports.directory.as_ref(), identity_id).await.map_err(|e| e.to_string())?;
    let principal = principal_from(ports, identity_id, identity).await?;
    gate.principals.put_since(identity_id, principal.clone(), gate.principal_ttl, generation);
    Ok(principal)
}

/// The principal for an identity read now from the directory, not from the cache (which it
/// refreshes): for decisions that must see a status change at once (a refresh, a token exchange).
pub async fn current_principal(gate: &PolicyGate, ports: &Ports, identity_id: &str) -> Result<Principal, String> {
    let generation = gate.principals.generation();
    let identity = gate.identities.reload(ports.directory.as_ref(), identity_id).await.map_err(|e| e.to_string())?;
    let principal = principal_from(ports, identity_id, identity).await?;
    gate.principals.put_since(identity_id, principal.clone(), gate.principal_ttl, generation);
    Ok(principal)
}

async fn principal_from(
    ports: &Ports,
    identity_id: &str,
    identity: Option<Arc<Identity>>,
) -> Result<Principal, String> {
    let roles = ports.roles.roles_of(identity_id).await.map_err(|e| e.to_string())?;
    let Some(identity) = identity else {
        return Ok(Principal {
            id: identity_id.to_owned(),
            category: "unknown".into(),
            employment_status: "left".into(),
            ..Default::default()
        });
    };
    let metier = identity.metier.as_deref();
    let (account_kind, employment_status) =
        ports.policy_attributes.policy_attributes(identity_id).await.map_err(|e| e.to_string())?;
    Ok(Principal {
        id: identity.id.clone(),
        profession_code: profession_code_of(metier).map(String::from),
        category: category_of(metier).into(),
        roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
        units: identity.units.iter().map(|u| u.uf.clone()).collect(),
        has_idnat: identity.idnat.is_some(),
        employment_status,
        account_kind,
    })
}

/// Someone not logged in yet: what the login page may offer is what would do for a personal,
/// active account of unknown profession.
pub fn anonymous_principal() -> Principal {
    Principal {
        id: "anonymous".into(),
        category: "unknown".into(),
        employment_status: "active".into(),
        has_idnat: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metiers_map_to_categories_and_profession_codes() {
        assert_eq!(category_of(Some("Médecin")), "medical");
        assert_eq!(profession_code_of(Some("Médecin")), Some("10"));
        assert_eq!(category_of(Some("Infirmière")), "paramedical");
        assert_eq!(profession_code_of(Some("Infirmier")), Some("60"));
        assert_eq!(category_of(Some("Secrétaire médicale")), "administrative");
        assert_eq!(profession_code_of(Some("Secrétaire médicale")), None);
        assert_eq!(category_of(None), "unknown");
    }
}
