//! A page of the Annuaire Santé FHIR API (`vigie rpps lookup`/`propose`, read by
//! `vigie_gateway::derivation::bundle::read`): whatever the bytes, refused or read into
//! professionals that each have an idNat and, when active, an exercise name; an extraction row
//! made of one keeps normalised names and the deleted ones are never "exercising".
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::derivation::bundle::{outcome, read};
use vigie_gateway::derivation::extraction::normalise;

fuzz_target!(|input: &[u8]| {
    if let Some(d) = outcome(input) {
        assert!(d.chars().count() <= 200 && !d.chars().any(char::is_control), "{d:?}");
    }
    let Ok(page) = read(input) else { return };
    for p in &page.professionals {
        assert!(!p.idnat.is_empty() && p.idnat.chars().all(|c| c.is_ascii_alphanumeric()), "{:?}", p.idnat);
        assert!(!p.active || !p.family_name.is_empty());
        let e = p.entry();
        assert_eq!(e.idnat, p.idnat);
        assert_eq!(normalise(&e.family_norm), e.family_norm);
        assert_eq!(e.ended, !p.exercising());
        assert!(p.active || e.ended);
    }
});
