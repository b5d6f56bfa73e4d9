//! An audit event as a FHIR R4 `AuditEvent` resource, the health sector's shape of a trace.
//!
//! The ANS's CI-SIS traceability work profiles IHE ATNA on FHIR `AuditEvent`; its published
//! profile could not be consulted here, so the mapping follows IHE BALP (Basic Audit Log
//! Patterns, the IHE profile the ANS builds on) and the codes of FHIR R4 itself:
//! - `type`: DICOM (DCM) 110114 "User Authentication" for logins, logouts and VIHF issuance,
//!   110113 "Security Alert" for refusals and what was let through unchecked, 110110 "Patient
//!   Record" for DMP calls, 110136/110137 for changes to roles and credentials, and the
//!   FHIR `audit-event-type` `rest` for the token endpoint (BALP's RESTful pattern);
//! - `subtype`: DCM 110122 "Login" / 110123 "Logout"; IHE ITI-40 for a VIHF (an XUA assertion);
//!   Vigie's own kind (system `urn:vigie:audit-kind`) always, so no kind is lost;
//! - `agent[0]` the professional (`who.identifier`: the idNat, system `urn:oid:1.2.250.1.71.4.2.1`,
//!   when the event knows it; the directory id otherwise, system `urn:vigie:identity`),
//!   requestor, with the IP as `network`; `agent[1]` the OAuth client (BALP's "client" agent);
//! - `source.observer` the gateway; `entity` the patient of a VIHF or DMP call by the keyed HMAC of
//!   the INS (never the INS), and the VIHF by its id.
use serde_json::{Value, json};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

/// The OID of the national identifier of health professionals (idNat_PS, ANS).
pub const IDNAT_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.1";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const IHE_EVENT: &str = "urn:ihe:event-type-code";
const KIND_SYSTEM: &str = "urn:vigie:audit-kind";

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

/// `type` (1..1) and the standard `subtype`, if any, of a kind.
fn type_of(kind: Option<AuditKind>) -> (Value, Option<Value>) {
    use AuditKind::*;
    let auth = coding(DCM, "110114", "User Authentication");
    let alert = coding(DCM, "110113", "Security Alert");
    match kind {
        Some(Login) => (auth, Some(coding(DCM, "110122", "Login"))),
        Some(Logout) => (auth, Some(coding(DCM, "110123", "Logout"))),
        Some(VihfIssued) => (auth, Some(coding(IHE_EVENT, "ITI-40", "Provide X-User Assertion"))),
        Some(DmpCall) => (coding(DCM, "110110", "Patient Record"), None),
        Some(TokenIssued | TokenRefreshed | TokenRevoked) => (coding(EVENT_TYPE, "rest", "RESTful Operation"), None),
        Some(RoleChanged) => (alert, Some(coding(DCM, "110136", "Security Roles Changed"))),
        Some(
            CardCreated | CardStatusChanged | CardBound | KeyRegistered | KeyRevoked | EnrolmentCode
            | SecurityQuestions | AccessEnded | DirectorySync | Provisioned | IdentityAnnounced,
        ) => (alert, Some(coding(DCM, "110137", "User Security Attributes Changed"))),
        Some(AdminApi) => (alert, Some(coding(DCM, "110132", "Use of a restricted function"))),
        _ => (alert, None),
    }
}

/// `action` (C R U D E): what the act did to its object.
fn action_of(kind: Option<AuditKind>) -> &'static str {
    use AuditKind::*;
    match kind {
        Some(CardCreated | KeyRegistered | IdentityAnnounced | VihfIssued | TokenIssued | TokenRefreshed) => "C",
        Some(CardStatusChanged | CardBound | RoleChanged | SecurityQuestions | Provisioned | DirectorySync) => "U",
        Some(KeyRevoked | TokenRevoked) => "D",
        _ => "E",
    }
}

