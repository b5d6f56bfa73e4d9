//! Card validations per second with a 10,000-entry CRL: the per-login cost of
//! `CardValidator::validate` (path, signatures, dates, usages, CRL lookup), on 1 and 2 threads,
//! for P-256 and RSA-2048 PKIs. Plain `Instant` loops; run with
//! `cargo bench -p vigie-igc-sante --bench validate`.
#[path = "../tests/common/crl_server.rs"]
#[allow(dead_code)] // the benchmark only serves
mod crl_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_igc_sante::testpki::{CardSpec, KeyAlg, TestPki};
use vigie_igc_sante::{CardValidator, RevocationCheck, TrustConfig, parse_crl};

const RUN: Duration = Duration::from_secs(2);

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    for alg in [KeyAlg::EcdsaP256, KeyAlg::Rsa2048] {
        runtime.block_on(bench(alg));
    }
}

async fn bench(alg: KeyAlg) {
    let pki = TestPki::generate_with(alg).expect("a test PKI");
    let entries: Vec<(Vec<u8>, i64)> =
        (0u32..10_000).map(|i| ((0x1000_0000u32 + i).to_be_bytes().to_vec(), now() - 86_400)).collect();
    let crl = pki.crl_der(&entries, now() - 3_600, now() + 86_400).expect("a CRL");
    let started = Instant::now();
    let parsed = parse_crl(&crl).expect("the CRL parses");
    println!("{alg:?}: 10,000-entry CRL of {} bytes parsed in {:?}", crl.len(), started.elapsed());
    assert_eq!(parsed.len(), 10_000);

    let server = crl_server::CrlServer::start().await;
    server.serve("/ca.crl", crl);
    let config = TrustConfig {
        anchors_pem: vec![pki.anchors_pem()],
        crl_urls: vec![server.url("/ca.crl")],
        ..TrustConfig::default()
    };
    let validator = Arc::new(CardValidator::new(config).expect("a validator"));
    let refreshed = validator.refresh(&reqwest::Client::new()).await;
    assert!(refreshed.iter().all(|(_, r)| r.is_ok()), "{refreshed:?}");
    server.stop().await;

    let card = pki
        .issue(
            &CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").serial(&[0x20, 0x00, 0x00, 0x01]).key_alg(alg),
        )
        .expect("a card");
    let revoked = pki
        .issue(
            &CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").serial(&[0x10, 0x00, 0x13, 0x88]).key_alg(alg),
        )
        .expect("a card");
    let valid = validator.validate(&card.chain_der, now()).expect("valid");
    assert!(matches!(valid.revocation, RevocationCheck::Fresh { .. }));
    assert_eq!(validator.validate(&revoked.chain_der, now()).expect_err("revoked").code(), "revoked");

    for threads in [1usize, 2] {
        let chain = Arc::new(card.chain_der.clone());
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (validator, chain) = (validator.clone(), chain.clone());
                std::thread::spawn(move || {
                    let (start, at) = (Instant::now(), now());
                    let mut n = 0u64;
                    while start.elapsed() < RUN {
                        for _ in 0..100 {
                            let valid = validator.validate(&chain, at).expect("valid");
                            std::hint::black_box(valid);
                        }
                        n += 100;
                    }
                    n as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        let per_second: f64 = handles.into_iter().map(|h| h.join().expect("a bench thread")).sum();
        println!("{alg:?}: {threads} thread(s): {per_second:.0} validations/s (leaf + CA chain, 10,000-entry CRL)");
    }
}
