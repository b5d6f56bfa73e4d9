//! Pro Santé Connect's userinfo (`vigie_psc::parse_userinfo`): JSON from PSC's userinfo endpoint
//! or the payload of its signed form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_psc::{ClaimsError, parse_userinfo};

fuzz_target!(|data: &[u8]| {
    match parse_userinfo(data, "https://psc.example") {
        Ok(u) => {
            // What is kept is non-empty, printable and bounded, and the idNat is said once.
            let p = &u.professional;
            assert_eq!(u.idnat, p.idnat);
            assert_eq!(p.source, "https://psc.example");
            let kept = [Some(&u.sub), Some(&u.idnat), u.given_name.as_ref(), u.family_name.as_ref()]
                .into_iter()
                .chain([p.profession.as_ref(), p.specialty.as_ref(), p.structure_id.as_ref()])
                .chain([p.structure_name.as_ref(), p.sector.as_ref()])
                .flatten()
                .chain(p.roles.iter());
            for s in kept {
                assert!(!s.is_empty() && s.len() <= 1024, "{s:?}");
                assert!(!s.chars().any(char::is_control), "{s:?}");
            }
            // The same document parses the same way again.
            let again = parse_userinfo(data, "https://psc.example").expect("stable");
            assert_eq!(again, u);
        }
        Err(ClaimsError::NotJson(_)) => assert!(serde_json::from_slice::<serde_json::Value>(data).is_err()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
