//! The PSC stand-in made to misbehave (contract C1 `__control/misbehave`): each bad answer is
//! refused with its own code, and PSC's health shows what happened.
mod common;

use common::{DR_DURAND, Fixture, Sandbox};
use serde_json::json;
use vigie_psc::{Op, Psc};

/// Logs in once with `mode` active on the stand-in; returns the refusal's code.
async fn refused_with(mode: &str, client_id: &str) -> (String, Sandbox, Psc) {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let psc = fx.psc(&sb, client_id);
    sb.misbehave(json!({"mode": mode, "times": 1})).await;
    let err = sb.login(&psc, DR_DURAND).await.expect_err(&format!("`{mode}` must be refused"));
    eprintln!("{mode}: {err}");
    (err.code().to_owned(), sb, psc)
}

#[tokio::test]
async fn id_token_from_another_issuer_is_refused() {
    assert_eq!(refused_with("wrong_iss", "vigie-basic").await.0, "wrong_issuer");
}

#[tokio::test]
async fn id_token_for_another_client_is_refused() {
    assert_eq!(refused_with("wrong_aud", "vigie-basic").await.0, "wrong_audience");
}

#[tokio::test]
async fn expired_id_token_is_refused() {
    assert_eq!(refused_with("expired", "vigie-basic").await.0, "expired");
}

#[tokio::test]
async fn id_token_of_another_login_is_refused_by_its_nonce() {
    assert_eq!(refused_with("wrong_nonce", "vigie-basic").await.0, "wrong_nonce");
}

#[tokio::test]
async fn id_token_issued_with_another_access_token_is_refused_by_its_at_hash() {
    assert_eq!(refused_with("wrong_at_hash", "vigie-basic").await.0, "wrong_at_hash");
}

#[tokio::test]
async fn unsigned_id_token_is_refused() {
    assert_eq!(refused_with("alg_none", "vigie-basic").await.0, "alg_not_allowed");
}

#[tokio::test]
async fn id_token_signed_by_an_unpublished_key_is_refused_after_one_jwks_refetch() {
    let (code, sb, psc) = refused_with("unknown_kid", "vigie-basic").await;
    assert_eq!(code, "unknown_kid");
    // Fetched at begin, refetched once for the unknown kid; not more.
    assert_eq!(sb.log_of("jwks").await.len(), 2, "{:?}", sb.log_of("jwks").await);
    // A second one within the rate limit does not refetch again.
    sb.misbehave(json!({"mode": "unknown_kid", "times": 1})).await;
    let err = sb.login(&psc, DR_DURAND).await.expect_err("still unknown");
    assert_eq!(err.code(), "unknown_kid");
    assert_eq!(sb.log_of("jwks").await.len(), 2, "rate-limited refetch");
}

#[tokio::test]
async fn userinfo_about_someone_else_is_refused() {
    assert_eq!(refused_with("userinfo_sub_mismatch", "vigie-basic").await.0, "userinfo_sub_mismatch");
}

#[tokio::test]
async fn signed_userinfo_about_someone_else_is_refused() {
    assert_eq!(refused_with("userinfo_sub_mismatch", "vigie-jwt-userinfo").await.0, "userinfo_sub_mismatch");
}

#[tokio::test]
async fn token_endpoint_failure_is_a_token_error_and_counts_against_psc_health() {
    let (code, _sb, psc) = refused_with("token_error", "vigie-basic").await;
    assert_eq!(code, "token_error");
    let h = psc.health();
    assert_eq!(h.token.consecutive_failures, 1, "{h:?}");
    assert_eq!(h.token.last_error_code, Some("token_error"));
    assert!(h.token.last_error.as_deref().is_some_and(|e| e.contains("server_error")), "{h:?}");
    assert!(!h.is_up());
}

#[tokio::test]
async fn an_acr_other_than_eidas1_is_refused() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let mut s = fx.settings(&sb, "vigie-basic");
    s.accepted_acr = vec!["eidas2".into()];
    let psc = Psc::new(s).expect("settings");
    let err = sb.login(&psc, DR_DURAND).await.expect_err("eidas1 not accepted here");
    assert_eq!(err.code(), "acr_not_accepted", "{err}");
}

