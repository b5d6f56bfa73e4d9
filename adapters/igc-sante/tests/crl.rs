//! Revocation: CRLs served over real HTTP, learned from the cards' distribution points, cached in
//! memory and on disk, used past their nextUpdate within the grace period, refused (or accepted,
//! as configured) after it; CRLs that are not the CA's are never used.
#[path = "common/crl_server.rs"]
mod crl_server;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crl_server::{CrlServer, SilentSource};
use proptest::prelude::*;
use vigie_igc_sante::testpki::{CardSpec, RevocationReason, TestCard, TestPki};
use vigie_igc_sante::{
    AfterGrace, CardValidator, CrlError, CrlOrigin, CrlScope, RevocationCheck, TrustConfig, parse_crl,
};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate().expect("a test PKI"))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn config() -> TrustConfig {
    TrustConfig { anchors_pem: vec![pki().anchors_pem()], ..TrustConfig::default() }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn card(serial: &[u8], crl_url: &str) -> TestCard {
    pki()
        .issue(&CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").serial(serial).crl_url(crl_url))
        .expect("a card")
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").subsec_nanos();
        let path = std::env::temp_dir().join(format!("vigie-igc-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("a temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn revoked_card_is_refused_with_date_and_reason_once_its_distribution_point_is_fetched() {
    let server = CrlServer::start().await;
    let url = server.url("/ACI-EL-PP-TEST.crl");
    let revoked_at = now() - 2 * HOUR;
    let crl = pki()
        .ca
        .crl_der_with_reasons(
            &[(vec![0x66, 0x01], revoked_at, Some(RevocationReason::KeyCompromise))],
            now() - HOUR,
            now() + DAY,
        )
        .expect("a CRL");
    server.serve("/ACI-EL-PP-TEST.crl", crl);
    let validator = CardValidator::new(config()).expect("a validator");
    let revoked = card(&[0x66, 0x01], &url);
    let good = card(&[0x66, 0x02], &url);

    // First card of this CA: no CRL yet, so revocation is unknown; its distribution point is learned.
    let unknown = validator.validate(&revoked.chain_der, now()).expect_err("no CRL yet");
    assert_eq!(unknown.code(), "revocation_unknown");
    assert!(unknown.to_string().contains("no CRL of this CA has been obtained yet"), "{unknown}");
    assert_eq!(validator.status()[0].origin, CrlOrigin::DistributionPoint);
    assert!(validator.ensure_crl_for(&revoked.chain_der, &http()).await, "the CRL is fetched from the card's DP");

    let refusal = validator.validate(&revoked.chain_der, now()).expect_err("revoked");
    assert_eq!(refusal.code(), "revoked");
    let text = refusal.to_string();
    assert!(text.starts_with("the card certificate (serial 6601) was revoked on "), "{text}");
    assert!(text.contains("(reason: KeyCompromise)"), "{text}");
    let valid = validator.validate(&good.chain_der, now()).expect("not revoked");
    assert!(matches!(valid.revocation, RevocationCheck::Fresh { .. }), "{:?}", valid.revocation);
    assert_eq!(valid.revocation.code(), "fresh");

    let status = validator.status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].url, url);
    assert_eq!(status[0].entries, Some(1));
    assert!(status[0].issuer.as_deref().is_some_and(|i| i.contains("PERSONNES")), "{:?}", status[0]);
    assert!(status[0].last_success.is_some() && status[0].last_error.is_none(), "{:?}", status[0]);
    server.stop().await;
}

#[tokio::test]
async fn configured_crl_url_is_fetched_by_refresh() {
    let server = CrlServer::start().await;
    server
        .serve("/ca.crl", pki().crl_der(&[(vec![0x70, 0x01], now() - HOUR)], now() - HOUR, now() + DAY).expect("crl"));
    let validator =
        CardValidator::new(TrustConfig { crl_urls: vec![server.url("/ca.crl")], ..config() }).expect("a validator");
    let outcome = validator.refresh(&http()).await;
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0].1, Ok(()));
    assert_eq!(validator.status()[0].origin, CrlOrigin::Configured);
    // This card has no distribution point at all: the configured CRL covers it.
    let no_dp =
        pki().issue(&CardSpec::cps("810001234567", "MEDECIN", "JEAN", "Médecin").serial(&[0x70, 0x01])).expect("card");
    assert_eq!(validator.validate(&no_dp.chain_der, now()).expect_err("revoked").code(), "revoked");
    server.stop().await;
}

#[tokio::test]
async fn source_going_away_keeps_the_cached_crl_until_grace_ends_then_refuses() {
    let server = CrlServer::start().await;
    let url = server.url("/ca.crl");
    let next_update = now() + DAY;
    server
        .serve("/ca.crl", pki().crl_der(&[(vec![0x71, 0x01], now() - HOUR)], now() - HOUR, next_update).expect("crl"));
    let validator = CardValidator::new(TrustConfig { grace_secs: 2 * DAY as u64, ..config() }).expect("a validator");
    let revoked = card(&[0x71, 0x01], &url);
    let good = card(&[0x71, 0x02], &url);
    let _ = validator.validate(&good.chain_der, now());
    assert!(validator.ensure_crl_for(&good.chain_der, &http()).await);

    server.stop().await;
    let outcome = validator.refresh(&http()).await;
    let Err(CrlError::Fetch { reason, .. }) = &outcome[0].1 else { panic!("the source is gone: {outcome:?}") };
    assert!(!reason.is_empty());
    let status = &validator.status()[0];
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("fetching")), "{status:?}");
    assert_eq!(status.next_update, Some(next_update), "the cached CRL is still described");

    // Before nextUpdate: the cached CRL is fresh and still knows the revoked card.
    assert_eq!(
        validator.validate(&good.chain_der, now()).expect("cached").revocation,
        RevocationCheck::Fresh { next_update }
    );
    assert_eq!(validator.validate(&revoked.chain_der, now()).expect_err("revoked").code(), "revoked");
    // Past nextUpdate, within grace.
    let later = next_update + DAY;
    let grace_until = next_update + 2 * DAY;
    assert_eq!(
        validator.validate(&good.chain_der, later).expect("within grace").revocation,
        RevocationCheck::WithinGrace { next_update, grace_until }
    );
    assert_eq!(
        validator.validate(&good.chain_der, grace_until).expect("last second of grace").revocation.code(),
        "within_grace"
    );
    // After grace: refuse is the default.
    let refusal = validator.validate(&good.chain_der, grace_until + 1).expect_err("past grace");
    assert_eq!(refusal.code(), "revocation_unknown");
    assert!(refusal.to_string().contains("grace period ended"), "{refusal}");
    // Revoked stays revoked whatever the age of the list.
    assert_eq!(validator.validate(&revoked.chain_der, grace_until + 1).expect_err("revoked").code(), "revoked");
}

