//! CRLs fetched from distribution points over plain HTTP (`vigie_igc_sante::parse_crl`): anyone on
//! the path can send these bytes, before the signature is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_igc_sante::parse_crl;

fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = parse_crl(data) {
        // What is kept is the DER of the list; reading it again gives the same list.
        let again = parse_crl(crl.der()).expect("the DER kept re-parses");
        assert_eq!(again.der(), crl.der());
        assert_eq!(
            (again.issuer_dn.as_str(), again.this_update, again.next_update),
            (crl.issuer_dn.as_str(), crl.this_update, crl.next_update)
        );
        assert_eq!((again.len(), again.scope), (crl.len(), crl.scope));
        assert!(!crl.der().is_empty());
    } else if let Err(error) = parse_crl(data) {
        assert!(!error.to_string().is_empty(), "every refusal says why");
    }
});
