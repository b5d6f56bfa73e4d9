//! Reading the holder of a CPS/CPE from its authentication certificate, as the login page will.
mod common;

use common::*;
use vigie_igc_sante::{CardError, CardKind, card_identity, subject_identity};
use x509_parser::prelude::{FromDer, X509Name};

/// Reference `dmp-vihf-cps.md` §3: the private profession and specialty extensions, written out
/// rather than taken from the parser's constants, which they check.
const PROFESSION_EXTENSION: &[u64] = &[1, 2, 250, 1, 71, 1, 2, 7];
const SPECIALTY_EXTENSION: &[u64] = &[1, 2, 250, 1, 71, 4, 2, 5];

fn parse_name(der: &[u8]) -> X509Name<'_> {
    let (rest, name) = X509Name::from_der(der).expect("the fixture is a DER Name");
    assert!(rest.is_empty());
    name
}

#[test]
fn pharmacist_cps_with_rpps_idnat_is_read_from_its_multi_valued_rdn() {
    // Reference §3: SN=PHARMACH0007512+CN=899700075122+GN=CAROLE,title=Pharmacien,C=FR
    let der = name_der(&[
        &[(SN, "PHARMACH0007512"), (CN, "899700075122"), (GN, "CAROLE")],
        &[(TITLE, "Pharmacien")],
        &[(C, "FR")],
    ]);
    let subject = subject_identity(&parse_name(&der)).expect("a CPS subject");
    assert_eq!(subject.kind, CardKind::Cps);
    assert_eq!(subject.idnat.as_ref().map(|i| i.as_str()), Some("899700075122"));
    assert!(subject.idnat.as_ref().is_some_and(|i| i.is_rpps()));
    assert_eq!(subject.cn, "899700075122");
    assert_eq!(subject.surname.as_deref(), Some("PHARMACH0007512"));
    assert_eq!(subject.given_name.as_deref(), Some("CAROLE"));
    assert_eq!(subject.title.as_deref(), Some("Pharmacien"));
    assert_eq!(subject.organization, None);
    assert_eq!(subject.structure_id, None);
}

#[test]
fn cps_certificate_gives_holder_validity_serial_and_private_extensions() {
    let der = certificate(
        &[(SN, "PHARMACH0007512"), (CN, "810001234567"), (GN, "CAROLE"), (TITLE, "Pharmacien"), (C, "FR")],
        &[
            // Legacy TEST CLASSE-1 encodings (reference §3): INTEGER 10, SEQUENCE { UTF8String "SM26" }.
            (PROFESSION_EXTENSION, tlv(0x02, &[10])),
            (SPECIALTY_EXTENSION, tlv(0x30, &tlv(0x0c, b"SM26"))),
        ],
    );
    let card = card_identity(&der).expect("a CPS certificate");
    assert_eq!(card.subject.kind, CardKind::Cps);
    assert_eq!(card.subject.idnat.as_ref().map(|i| i.as_str()), Some("810001234567"));
    assert_eq!(card.subject.surname.as_deref(), Some("PHARMACH0007512"));
    assert_eq!(card.subject.given_name.as_deref(), Some("CAROLE"));
    assert_eq!(card.subject.title.as_deref(), Some("Pharmacien"));
    assert_eq!(card.profession_code.as_deref(), Some("10"));
    assert_eq!(card.specialty_code.as_deref(), Some("SM26"));
    assert_eq!(card.serial_hex, "0123ab");
    assert_eq!(card.not_before, 1_767_225_600); // 2026-01-01T00:00:00Z
    assert_eq!(card.not_after, 1_861_920_000); // 2029-01-01T00:00:00Z
    assert!(card.issuer_dn.contains("CN=810001234567"), "self-signed: issuer = subject, got {}", card.issuer_dn);
}

#[test]
fn private_extensions_as_strings_or_unknown_der() {
    let der = certificate(
        &[(CN, "810001234567")],
        &[(PROFESSION_EXTENSION, tlv(0x13, b"21")), (SPECIALTY_EXTENSION, tlv(0x04, &[0xde, 0xad]))],
    );
    let card = card_identity(&der).expect("a CPS certificate");
    assert_eq!(card.profession_code.as_deref(), Some("21"));
    // An OCTET STRING is none of the assumed encodings: kept as hex of the whole value.
    assert_eq!(card.specialty_code.as_deref(), Some("0402dead"));
}

