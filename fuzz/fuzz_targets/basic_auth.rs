//! `Authorization: Basic` of clients at the token, introspection and revocation endpoints
//! (`vigie_gateway::oidc::client_auth::parse_basic`, RFC 6749 §2.3.1, RFC 7617).
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use vigie_gateway::oidc::client_auth::parse_basic;

fuzz_target!(|input: (&str, &str, &str)| {
    let (header, id, secret) = input;
    let parsed = parse_basic(header);
    if parsed.is_some() {
        let scheme = header.split_once(' ').map(|(s, _)| s).unwrap_or_default();
        assert!(scheme.eq_ignore_ascii_case("basic"));
    }

    // RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by ':' and base64'd;
    // whatever a client does so is read back exactly.
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let value = format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))));
    assert_eq!(parse_basic(&value), Some(Ok((id.to_owned(), secret.to_owned()))), "{value:?}");
});
