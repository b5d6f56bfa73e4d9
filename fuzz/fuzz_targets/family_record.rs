//! Refresh-token family records as the ephemeral store hands them back
//! (`vigie_gateway::oidc::grant::RefreshRecord::decode`: the binary layout 2, the positional
//! JSON of layout 1, the JSON object before it), bytes that cross the network from Redis.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::oidc::grant::RefreshRecord;

fuzz_target!(|bytes: &[u8]| {
    let Ok(record) = RefreshRecord::decode("rt:f", "f", bytes) else { return };
    // Whatever is accepted is a record like any other: written in the current layout, it reads
    // back the same.
    let again = RefreshRecord::decode("rt:f", "f", &record.encode()).expect("a record this version wrote");
    assert_eq!(serde_json::to_value(&again).ok(), serde_json::to_value(&record).ok());
    assert_eq!(again.grant_id, "f");
});
