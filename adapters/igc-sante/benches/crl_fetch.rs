//! How long CRL refreshes take over real local HTTP: giving up on a source that never answers
//! (against `fetch_timeout_ms`), and fetching and installing a 10,000-entry CRL. The functional
//! tests (tests/crl.rs) keep only bounds ten times above these; the figures are here. Run with
//! `cargo bench -p vigie-igc-sante --bench crl_fetch`.
#[path = "../tests/common/crl_server.rs"]
#[allow(dead_code)] // the benchmark uses part of the servers
mod crl_server;

use std::time::{Duration, Instant};

use vigie_igc_sante::testpki::TestPki;
use vigie_igc_sante::{CardValidator, TrustConfig};

const ROUNDS: usize = 5;
const FETCH_TIMEOUT_MS: u64 = 300;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let pki = TestPki::generate().expect("a test PKI");
        let http = reqwest::Client::new();
        let anchors_pem = vec![pki.anchors_pem()];

        let silent = crl_server::SilentSource::start().await;
        let config = TrustConfig {
            anchors_pem: anchors_pem.clone(),
            crl_urls: vec![silent.url("/ca.crl")],
            fetch_timeout_ms: FETCH_TIMEOUT_MS,
            ..TrustConfig::default()
        };
        let validator = CardValidator::new(config).expect("a validator");
        let times = timed(|| async {
            let outcome = validator.refresh(&http).await;
            assert!(outcome.iter().all(|(_, r)| r.is_err()), "{outcome:?}");
        })
        .await;
        report(&format!("giving up on a silent source (fetch_timeout_ms = {FETCH_TIMEOUT_MS})"), times);

        let entries: Vec<(Vec<u8>, i64)> =
            (0u32..10_000).map(|i| ((0x1000_0000u32 + i).to_be_bytes().to_vec(), now() - 86_400)).collect();
        let server = crl_server::CrlServer::start().await;
        let times = timed(|| async {
            // A newer list each round, so that each one is installed, not refused as older.
            let crl = pki.crl_der(&entries, now(), now() + 86_400).expect("a CRL");
            server.serve("/ca.crl", crl);
            let config = TrustConfig {
                anchors_pem: anchors_pem.clone(),
                crl_urls: vec![server.url("/ca.crl")],
                ..TrustConfig::default()
            };
            let validator = CardValidator::new(config).expect("a validator");
            let outcome = validator.refresh(&http).await;
            assert!(outcome.iter().all(|(_, r)| r.is_ok()), "{outcome:?}");
        })
        .await;
        report("fetching, checking and installing a 10,000-entry CRL", times);
        server.stop().await;
    });
}

async fn timed<F, Fut>(mut round: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        round().await;
        times.push(started.elapsed());
    }
    times.sort();
    times
}

fn report(what: &str, times: Vec<Duration>) {
    println!(
        "{what}: min {:?}, median {:?}, max {:?} ({ROUNDS} rounds)",
        times[0],
        times[ROUNDS / 2],
        times[ROUNDS - 1]
    );
}
