//! Can-fail proofs of the kit's security (RFC 9700), RIE card and VIHF checks: against a policy
//! refusing cards on sensitive clients, and behind the altering proxy (`proxy.rs`) playing a
//! provider that skips PKCE, replays refresh answers, trusts unsigned hints or lets the VIHF be
//! altered on its way, exactly the check of what is broken fails, for its reason.
use vigie_conformance::profile::Profile;

use super::{assert_fails_exactly, proxy, rie_table_fails_exactly_with, run_only};
use crate::common::*;

/// A policy set refusing the CPS (a doctor's card: the test card) on sensitive clients, the CPE
/// still allowed: exactly the RIE's "a card opens a sensitive client" cell fails; the card still
/// opens the RP client, and the step-ups still offer a card. (Refusing both cards fails the
/// step-up rows too, rightly: the target then offers no card to step up to.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rie_table_flags_a_policy_refusing_the_card_on_a_sensitive_client() {
    rie_table_fails_exactly_with(
        "99_no_cps_inside.cedar",
        "@id(\"test-no-cps-sensitive\")\nforbid (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { resource.sensitive && context.authentication.mie == \"cps\" };\n",
        &[("rie-cps-opens-sensitive", "expected a redirect to the client, got 403")],
    )
    .await;
}

/// The RFC 9700 checks this module proves.
const SECURITY: [&str; 3] =
    ["rfc9700-pkce-downgrade", "rfc9700-refresh-token-replay", "rfc9700-alg-none-id-token-hint"];
/// The DMP checks of a card session (through the proxy). `dmp-vihf-refusals` runs in the control
/// only: it logs the card's holder in by password + TOTP, and the gateway takes each code once,
/// so back-to-back runs would exhaust that one user's codes (its exchanges are refused before any
/// VIHF, which the VIHF faults alter).
const CARD_DMP: [&str; 3] = ["dmp-vihf-structure-and-signature", "dmp-vihf-lifetime", "dmp-vihf-single-identity"];

/// One gateway behind the proxy, which carries the test card on to it. Breaking nothing, the
/// three RFC 9700 checks and the DMP plan pass; then, one broken behaviour at a time, exactly the
/// check of it fails:
/// - tokens for a PKCE code redeemed without its `code_verifier` (RFC 9700 §4.8.2);
/// - a replayed refresh token answered as at its first use (no rotation: RFC 9700 §4.14.2);
/// - a logout with an unsigned (`alg` `none`) `id_token_hint` redirected as accepted;
/// - the VIHF's `Identifiant_Structure` changed after signing: `xmlsec1` no longer verifies it;
/// - a second `Subject` wrapped in a `ds:Object` of the VIHF's signature (still verifying), or a
///   second professional's `subject-id` wrapped the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pkce_refresh_alg_none_and_vihf_checks_fail_behind_an_altering_proxy() {
    let (gw, issuer, switch) = proxy::gateway_behind().await;
    let ca = gw.demo["ca_pem"].as_str().expect("the CA");
    let card = Profile::from_demo(&gw.demo).expect("a profile").card.expect("the demo's test card");
    proxy::carry_card(gw.port, ca, &card.chain_pem, &card.key_pem);
    let set = |faults: proxy::Faults| *switch.lock().expect("the switch") = faults;

    // The control: the proxy breaking nothing, a card login goes through and every check passes.
    let report = run_only(&gw, &issuer, &[&SECURITY[..], &["dmp-"]].concat(), None).await;
    assert_eq!(report.outcomes.len(), 7, "{:#?}", report.outcomes.iter().map(|o| &o.id).collect::<Vec<_>>());
    assert_fails_exactly(&report, &[]);

    set(proxy::Faults {
        pkce_verifier_ignored: true,
        refresh_replay_answered: true,
        alg_none_hint_trusted: true,
        ..Default::default()
    });
    let report = run_only(&gw, &issuer, &[SECURITY, CARD_DMP].concat(), None).await;
    assert_fails_exactly(
        &report,
        &[
            ("rfc9700-pkce-downgrade", "redeemed without code_verifier was answered 200"),
            ("rfc9700-refresh-token-replay", "the replayed refresh token was answered 200"),
            ("rfc9700-alg-none-id-token-hint", "an unsigned id_token_hint was trusted"),
        ],
    );

    set(proxy::Faults { vihf_value_altered: true, ..Default::default() });
    let report = run_only(&gw, &issuer, &CARD_DMP, None).await;
    assert_fails_exactly(
        &report,
        &[("dmp-vihf-structure-and-signature", "xmlsec1 does not verify the VIHF's signature against the seal CA")],
    );

    set(proxy::Faults { vihf_second_subject: true, ..Default::default() });
    let report = run_only(&gw, &issuer, &CARD_DMP, None).await;
    assert_fails_exactly(&report, &[("dmp-vihf-single-identity", "the VIHF has 2 Subject and 2 NameID")]);

    set(proxy::Faults { vihf_second_subject_id: true, ..Default::default() });
    let report = run_only(&gw, &issuer, &CARD_DMP, None).await;
    assert_fails_exactly(&report, &[("dmp-vihf-single-identity", "it names more than one professional")]);
}

/// The issue's weakened setting: the RP client `demo-app` (confidential) registered with
/// `require_pkce = false`, which the gateway allows for confidential clients only (RFC 9700
/// §2.1.1: RECOMMENDED for them; a public client without PKCE is refused at start). Its
/// authorization requests without `code_challenge` get a code: the kit flags exactly
/// `rfc9700-pkce-downgrade`; the other security checks still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_flags_a_confidential_client_registered_without_pkce_enforcement() {
    let port = free_port();
    let secret = random(32);
    let app = format!("https://localhost:{port}/demo-app");
    let clients = format!(
        r#"[{{client_id="demo-app", client_secret_hash="sha256:{}", auth_method="client_secret_basic", redirect_uris=["{app}/callback"], post_logout_redirect_uris=["{app}/logged-out"], scopes=["openid", "profile", "offline_access"], require_pkce=false}}]"#,
        sha256_b64(&secret)
    );
    let gw = Gateway::start_on(port, &[("VIGIE_CLIENTS", &clients)]).await;
    let mut profile = Profile::from_demo(&gw.demo).expect("a profile from demo.json");
    profile.clients.iter_mut().find(|c| c.id == "demo-app").expect("the RP client").secret = Some(secret);
    let report = vigie_conformance::run(vigie_conformance::RunOptions {
        target: gw.issuer.clone(),
        profile,
        ca_pem: gw.demo["ca_pem"].as_str().map(str::to_owned),
        out: None,
        only: vec!["rfc9700-".into(), "rfc9207-".into()],
    })
    .await
    .expect("the kit runs");
    assert_eq!(report.outcomes.len(), 5, "{:#?}", report.outcomes.iter().map(|o| &o.id).collect::<Vec<_>>());
    assert_fails_exactly(
        &report,
        &[("rfc9700-pkce-downgrade", "an authorization request without code_challenge got a code")],
    );
}
