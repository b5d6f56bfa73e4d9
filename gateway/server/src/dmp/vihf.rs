//! Issuing a VIHF for a professional's live session once the policy (`access_dmp`) allows it,
//! shared by the token exchange and the relay; the audit lines of DMP access.
use vigie_core::IdNat;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::dmp::{InsNir, SealRefusal, Vihf, VihfRequest};

use super::runtime::Dmp;
use crate::oidc::grant::AccessTokenClaims;
use crate::state::{Audit, PolicyGate, Ports};
use crate::web::http::Caller;

/// Why no VIHF was issued.
#[derive(Debug)]
pub enum Refusal {
    /// The professional's token or session cannot be used.
    Token(String),
    /// The policy refuses (the description names the deciding policies).
    Policy(String),
    /// The DMP side is off, or something it needs is down (what, in the log only).
    Unavailable(String),
    /// A fault of Vigie (its detail in the log only).
    Server(String),
}

/// A store or directory failure: logged with its detail, told to the caller without it (the
/// store's or SQL's error text says nothing the caller can act on, and tells about internals).
fn unavailable(what: &str, e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "DMP: {what} failed");
    Refusal::Unavailable(format!("the {what} is unavailable at the moment; try again later"))
}

/// Through which door a VIHF left.
#[derive(Clone, Copy)]
pub enum Via {
    TokenExchange,
    Relay,
}

/// What issuing a VIHF reaches: the DMP side (the seal), the session and the identity (ports,
/// identity cache), the policy (`access_dmp`), the audit trail, and who asks.
#[derive(Clone, Copy)]
pub struct Seal<'a> {
    pub dmp: &'a Dmp,
    pub ports: &'a Ports,
    pub policy: &'a PolicyGate,
    pub audit: &'a Audit,
    pub caller: &'a Caller,
}

/// Issues a VIHF for the session behind a verified access token (of the client it names): the
/// session must be live, the policy (`access_dmp`) must allow it; audited (`vihf_issued`, reference
/// EX_AIR-070).
pub async fn vihf_for(
    seal: Seal<'_>,
    claims: &AccessTokenClaims,
    patient: &InsNir,
    purpose: &str,
    via: Via,
) -> Result<Vihf, Refusal> {
    let Seal { dmp, ports, policy, audit, caller } = seal;
    let client_id = claims.client_id.as_str();
    // The authentication is the session's: a token outliving its session (logout, idle, card
    // declared lost) does not reach the DMP.
    let session = crate::session::by_sid(ports.store.as_ref(), &claims.sid)
        .await
        .map_err(|e| unavailable("session store", e))?
        .ok_or_else(|| Refusal::Token("the professional's session has ended: they must log in again".into()))?;
    let auth = &session.authentication;
    if auth.identity_id != claims.sub {
        return Err(Refusal::Token("the token's subject is not the session's".into()));
    }
    let decision = crate::policy::decide_dmp(policy, ports, caller, auth, client_id).await;
    if !decision.allowed {
        let deciding =
            if decision.policies.is_empty() { "no policy permits it".to_owned() } else { decision.policies.join(", ") };
        let would: Vec<&str> = decision.step_up.iter().map(|m| m.as_str()).collect();
        let would =
            if would.is_empty() { String::new() } else { format!("; a login with {} would do", would.join(", ")) };
        let errors =
            if decision.errors.is_empty() { String::new() } else { format!(" ({})", decision.errors.join("; ")) };
        return Err(Refusal::Policy(format!(
            "the policy refuses this session the DMP (access_dmp: {deciding}; authenticated with {} (amr {})){would}{errors}",
            auth.mie.as_str(),
            // The factors too: a FIDO2 key without verified attestation (`swk`) is refused where
            // one with (`hwk`) would do.
            auth.amr().join(" ")
        )));
    }
    let identity = policy
        .identities
        .get(ports.directory.as_ref(), &auth.identity_id)
        .await
        .map_err(|e| unavailable("directory", e))?
        .ok_or_else(|| Refusal::Token("the professional is no longer in the directory".into()))?;
    // Issue 17: a professional the RPPS struck off loses the DMP under `derivation.on_struck_off =
    // "deny_dmp"`, whatever MIE they hold (a CPS still carries their idNat).
    if let Some(why) = ports.directory.dmp_withheld(&auth.identity_id).await.map_err(|e| unavailable("directory", e))? {
        return Err(Refusal::Policy(format!("the DMP is withheld from this professional: {why}")));
    }
    let professional = auth.professional.as_ref();
    let idnat = match professional {
        Some(p) => IdNat::parse(&p.idnat).map_err(|e| {
            Refusal::Policy(format!("the professional's national identifier {:?} is not an idNat_PS: {e}", p.idnat))
        })?,
        None => identity
            .idnat
            .clone()
            .ok_or_else(|| Refusal::Policy("the professional has no national identifier (idNat_PS)".into()))?,
    };
    // Profession and specialty as a national provider asserted them, else the directory's métier.
    let profession = professional
        .and_then(|p| p.profession.as_deref())
        .or_else(|| crate::policy::profession_code_of(identity.metier.as_deref()));
    let specialty = professional.and_then(|p| p.specialty.as_deref());
    let request = VihfRequest {
        idnat: idnat.clone(),
        subject_name: format!("{} {}", identity.family_name, identity.given_name),
        profession: profession.map(str::to_owned),
        specialty: specialty.map(str::to_owned),
        mie: auth.mie,
        authn_instant: auth.at,
        patient: patient.clone(),
        purpose_of_use: purpose.to_owned(),
        now: crate::now(),
    };
    let vihf = dmp.sealer.seal(&request).map_err(|e| match e {
        SealRefusal::NotForThisSession(m) => Refusal::Policy(format!("no VIHF for this session: {m}")),
        SealRefusal::Failed(e) => {
            tracing::error!(error = %e, "DMP: the VIHF could not be made");
            Refusal::Server("the VIHF could not be made; the incident is logged".into())
        }
    })?;
    metrics::counter!("vigie_vihf_issued_total", "client" => client_id.to_owned()).increment(1);
    audit.record(AuditEvent {
        kind: Some(AuditKind::VihfIssued),
        outcome: Some(Outcome::Success),
        subject: Some(auth.identity_id.clone()),
        client_id: Some(client_id.to_owned()),
        method: Some(auth.mie.as_str().into()),
        acr: Some(auth.level.acr().into()),
        sid: Some(session.sid.clone()),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        object: Some(vihf.id.clone()),
        idnat: Some(idnat.as_str().to_owned()),
        patient: Some(audit.patient_ref(patient)),
        reason: Some(format!(
            "idnat {idnat}; patient INS {}; purpose {purpose}; valid until {}; via {}",
            audit.patient_ref(patient),
            vihf.not_on_or_after,
            match via {
                Via::TokenExchange => "token exchange",
                Via::Relay => "relay",
            }
        )),
        ..Default::default()
    });
    Ok(vihf)
}

/// A DMP access refused by policy, audited beside the decision line.
pub fn audit_refused(audit: &Audit, caller: &Caller, client_id: &str, reason: &str) {
    audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        client_id: Some(client_id.to_owned()),
        method: Some("access_dmp".into()),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        reason: Some(reason.to_owned()),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_reach_the_caller_without_their_detail() {
        let Refusal::Unavailable(m) =
            unavailable("session store", "redis://10.1.2.3:6379: NOAUTH Authentication required")
        else {
            panic!("a store failure is Unavailable");
        };
        assert_eq!(m, "the session store is unavailable at the moment; try again later");
    }
}
