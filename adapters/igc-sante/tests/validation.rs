//! A card presented at login: which certificates are accepted and why the others are refused,
//! against a generated IGC-Santé-like PKI (real keys, real signatures).
use std::sync::OnceLock;

use proptest::prelude::*;
use vigie_igc_sante::testpki::{CA_CN, CardSpec, KeyAlg, ROOT_CN, TestCard, TestPki};
use vigie_igc_sante::{AfterGrace, CardKind, CardRejection, CardValidator, RevocationCheck, TrustConfig, TrustError};

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate().expect("a test PKI"))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// Anchors = the test root and CA; revocation off (revocation has its own tests in `crl.rs`).
fn config() -> TrustConfig {
    TrustConfig { anchors_pem: vec![pki().anchors_pem()], check_revocation: false, ..TrustConfig::default() }
}

fn validator() -> CardValidator {
    CardValidator::new(config()).expect("a validator")
}

fn issue(spec: CardSpec) -> TestCard {
    pki().issue(&spec).expect("a card")
}

fn refused(chain: &[Vec<u8>]) -> CardRejection {
    validator().validate(chain, now()).expect_err("the card must be refused")
}

#[test]
fn cps_with_rpps_idnat_is_accepted_and_names_its_holder() {
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    let valid = validator().validate(&card.chain_der, now()).expect("a valid CPS");
    let subject = &valid.identity.subject;
    assert_eq!(subject.kind, CardKind::Cps);
    assert_eq!(subject.idnat.as_ref().map(|i| i.as_str()), Some("810001234567"));
    assert_eq!(subject.surname.as_deref(), Some("MEDECIN"));
    assert_eq!(subject.given_name.as_deref(), Some("JEAN"));
    assert_eq!(subject.title.as_deref(), Some("Médecin"));
    assert_eq!(valid.revocation, RevocationCheck::NotChecked);
    assert!(valid.anchor.contains(CA_CN), "the path ends at the first anchor, the CA: {}", valid.anchor);
    assert!(valid.identity.issuer_dn.contains("OU=IGC-SANTE TEST"), "{}", valid.identity.issuer_dn);
}

#[test]
fn cps_with_a_letter_in_its_idnat_is_accepted() {
    let card = issue(CardSpec::cps("00B7010446", "MASSEUR1044", "HONORE", "Masseur-Kinésithérapeute"));
    let valid = validator().validate(&card.chain_der, now()).expect("a valid CPS");
    assert_eq!(valid.identity.subject.idnat.as_ref().map(|i| i.as_str()), Some("00B7010446"));
}

#[test]
fn card_alone_without_its_ca_is_accepted_when_the_ca_is_an_anchor() {
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    validator().validate(&card.chain_der[..1], now()).expect("the CA is configured, the card alone is enough");
}

#[test]
fn nominative_cpe_is_accepted() {
    let card = issue(CardSpec::cpe_nominative("CH DE TEST", "1760021832", "000000018", "AGENT", "MARIE"));
    let valid = validator().validate(&card.chain_der, now()).expect("a valid CPE");
    let subject = &valid.identity.subject;
    assert_eq!(subject.kind, CardKind::CpeNominative);
    assert_eq!(subject.cn, "3760021832/000000018");
    assert_eq!(subject.structure_id.as_deref(), Some("1760021832"));
    assert_eq!(subject.organization.as_deref(), Some("CH DE TEST"));
    assert_eq!(subject.pseudonym.as_deref(), Some("EMPLOYE000000018"));
    assert_eq!(subject.surname.as_deref(), Some("AGENT"));
    assert_eq!(subject.given_name.as_deref(), Some("MARIE"));
}

#[test]
fn non_nominative_cpe_is_accepted_without_names() {
    let card = issue(CardSpec::cpe_non_nominative("CH DE TEST", "1760021832", "000000042"));
    let valid = validator().validate(&card.chain_der, now()).expect("a valid CPE");
    let subject = &valid.identity.subject;
    assert_eq!(subject.kind, CardKind::CpeNonNominative);
    assert_eq!(subject.cn, "3760021832/000000042");
    assert_eq!((subject.surname.as_deref(), subject.given_name.as_deref()), (None, None));
}

