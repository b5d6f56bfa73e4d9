//! CPS/CPE authentication certificates presented by clients (`vigie_igc_sante::card_identity`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_igc_sante::{CardKind, card_identity};

fuzz_target!(|der: &[u8]| {
    if let Ok(card) = card_identity(der) {
        // The kind rule of `subject_identity`: a CPS is named by its idNat, a CPE by `structure/number`.
        match card.subject.kind {
            CardKind::Cps => {
                assert_eq!(card.subject.idnat.as_ref().map(|i| i.as_str()), Some(card.subject.cn.as_str()))
            }
            CardKind::CpeNominative | CardKind::CpeNonNominative => {
                assert!(card.subject.cn.contains('/'));
                assert!(card.subject.organization.is_some() || card.subject.structure_id.is_some());
            }
        }
        let named = card.subject.surname.is_some() || card.subject.given_name.is_some();
        assert_eq!(card.subject.kind == CardKind::CpeNonNominative, !named && card.subject.kind != CardKind::Cps);
        assert!(card.serial_hex.len().is_multiple_of(2) && card.serial_hex.bytes().all(|b| b.is_ascii_hexdigit()));
        serde_json::to_string(&card).expect("a card identity serializes");
    }
});