#[tokio::test]
async fn after_grace_accept_lets_cards_in_and_says_so_for_the_audit() {
    let server = CrlServer::start().await;
    let url = server.url("/ca.crl");
    let next_update = now() + HOUR;
    server.serve("/ca.crl", pki().crl_der(&[], now() - HOUR, next_update).expect("crl"));
    let config = TrustConfig { after_grace: AfterGrace::Accept, grace_secs: 60, ..config() };
    let validator = CardValidator::new(config).expect("a validator");
    let good = card(&[0x72, 0x01], &url);
    let _ = validator.validate(&good.chain_der, now());
    assert!(validator.ensure_crl_for(&good.chain_der, &http()).await);
    server.stop().await;
    let valid = validator.validate(&good.chain_der, next_update + 61).expect("accepted past grace");
    assert_eq!(valid.revocation, RevocationCheck::PastGraceAccepted { next_update });
    assert_eq!(valid.revocation.code(), "past_grace_accepted");
}

#[tokio::test]
async fn restarted_validator_uses_the_disk_cache_without_network() {
    let dir = TempDir::new("crl-cache");
    let server = CrlServer::start().await;
    let url = server.url("/ca.crl");
    let next_update = now() + DAY;
    server
        .serve("/ca.crl", pki().crl_der(&[(vec![0x73, 0x01], now() - HOUR)], now() - HOUR, next_update).expect("crl"));
    let config = TrustConfig { crl_cache_dir: Some(dir.0.clone()), ..config() };
    let revoked = card(&[0x73, 0x01], &url);
    let good = card(&[0x73, 0x02], &url);
    {
        let validator = CardValidator::new(config.clone()).expect("a validator");
        let _ = validator.validate(&good.chain_der, now());
        assert!(validator.ensure_crl_for(&good.chain_der, &http()).await);
    }
    let files: Vec<String> = std::fs::read_dir(&dir.0)
        .expect("the cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.iter().filter(|f| f.ends_with(".crl")).count(), 1, "{files:?}");
    assert!(!files.iter().any(|f| f.contains(".tmp")), "no temp file left: {files:?}");
    server.stop().await;

    let restarted = CardValidator::new(config).expect("a validator");
    assert_eq!(restarted.validate(&revoked.chain_der, now()).expect_err("revoked").code(), "revoked");
    assert_eq!(
        restarted.validate(&good.chain_der, now()).expect("cached").revocation,
        RevocationCheck::Fresh { next_update }
    );
    // The learned distribution point is a source again, refreshed (and failing) without losing the CRL.
    let status = restarted.status();
    assert_eq!(
        (status.len(), status[0].url.as_str(), status[0].origin),
        (1, url.as_str(), CrlOrigin::DistributionPoint)
    );
    assert!(restarted.refresh(&http()).await[0].1.is_err());
    assert_eq!(restarted.validate(&revoked.chain_der, now()).expect_err("still revoked").code(), "revoked");
}

#[tokio::test]
async fn crl_signed_by_an_impostor_key_is_not_used() {
    let server = CrlServer::start().await;
    let url = server.url("/ca.crl");
    // Same issuer name as the trusted CA, another key: a forged "nobody is revoked" list.
    server.serve("/ca.crl", pki().untrusted_ca.crl_der(&[], now() - HOUR, now() + DAY).expect("crl"));
    let validator = CardValidator::new(config()).expect("a validator");
    let good = card(&[0x74, 0x01], &url);
    let _ = validator.validate(&good.chain_der, now());
    assert!(!validator.ensure_crl_for(&good.chain_der, &http()).await, "the forged CRL is not installed");
    let outcome = validator.refresh(&http()).await;
    assert!(
        matches!(&outcome[0].1, Err(CrlError::BadSignature(issuer)) if issuer.contains("PERSONNES")),
        "{outcome:?}"
    );
    assert_eq!(validator.validate(&good.chain_der, now()).expect_err("still unknown").code(), "revocation_unknown");
    server.stop().await;
}

#[tokio::test]
async fn crl_of_another_ca_at_a_card_distribution_point_is_not_used() {
    let server = CrlServer::start().await;
    let url = server.url("/ca.crl");
    let validator = CardValidator::new(config()).expect("a validator");
    let good = card(&[0x75, 0x01], &url);
    let _ = validator.validate(&good.chain_der, now());
    // The trusted root's own CRL (valid, signed) served where the cards' CA's should be.
    server.serve("/ca.crl", pki().root.crl_der(&[], now() - HOUR, now() + DAY).expect("crl"));
    let outcome = validator.refresh(&http()).await;
    assert!(
        matches!(&outcome[0].1, Err(CrlError::WrongIssuer { found, .. }) if found.contains("RACINE")),
        "{outcome:?}"
    );
    // A CRL from a CA nobody trusts.
    server.serve("/ca.crl", pki().untrusted_root.crl_der(&[], now() - HOUR, now() + DAY).expect("crl"));
    let outcome = validator.refresh(&http()).await;
    assert!(matches!(&outcome[0].1, Err(CrlError::UnknownIssuer(i)) if i.contains("INCONNUE")), "{outcome:?}");
    assert_eq!(validator.validate(&good.chain_der, now()).expect_err("no CRL").code(), "revocation_unknown");
    server.stop().await;
}

#[tokio::test]
async fn older_crl_does_not_replace_a_newer_one_and_errors_keep_the_cache() {
    let server = CrlServer::start().await;
    let url = server.url("/ca.crl");
    let validator = CardValidator::new(config()).expect("a validator");
    let revoked = card(&[0x76, 0x01], &url);
    let _ = validator.validate(&revoked.chain_der, now());
    server
        .serve("/ca.crl", pki().crl_der(&[(vec![0x76, 0x01], now() - HOUR)], now() - HOUR, now() + DAY).expect("crl"));
    assert_eq!(validator.refresh(&http()).await[0].1, Ok(()));
    // A replayed older list that does not yet name the card.
    server.serve("/ca.crl", pki().crl_der(&[], now() - 3 * HOUR, now() + DAY).expect("crl"));
    assert!(matches!(validator.refresh(&http()).await[0].1, Err(CrlError::Older { .. })));
    server.fail("/ca.crl", 503);
    let outcome = validator.refresh(&http()).await;
    assert!(matches!(&outcome[0].1, Err(CrlError::Fetch { reason, .. }) if reason.contains("503")), "{outcome:?}");
    server.serve("/ca.crl", b"<html>maintenance</html>".to_vec());
    assert!(matches!(validator.refresh(&http()).await[0].1, Err(CrlError::NotCrl(_))));
    assert_eq!(validator.validate(&revoked.chain_der, now()).expect_err("still revoked").code(), "revoked");
    server.stop().await;
}

#[tokio::test]
async fn revocation_can_be_switched_off_and_says_so() {
    let validator = CardValidator::new(TrustConfig { check_revocation: false, ..config() }).expect("a validator");
    let good = card(&[0x77, 0x01], "http://127.0.0.1:9/never.crl");
    assert_eq!(validator.validate(&good.chain_der, now()).expect("valid").revocation, RevocationCheck::NotChecked);
    assert!(validator.status().is_empty(), "no source learned when revocation is off");
}

#[test]
fn ten_thousand_entry_crl_is_parsed_and_looked_up() {
    let entries: Vec<(Vec<u8>, i64)> =
        (0u32..10_000).map(|i| ((0x1000_0000u32 + i).to_be_bytes().to_vec(), now() - DAY)).collect();
    let der = pki().crl_der(&entries, now() - HOUR, now() + DAY).expect("a big CRL");
    // How fast: benches/validate.rs (`cargo bench -p vigie-igc-sante`), not a functional test.
    let crl = parse_crl(&der).expect("parses");
    assert_eq!(crl.len(), 10_000);
    assert_eq!(crl.scope, CrlScope::All);
    assert!(crl.revocation(&0x1000_1388u32.to_be_bytes()).is_some());
    assert!(crl.revocation(&[0x00, 0x10, 0x00, 0x13, 0x88]).is_some(), "a leading zero octet does not matter");
    assert!(crl.revocation(&0x2000_0000u32.to_be_bytes()).is_none());
}

#[test]
fn crl_bytes_are_read_as_der_or_pem_and_garbage_is_refused_precisely() {
    let der = pki().crl_der(&[(vec![0x01], now())], now() - HOUR, now() + DAY).expect("crl");
    let pem = vigie_igc_sante::testpki::pem("X509 CRL", &der);
    assert_eq!(parse_crl(pem.as_bytes()).expect("PEM").len(), 1);
    let wrong_label = vigie_igc_sante::testpki::pem("CERTIFICATE", &der);
    assert_eq!(
        parse_crl(wrong_label.as_bytes()).expect_err("label").to_string(),
        "not an X.509 CRL (DER or PEM): PEM label is 'CERTIFICATE', expected 'X509 CRL'"
    );
    let mut trailing = der.clone();
    trailing.extend_from_slice(b"xx");
    assert_eq!(parse_crl(&trailing).expect_err("trailing"), CrlError::TrailingBytes(2));
    assert!(matches!(parse_crl(&der[..der.len() - 1]), Err(CrlError::NotCrl(_))));
    assert!(matches!(parse_crl(b""), Err(CrlError::NotCrl(_))));
    // A certificate is not a CRL.
    assert!(matches!(parse_crl(&pki().ca.cert_der), Err(CrlError::NotCrl(_))));
}

fn valid_crl() -> &'static [u8] {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| {
        let entries: Vec<(Vec<u8>, i64)> = (1u8..20).map(|i| (vec![i], now() - DAY)).collect();
        pki().crl_der(&entries, now() - HOUR, now() + DAY).expect("crl")
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let error = parse_crl(&bytes).expect_err("random bytes are no CRL");
        prop_assert!(!error.to_string().is_empty());
    }

    #[test]
    fn arbitrary_pem_never_panics(body in "[A-Za-z0-9+/=\n]{0,400}") {
        let text = format!("-----BEGIN X509 CRL-----\n{body}\n-----END X509 CRL-----\n");
        prop_assert!(parse_crl(text.as_bytes()).is_err());
    }

    #[test]
    fn corrupted_crls_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut der = valid_crl().to_vec();
        let i = at.index(der.len());
        der[i] = byte;
        let _ = parse_crl(&der);
        let cut = cut.index(der.len());
        der.truncate(cut);
        // A strict prefix of a DER value is never a complete value.
        prop_assert!(parse_crl(&der).is_err());
    }
}

