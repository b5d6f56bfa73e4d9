//! SCIM resources to and from what the directory keeps: a User's JSON (RFC 7643 §4, the
//! enterprise and Vigie extensions) to a [`UserRecord`], a Group's to a [`GroupRecord`], a
//! stored one back to JSON with its `meta` (RFC 7643 §3.1), and the errors of RFC 7644 §3.12.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};
use vigie_core::IdNat;
use vigie_core::provisioning::{GroupRecord, ProvisioningError, Stored, UserRecord};
use vigie_core::roles::Role;

use super::filter::member;
use super::schema::{ENTERPRISE, ERROR, GROUP, USER, VIGIE};

/// The media type of SCIM messages (RFC 7644 §8.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// An error as RFC 7644 §3.12 shapes it: the status, a `scimType` for 400/409, and a detail a
/// person can act on, never the database's words.
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into() }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        let id: String = id.chars().take(64).collect();
        Self::new(StatusCode::NOT_FOUND, None, format!("no {what} with id {id:?}"))
    }

    pub fn response(&self) -> HttpResponse {
        let mut body = json!({"schemas": [ERROR], "status": self.status.as_u16().to_string(), "detail": self.detail});
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        HttpResponse::build(self.status).content_type(MEDIA_TYPE).body(body.to_string())
    }

    /// The directory's refusal as SCIM says it; an outage is logged, the client told only that.
    pub fn of(e: ProvisioningError, what: &str, id: &str) -> Self {
        match e {
            ProvisioningError::NotFound => Self::not_found(what, id),
            ProvisioningError::Uniqueness(m) => Self::new(StatusCode::CONFLICT, Some("uniqueness"), m),
            // RFC 7644 §3.14: the version the client had is no longer the resource's.
            ProvisioningError::VersionMismatch(v) => Self::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                format!("the {what} was changed since: its version is now W/\"{v}\"; read it again, then retry"),
            ),
            ProvisioningError::Invalid(m) => Self::invalid_value(m),
            ProvisioningError::Unavailable(m) => {
                tracing::error!(error = %m, "SCIM: the directory failed");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, None, "the directory is unavailable: retry shortly")
            }
        }
    }
}

fn string_at(holder: Option<&Value>, name: &str, what: &str) -> Result<Option<String>, ScimError> {
    match holder.and_then(|h| member(h, name)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("{what} must be a string"))),
    }
}

/// Checks the `schemas` of a resource (RFC 7643 §3: REQUIRED, naming its core schema) and
/// keeps of it what a client may write: `id` and `meta` are the server's (readOnly).
fn client_document(body: &Value, core: &str, allowed: &[&str]) -> Result<Map<String, Value>, ScimError> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    let schemas = match member(body, "schemas") {
        Some(Value::Array(s)) => s,
        _ => return Err(ScimError::invalid_value(format!("`schemas` is required and must list {core}"))),
    };
    if !schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(core))) {
        return Err(ScimError::invalid_value(format!("`schemas` must list {core}")));
    }
    for s in schemas {
        match s.as_str() {
            Some(s) if allowed.iter().any(|a| a.eq_ignore_ascii_case(s)) => {}
            _ => {
                let s = s.as_str().map_or_else(|| s.to_string(), str::to_owned);
                return Err(ScimError::invalid_value(format!(
                    "`schemas` names {s}, which this resource type does not have: expected among {}",
                    allowed.join(", ")
                )));
            }
        }
    }
    let mut doc = object.clone();
    doc.retain(|k, _| !k.eq_ignore_ascii_case("id") && !k.eq_ignore_ascii_case("meta"));
    Ok(doc)
}

