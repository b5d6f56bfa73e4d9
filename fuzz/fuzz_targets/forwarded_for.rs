//! `X-Forwarded-For` lines from a trusted proxy, read by `vigie_gateway::web::http::client_address`:
//! the client's address for audit, network zones and rate limits.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use vigie_gateway::web::http::{address_key, client_address};

/// The proxies of the target: 10.0.0.0/8.
fn trusted(ip: IpAddr) -> bool {
    matches!(ip.to_canonical(), IpAddr::V4(v4) if v4.octets()[0] == 10)
}

fuzz_target!(|input: (Vec<Vec<u8>>, u32, u8)| {
    let (lines, client, proxies) = input;
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    // Any lines: an address, never a panic; the answer is the peer, an address written in the
    // lines, or (no line) the peer.
    let found = client_address(peer, lines.iter().map(Vec::as_slice), trusted);
    let _ = address_key(found);
    // Whatever the client wrote, the address the appending proxy added after it (followed by
    // those of the proxies of ours behind it) is the answer.
    let client = IpAddr::V4(Ipv4Addr::from(client));
    if !trusted(client) {
        let mut header = lines.join(&b","[..]);
        header.extend_from_slice(format!(",{client}").as_bytes());
        for i in 0..proxies % 4 {
            header.extend_from_slice(format!(", 10.0.0.{i}").as_bytes());
        }
        assert_eq!(client_address(peer, [header.as_slice()], trusted), client);
    }
});
