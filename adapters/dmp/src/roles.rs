//! The professional's HL7 `Role` values (`urn:oasis:names:tc:xacml:2.0:subject:role`): the
//! profession (nomenclature TRE_G15) first, then the specialty (TRE_R01) for a médecin.

use serde::{Deserialize, Serialize};

/// One HL7 CE value of the role attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlRole {
    pub code: String,
    pub code_system: String,
    pub code_system_name: String,
    pub display_name: String,
}

/// Code system of professions (TRE_G15, ASIP/ANS), as in the official VIHF examples.
pub const PROFESSIONS_OID: &str = "1.2.250.1.71.1.2.7";
/// Code system of RPPS specialties (TRE_R01, `savoir-faire`), as in the official VIHF examples.
pub const SPECIALTIES_OID: &str = "1.2.250.1.71.4.2.5";

/// TRE_G15 (professions de santé) labels.
const PROFESSIONS: &[(&str, &str)] = &[
    ("10", "Médecin"),
    ("21", "Pharmacien"),
    ("26", "Audioprothésiste"),
    ("28", "Opticien-Lunetier"),
    ("40", "Chirurgien-Dentiste"),
    ("50", "Sage-Femme"),
    ("60", "Infirmier"),
    ("69", "Infirmier psychiatrique"),
    ("70", "Masseur-Kinésithérapeute"),
    ("80", "Pédicure-Podologue"),
    ("81", "Orthoprothésiste"),
    ("82", "Podo-Orthésiste"),
    ("83", "Orthopédiste-Orthésiste"),
    ("84", "Oculariste"),
    ("85", "Epithésiste"),
    ("86", "Technicien de laboratoire médical"),
    ("91", "Orthophoniste"),
    ("92", "Orthoptiste"),
    ("94", "Ergothérapeute"),
    ("95", "Diététicien"),
    ("96", "Psychomotricien"),
    ("98", "Manipulateur ERM"),
];

/// TRE_R01 labels of the specialties seen in public VIHF examples; any other `SM..` code is written
/// with its code as display name (the DMP reads the code; the label is for people).
const SPECIALTIES: &[(&str, &str)] = &[
    ("SM26", "Qualifié en Médecine Générale (SM)"),
    ("SM53", "Spécialiste en Médecine Générale (SM)"),
    ("SM54", "Médecine Générale (SM)"),
];

/// The role values for a profession code (TRE_G15) and a specialty code (TRE_R01), in the order
/// the DMP wants them (reference §1, JDV_J65: profession first, then the specialty, mandatory for
/// médecins). A profession code outside the table keeps its code as display name; no profession
/// gives no role (and [`crate::Sealer::issue`] refuses a VIHF without one). A specialty is written
/// only when it is an RPPS specialty (`SM..`): pharmacists' sections (TRE_G05) have a code system
/// the public sources do not give.
pub fn roles_for(profession: Option<&str>, specialty: Option<&str>) -> Vec<HlRole> {
    let Some(p) = profession.map(str::trim).filter(|p| !p.is_empty()) else {
        return Vec::new();
    };
    let label = PROFESSIONS.iter().find(|(c, _)| *c == p).map_or(p, |(_, l)| l);
    let mut roles = vec![HlRole {
        code: p.to_string(),
        code_system: PROFESSIONS_OID.into(),
        code_system_name: "professions".into(),
        display_name: label.to_string(),
    }];
    if let Some(s) = specialty.map(str::trim).filter(|s| s.starts_with("SM") && s.len() > 2) {
        let label = SPECIALTIES.iter().find(|(c, _)| *c == s).map_or(s, |(_, l)| l);
        roles.push(HlRole {
            code: s.to_string(),
            code_system: SPECIALTIES_OID.into(),
            code_system_name: "specialites RPPS".into(),
            display_name: label.to_string(),
        });
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_general_practitioner_has_profession_then_specialty() {
        let r = roles_for(Some("10"), Some("SM26"));
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].code.as_str(), r[0].display_name.as_str()), ("10", "Médecin"));
        assert_eq!(r[0].code_system, PROFESSIONS_OID);
        assert_eq!((r[1].code.as_str(), r[1].code_system.as_str()), ("SM26", SPECIALTIES_OID));
    }

    #[test]
    fn other_professions() {
        for (code, label) in [
            ("21", "Pharmacien"),
            ("40", "Chirurgien-Dentiste"),
            ("50", "Sage-Femme"),
            ("60", "Infirmier"),
            ("70", "Masseur-Kinésithérapeute"),
            ("80", "Pédicure-Podologue"),
        ] {
            let r = roles_for(Some(code), None);
            assert_eq!(r.len(), 1, "{code}");
            assert_eq!(r[0].display_name, label);
        }
        assert_eq!(roles_for(Some("99"), None)[0].display_name, "99");
        assert!(roles_for(None, Some("SM26")).is_empty());
        assert_eq!(roles_for(Some("21"), Some("G15_21/H")).len(), 1);
    }
}
