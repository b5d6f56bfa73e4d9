//! Property tests of PSC's userinfo parser (bytes from the network): it never panics, rejects
//! what is not a userinfo with a message naming the field, and reads back what it is given.
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vigie_psc::{ClaimsError, parse_userinfo, userinfo_from_value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("sub".to_owned()),
                    Just("SubjectNameID".to_owned()),
                    Just("SubjectRole".to_owned()),
                    Just("SubjectRefPro".to_owned()),
                    Just("exercices".to_owned()),
                    Just("codeProfession".to_owned()),
                    "[a-zA-Z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// RFC 8259's name of a value's type, as the refusals say it, read from the first character of
/// its JSON text (RFC 8259 §3: each kind of value begins its own way).
fn json_type(v: &Value) -> &'static str {
    match v.to_string().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// A claim not there: absent, null or empty.
fn absent(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

/// The value a refusal's field path (`a.b[0].c`) names in `v`, if there is one.
fn at_path<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, step| {
        let (name, index) = match step.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (step, None),
        };
        let v = v.as_object()?.get(name)?;
        match index {
            Some(i) => v.as_array()?.get(i),
            None => Some(v),
        }
    })
}

/// The place of a field path in `v`, created if absent (the last step only).
fn at_path_mut<'v>(v: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    path.split('.').try_fold(v, |v, step| match step.split_once('[') {
        Some((name, rest)) => v.get_mut(name)?.get_mut(rest.trim_end_matches(']').parse::<usize>().ok()?),
        None => Some(v.as_object_mut()?.entry(step).or_insert(Value::Null)),
    })
}

/// A claim value PSC could send: no control characters, not empty.
fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ^.:/éèÉ'-]{1,40}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

/// Everything a valid userinfo says, and the document saying it.
#[derive(Debug, Clone)]
struct Valid {
    sub: String,
    idnat: String,
    given: Option<String>,
    family: Option<String>,
    roles: Vec<String>,
    structure_id: Option<String>,
    structure_name: Option<String>,
    sector: Option<String>,
    profession: Option<String>,
    specialty: Option<String>,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        (text(), "[0-9]{10,12}", opt_text(), opt_text()),
        (prop::collection::vec(text(), 0..4), opt_text(), opt_text(), opt_text()),
        (opt_text(), opt_text()),
    )
        .prop_map(
            |((sub, idnat, given, family), (roles, structure_id, structure_name, sector), (profession, specialty))| {
                Valid { sub, idnat, given, family, roles, structure_id, structure_name, sector, profession, specialty }
            },
        )
}

fn document(v: &Valid) -> Value {
    let mut doc = json!({"sub": v.sub, "SubjectNameID": v.idnat, "preferred_username": v.idnat,
        "SubjectRole": v.roles, "otherIds": [{"identifiant": v.idnat, "origine": "RPPS", "qualite": 1}]});
    let mut put = |k: &str, x: &Option<String>| {
        if let Some(x) = x {
            doc[k] = json!(x);
        }
    };
    put("given_name", &v.given);
    put("family_name", &v.family);
    put("SubjectOrganizationID", &v.structure_id);
    put("SubjectOrganization", &v.structure_name);
    put("Secteur_Activite", &v.sector);
    doc["SubjectRefPro"] = json!({"exercices": [
        {"codeProfession": v.profession.clone().unwrap_or_default(),
         "codeSavoirFaire": v.specialty.clone().unwrap_or_default(), "activities": []},
        {"codeProfession": "99", "codeSavoirFaire": "ignored"}]});
    doc
}

/// Whether `userinfo_from_value` reads `v` back or refuses it with a reason true of `v`: the field
/// it names is there, with the type or the value it says; an absent claim is absent.
fn read_or_refused_truly(v: &Value) -> Result<(), TestCaseError> {
    match userinfo_from_value(v, "https://psc") {
        Ok(u) => {
            prop_assert!(v.is_object());
            prop_assert_eq!(Some(u.sub.as_str()), v["sub"].as_str());
            prop_assert_eq!(Some(u.idnat.as_str()), v["SubjectNameID"].as_str());
        }
        Err(ClaimsError::NotAnObject(t)) => {
            prop_assert!(!v.is_object());
            prop_assert_eq!(t, json_type(v));
        }
        Err(ClaimsError::Missing(field)) => {
            prop_assert_eq!(field, "sub");
            prop_assert!(absent(&v["sub"]), "{v}");
        }
        Err(ClaimsError::NoIdnat) => {
            prop_assert!(v["sub"].as_str().is_some_and(|s| !s.is_empty()), "sub is read first: {v}");
            prop_assert!(absent(&v["SubjectNameID"]), "{v}");
        }
        Err(ClaimsError::WrongType { field, expected, found }) => {
            let at = at_path(v, &field);
            prop_assert!(at.is_some_and(|x| json_type(x) == found), "{field} is no {found} in {v}");
            let was_expected = |x: &Value| match expected {
                "a string" => x.is_string(),
                "an object" => x.is_object(),
                "an array" => x.is_array(),
                "an array of strings" => x.is_array() || x.is_string(),
                other => panic!("an expectation the test does not know: {other}"),
            };
            prop_assert!(at.is_some_and(|x| !was_expected(x)), "{field} is {expected} in {v}");
        }
        Err(ClaimsError::BadValue { field, why }) => {
            let s = at_path(v, &field).and_then(Value::as_str).unwrap_or_default();
            prop_assert!(s.len() > 1024 || s.chars().any(char::is_control), "{field} ({why}) in {v}");
        }
        Err(e @ ClaimsError::NotJson(_)) => prop_assert!(false, "a JSON value is JSON: {e}"),
    }
    Ok(())
}

