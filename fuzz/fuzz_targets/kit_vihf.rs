//! The conformance kit's VIHF reader (`vigie_conformance::vihf`): whatever a target sends as a
//! VIHF (SAML 2.0 assertion, reference/dmp-vihf-cps.md §1) is read or refused with a message
//! naming the VIHF, never a panic; its instants are UTC `xs:dateTime` or refused (SAML Core §1.3.3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_conformance::vihf::{attributes, elements, instant};

fuzz_target!(|text: &str| {
    match elements(text) {
        Ok(els) => {
            assert!(!els.is_empty());
            assert!(els.iter().all(|e| !e.path.is_empty()), "every element has its name");
            let _ = attributes(&els);
            for e in &els {
                if let Some(at) = e.attr("IssueInstant") {
                    let _ = instant(at);
                }
            }
        }
        Err(e) => assert!(e.to_string().contains("VIHF"), "{e}"),
    }
    if let Ok(t) = instant(text) {
        assert!(text.trim().ends_with('Z'));
        let _ = t;
    }
});