#[test]
fn private_profession_extensions_are_read_from_a_validated_card() {
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").profession(10, "SM26"));
    let valid = validator().validate(&card.chain_der, now()).expect("a valid CPS");
    assert_eq!(valid.identity.profession_code.as_deref(), Some("10"));
    assert_eq!(valid.identity.specialty_code.as_deref(), Some("SM26"));
}

#[test]
fn rsa_2048_pki_and_card_are_accepted() {
    let pki = TestPki::generate_with(KeyAlg::Rsa2048).expect("an RSA test PKI");
    let card = pki
        .issue(&CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").key_alg(KeyAlg::Rsa2048))
        .expect("a card");
    let config =
        TrustConfig { anchors_pem: vec![pki.anchors_pem()], check_revocation: false, ..TrustConfig::default() };
    let valid = CardValidator::new(config).expect("a validator").validate(&card.chain_der, now()).expect("valid");
    assert_eq!(valid.identity.subject.kind, CardKind::Cps);
}

#[test]
fn expired_card_is_refused_as_expired() {
    let card =
        issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").valid(now() - 400 * 86_400, now() - 86_400));
    let refusal = refused(&card.chain_der);
    assert_eq!(refusal.code(), "expired");
    assert!(refusal.to_string().starts_with("the card certificate expired on "), "{refusal}");
}

#[test]
fn card_not_yet_valid_is_refused() {
    let card =
        issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").valid(now() + 86_400, now() + 400 * 86_400));
    let refusal = refused(&card.chain_der);
    assert_eq!(refusal.code(), "not_yet_valid");
    assert!(refusal.to_string().contains("is not valid before"), "{refusal}");
}

#[test]
fn card_validity_bounds_are_inclusive() {
    // RFC 5280 §4.1.2.5: valid from notBefore to notAfter, both included.
    let (from, to) = (now() - 10, now() + 10);
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").valid(from, to));
    let validator = validator();
    validator.validate(&card.chain_der, from).expect("valid at notBefore");
    validator.validate(&card.chain_der, to).expect("valid at notAfter");
    assert_eq!(validator.validate(&card.chain_der, to + 1).expect_err("expired").code(), "expired");
    assert_eq!(validator.validate(&card.chain_der, from - 1).expect_err("early").code(), "not_yet_valid");
}

#[test]
fn card_from_an_impostor_ca_with_the_trusted_name_is_refused() {
    let card = pki().untrusted_ca.issue(&CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin")).expect("a card");
    let refusal = refused(&card.chain_der);
    assert_eq!(refusal.code(), "untrusted_issuer");
    assert!(refusal.to_string().contains("signature does not verify"), "{refusal}");
}

#[test]
fn card_from_an_untrusted_ca_sent_with_its_root_is_refused() {
    let card = pki().untrusted_ca.issue(&CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin")).expect("a card");
    let mut chain = card.chain_der.clone();
    chain.push(pki().untrusted_root.cert_der.clone());
    assert_eq!(refused(&chain).code(), "untrusted_issuer");
}

#[test]
fn chain_through_a_sent_intermediate_reaches_a_configured_root() {
    let root_only = TrustConfig {
        anchors_pem: vec![pki().root.cert_pem.clone()],
        check_revocation: false,
        ..TrustConfig::default()
    };
    let validator = CardValidator::new(root_only).expect("a validator");
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    let valid = validator.validate(&card.chain_der, now()).expect("leaf + CA sent, root configured");
    assert!(valid.anchor.contains(ROOT_CN), "{}", valid.anchor);
    let alone = validator.validate(&card.chain_der[..1], now()).expect_err("the CA is missing");
    assert_eq!(alone.code(), "untrusted_issuer");
    // The impostor CA, sent as the intermediate, does not verify under the root.
    let impostor =
        pki().untrusted_ca.issue(&CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin")).expect("a card");
    assert_eq!(validator.validate(&impostor.chain_der, now()).expect_err("impostor").code(), "untrusted_issuer");
}

#[test]
fn card_with_a_tampered_signature_is_refused() {
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    let mut der = card.cert_der.clone();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(refused(&[der]).code(), "untrusted_issuer");
}

#[test]
fn card_re_encoded_outside_its_signature_is_refused() {
    // The signature covers only the TBSCertificate: the bytes around it must be the one DER encoding,
    // or one card could be presented as many byte strings (and many fingerprints).
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    let der = &card.cert_der;
    validator().validate(std::slice::from_ref(der), now()).expect("the original is accepted");
    // The outer signatureAlgorithm's OID tag 06 written as 07 (found by the corrupted_cards property).
    let sig_len = usize::from(der[der.len() - card_signature_len(der) + 1]);
    let bit_string = der.len() - sig_len - 2;
    let alg = bit_string - 12; // SEQUENCE { OID ecdsa-with-SHA256 } is 12 bytes
    assert_eq!(&der[alg..alg + 3], &[0x30, 0x0a, 0x06]);
    let mut oid_tag = der.clone();
    oid_tag[alg + 2] = 0x07;
    assert_eq!(refused(&[oid_tag]).code(), "malformed");
    // The outer SEQUENCE tag 30 written as 50.
    let mut outer_tag = der.clone();
    outer_tag[0] = 0x50;
    assert_eq!(refused(&[outer_tag]).code(), "malformed");
    // The signature's length in a non-minimal long form, outer length fixed up.
    let mut long_len = der[..bit_string].to_vec();
    long_len.extend([0x03, 0x81, der[bit_string + 1]]);
    long_len.extend_from_slice(&der[bit_string + 2..]);
    let outer = u16::from_be_bytes([long_len[2], long_len[3]]) + 1;
    long_len[2..4].copy_from_slice(&outer.to_be_bytes());
    assert_eq!(refused(&[long_len]).code(), "malformed");
}

/// Length of the trailing signature BIT STRING TLV of a P-256 certificate (short-form length).
fn card_signature_len(der: &[u8]) -> usize {
    (0..der.len())
        .rev()
        .find(|&i| der[i] == 0x03 && usize::from(der[i + 1]) + i + 2 == der.len())
        .map_or(0, |i| der.len() - i)
}

#[test]
fn card_without_client_auth_eku_is_refused_unless_configured() {
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").without_client_auth_eku());
    let refusal = refused(&card.chain_der);
    assert_eq!(refusal.code(), "no_client_auth_eku");
    assert!(refusal.to_string().contains("1.3.6.1.5.5.7.3.2"), "{refusal}");
    let lenient = CardValidator::new(TrustConfig { require_client_auth_eku: false, ..config() }).expect("a validator");
    lenient.validate(&card.chain_der, now()).expect("EKU not required");
}

#[test]
fn card_without_digital_signature_usage_is_refused() {
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").without_digital_signature());
    let refusal = refused(&card.chain_der);
    assert_eq!(refusal.code(), "bad_key_usage");
    assert!(refusal.to_string().contains("digitalSignature"), "{refusal}");
}

#[test]
fn ca_certificate_presented_as_a_card_is_refused() {
    // Its CN is not an idNat_PS, so it names no card holder.
    let refusal = refused(&[pki().ca.cert_der.clone()]);
    assert_eq!(refusal.code(), "malformed");
}

#[test]
fn garbage_is_refused_as_malformed_with_a_reason() {
    let empty: [Vec<u8>; 0] = [];
    assert_eq!(refused(&empty), CardRejection::Malformed("no certificate was presented".to_owned()));
    let refusal = refused(&[b"not a certificate".to_vec()]);
    assert_eq!(refusal.code(), "malformed");
    assert!(refusal.to_string().contains("is not DER X.509"), "{refusal}");
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    let mut trailing = card.cert_der.clone();
    trailing.push(0);
    assert_eq!(refused(&[trailing]), CardRejection::Malformed("1 bytes follow the card certificate".to_owned()));
    let refusal = refused(&[card.cert_der.clone(), b"junk".to_vec()]);
    assert!(refusal.to_string().contains("chain certificate #1 is not DER X.509"), "{refusal}");
}

#[test]
fn config_reads_with_documented_defaults_and_refuses_unknown_keys() {
    let config: TrustConfig = toml::from_str("anchors = [\"/etc/vigie/igc-sante.pem\"]").expect("a config");
    assert_eq!(config.grace_secs, 86_400);
    assert_eq!(config.refresh_secs, 3_600);
    assert_eq!(config.fetch_timeout_ms, 2_000);
    assert_eq!(config.after_grace, AfterGrace::Refuse);
    assert!(config.require_client_auth_eku && config.check_revocation);
    assert_eq!(config.crl_cache_dir, None);
    let accept: TrustConfig =
        toml::from_str("after_grace = \"accept\"\ncrl_urls = [\"http://crl.example/a.crl\"]").expect("ok");
    assert_eq!(accept.after_grace, AfterGrace::Accept);
    let unknown = toml::from_str::<TrustConfig>("grace = 5").expect_err("unknown key");
    assert!(unknown.to_string().contains("unknown field `grace`"), "{unknown}");
    let bad = toml::from_str::<TrustConfig>("after_grace = \"maybe\"").expect_err("bad value");
    assert!(bad.to_string().contains("refuse"), "{bad}");
}

#[test]
fn validator_refuses_to_start_without_usable_anchors() {
    assert!(matches!(CardValidator::new(TrustConfig::default()), Err(TrustError::NoAnchors)));
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    let leaf_as_anchor = TrustConfig { anchors_pem: vec![card.cert_pem.clone()], ..TrustConfig::default() };
    let error = CardValidator::new(leaf_as_anchor).expect_err("a card is not a CA").to_string();
    assert!(error.contains("anchors_pem[0] #1") && error.contains("not a CA"), "{error}");
    let missing = TrustConfig { anchors: vec!["/nonexistent/anchors.pem".into()], ..TrustConfig::default() };
    let error = CardValidator::new(missing).expect_err("no such file").to_string();
    assert!(error.contains("/nonexistent/anchors.pem"), "{error}");
    let bad_url = TrustConfig { crl_urls: vec!["ldap://annuaire-igc.esante.gouv.fr/x".into()], ..config() };
    let error = CardValidator::new(bad_url).expect_err("ldap is not fetched").to_string();
    assert!(error.contains("scheme 'ldap' is not supported"), "{error}");
}

#[test]
fn anchors_load_from_a_pem_file() {
    let path = std::env::temp_dir().join(format!("vigie-igc-anchors-{}.pem", std::process::id()));
    std::fs::write(&path, pki().anchors_pem()).expect("write anchors");
    let config = TrustConfig { anchors: vec![path.clone()], check_revocation: false, ..TrustConfig::default() };
    let validator = CardValidator::new(config).expect("a validator");
    assert_eq!(validator.anchors().len(), 2);
    let card = issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin"));
    validator.validate(&card.chain_der, now()).expect("valid");
    let _ = std::fs::remove_file(path);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_chains_are_refused_without_panic(chain in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..3)) {
        let refusal = validator().validate(&chain, now()).expect_err("random bytes are no card");
        prop_assert!(["malformed", "untrusted_issuer"].contains(&refusal.code()), "{}", refusal);
    }

    #[test]
    fn corrupted_cards_are_refused_or_identical(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        static CARD: OnceLock<TestCard> = OnceLock::new();
        let card = CARD.get_or_init(|| issue(CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin")));
        let mut der = card.cert_der.clone();
        let i = at.index(der.len());
        der[i] = byte;
        // A changed byte breaks the encoding or the signature: only the unchanged certificate passes.
        match validator().validate(&[der.clone()], now()) {
            Ok(_) => prop_assert_eq!(&der, &card.cert_der),
            Err(refusal) => prop_assert!(
                ["malformed", "untrusted_issuer"].contains(&refusal.code()),
                "byte {} = {:#x}: {}", i, byte, refusal
            ),
        }
    }
}
