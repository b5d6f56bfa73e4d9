//! The demo's people: identities, their units and roles, who holds which card, and the
//! establishment their CPE cards name.
pub(super) struct DemoUser {
    pub(super) username: &'static str,
    pub(super) matricule: &'static str,
    pub(super) given: &'static str,
    pub(super) family: &'static str,
    pub(super) birth: &'static str,
    pub(super) metier: &'static str,
    pub(super) grade: &'static str,
    pub(super) idnat: Option<&'static str>,
    pub(super) units: &'static [(&'static str, u8)],
}

pub(super) const USERS: &[DemoUser] = &[
    DemoUser {
        username: "demo.infirmiere",
        matricule: "M000101",
        given: "Camille",
        family: "Martin",
        birth: "1988-03-14",
        metier: "Infirmier",
        grade: "IDE",
        idnat: None,
        units: &[("UF1203", 100)],
    },
    DemoUser {
        username: "demo.medecin",
        matricule: "M000102",
        given: "Paul",
        family: "Durand",
        birth: "1975-11-02",
        metier: "Médecin",
        grade: "PH",
        idnat: Some("810100000011"),
        units: &[("UF1203", 50), ("UF2101", 50)],
    },
    DemoUser {
        username: "demo.interne",
        matricule: "M000103",
        given: "Léa",
        family: "Bernard",
        birth: "1998-07-21",
        metier: "Médecin",
        grade: "Interne",
        idnat: Some("810100000029"),
        units: &[("UF2101", 100)],
    },
    // Professionals of the PSC stand-in (conformance/psc-sandbox), linked by their idNat.
    DemoUser {
        username: "demo.durand",
        matricule: "M000105",
        given: "Marie",
        family: "Durand",
        birth: "1980-02-11",
        metier: "Médecin",
        grade: "PH",
        idnat: Some("810001234567"),
        units: &[("UF2101", 100)],
    },
    DemoUser {
        username: "demo.petit",
        matricule: "M000106",
        given: "Luc",
        family: "Petit",
        birth: "1990-09-30",
        metier: "Masseur-kinésithérapeute",
        grade: "MK",
        idnat: Some("0751234567"),
        units: &[("UF3001", 100)],
    },
    // HR: binds and tracks the cards of agents (role `cards`, page /admin/cards).
    DemoUser {
        username: "demo.rh",
        matricule: "M000104",
        given: "Sophie",
        family: "Lambert",
        birth: "1982-05-09",
        metier: "Gestionnaire RH",
        grade: "Adjoint administratif",
        idnat: None,
        units: &[("UF9001", 100)],
    },
];

/// Administrative roles of demo users.
pub(super) const DEMO_ROLES: &[(&str, vigie_core::roles::Role)] = &[("demo.rh", vigie_core::roles::Role::Cards)];

/// The demo user who holds a CPE, bound to them at seed as HR would.
pub(super) const DEMO_CPE_USER: &str = "demo.rh";
/// The demo establishment's structure id on its CPE cards.
pub(super) const DEMO_STRUCTURE_ID: &str = "1760000018";

/// The demo user who has a card.
pub(super) const DEMO_CARD_USER: &str = "demo.medecin";
