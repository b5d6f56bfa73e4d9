//! SCIM filters and PATCH paths from provisioning clients (`scim::filter::parse`, `parse_path`,
//! RFC 7644 §3.4.2.2, §3.5.2), and their evaluation on a resource.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::scim::filter::{MAX_FILTER_BYTES, matches, parse, parse_path};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fuzz_target!(|s: &str| {
    match parse(s) {
        Ok(f) => {
            // The canonical text parses back to the same filter: what is evaluated is what was
            // written, whatever its spacing, keyword case or redundant parentheses. (Numbers may
            // print longer, `1E9` as `1000000000.0`: past the length limit there is no re-parse.)
            let text = f.to_string();
            if text.len() <= MAX_FILTER_BYTES {
                assert_eq!(parse(&text).as_ref(), Ok(&f), "{text}");
            }
            let user = serde_json::json!({
                "schemas": [USER], "id": "a", "userName": "jdupont", "active": true,
                "name": {"familyName": "Dupont"}, "emails": [{"value": "j@x", "type": "work"}],
            });
            // Evaluation never panics, and `not` is the negation.
            let m = matches(&f, &user, USER);
            assert_eq!(matches(&vigie_gateway::scim::filter::Filter::Not(Box::new(f)), &user, USER), !m);
        }
        // A refusal says where, within the input.
        Err(e) => assert!(e.at <= s.chars().count(), "{e} for {s:?}"),
    }
    if let Err(e) = parse_path(s) {
        assert!(e.at <= s.chars().count(), "{e} for {s:?}");
    }
});
