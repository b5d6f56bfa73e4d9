//! The parser and the validator against card certificates, CAs and a CRL made by another tool:
//! `openssl req` / `openssl ca` from `fixtures/igc-sante.cnf` (remade by `fixtures/make.sh`, checked
//! in). Every expected value below is a literal written in that config or script, never something
//! the crate computes: a wrong OID, a misread RDN or serial in the parser fails here even when the
//! crate's own test PKI (`testpki`) agrees with it.
#[path = "common/crl_server.rs"]
#[allow(dead_code)] // these tests only serve
mod crl_server;

use crl_server::CrlServer;
use vigie_core::IdNat;
use vigie_igc_sante::{
    CardIdentity, CardKind, CardRejection, CardSubject, CardValidator, CrlScope, RevocationCheck, TrustConfig,
    card_identity, parse_crl,
};

const ROOT: &str = include_str!("fixtures/root.pem");
const CA: &str = include_str!("fixtures/ca.pem");
const CPS_MEDECIN: &str = include_str!("fixtures/cps-medecin.pem");
const CPS_PHARMACIEN: &str = include_str!("fixtures/cps-pharmacien.pem");
const CPE_NOMINATIVE: &str = include_str!("fixtures/cpe-nominative.pem");
const CPE_NON_NOMINATIVE: &str = include_str!("fixtures/cpe-non-nominative.pem");
const CA_CRL: &str = include_str!("fixtures/ca.crl.pem");

/// `[dn_ca]` of the config, as the parser writes a DN (certificate order).
const CA_DN: &str =
    "C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE TEST, CN=TEST AC IGC-SANTE ELEMENTAIRE PERSONNES";
/// `-startdate 20260101000000Z -enddate 20290101000000Z` of every card.
const CARD_NOT_BEFORE: i64 = 1_767_225_600;
const CARD_NOT_AFTER: i64 = 1_861_920_000;
/// `-crl_lastupdate 20260601000000Z -crl_nextupdate 20260608000000Z`; the revocation date 2026-03-01.
const CRL_THIS_UPDATE: i64 = 1_780_272_000;
const CRL_NEXT_UPDATE: i64 = 1_780_876_800;
const REVOKED_AT: i64 = 1_772_323_200;
/// 2026-06-02: within the cards' validity and the CRL's.
const AT: i64 = 1_780_358_400;

