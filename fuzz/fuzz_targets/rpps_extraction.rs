//! The RPPS personne-activité extraction (`vigie rpps load`, read line by line by
//! `vigie_gateway::derivation::extraction`): whatever the bytes, every line read or refused names
//! its line, and what is read keeps the file's idNat rule and normalised names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::derivation::config::OptionalColumns;
use vigie_gateway::derivation::extraction::{Extraction, normalise};

fuzz_target!(|input: &[u8]| {
    let lines = 1 + input.iter().filter(|b| **b == b'\n').count() as u64;
    let x = match Extraction::open(input, &OptionalColumns::default(), "2026-12-01") {
        Ok(x) => x,
        Err(e) => {
            assert_eq!(e.line, 1, "{e}");
            return;
        }
    };
    let mut previous = 1;
    for item in x {
        match item {
            Ok(e) => {
                assert!(e.line_no > previous && e.line_no <= lines, "line {} after {previous}", e.line_no);
                previous = e.line_no;
                assert!(!e.rpps.is_empty() && e.idnat.ends_with(&e.rpps), "{} / {}", e.idnat, e.rpps);
                assert!(!e.family_name.is_empty());
                assert_eq!(normalise(&e.family_norm), e.family_norm);
                assert_eq!(normalise(&e.given_norm), e.given_norm);
                for d in [&e.birth_date, &e.activity_start, &e.activity_end].into_iter().flatten() {
                    assert_eq!(d.len(), 10, "{d}");
                }
            }
            Err(e) => {
                assert!(e.line > previous && e.line <= lines, "error on line {} of {lines}: {e}", e.line);
                // The load stops at the first bad line.
                return;
            }
        }
    }
});
