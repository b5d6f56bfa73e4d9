//! Redirect URIs of registered clients (`vigie_gateway::config::check_redirect_uri`):
//! RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::config::check_redirect_uri;

fuzz_target!(|uri: &str| {
    if check_redirect_uri(uri).is_err() {
        return;
    }
    // RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
    assert!(!uri.contains('#'), "accepted with a fragment: {uri:?}");
    let u = url::Url::parse(uri).expect("an accepted redirect URI is an absolute URI");
    assert!(u.fragment().is_none());
    match u.scheme() {
        "https" => {}
        // RFC 8252 §7.3: plain http only to the loopback interface.
        "http" => assert!(
            matches!(u.host(), Some(url::Host::Domain("localhost")))
                || matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback()),
            "http accepted off loopback: {uri:?}"
        ),
        // RFC 8252 §7.1: reverse-domain private-use schemes; never script or local content.
        s => {
            assert!(s.contains('.'), "scheme {s:?} accepted: {uri:?}");
            assert!(!matches!(s, "javascript" | "data" | "vbscript" | "file"));
        }
    }
    // What the parser normalised is accepted too: the decision does not depend on spelling.
    assert!(check_redirect_uri(u.as_str()).is_ok(), "{uri:?} accepted but not its normal form {:?}", u.as_str());
});