#[tokio::test]
async fn a_rotated_signing_key_is_accepted_after_refetching_the_jwks() {
    let fx = Fixture::new(false);
    let first = fx.start();
    let port = first.port;
    let psc = fx.psc(&first, "vigie-basic");
    psc.begin().await.expect("metadata and keys cached");
    drop(first);
    // PSC restarts with a new signing key (the stand-in makes one at each start), same origin.
    let second = Sandbox::start(&fx.config(&format!("127.0.0.1:{port}")), None);
    let login = second.login(&psc, DR_DURAND).await.expect("new key found by refetching the JWKS");
    assert_eq!(login.idnat, DR_DURAND);
    assert_eq!(second.log_of("jwks").await.len(), 1, "one refetch");
    assert_eq!(second.log_of("discovery").await.len(), 0, "metadata still cached");
}

#[tokio::test]
async fn psc_down_shows_in_health_and_recovers_after_a_probe() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-basic");
    psc.probe().await.expect("PSC up");
    let h = psc.health();
    assert!(h.is_up() && h.metadata_fetched_at.is_some() && h.jwks_fetched_at.is_some(), "{h:?}");
    assert!(h.discovery.last_latency_ms.is_some());

    sb.misbehave(json!({"mode": "down"})).await;
    for _ in 0..2 {
        let err = psc.probe().await.expect_err("PSC down");
        assert_eq!(err.code(), "unreachable", "{err}");
    }
    let h = psc.health();
    assert_eq!(h.discovery.consecutive_failures, 2, "{h:?}");
    assert_eq!(h.discovery.last_error_code, Some("unreachable"));
    assert!(h.discovery.last_error.as_deref().is_some_and(|e| e.contains("503")), "{h:?}");
    assert!(!h.is_up());
    assert_eq!(h.op(Op::Discovery).failures, 2);

    // Connections closed without an answer are failures too.
    sb.misbehave(json!({"mode": "down", "close": true})).await;
    assert_eq!(psc.probe().await.expect_err("closed").code(), "unreachable");
    assert_eq!(psc.health().discovery.consecutive_failures, 3);

    sb.reset().await;
    psc.probe().await.expect("PSC back");
    let h = psc.health();
    assert!(h.is_up(), "{h:?}");
    assert_eq!(h.discovery.consecutive_failures, 0);
    assert_eq!(h.discovery.last_error_code, Some("unreachable"), "the last failure is remembered");
}

#[tokio::test]
async fn a_slow_psc_times_out_quickly() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let mut s = fx.settings(&sb, "vigie-basic");
    s.timeout_ms = 300;
    let psc = Psc::new(s).expect("settings");
    const SLOW_MS: u64 = 30_000;
    sb.misbehave(json!({"mode": "slow", "ms": SLOW_MS})).await;
    let started = std::time::Instant::now();
    let err = psc.begin().await.expect_err("too slow");
    assert_eq!(err.code(), "unreachable", "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    // Without the timeout the answer would come after SLOW_MS; a third of that leaves a loaded
    // machine thirty times the 300 ms timeout, and still tells the timeout from the answer.
    assert!(started.elapsed() < std::time::Duration::from_millis(SLOW_MS / 3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn metadata_for_another_issuer_are_refused() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let mut s = fx.settings(&sb, "vigie-basic");
    // OIDC Discovery §4.3: the document must name exactly the configured issuer.
    s.discovery_url = Some(format!("{}/.well-known/wallet-openid-configuration", sb.issuer));
    s.issuer = format!("{}/", sb.issuer);
    let psc = Psc::new(s).expect("settings");
    let err = psc.begin().await.expect_err("issuer differs by a slash");
    assert_eq!(err.code(), "bad_metadata", "{err}");
    assert_eq!(psc.health().discovery.consecutive_failures, 1);
}