#[test]
fn legacy_cps_with_a_letter_in_its_idnat_is_a_cps() {
    // Reference §3, legacy GIP-CPS: GN=HONORE+SN=MASSEUR1044+CN=00B7010446,OU=Masseur-Kinésithérapeute,O=TEST,C=FR
    let der = name_der(&[
        &[(GN, "HONORE"), (SN, "MASSEUR1044"), (CN, "00B7010446")],
        &[(OU, "Masseur-Kinésithérapeute")],
        &[(O, "TEST")],
        &[(C, "FR")],
    ]);
    let subject = subject_identity(&parse_name(&der)).expect("a legacy CPS subject");
    assert_eq!(subject.kind, CardKind::Cps, "O/OU but no '/' in the CN: still a CPS");
    assert_eq!(subject.idnat.as_ref().map(|i| i.as_str()), Some("00B7010446"));
    assert_eq!(subject.structure_id.as_deref(), Some("Masseur-Kinésithérapeute"));

    let card = card_identity(&certificate(&[(CN, "00B7010446"), (SN, "MASSEUR1044"), (GN, "HONORE")], &[]))
        .expect("a legacy CPS certificate");
    assert_eq!(card.subject.idnat.as_ref().map(|i| i.as_str()), Some("00B7010446"));
}

#[test]
fn cps_whose_cn_is_not_an_idnat_is_refused_naming_the_cn() {
    let der = certificate(&[(SN, "DUPONT"), (CN, "Jean Dupont"), (GN, "JEAN")], &[]);
    let err = card_identity(&der).expect_err("not an idNat");
    assert!(matches!(&err, CardError::NotIdNat { cn, .. } if cn == "Jean Dupont"), "{err:?}");
    assert!(err.to_string().starts_with("CN 'Jean Dupont' is not an idNat_PS: "), "{err}");
}

#[test]
fn nominative_cpe_names_its_structure_and_holder() {
    let der = certificate(
        &[
            (O, "CH DE TEST"),
            (OU, "1760021832"),
            (TITLE, "Carte de service santé ou social"),
            (PSEUDONYM, "EMPLOYE000000018"),
            (SN, "MARTIN"),
            (GN, "LÉA"),
            (CN, "3760021832/000000018"),
        ],
        &[],
    );
    let card = card_identity(&der).expect("a CPE certificate");
    assert_eq!(card.subject.kind, CardKind::CpeNominative);
    assert_eq!(card.subject.cn, "3760021832/000000018");
    assert_eq!(card.subject.organization.as_deref(), Some("CH DE TEST"));
    assert_eq!(card.subject.structure_id.as_deref(), Some("1760021832"));
    assert_eq!(card.subject.pseudonym.as_deref(), Some("EMPLOYE000000018"));
    assert_eq!(card.subject.title.as_deref(), Some("Carte de service santé ou social"));
    assert_eq!(card.subject.surname.as_deref(), Some("MARTIN"));
    assert_eq!(card.subject.given_name.as_deref(), Some("LÉA"));
    assert_eq!(card.subject.idnat.as_ref().map(|i| i.as_str()), Some("3760021832/000000018"));
}

#[test]
fn non_nominative_cpe_has_no_holder_name() {
    // Reference §3 (PDT-INF-617): non-nominative IGC-Santé CPE have no SN/GN; CN = xxxx/yyyy.
    let der = certificate(
        &[(O, "CH DE TEST"), (OU, "1760021832"), (PSEUDONYM, "EMPLOYE000000018"), (CN, "3760021832/000000018")],
        &[],
    );
    let card = card_identity(&der).expect("a CPE certificate");
    assert_eq!(card.subject.kind, CardKind::CpeNonNominative);
    assert_eq!(card.subject.surname, None);
    assert_eq!(card.subject.given_name, None);
    assert_eq!(card.subject.structure_id.as_deref(), Some("1760021832"));
}

#[test]
fn certificate_without_cn_is_refused() {
    let err = card_identity(&certificate(&[(O, "CH DE TEST"), (C, "FR")], &[])).expect_err("no CN");
    assert_eq!(err, CardError::NoCn);
    assert!(err.to_string().starts_with("the subject has no CN"));
}

#[test]
fn subject_with_two_cns_is_refused() {
    let der = name_der(&[&[(CN, "810001234567")], &[(CN, "810009999999")]]);
    assert_eq!(subject_identity(&parse_name(&der)), Err(CardError::Duplicate("CN")));
}

#[test]
fn garbage_bytes_are_not_a_certificate() {
    for bytes in [&b""[..], b"hello", b"-----BEGIN CERTIFICATE-----", &[0x30, 0x82, 0xff, 0xff, 0x00]] {
        let err = card_identity(bytes).expect_err("garbage");
        assert!(matches!(err, CardError::NotX509(_)), "{err:?}");
        assert!(err.to_string().starts_with("the certificate is not DER X.509: "), "{err}");
    }
}

#[test]
fn trailing_bytes_after_the_certificate_are_refused() {
    let mut der = certificate(&[(CN, "810001234567")], &[]);
    der.push(0);
    assert!(matches!(card_identity(&der), Err(CardError::NotX509(_))));
}