/// The claims of [`document`] a near miss replaces.
const CLAIM_PATHS: &[&str] = &[
    "sub",
    "SubjectNameID",
    "given_name",
    "family_name",
    "SubjectRole",
    "SubjectOrganizationID",
    "SubjectOrganization",
    "Secteur_Activite",
    "SubjectRefPro",
    "SubjectRefPro.exercices",
    "SubjectRefPro.exercices[0]",
    "SubjectRefPro.exercices[0].codeProfession",
    "SubjectRefPro.exercices[0].codeSavoirFaire",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_userinfo(&bytes, "https://psc");
    }

    /// Each refusal of arbitrary JSON says something true of it.
    #[test]
    fn arbitrary_json_is_read_or_refused_with_a_true_reason(v in json_value()) {
        read_or_refused_truly(&v)?;
    }

    /// The same near the valid grammar, where the deep claims are reached: a valid userinfo with
    /// one claim replaced by any JSON value.
    #[test]
    fn a_valid_userinfo_with_one_claim_replaced_is_read_or_refused_truly(
        v in valid(),
        path in prop::sample::select(CLAIM_PATHS),
        replacement in json_value(),
    ) {
        let mut doc = document(&v);
        *at_path_mut(&mut doc, path).expect("a path of the valid document") = replacement;
        read_or_refused_truly(&doc)?;
    }

    #[test]
    fn valid_userinfo_reads_back(v in valid()) {
        let bytes = serde_json::to_vec(&document(&v)).expect("json");
        let u = parse_userinfo(&bytes, "https://psc").expect("valid userinfo");
        prop_assert_eq!(&u.sub, &v.sub);
        prop_assert_eq!(&u.idnat, &v.idnat);
        prop_assert_eq!(&u.given_name, &v.given);
        prop_assert_eq!(&u.family_name, &v.family);
        let p = &u.professional;
        prop_assert_eq!(&p.idnat, &v.idnat);
        prop_assert_eq!(&p.source, "https://psc");
        prop_assert_eq!(&p.roles, &v.roles);
        prop_assert_eq!(&p.structure_id, &v.structure_id);
        prop_assert_eq!(&p.structure_name, &v.structure_name);
        prop_assert_eq!(&p.sector, &v.sector);
        prop_assert_eq!(&p.profession, &v.profession, "first exercise only");
        prop_assert_eq!(&p.specialty, &v.specialty, "empty codeSavoirFaire is no specialty");
    }

    #[test]
    fn a_wrongly_typed_claim_is_named(v in valid(), field in 0usize..6, bad in prop_oneof![
        Just(json!(42)), Just(json!(true)), Just(json!({"a": 1})), Just(json!([1]))]) {
        let mut doc = document(&v);
        let (path, expected): (&str, &str) = match field {
            0 => { doc["sub"] = bad.clone(); ("sub", "a string") }
            1 => { doc["SubjectNameID"] = bad.clone(); ("SubjectNameID", "a string") }
            2 => { doc["SubjectOrganizationID"] = bad.clone(); ("SubjectOrganizationID", "a string") }
            3 => { doc["SubjectRefPro"]["exercices"][0]["codeProfession"] = bad.clone();
                   ("SubjectRefPro.exercices[0].codeProfession", "a string") }
            4 => { doc["Secteur_Activite"] = bad.clone(); ("Secteur_Activite", "a string") }
            _ => { doc["SubjectRole"] = json!([bad.clone()]); ("SubjectRole[0]", "a string") }
        };
        match userinfo_from_value(&doc, "x") {
            Err(ClaimsError::WrongType { field, expected: e, .. }) => {
                prop_assert_eq!(field, path);
                prop_assert_eq!(e, expected);
            }
            other => prop_assert!(false, "{path} = {bad}: {other:?}"),
        }
    }

    #[test]
    fn without_subject_name_id_there_is_no_idnat(v in valid(), absent in prop_oneof![
        Just(None), Just(Some(Value::Null)), Just(Some(json!("")))]) {
        let mut doc = document(&v);
        match absent {
            None => { doc.as_object_mut().expect("object").remove("SubjectNameID"); }
            Some(x) => doc["SubjectNameID"] = x,
        }
        prop_assert_eq!(userinfo_from_value(&doc, "x"), Err(ClaimsError::NoIdnat));
    }
}

#[test]
fn control_characters_in_a_claim_are_refused() {
    let doc = json!({"sub": "s", "SubjectNameID": "810001234567", "family_name": "DURAND\n\u{1b}[31m"});
    assert_eq!(
        userinfo_from_value(&doc, "x").unwrap_err().to_string(),
        "the userinfo's `family_name` is unacceptable: contains control characters"
    );
}