/// A User's JSON as the directory keeps it.
pub fn user_record(body: &Value) -> Result<UserRecord, ScimError> {
    let doc = client_document(body, USER, &[USER, ENTERPRISE, VIGIE])?;
    let body = Value::Object(doc.clone());
    let user_name = string_at(Some(&body), "userName", "userName")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("userName is required (RFC 7643 §4.1.1)"))?;
    let active = match member(&body, "active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ScimError::invalid_value("active must be true or false")),
    };
    let name = member(&body, "name");
    // Vigie's identities always have names: without them, the login name stands in.
    let family_name = string_at(name, "familyName", "name.familyName")?.unwrap_or_else(|| user_name.clone());
    let given_name = string_at(name, "givenName", "name.givenName")?.unwrap_or_else(|| user_name.clone());
    let enterprise = member(&body, ENTERPRISE);
    let vigie = member(&body, VIGIE);
    let matricule = string_at(enterprise, "employeeNumber", &format!("{ENTERPRISE}:employeeNumber"))?;
    let idnat = string_at(vigie, "idNat", &format!("{VIGIE}:idNat"))?
        .map(|s| {
            IdNat::parse(&s).map_err(|e| {
                ScimError::invalid_value(format!(
                    "{VIGIE}:idNat {:?} is not an idNat_PS ({e}): 8+RPPS, 0+ADELI, 3+FINESS…",
                    s.chars().take(64).collect::<String>()
                ))
            })
        })
        .transpose()?;
    let metier = string_at(vigie, "metier", &format!("{VIGIE}:metier"))?;
    let units = match vigie.and_then(|v| member(v, "units")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|u| u.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ScimError::invalid_value(format!("{VIGIE}:units must be a list of UF codes")))?,
        Some(_) => return Err(ScimError::invalid_value(format!("{VIGIE}:units must be a list of UF codes"))),
    };
    Ok(UserRecord {
        user_name,
        external_id: string_at(Some(&body), "externalId", "externalId")?,
        active,
        family_name,
        given_name,
        matricule,
        idnat,
        metier,
        units,
        document: body.to_string(),
    })
}

/// A Group's JSON as the directory keeps it; `user_ids` are the ids members may name.
pub fn group_record(body: &Value) -> Result<GroupRecord, ScimError> {
    let mut doc = client_document(body, GROUP, &[GROUP])?;
    let body = Value::Object(doc.clone());
    let display_name = string_at(Some(&body), "displayName", "displayName")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("displayName is required (RFC 7643 §4.2)"))?;
    let members = match member(&body, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|m| member(m, "value").and_then(Value::as_str).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ScimError::invalid_value("each member needs a `value`: the User's id"))?,
        Some(_) => return Err(ScimError::invalid_value("members must be a list")),
    };
    doc.retain(|k, _| !k.eq_ignore_ascii_case("members"));
    let mut unique = members.clone();
    unique.sort();
    unique.dedup();
    Ok(GroupRecord {
        // Only the roles of people: `provisioning` is a token's, never a person's.
        role: Role::parse(&display_name).ok().filter(|r| *r != Role::Provisioning),
        display_name,
        external_id: string_at(Some(&body), "externalId", "externalId")?,
        members: unique,
        document: Value::Object(doc).to_string(),
    })
}

/// The ETag of a version (RFC 7644 §3.14: weak, as the server may change the representation).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A stored resource as a client reads it: its document, `id` and `meta` (RFC 7643 §3.1).
pub fn render(stored: &Stored, resource_type: &str, base: &str) -> Value {
    let mut doc: Map<String, Value> = serde_json::from_str(&stored.document).unwrap_or_default();
    doc.insert("id".into(), json!(stored.id));
    let endpoint = if resource_type == "User" { "Users" } else { "Groups" };
    if resource_type == "User" {
        // The account says whether the person is active; shown when the client wrote it, or
        // when the account is disabled whatever the client wrote.
        let written = doc.keys().any(|k| k.eq_ignore_ascii_case("active"));
        doc.retain(|k, _| !k.eq_ignore_ascii_case("active"));
        if written || !stored.active {
            doc.insert("active".into(), json!(stored.active));
        }
        // RFC 7643 §3: `schemas` lists the extensions the resource holds, and only those (a
        // PATCH may have added or emptied one).
        let mut schemas = vec![json!(USER)];
        for ext in [ENTERPRISE, VIGIE] {
            let key = doc.keys().find(|k| k.eq_ignore_ascii_case(ext)).cloned();
            if let Some(key) = key {
                if doc[&key].as_object().is_some_and(|o| !o.is_empty()) {
                    schemas.push(json!(ext));
                } else {
                    doc.remove(&key);
                }
            }
        }
        doc.retain(|k, _| !k.eq_ignore_ascii_case("schemas"));
        doc.insert("schemas".into(), Value::Array(schemas));
    } else {
        let members: Vec<Value> = stored
            .members
            .iter()
            .map(|m| json!({"value": m, "$ref": format!("{base}/Users/{m}"), "type": "User"}))
            .collect();
        if !members.is_empty() {
            doc.insert("members".into(), Value::Array(members));
        }
    }
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": resource_type,
            "created": stored.created,
            "lastModified": stored.last_modified,
            "version": etag(stored.version),
            "location": format!("{base}/{endpoint}/{}", stored.id),
        }),
    );
    Value::Object(doc)
}