#[tokio::test]
async fn intermediate_sent_by_the_client_is_checked_against_its_root_crl() {
    // Only the root is configured: the card's CA comes from the client, so its revocation is
    // checked too (RFC 5280 §6.3), against the root's CRL (an ARL, configured here by URL).
    let server = CrlServer::start().await;
    let validator = CardValidator::new(TrustConfig {
        anchors_pem: vec![pki().root.cert_pem.clone()],
        crl_urls: vec![server.url("/root.crl")],
        ..TrustConfig::default()
    })
    .expect("a validator");
    let good = card(&[0x78, 0x01], &server.url("/ca.crl"));
    server.serve("/ca.crl", pki().crl_der(&[], now() - HOUR, now() + DAY).expect("crl"));
    server.serve("/root.crl", pki().root.crl_der(&[], now() - HOUR, now() + DAY).expect("crl"));
    let _ = validator.validate(&good.chain_der, now());
    assert!(validator.ensure_crl_for(&good.chain_der, &http()).await, "both CRLs: the CA's (learned) and the root's");
    let valid = validator.validate(&good.chain_der, now()).expect("valid");
    assert!(matches!(valid.revocation, RevocationCheck::Fresh { .. }));

    let (_, ca) = x509_parser::parse_x509_certificate(&pki().ca.cert_der).expect("the CA parses");
    let ca_serial = ca.raw_serial().to_vec();
    server.serve("/root.crl", pki().root.crl_der(&[(ca_serial, now() - 60)], now() - 30, now() + DAY).expect("crl"));
    assert!(validator.refresh(&http()).await.iter().all(|(_, r)| r.is_ok()));
    let refusal = validator.validate(&good.chain_der, now()).expect_err("its CA is revoked");
    assert_eq!(refusal.code(), "revoked");
    assert!(refusal.to_string().starts_with("the CA certificate 'C=FR, O=ASIP-SANTE"), "{refusal}");
    server.stop().await;
}

