//! `application/x-www-form-urlencoded` bodies and query strings of every endpoint
//! (`vigie_gateway::web::http::parse_params`): RFC 6749 §3.1, no parameter twice.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use vigie_gateway::web::http::parse_params;

fuzz_target!(|raw: &[u8]| {
    let decoded: Vec<(String, String)> =
        url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut keys = HashSet::new();
    let repeated = !decoded.iter().all(|(k, _)| keys.insert(k));
    match parse_params(raw) {
        Ok(params) => {
            assert!(!repeated, "a repeated parameter was accepted");
            let mut keys = HashSet::new();
            for (k, _) in &params.0 {
                assert!(keys.insert(k), "key {k:?} appears twice");
            }
            // Nothing dropped or altered: every pair is what the form decoder saw.
            assert_eq!(params.0, decoded);
            for (k, v) in &params.0 {
                // Empty values count as absent; others are found under their key.
                let expected = (!v.is_empty()).then_some(v.as_str());
                assert_eq!(params.get(k), expected);
            }
        }
        Err(e) => assert!(repeated, "refused without a repeated parameter: {e}"),
    }
});
