//! Reading one page of an Annuaire Santé FHIR search (a R4 `searchset` Bundle of `Practitioner`s,
//! with their `PractitionerRole`s when `_revinclude`d; annuaire-sante.md §4) into professionals.
//! The bytes come from the network: anything else than such a Bundle is refused with what it is.
use std::collections::BTreeMap;

use serde_json::Value;
use vigie_directory_sql::rpps::RppsEntry;

use super::extraction::normalise;

/// idNat_PS identifier system (annuaire-sante.md §4, FR Core).
pub const IDNPS: &str = "urn:oid:1.2.250.1.71.4.2.1";
/// RPPS identifier system.
pub const RPPS: &str = "https://rpps.esante.gouv.fr";
/// The NOS terminologies of the codes read, by the tail of their system URL.
const G15: &str = "TRE-G15-ProfessionSante";
const R09: &str = "TRE-R09-CategorieProfessionnelle";
const R38: &str = "TRE-R38-SpecialiteOrdinale";
const R21: &str = "TRE-R21-Fonction";
const R22: &str = "TRE-R22-GenreActivite";
const R23: &str = "TRE-R23-ModeExercice";

/// What a page is not, when it is not a search Bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not JSON at all.
    #[error("the answer is not JSON ({0}): is derivation.fhir_url the FHIR base (…/fhir/v2)?")]
    NotJson(String),
    /// JSON without a `resourceType`.
    #[error("the answer is JSON but not a FHIR resource (no resourceType): is derivation.fhir_url the FHIR base?")]
    NotFhir,
    /// A FHIR resource, not a Bundle.
    #[error("the answer is a FHIR {0} where a search Bundle was expected")]
    NotBundle(String),
    /// A Bundle that breaks R4 or the Annuaire's profiles.
    #[error("the Bundle is malformed: {0}")]
    Malformed(String),
}

/// One activity (PractitionerRole) of a professional.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Activity {
    /// Listed active.
    pub active: bool,
    /// TRE_R23 mode d'exercice (`S` salarié, `L` libéral…), code and display.
    pub mode: Option<(String, String)>,
    /// TRE_R22 genre d'activité.
    pub genre: Option<(String, String)>,
    /// TRE_R21 fonction.
    pub fonction: Option<(String, String)>,
}

/// A professional as the API lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Professional {
    /// Logical id on the API (differs between API versions: never a key, annuaire-sante.md §4).
    pub id: String,
    /// idNat_PS, opaque.
    pub idnat: String,
    /// RPPS number.
    pub rpps: String,
    /// Exercise names.
    pub family_name: String,
    /// Exercise given name.
    pub given_name: String,
    /// `active = false`: deleted from the directory (as-dp-practitioner).
    pub active: bool,
    /// TRE_G15 profession, code and display.
    pub profession: Option<(String, String)>,
    /// TRE_R09 category.
    pub category: Option<(String, String)>,
    /// TRE_R38 specialties (savoir-faire).
    pub specialties: Vec<(String, String)>,
    /// PractitionerRoles included with the search.
    pub activities: Vec<Activity>,
}

impl Professional {
    /// Exercising: listed active, and no included activity says otherwise.
    pub fn exercising(&self) -> bool {
        self.active && (self.activities.is_empty() || self.activities.iter().any(|a| a.active))
    }

    /// As a row of the extraction, for matching and confirmation (line 0: from the API).
    pub fn entry(&self) -> RppsEntry {
        let split = |c: &Option<(String, String)>| (c.as_ref().map(|c| c.0.clone()), c.as_ref().map(|c| c.1.clone()));
        let (profession_code, profession_label) = split(&self.profession);
        let (category_code, category_label) = split(&self.category);
        let (savoir_faire_code, savoir_faire_label) = split(&self.specialties.first().cloned());
        RppsEntry {
            idnat: self.idnat.clone(),
            rpps: self.rpps.clone(),
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            family_norm: normalise(&self.family_name),
            given_norm: normalise(&self.given_name),
            birth_date: None,
            profession_code,
            profession_label,
            category_code,
            category_label,
            savoir_faire_code,
            savoir_faire_label,
            activity_start: None,
            activity_end: None,
            ended: !self.exercising(),
            line_no: 0,
        }
    }
}

/// One page read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The Practitioners of the page, with the PractitionerRoles included for them.
    pub professionals: Vec<Professional>,
    /// `Bundle.link[next]`.
    pub next: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The first coding of `codings` whose system ends with `tail`, as (code, display).
fn coded(concepts: &[&Value], tail: &str) -> Option<(String, String)> {
    concepts.iter().flat_map(|c| c["coding"].as_array().into_iter().flatten()).find_map(|c| {
        let system = c["system"].as_str()?;
        if !system.ends_with(tail) {
            return None;
        }
        let code = text(&c["code"])?;
        Some((code.clone(), text(&c["display"]).unwrap_or(code)))
    })
}

