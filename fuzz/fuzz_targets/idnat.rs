//! `idNat_PS` from client certificates, tokens and HR files (`vigie_core::IdNat::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_core::IdNat;

fuzz_target!(|s: &str| {
    if let Ok(id) = IdNat::parse(s) {
        // Parsed once at the edge: the value is the input, and parsing it again is stable.
        assert_eq!(id.as_str(), s);
        assert_eq!(IdNat::parse(id.as_str()).as_ref(), Ok(&id));
        assert_eq!(id.to_string(), s);
        assert!(s.len() <= 64);
        assert!(s.is_ascii(), "an idNat is ASCII: {s:?}");
        assert_eq!(id.is_rpps(), s.starts_with('8'));
        // The serde form is the same string and goes through the same check.
        let json = serde_json::to_string(&id).expect("an IdNat serializes");
        assert_eq!(serde_json::from_str::<IdNat>(&json).as_ref().ok(), Some(&id));
    }
});
