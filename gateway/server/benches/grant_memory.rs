//! What live grants cost a single node's memory: the store calls of the SSO load bench's grants
//! and rotations (`--bench load -- --store embedded` leaves ~110,000 grants and ~40,000
//! rotations), replayed on an [`EmbeddedStore`] in this process, and the resident memory they
//! add. Independent of the build profile and of the machine's load (the sizes of the
//! allocations are the same), so two versions compare exactly:
//!
//! `cargo bench -p vigie-gateway --bench grant_memory [-- --grants 110000 --rotations 40000 --claims]`
//!
//! Per grant: the authorization code (written, then taken), the family record written pending,
//! then minted (`rt:`). Per rotation, on 32 families as the load bench's 32 loops: the rotated
//! token's member in the family's spent set (`rt-spent:`) and the record rewritten;
//! `--claims` adds the 2-minute claim on the generation (`rt-rotating:`) that versions before
//! the compare-and-set rotation kept.
use std::time::Duration;

use vigie_core::store::EphemeralStore;
use vigie_gateway::oidc::grant::{RefreshRecord, family_of_code};
use vigie_gateway::secrets::{random_token, sha256_b64};
use vigie_gateway::session::keys;
use vigie_store_embedded::EmbeddedStore;

mod common;
use common::arg;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next());
    kib.and_then(|k| k.parse::<u64>().ok()).unwrap_or(0) * 1024
}

/// The load bench's grant: demo-app, `openid profile`, a password + TOTP login.
fn record(family: &str) -> RefreshRecord {
    let now = vigie_gateway::now();
    let json = serde_json::json!({
        "client_id": "demo-app", "scopes": ["openid", "profile"],
        "authentication": {
            "identity_id": "0193a5f2-7c1e-7d3a-9b2e-5f4c3d2e1a0b", "mie": "password_totp",
            "factors": ["pwd", "otp"], "at": now, "level": "two_factor",
        },
        "sid": random_token(16), "grant_id": family, "family_expires_at": now + 43200,
        "generation": 0, "secret_hash": "",
    });
    serde_json::from_value(json).expect("a record")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let grants: usize = arg("--grants", "110000").parse().expect("--grants N");
    let rotations: usize = arg("--rotations", "40000").parse().expect("--rotations N");
    let claims = std::env::args().any(|a| a == "--claims");
    let store = EmbeddedStore::new();
    let ttl = Duration::from_secs(43200);
    let code_value = vec![b'x'; 420]; // a CodeGrant's JSON
    let start = rss();
    let mut families = Vec::new();
    for i in 0..grants {
        let code = random_token(32);
        let family = family_of_code(&code);
        store.put(&keys::authorization_code(&code), &code_value, Duration::from_secs(60)).await.expect("code");
        let mut r = record(&family);
        store.put(&keys::refresh_family(&family), &r.encode(), ttl).await.expect("pending");
        store.take(&keys::authorization_code(&code)).await.expect("take");
        r.secret_hash = sha256_b64(random_token(32).as_bytes());
        store.put(&keys::refresh_family(&family), &r.encode(), ttl).await.expect("minted");
        if i < 32 {
            families.push(r);
        }
    }
    let after_grants = rss();
    for i in 0..rotations {
        let r = &mut families[i % 32];
        if claims {
            let claim = keys::refresh_rotation(&r.grant_id, r.generation);
            store.put_if_absent(&claim, b"1", Duration::from_secs(120)).await.expect("claim");
        }
        let member = format!("{}:{}", r.generation, sha256_b64(random_token(32).as_bytes()));
        store.add_to_set(&keys::refresh_spent(&r.grant_id), &member, ttl).await.expect("spent");
        r.generation += 1;
        r.secret_hash = sha256_b64(random_token(32).as_bytes());
        store.put(&keys::refresh_family(&r.grant_id), &r.encode(), ttl).await.expect("rotated");
    }
    let end = rss();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "{grants} grants: +{:.1} MiB, {} B each ({} B record); {rotations} rotations{}: +{:.1} MiB, {} B each; total +{:.1} MiB",
        mib(after_grants - start),
        (after_grants - start) / grants.max(1) as u64,
        record("R3JhbnQtZmFtaWx5LTAwMQ").encode().len(),
        if claims { " with claims" } else { "" },
        mib(end - after_grants),
        (end - after_grants) / rotations.max(1) as u64,
        mib(end - start),
    );
}
