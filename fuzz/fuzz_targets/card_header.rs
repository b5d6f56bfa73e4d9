//! The client certificate an ingress passes in a header (`ssl-client-cert`, URL-encoded PEM), read
//! by `vigie_gateway::web::tls::parse_header` from a trusted proxy's request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::web::tls::parse_header;

fuzz_target!(|input: (&[u8], &[u8])| {
    let (raw, der) = input;
    // Any bytes: a certificate list or an error, never a panic; nothing made of nothing.
    if let Ok(chain) = parse_header(raw) {
        assert!(chain.iter().all(|c| !c.is_empty()));
    }
    // Whatever DER an ingress wraps in PEM and escapes comes back byte for byte.
    if !der.is_empty() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
        let escaped: String = url::form_urlencoded::byte_serialize(pem.as_bytes()).collect::<String>().replace('+', "%20");
        assert_eq!(parse_header(escaped.as_bytes()).expect("an escaped PEM certificate"), vec![der.to_vec()]);
    }
});