/// The resource's id: a digest of the event, so that exporting twice gives the same ids.
fn id_of(event: &AuditEvent) -> String {
    let line = serde_json::to_string(event).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, line.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The FHIR R4 `AuditEvent` of one event. `observer` names the gateway (its issuer URL).
pub fn audit_event(event: &AuditEvent, observer: &str) -> Value {
    let kind = event.kind.map(super::syslog::kind_name).unwrap_or_else(|| "unknown".into());
    let (event_type, standard) = type_of(event.kind);
    let mut subtype: Vec<Value> = standard.into_iter().collect();
    subtype.push(json!({ "system": KIND_SYSTEM, "code": kind }));
    let outcome = match (event.outcome, event.kind) {
        (Some(Outcome::Success), _) => "0",
        // A refusal is the gateway doing its job (minor); any other failure is serious.
        (Some(Outcome::Failure), Some(AuditKind::Refused | AuditKind::Login)) | (None, _) => "4",
        (Some(Outcome::Failure), _) => "8",
    };
    let person = match (&event.idnat, &event.subject) {
        (Some(idnat), _) => Some(json!({ "system": IDNAT_SYSTEM, "value": idnat })),
        (None, Some(subject)) => Some(json!({ "system": "urn:vigie:identity", "value": subject })),
        (None, None) => None,
    };
    let mut user = json!({
        "type": { "coding": [coding("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "humanuser", "human user")] },
        "requestor": true,
    });
    match (person, &event.actor) {
        (Some(identifier), _) => user["who"] = json!({ "identifier": identifier }),
        (None, Some(actor)) => user["who"] = json!({ "display": actor }),
        (None, None) => user["who"] = json!({ "display": event.username.clone().unwrap_or_else(|| "unknown".into()) }),
    }
    if let Some(name) = &event.username {
        user["name"] = json!(name);
    }
    if let Some(subject) = event.subject.as_ref().filter(|_| event.idnat.is_some()) {
        user["altId"] = json!(subject);
    }
    if let Some(ip) = &event.ip {
        // Network access point type 2: an IP address.
        user["network"] = json!({ "address": ip, "type": "2" });
    }
    if let Some(method) = &event.method {
        user["policy"] = json!([format!("urn:vigie:method:{method}")]);
    }
    let mut agents = vec![user];
    if let Some(client) = &event.client_id {
        agents.push(json!({
            "type": { "coding": [coding(DCM, "110150", "Application")] },
            "who": { "identifier": { "system": "urn:vigie:client", "value": client } },
            "requestor": false,
        }));
    }
    let mut entities = Vec::new();
    if let Some(patient) = &event.patient {
        entities.push(json!({
            "what": { "identifier": { "system": "urn:vigie:ins-hmac-sha256", "value": patient } },
            "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
            "role": coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
        }));
    }
    if let Some(object) = &event.object {
        let what = if matches!(event.kind, Some(AuditKind::VihfIssued | AuditKind::DmpCall)) {
            json!({ "identifier": { "system": "urn:vigie:vihf", "value": object } })
        } else {
            json!({ "display": object })
        };
        entities.push(json!({
            "what": what,
            "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
        }));
    }
    if let Some(request_id) = &event.request_id {
        entities.push(json!({
            "what": { "identifier": { "system": "urn:vigie:request-id", "value": request_id } },
            "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "4", "Other"),
            "detail": event.sid.iter().map(|sid| json!({ "type": "sid", "valueString": sid })).collect::<Vec<_>>(),
        }));
    }
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": id_of(event),
        "type": event_type,
        "subtype": subtype,
        "action": action_of(event.kind),
        "recorded": event.at,
        "outcome": outcome,
        "agent": agents,
        "source": {
            "site": observer,
            "observer": { "display": format!("Vigie {observer}") },
            "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
        },
    });
    if let Some(reason) = &event.reason {
        resource["outcomeDesc"] = json!(reason);
    }
    if !entities.is_empty() {
        // An empty `detail` array is not valid FHIR: drop it where no sid was known.
        for e in &mut entities {
            if e.get("detail").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                e.as_object_mut().map(|o| o.remove("detail"));
            }
        }
        resource["entity"] = json!(entities);
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vihf_names_the_professional_the_client_and_the_hashed_patient() {
        let event = AuditEvent {
            at: "2026-12-05T15:10:34Z".into(),
            kind: Some(AuditKind::VihfIssued),
            outcome: Some(Outcome::Success),
            subject: Some("id-1".into()),
            idnat: Some("810100000011".into()),
            client_id: Some("dpi".into()),
            patient: Some("sha256:abc".into()),
            object: Some("_vihf1".into()),
            ip: Some("10.1.1.1".into()),
            request_id: Some("req-1".into()),
            ..Default::default()
        };
        let r = audit_event(&event, "https://vigie.example");
        assert_eq!(r["agent"][0]["who"]["identifier"]["system"], IDNAT_SYSTEM);
        assert_eq!(r["agent"][0]["who"]["identifier"]["value"], "810100000011");
        assert_eq!(r["agent"][0]["altId"], "id-1");
        assert_eq!(r["agent"][1]["who"]["identifier"]["value"], "dpi");
        assert_eq!(r["entity"][0]["what"]["identifier"]["value"], "sha256:abc");
        assert_eq!(r["subtype"][0]["code"], "ITI-40");
        assert_eq!(r["subtype"][1]["code"], "vihf_issued");
        assert_eq!(r["outcome"], "0");
        assert!(r["entity"][2].get("detail").is_none(), "no empty detail: {r}");
    }
}
