//! PSC's userinfo (reference/psc.md §2) read into the professional's claims: a parser of outside
//! bytes that names the first field it cannot accept.
use serde_json::{Map, Value};
use vigie_core::ProfessionalClaims;

/// Longest string accepted in a claim we keep (PSC's values are short codes and names).
const MAX_CLAIM_LEN: usize = 1024;

/// A userinfo document that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// Not JSON at all.
    #[error("the userinfo is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the userinfo is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    /// A required claim is absent.
    #[error("the userinfo has no `{0}`")]
    Missing(&'static str),
    /// A claim has the wrong JSON type.
    #[error("the userinfo's `{field}` is a {found}, expected {expected}")]
    WrongType { field: String, expected: &'static str, found: &'static str },
    /// A claim's value is unacceptable (empty, control characters, too long).
    #[error("the userinfo's `{field}` is unacceptable: {why}")]
    BadValue { field: String, why: &'static str },
    /// `SubjectNameID` absent, null or empty.
    #[error("the userinfo has no SubjectNameID (national identifier)")]
    NoIdnat,
}

/// What PSC's userinfo says about the professional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PscUserinfo {
    /// `sub`.
    pub sub: String,
    /// `SubjectNameID` (idNat_PS).
    pub idnat: String,
    /// `given_name`.
    pub given_name: Option<String>,
    /// `family_name`.
    pub family_name: Option<String>,
    /// Profession, specialty, roles, structure and sector, with `source` = the issuer.
    pub professional: ProfessionalClaims,
}

/// Reads a userinfo response body (JSON). `source` is the issuer, kept in the claims.
pub fn parse_userinfo(body: &[u8], source: &str) -> Result<PscUserinfo, ClaimsError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ClaimsError::NotJson(e.to_string()))?;
    userinfo_from_value(&value, source)
}

/// Reads a userinfo already parsed as JSON (e.g. the payload of a verified signed userinfo).
pub fn userinfo_from_value(value: &Value, source: &str) -> Result<PscUserinfo, ClaimsError> {
    let obj = value.as_object().ok_or(ClaimsError::NotAnObject(type_name(value)))?;
    let sub = opt_str(obj, "sub", "sub")?.ok_or(ClaimsError::Missing("sub"))?;
    let idnat = opt_str(obj, "SubjectNameID", "SubjectNameID")?.ok_or(ClaimsError::NoIdnat)?;
    let given_name = opt_str(obj, "given_name", "given_name")?;
    let family_name = opt_str(obj, "family_name", "family_name")?;
    let roles = roles(obj)?;
    let structure_id = opt_str(obj, "SubjectOrganizationID", "SubjectOrganizationID")?;
    let structure_name = opt_str(obj, "SubjectOrganization", "SubjectOrganization")?;
    let sector = opt_str(obj, "Secteur_Activite", "Secteur_Activite")?;
    let (profession, specialty) = first_exercise(obj)?;
    Ok(PscUserinfo {
        sub,
        idnat: idnat.clone(),
        given_name,
        family_name,
        professional: ProfessionalClaims {
            source: source.to_owned(),
            idnat,
            profession,
            specialty,
            roles,
            structure_id,
            structure_name,
            sector,
        },
    })
}

/// `SubjectRefPro.exercices[0]`: `codeProfession` and `codeSavoirFaire` (TRE_G15 / TRE_R01).
fn first_exercise(obj: &Map<String, Value>) -> Result<(Option<String>, Option<String>), ClaimsError> {
    let Some(refpro) = present(obj, "SubjectRefPro") else { return Ok((None, None)) };
    let refpro = refpro.as_object().ok_or_else(|| wrong("SubjectRefPro", "an object", refpro))?;
    let Some(exercices) = present(refpro, "exercices") else { return Ok((None, None)) };
    let exercices = exercices.as_array().ok_or_else(|| wrong("SubjectRefPro.exercices", "an array", exercices))?;
    let Some(first) = exercices.first() else { return Ok((None, None)) };
    let field = "SubjectRefPro.exercices[0]";
    let first = first.as_object().ok_or_else(|| wrong(field, "an object", first))?;
    let profession = opt_str(first, "codeProfession", "SubjectRefPro.exercices[0].codeProfession")?;
    let specialty = opt_str(first, "codeSavoirFaire", "SubjectRefPro.exercices[0].codeSavoirFaire")?;
    Ok((profession, specialty))
}

