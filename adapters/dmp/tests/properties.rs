//! Property tests of the parsers of outside values (the INS-NIR, content types) and the config.
use proptest::prelude::*;
use vigie_dmp::{InsError, InsNir, PrimaryAuthPlacement, SignatureAlg, VihfSettings, nir_key, parse_media_type};

fn nir13() -> impl Strategy<Value = String> {
    // sex, year, month, department (incl. 2A/2B), commune, order.
    (
        "[1278]",
        "[0-9]{2}",
        "(0[1-9]|1[0-2])",
        prop_oneof!["[0-9]{2}", Just("2A".to_string()), Just("2B".to_string())],
        "[0-9]{3}",
        "[0-9]{3}",
    )
        .prop_map(|(s, y, m, d, c, o)| format!("{s}{y}{m}{d}{c}{o}"))
}

proptest! {
    #[test]
    fn a_nir_with_its_key_is_an_ins_and_any_other_key_is_refused(nir in nir13(), other in 0u64..100) {
        let key = nir_key(&nir).unwrap();
        prop_assert!((1..=97).contains(&key));
        let ins = format!("{nir}{key:02}");
        let parsed = InsNir::parse(&ins).unwrap();
        prop_assert_eq!(parsed.as_str(), ins.as_str());
        if other != key {
            let bad = format!("{nir}{other:02}");
            prop_assert_eq!(InsNir::parse(&bad), Err(InsError::Key { expected: key, found: other }));
        }
    }

    /// The key is 97 − (NIR mod 97) with 2A → 19, 2B → 18 (computed here on the integer).
    #[test]
    fn the_corsican_key_reads_2a_as_19_and_2b_as_18(nir in nir13()) {
        let n: u64 = nir.replace("2A", "19").replace("2B", "18").parse().unwrap();
        prop_assert_eq!(nir_key(&nir), Some(97 - n % 97));
    }

    #[test]
    fn a_changed_digit_is_caught(nir in nir13(), at in 0usize..13, d in 0u8..10) {
        let key = nir_key(&nir).unwrap();
        let mut b = nir.clone().into_bytes();
        prop_assume!(b[at].is_ascii_digit() && b[at] != b'0' + d && !(at == 5 && b[6].is_ascii_alphabetic()));
        b[at] = b'0' + d;
        let changed = String::from_utf8(b).unwrap();
        // mod 97 detects every single-digit change (97 is prime and > 10); a changed first digit
        // that no NIR starts with is refused for that first.
        let ins = format!("{changed}{key:02}");
        let expected = if at == 0 && !b"123478".contains(&(b'0' + d)) {
            InsError::Sex(char::from(b'0' + d))
        } else {
            let n: u64 = changed.replace("2A", "19").replace("2B", "18").parse().unwrap();
            InsError::Key { expected: 97 - n % 97, found: key }
        };
        prop_assert_eq!(InsNir::parse(&ins), Err(expected));
    }

    #[test]
    fn any_string_is_parsed_or_refused_without_panic(s in "\\PC{0,20}") {
        let _ = InsNir::parse(&s);
        let _ = nir_key(&s);
        let _ = parse_media_type(&s);
    }

    /// Parameters written as quoted strings come back as they were.
    #[test]
    fn quoted_parameters_round_trip(v in "[ -~]{0,30}", name in "[a-z][a-z0-9-]{0,10}") {
        let q = v.replace('\\', "\\\\").replace('"', "\\\"");
        let (m, p) = parse_media_type(&format!("application/soap+xml; {name}=\"{q}\"; x=y")).unwrap();
        prop_assert_eq!(m, "application/soap+xml");
        prop_assert_eq!(p, vec![(name, v), ("x".to_string(), "y".to_string())]);
    }
}

#[test]
fn the_settings_read_from_toml_with_defaults_and_refuse_unknown_keys() {
    let s: VihfSettings = toml::from_str(
        r#"
        structure_id = "10B0127189"
        lps_id = "01.01.01.01"
        lps_homologation = "VIGIE-2026-01"
        signature_alg = "rsa_sha1"
        primary_auth_placement = { attribute = "Authentification_Primaire" }
        [authn_context]
        cps = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
        "#,
    )
    .unwrap();
    s.validate().unwrap();
    assert_eq!(s.signature_alg, SignatureAlg::RsaSha1);
    assert_eq!(s.primary_auth_placement, PrimaryAuthPlacement::Attribute("Authentification_Primaire".into()));
    assert_eq!(s.authn_context.len(), 1, "a configured map replaces the default one");
    assert_eq!((s.version.as_str(), s.validity_secs, s.auth_mode.as_str()), ("3.0", 30, "INDIRECTE_RENFORCEE"));
    let s: VihfSettings = toml::from_str("primary_auth_placement = \"omit\"").unwrap();
    assert_eq!(s.primary_auth_placement, PrimaryAuthPlacement::Omit);
    let e = s.validate().unwrap_err();
    assert_eq!(e.to_string(), "dmp.vihf.structure_id: must be set");
    let e = toml::from_str::<VihfSettings>("structure_idd = \"x\"").unwrap_err();
    assert!(e.to_string().contains("unknown field `structure_idd`"), "{e}");
    let s = VihfSettings {
        structure_id: "x".into(),
        lps_id: "x".into(),
        lps_homologation: "x".into(),
        validity_secs: 0,
        ..VihfSettings::default()
    };
    assert!(s.validate().unwrap_err().to_string().contains("validity_secs"));
    let s = VihfSettings { lps_nom: "Vigie\u{7}".into(), validity_secs: 30, ..s };
    let e = s.validate().unwrap_err().to_string();
    assert!(e.starts_with("dmp.vihf.lps_nom: lps_nom contains U+0007 at character 5"), "{e}");
}