fn der(pem: &str) -> Vec<u8> {
    let (rest, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM fixture");
    assert!(rest.iter().all(u8::is_ascii_whitespace), "one PEM block per fixture");
    pem.contents
}

fn idnat(s: &str) -> Option<IdNat> {
    Some(IdNat::parse(s).expect("the fixture's idNat is well formed"))
}

/// A card of the fixture CA with every card's dates.
fn card(subject: CardSubject, serial_hex: &str, profession: Option<&str>, specialty: Option<&str>) -> CardIdentity {
    CardIdentity {
        subject,
        profession_code: profession.map(str::to_owned),
        specialty_code: specialty.map(str::to_owned),
        issuer_dn: CA_DN.into(),
        serial_hex: serial_hex.into(),
        not_before: CARD_NOT_BEFORE,
        not_after: CARD_NOT_AFTER,
    }
}

fn cps_medecin() -> CardIdentity {
    card(
        CardSubject {
            kind: CardKind::Cps,
            idnat: idnat("810100145782"),
            cn: "810100145782".into(),
            surname: Some("MEDECIN0014578".into()),
            given_name: Some("PAUL".into()),
            title: Some("Médecin".into()),
            organization: None,
            structure_id: None,
            pseudonym: None,
        },
        "1a2b3c4d5e6f0701",
        Some("10"),
        Some("SM26"),
    )
}

#[test]
fn openssl_cps_of_a_medecin_gives_its_holder_profession_10_and_specialty_sm26() {
    // 1.2.250.1.71.1.2.7 = ASN1:INTEGER:10, 1.2.250.1.71.4.2.5 = ASN1:SEQUENCE { UTF8String:SM26 }.
    assert_eq!(card_identity(&der(CPS_MEDECIN)), Ok(cps_medecin()));
}

#[test]
fn openssl_cps_of_the_reference_pharmacien_gives_profession_21_and_a_serial_with_its_leading_zero() {
    // The subject of reference §3, SN=PHARMACH0007512+CN=899700075122+GN=CAROLE,title=Pharmacien,C=FR;
    // profession 1.2.250.1.71.1.2.7 = ASN1:UTF8String:21, no specialty; serial 8D00000000000002.
    let expected = card(
        CardSubject {
            kind: CardKind::Cps,
            idnat: idnat("899700075122"),
            cn: "899700075122".into(),
            surname: Some("PHARMACH0007512".into()),
            given_name: Some("CAROLE".into()),
            title: Some("Pharmacien".into()),
            organization: None,
            structure_id: None,
            pseudonym: None,
        },
        "008d00000000000002",
        Some("21"),
        None,
    );
    assert_eq!(card_identity(&der(CPS_PHARMACIEN)), Ok(expected));
}

#[test]
fn openssl_nominative_cpe_gives_its_structure_pseudonym_and_holder() {
    let expected = card(
        CardSubject {
            kind: CardKind::CpeNominative,
            idnat: idnat("3760021832/000000018"),
            cn: "3760021832/000000018".into(),
            surname: Some("MARTIN".into()),
            given_name: Some("LÉA".into()),
            title: Some("Carte de service santé ou social".into()),
            organization: Some("CH DE TEST".into()),
            structure_id: Some("1760021832".into()),
            pseudonym: Some("EMPLOYE000000018".into()),
        },
        "1a2b3c4d5e6f0703",
        None,
        None,
    );
    assert_eq!(card_identity(&der(CPE_NOMINATIVE)), Ok(expected));
}

#[test]
fn openssl_non_nominative_cpe_gives_its_structure_and_no_holder_name() {
    let expected = card(
        CardSubject {
            kind: CardKind::CpeNonNominative,
            idnat: idnat("3760021832/000000042"),
            cn: "3760021832/000000042".into(),
            surname: None,
            given_name: None,
            title: Some("Carte de service santé ou social".into()),
            organization: Some("CH DE TEST".into()),
            structure_id: Some("1760021832".into()),
            pseudonym: Some("EMPLOYE000000042".into()),
        },
        "1a2b3c4d5e6f0704",
        None,
        None,
    );
    assert_eq!(card_identity(&der(CPE_NON_NOMINATIVE)), Ok(expected));
}

#[test]
fn openssl_crl_lists_the_pharmacien_card_with_its_date_and_reason() {
    let crl = parse_crl(CA_CRL.as_bytes()).expect("openssl's CRL parses");
    assert_eq!(crl.issuer_dn, CA_DN);
    assert_eq!((crl.this_update, crl.next_update, crl.scope), (CRL_THIS_UPDATE, CRL_NEXT_UPDATE, CrlScope::All));
    assert_eq!(crl.len(), 1);
    let entry = crl.revocation(&[0x00, 0x8d, 0, 0, 0, 0, 0, 0, 0x02]).expect("the pharmacien's serial");
    assert_eq!((entry.revoked_at, entry.reason.as_deref()), (REVOKED_AT, Some("KeyCompromise")));
    assert_eq!(crl.revocation(&[0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x07, 0x01]), None);
}

#[tokio::test]
async fn openssl_chains_are_accepted_by_the_validator_and_the_revoked_card_refused() {
    let server = CrlServer::start().await;
    server.serve("/ACI-EL-PP-TEST.crl", CA_CRL.as_bytes().to_vec());
    let config = TrustConfig {
        anchors_pem: vec![format!("{ROOT}{CA}")],
        crl_urls: vec![server.url("/ACI-EL-PP-TEST.crl")],
        ..TrustConfig::default()
    };
    let validator = CardValidator::new(config).expect("openssl's CAs are usable anchors");
    // Before any validation: validating learns the cards' real distribution point, which a later
    // refresh would try to reach.
    let refreshed = validator.refresh(&reqwest::Client::new()).await;
    assert_eq!(refreshed, vec![(server.url("/ACI-EL-PP-TEST.crl"), Ok(()))]);

    let valid = validator.validate(&[der(CPS_MEDECIN), der(CA)], AT).expect("the médecin's card is valid");
    assert_eq!(valid.identity, cps_medecin());
    assert_eq!(valid.revocation, RevocationCheck::Fresh { next_update: CRL_NEXT_UPDATE });
    assert_eq!(valid.anchor, CA_DN);
    let cpe = validator.validate(&[der(CPE_NON_NOMINATIVE)], AT).expect("the CPE alone: its CA is an anchor");
    assert_eq!(cpe.identity.subject.kind, CardKind::CpeNonNominative);

    let refusal = validator.validate(&[der(CPS_PHARMACIEN), der(CA)], AT).expect_err("revoked");
    assert_eq!(
        refusal,
        CardRejection::Revoked {
            certificate: "the card certificate".into(),
            serial_hex: "008d00000000000002".into(),
            revoked_at: REVOKED_AT,
            reason: Some("KeyCompromise".into()),
        }
    );
    server.stop().await;
}