/// `SubjectRole`: an array of strings; a lone string is taken as a one-element array (some
/// Keycloak mappers flatten single-valued claims).
fn roles(obj: &Map<String, Value>) -> Result<Vec<String>, ClaimsError> {
    match present(obj, "SubjectRole") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(checked("SubjectRole", s)?.into_iter().collect()),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let field = format!("SubjectRole[{i}]");
                let s = item.as_str().ok_or_else(|| wrong(&field, "a string", item))?;
                out.extend(checked(&field, s)?);
            }
            Ok(out)
        }
        Some(other) => Err(wrong("SubjectRole", "an array of strings", other)),
    }
}

/// The value of `key` unless absent or null.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// An optional string claim: absent, null or empty → `None`; another type → an error naming it.
fn opt_str(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, ClaimsError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => checked(field, s),
        Some(other) => Err(wrong(field, "a string", other)),
    }
}

fn checked(field: &str, s: &str) -> Result<Option<String>, ClaimsError> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > MAX_CLAIM_LEN {
        return Err(ClaimsError::BadValue { field: field.to_owned(), why: "longer than 1024 bytes" });
    }
    if s.chars().any(char::is_control) {
        return Err(ClaimsError::BadValue { field: field.to_owned(), why: "contains control characters" });
    }
    Ok(Some(s.to_owned()))
}

fn wrong(field: &str, expected: &'static str, found: &Value) -> ClaimsError {
    ClaimsError::WrongType { field: field.to_owned(), expected, found: type_name(found) }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The BAS fixture of reference/psc.md §2, trimmed.
    fn bas() -> Value {
        json!({"sub":"f:550dc1c8:ANS20231122132732","preferred_username":"ANS20231122132732",
          "SubjectNameID":"ANS20231122132732","given_name":"Fistinien","family_name":"Grominoch",
          "Secteur_Activite":"SA07^1.2.250.1.71.4.2.4","SubjectOrganization":"CABINET INDIVIDUEL PEDI PODO0023704",
          "SubjectOrganizationID":"R81311","SubjectRole":["80^1.2.250.1.213.1.1.5.5"],
          "otherIds":[{"identifiant":"ANS20231122132732","origine":"EDIT","qualite":1}],
          "SubjectRefPro":{"exercices":[{"codeProfession":"80","codeCategorieProfessionnelle":"C",
            "codeTypeSavoirFaire":"","codeSavoirFaire":"","activities":[{"codeModeExercice":"L"}]}]}})
    }

    #[test]
    fn bas_fixture_gives_profession_roles_structure_and_no_empty_specialty() {
        let u = userinfo_from_value(&bas(), "https://psc").expect("parses");
        assert_eq!(u.idnat, "ANS20231122132732");
        assert_eq!(u.professional.profession.as_deref(), Some("80"));
        assert_eq!(u.professional.specialty, None);
        assert_eq!(u.professional.roles, vec!["80^1.2.250.1.213.1.1.5.5"]);
        assert_eq!(u.professional.structure_id.as_deref(), Some("R81311"));
        assert_eq!(u.professional.sector.as_deref(), Some("SA07^1.2.250.1.71.4.2.4"));
        assert_eq!(u.professional.source, "https://psc");
    }

    #[test]
    fn missing_or_empty_subject_name_id_is_no_idnat() {
        let mut v = bas();
        v.as_object_mut().unwrap().remove("SubjectNameID");
        assert_eq!(userinfo_from_value(&v, "x"), Err(ClaimsError::NoIdnat));
        v["SubjectNameID"] = json!("");
        assert_eq!(userinfo_from_value(&v, "x"), Err(ClaimsError::NoIdnat));
    }

    #[test]
    fn wrong_types_are_named_with_their_path() {
        let mut v = bas();
        v["SubjectRefPro"]["exercices"][0]["codeProfession"] = json!(10);
        let e = userinfo_from_value(&v, "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the userinfo's `SubjectRefPro.exercices[0].codeProfession` is a number, expected a string"
        );
        assert_eq!(parse_userinfo(b"[1]", "x").unwrap_err(), ClaimsError::NotAnObject("array"));
    }
}