#[tokio::test]
async fn refresher_task_picks_up_a_new_crl_by_itself() {
    let server = CrlServer::start().await;
    server.serve("/ca.crl", pki().crl_der(&[], now() - HOUR, now() + DAY).expect("crl"));
    let config = TrustConfig { crl_urls: vec![server.url("/ca.crl")], refresh_secs: 1, ..config() };
    let validator = std::sync::Arc::new(CardValidator::new(config).expect("a validator"));
    let refresher = validator.spawn_refresh(http());
    let card = card(&[0x79, 0x01], &server.url("/ca.crl"));
    // The bounds are ten times what the refresher promises (at once, then every refresh_secs = 1 s):
    // they only turn a refresher that never runs into a failure instead of a hang.
    let accepted = eventually(10, || validator.validate(&card.chain_der, now()).is_ok()).await;
    assert!(accepted, "the first refresh runs at once and installs the CRL");
    // The card is revoked at the CA: the next refresh, a second later, knows it.
    server.serve("/ca.crl", pki().crl_der(&[(vec![0x79, 0x01], now() - 1)], now(), now() + DAY).expect("crl"));
    let refused = eventually(10, || validator.validate(&card.chain_der, now()).is_err()).await;
    assert!(refused, "a refresh within refresh_secs installs the new CRL");
    assert_eq!(validator.validate(&card.chain_der, now()).expect_err("revoked").code(), "revoked");
    refresher.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_source_that_never_answers_is_given_up_after_the_fetch_timeout() {
    let silent = SilentSource::start().await;
    let url = silent.url("/ca.crl");
    let config = TrustConfig { crl_urls: vec![url.clone()], fetch_timeout_ms: 300, ..config() };
    let validator = CardValidator::new(config).expect("a validator");
    let started = Instant::now();
    // Ten times the fetch timeout: without a timeout the refresh would wait forever, and this
    // bound makes that a failure, not a hung test. How long giving up takes: benches/crl_fetch.rs.
    let outcome = tokio::time::timeout(Duration::from_secs(3), validator.refresh(&http()))
        .await
        .expect("the refresh gives up on its own");
    let elapsed = started.elapsed();
    let [(source, Err(CrlError::Fetch { url: failed, reason }))] = outcome.as_slice() else {
        panic!("one source, failed to fetch: {outcome:?}")
    };
    assert_eq!((source, failed), (&url, &url));
    assert!(reason.contains("timed out"), "{reason}");
    // Not a speed figure: the source was waited for, not dropped at the first silence.
    assert!(elapsed >= Duration::from_millis(300), "not before the timeout: {elapsed:?}");
    assert_eq!(validator.status()[0].last_error.as_deref().map(|e| e.contains("timed out")), Some(true));
}

/// Polls `condition` every 50 ms until it holds, for at most `secs` seconds; whether it held.
async fn eventually(secs: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