fn practitioner(r: &Value) -> Result<Professional, BundleError> {
    let id = text(&r["id"]).ok_or_else(|| BundleError::Malformed("a Practitioner without an id".into()))?;
    let ids = r["identifier"].as_array().map(Vec::as_slice).unwrap_or_default();
    let of = |system: &str| ids.iter().find(|i| i["system"] == system).and_then(|i| text(&i["value"]));
    // as-dp-practitioner: idNatPs 1..1, rpps 1..1, active 1..1.
    let idnat = of(IDNPS)
        .ok_or_else(|| BundleError::Malformed(format!("Practitioner/{id} has no idNat_PS identifier ({IDNPS})")))?;
    if idnat.len() > 64 || !idnat.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(BundleError::Malformed(format!("Practitioner/{id}: the idNat_PS is not an identifier")));
    }
    let rpps = of(RPPS).unwrap_or_default();
    let active = r["active"]
        .as_bool()
        .ok_or_else(|| BundleError::Malformed(format!("Practitioner/{id} does not say whether it is active")))?;
    let names = r["name"].as_array().map(Vec::as_slice).unwrap_or_default();
    let name = names.iter().find(|n| n["use"] == "usual").or(names.first());
    let family_name = name.and_then(|n| text(&n["family"])).unwrap_or_default();
    let given_name = name
        .and_then(|n| n["given"].as_array())
        .map(|g| g.iter().filter_map(text).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    if active && family_name.is_empty() {
        return Err(BundleError::Malformed(format!("Practitioner/{id} is active but has no exercise name")));
    }
    let quals: Vec<&Value> = r["qualification"].as_array().into_iter().flatten().map(|q| &q["code"]).collect();
    let mut specialties = Vec::new();
    for q in &quals {
        if let Some(s) = coded(&[q], R38)
            && !specialties.contains(&s)
        {
            specialties.push(s);
        }
    }
    Ok(Professional {
        id,
        idnat,
        rpps,
        family_name,
        given_name,
        active,
        profession: coded(&quals, G15),
        category: coded(&quals, R09),
        specialties,
        activities: Vec::new(),
    })
}

/// Whether a FHIR `dateTime` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or with a time) is before today (UTC).
fn period_ended(end: &Value) -> bool {
    let Some(end) = end.as_str() else { return false };
    let d = time::OffsetDateTime::now_utc().date();
    let today = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    // Compared on the common prefix: `2020` ended before any day of 2021; today's own date is not over.
    let n = end.len().min(10);
    end.get(..n).is_some_and(|e| e < &today[..n])
}

fn activity(r: &Value) -> (Option<String>, Activity) {
    let codes: Vec<&Value> = r["code"].as_array().into_iter().flatten().collect();
    let of = r["practitioner"]["reference"].as_str().and_then(|s| s.rsplit_once("Practitioner/")).map(|(_, id)| id);
    let a = Activity {
        // FHIR R4 PractitionerRole.period: "the period during which the person is authorized to
        // act as a practitioner in these role(s)": an end before today ends the activity too.
        active: r["active"].as_bool().unwrap_or(true) && !period_ended(&r["period"]["end"]),
        mode: coded(&codes, R23),
        genre: coded(&codes, R22),
        fonction: coded(&codes, R21),
    };
    (of.map(str::to_owned), a)
}

/// Reads one page of a search (FHIR R4 §3.1.1.1 "searchset" Bundle; RESTful search §3.1.1.2
/// pagination links).
pub fn read(bytes: &[u8]) -> Result<Page, BundleError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| BundleError::NotJson(e.to_string()))?;
    let kind = v["resourceType"].as_str().ok_or(BundleError::NotFhir)?;
    if kind != "Bundle" {
        return Err(BundleError::NotBundle(kind.chars().take(64).collect()));
    }
    if v["type"] != "searchset" {
        return Err(BundleError::Malformed(format!("type {} where a searchset was expected", v["type"])));
    }
    let mut professionals = Vec::new();
    let mut activities: BTreeMap<String, Vec<Activity>> = BTreeMap::new();
    for e in v["entry"].as_array().into_iter().flatten() {
        let r = &e["resource"];
        match r["resourceType"].as_str() {
            Some("Practitioner") => professionals.push(practitioner(r)?),
            Some("PractitionerRole") => {
                if let (Some(of), a) = activity(r) {
                    activities.entry(of).or_default().push(a);
                }
            }
            // An OperationOutcome may ride along with warnings (R4 §3.1.1.4.1): not a match.
            Some(_) => {}
            None => return Err(BundleError::Malformed("an entry without a resource".into())),
        }
    }
    for p in &mut professionals {
        p.activities = activities.remove(&p.id).unwrap_or_default();
    }
    let next =
        v["link"].as_array().into_iter().flatten().find(|l| l["relation"] == "next").and_then(|l| text(&l["url"]));
    Ok(Page { professionals, next })
}

