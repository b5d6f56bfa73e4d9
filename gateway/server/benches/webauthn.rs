//! WebAuthn assertions verified per second: the work of `POST /login/fido2` minus the store and
//! the directory — parsing the browser's JSON, finding the user handle, and webauthn-rs checking
//! client data, RP ID hash, flags, ES256 signature and counter (WebAuthn §7.2).
//!
//! `cargo bench -p vigie-gateway --bench webauthn` (release). Assertions come from a software
//! authenticator (P-256 in aws-lc-rs, authenticator data built byte by byte), made before the
//! clock starts; one thread, then one per core. `VIGIE_BENCH_ASSERTIONS` sets how many (20,000).
use std::time::Instant;

use serde_json::Value;
use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, PublicKeyCredential, Url, Uuid, WebauthnBuilder};

#[path = "../tests/fido2/softkey.rs"]
mod softkey;

fn main() {
    let n: usize = std::env::var("VIGIE_BENCH_ASSERTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let origin = Url::parse("https://localhost:8443").expect("URL");
    let webauthn = WebauthnBuilder::new("localhost", &origin).and_then(|b| b.build()).expect("relying party");
    let mut key = softkey::SoftKey::new("localhost", origin.as_str().trim_end_matches('/'), softkey::VIRTUAL_AAGUID);
    let (ccr, reg) = webauthn.start_passkey_registration(Uuid::new_v4(), "bench", "Bench", None).expect("options");
    let options = serde_json::to_value(&ccr).expect("JSON");
    let credential = serde_json::from_value(key.register(&options)).expect("registration JSON");
    let passkey: Passkey = webauthn.finish_passkey_registration(&credential, &reg).expect("registration");

    eprintln!("preparing {n} assertions…");
    let work: Vec<(DiscoverableAuthentication, String)> = (0..n)
        .map(|_| {
            let (rcr, state) = webauthn.start_discoverable_authentication().expect("challenge");
            let options: Value = serde_json::to_value(&rcr).expect("JSON");
            (state, key.assert(&options).to_string())
        })
        .collect();

    let verify = |(state, json): (DiscoverableAuthentication, String)| {
        let assertion: PublicKeyCredential = serde_json::from_str(&json).expect("assertion JSON");
        let (_user, _id) = webauthn.identify_discoverable_authentication(&assertion).expect("user handle");
        let result = webauthn.finish_discoverable_authentication_v2(&assertion, state, &passkey).expect("verified");
        assert!(result.user_verified());
    };

    let (first, rest) = work.split_at(n / 2);
    let started = Instant::now();
    for w in first.iter().cloned() {
        verify(w);
    }
    let one = first.len() as f64 / started.elapsed().as_secs_f64();
    println!("webauthn: {one:.0} assertions verified/s on 1 thread ({} assertions)", first.len());

    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = rest.len().div_ceil(threads);
    let started = Instant::now();
    std::thread::scope(|s| {
        for part in rest.chunks(chunk) {
            s.spawn(|| {
                for w in part.iter().cloned() {
                    verify(w);
                }
            });
        }
    });
    let all = rest.len() as f64 / started.elapsed().as_secs_f64();
    println!("webauthn: {all:.0} assertions verified/s on {threads} threads ({} assertions)", rest.len());
}