/// The attribute names a change wrote (top level, extensions as `urn:…:name`), for the audit
/// line: names only, never values.
pub fn attribute_names(body: &Value) -> String {
    let mut names = Vec::new();
    for (k, v) in body.as_object().into_iter().flatten() {
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if k.starts_with("urn:") {
            for sub in v.as_object().into_iter().flatten().map(|(s, _)| s) {
                names.push(format!("{k}:{sub}"));
            }
        } else {
            names.push(k.clone());
        }
    }
    names.sort();
    names.join(",").chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_maps_to_what_vigie_reads() {
        let body = json!({
            "schemas": [USER, ENTERPRISE, VIGIE], "id": "ignored", "userName": "jdupont",
            "name": {"familyName": "Dupont", "givenName": "Jeanne"}, "active": false,
            ENTERPRISE: {"employeeNumber": "M042"},
            VIGIE: {"idNat": "810001234567", "units": ["UF1", "UF2"], "metier": "Médecin"},
        });
        let u = user_record(&body).unwrap();
        assert_eq!((u.user_name.as_str(), u.active, u.matricule.as_deref()), ("jdupont", false, Some("M042")));
        assert_eq!(u.idnat.as_ref().map(IdNat::as_str), Some("810001234567"));
        assert_eq!(u.units, ["UF1", "UF2"]);
        assert!(!u.document.contains("ignored"), "the id is the server's");
    }

    #[test]
    fn a_bad_user_is_refused_naming_the_attribute() {
        let cases = [
            (json!({"userName": "x"}), "`schemas` is required"),
            (json!({"schemas": [USER]}), "userName is required"),
            (json!({"schemas": [USER], "userName": "x", "active": "yes"}), "active must be"),
            (json!({"schemas": [USER, "urn:x"], "userName": "x"}), "names urn:x"),
            (json!({"schemas": [USER], "userName": "x", VIGIE: {"idNat": "abc"}}), "is not an idNat_PS"),
            (json!({"schemas": [USER], "userName": "x", VIGIE: {"units": "UF1"}}), "units must be a list"),
        ];
        for (body, says) in cases {
            let e = user_record(&body).expect_err(says);
            assert_eq!((e.status, e.scim_type), (StatusCode::BAD_REQUEST, Some("invalidValue")), "{says}");
            assert!(e.detail.contains(says), "{}: {says}", e.detail);
        }
    }

    #[test]
    fn a_group_named_after_a_role_grants_it() {
        let g = group_record(&json!({"schemas": [GROUP], "displayName": "cards", "members": [{"value": "b"}, {"value": "a"}, {"value": "b"}]}))
            .unwrap();
        assert_eq!((g.role, g.members), (Some(Role::Cards), vec!["a".to_owned(), "b".to_owned()]));
        assert!(!g.document.contains("members"));
        let g = group_record(&json!({"schemas": [GROUP], "displayName": "Urgences"})).unwrap();
        assert_eq!(g.role, None);
    }

    #[test]
    fn audit_names_carry_no_value() {
        let names =
            attribute_names(&json!({"schemas": [USER], "userName": "secret-name", VIGIE: {"idNat": "810001234567"}}));
        assert_eq!(names, format!("{VIGIE}:idNat,userName"));
    }
}