/// The `diagnostics` of an OperationOutcome answer, if that is what `bytes` are, short.
pub fn outcome(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    (v["resourceType"] == "OperationOutcome").then_some(())?;
    let d = v["issue"].as_array()?.iter().find_map(|i| text(&i["diagnostics"]))?;
    Some(d.chars().filter(|c| !c.is_control()).take(200).collect())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn pr(id: &str, idnat: &str, family: &str, active: bool) -> Value {
        json!({"resourceType": "Practitioner", "id": id, "active": active,
            "identifier": [{"system": IDNPS, "value": idnat}, {"system": RPPS, "value": &idnat[1..]}],
            "name": [{"use": "usual", "family": family, "given": ["Zoé"]}],
            "qualification": [{"code": {"coding": [
                {"system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "10", "display": "Médecin"},
                {"system": "https://mos.esante.gouv.fr/NOS/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle", "code": "C"}]}},
                {"code": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale", "code": "SM54", "display": "Médecine générale"}]}}]})
    }

    fn bundle(entries: Vec<Value>, next: Option<&str>) -> Vec<u8> {
        let mut link = vec![json!({"relation": "self", "url": "x"})];
        if let Some(n) = next {
            link.push(json!({"relation": "next", "url": n}));
        }
        let entry: Vec<Value> = entries.into_iter().map(|r| json!({"resource": r})).collect();
        serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "searchset", "link": link, "entry": entry}))
            .unwrap()
    }

    #[test]
    fn a_practitioner_with_its_role_reads_with_profession_specialty_and_status() {
        let role = json!({"resourceType": "PractitionerRole", "active": true, "practitioner": {"reference": "Practitioner/p1"},
            "code": [{"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice", "code": "S", "display": "Salarié"}]}]});
        let page =
            read(&bundle(vec![pr("p1", "810100000078", "LEFÈVRE", true), role], Some("https://a/next"))).unwrap();
        assert_eq!(page.next.as_deref(), Some("https://a/next"));
        let p = &page.professionals[0];
        assert_eq!((p.idnat.as_str(), p.rpps.as_str(), p.given_name.as_str()), ("810100000078", "10100000078", "Zoé"));
        assert_eq!(p.profession, Some(("10".into(), "Médecin".into())));
        assert_eq!(p.category, Some(("C".into(), "C".into())));
        assert_eq!(p.specialties, [("SM54".to_owned(), "Médecine générale".to_owned())]);
        assert_eq!(p.activities[0].mode, Some(("S".into(), "Salarié".into())));
        let e = p.entry();
        assert_eq!((e.family_norm.as_str(), e.ended), ("LEFEVRE", false));
    }

    #[test]
    fn what_is_not_a_search_bundle_is_named() {
        assert!(matches!(read(b"<html>"), Err(BundleError::NotJson(_))));
        assert_eq!(read(b"{\"a\":1}"), Err(BundleError::NotFhir));
        let p = serde_json::to_vec(&pr("p", "8101", "X", true)).unwrap();
        assert_eq!(read(&p), Err(BundleError::NotBundle("Practitioner".into())));
        let mut no_idnat = pr("p", "8101", "X", true);
        no_idnat["identifier"] = json!([]);
        assert!(read(&bundle(vec![no_idnat], None)).unwrap_err().to_string().contains("no idNat_PS identifier"));
        let deleted = read(&bundle(vec![pr("p", "8101", "", false)], None)).unwrap();
        assert!(!deleted.professionals[0].exercising() && deleted.professionals[0].entry().ended);
    }

    #[test]
    fn an_operation_outcome_gives_its_diagnostics() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"security","diagnostics":"bad key\n"}]}"#;
        assert_eq!(outcome(oo).as_deref(), Some("bad key"));
        assert_eq!(outcome(b"{}"), None);
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = read(&bytes);
            let _ = outcome(&bytes);
        }

        #[test]
        fn generated_practitioners_read_back(idnat in "8[0-9]{11}", family in "[A-Za-zÀ-ÿ' -]{1,20}", active in any::<bool>(), n in 0usize..4) {
            prop_assume!(!family.trim().is_empty());
            let entries: Vec<Value> = (0..n).map(|i| pr(&format!("p{i}"), &idnat, &family, active)).collect();
            let page = read(&bundle(entries, None)).unwrap();
            prop_assert_eq!(page.professionals.len(), n);
            for p in &page.professionals {
                prop_assert_eq!(&p.idnat, &idnat);
                prop_assert_eq!(p.family_name.as_str(), family.trim());
                prop_assert_eq!(p.entry().ended, !active);
                prop_assert_eq!(normalise(&p.entry().family_norm), p.entry().family_norm);
            }
        }

        #[test]
        fn a_mangled_bundle_never_yields_a_professional_without_an_idnat(cut in 0usize..600) {
            let b = bundle(vec![pr("p1", "810100000078", "LEFÈVRE", true)], None);
            if let Ok(page) = read(&b[..cut.min(b.len())]) {
                prop_assert!(page.professionals.iter().all(|p| !p.idnat.is_empty()));
            }
        }
    }
}
