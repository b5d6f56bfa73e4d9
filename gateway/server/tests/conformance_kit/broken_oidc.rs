//! Can-fail proofs of the kit's OpenID Connect checks (`oidcc-*`): behind the altering proxy,
//! each fault a faulty provider could have makes exactly its check fail, for its reason, while the
//! others pass; with no fault, all ten pass.
use super::*;

/// The ten checks (module id prefixes) these proofs run, each time all of them.
const CHECKS: [&str; 10] = [
    "oidcc-discovery",
    "oidcc-server",
    "oidcc-idtoken-signature",
    "oidcc-userinfo-get",
    "oidcc-userinfo-post-body",
    "oidcc-prompt-none-not-logged-in",
    "oidcc-max-age-1",
    "oidcc-ensure-registered-redirect-uri",
    "oidcc-refresh-token",
    "oidcc-ensure-request-with-valid-pkce-succeeds",
];

/// The kit's run of the checks `only` through the proxy, its logins with the test user `user` first.
///
/// The gateway takes each TOTP code once (RFC 6238 §5.2), and a new run's kit does not know which
/// codes the last one spent: each run logs in twice (its first login, `oidcc-max-age-1`'s second)
/// with the current and next codes of a user no other run starts with, so no run meets a spent
/// code (a retry counts as a failed login, and a few lock the account).
async fn run_checks(gw: &Gateway, issuer: &str, user: usize, only: &[&str]) -> Report {
    let mut profile = Profile::from_demo(&gw.demo).expect("a profile from demo.json");
    assert!(
        user < profile.users.len(),
        "the demo has {} test users, {} runs need one each",
        profile.users.len(),
        user + 1
    );
    profile.users.rotate_left(user);
    vigie_conformance::run(RunOptions {
        target: issuer.to_owned(),
        profile,
        ca_pem: gw.demo["ca_pem"].as_str().map(str::to_owned),
        out: None,
        only: only.iter().map(|s| (*s).to_owned()).collect(),
    })
    .await
    .expect("the kit runs")
}

/// Behind the proxy breaking nothing, the ten checks pass; with faults on, exactly the check of
/// each fault fails, for its reason. The faults go in groups that touch different checks (one
/// run each, the others passing alongside), as the demo's six users allow six runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_oidc_check_fails_behind_a_proxy_with_its_fault_and_only_it() {
    let (gw, issuer, switch) = proxy::gateway_behind().await;

    let started = std::time::Instant::now();
    let report = run_checks(&gw, &issuer, 0, &CHECKS).await;
    assert_eq!(report.outcomes.len(), CHECKS.len(), "{:#?}", report.outcomes.iter().map(|o| &o.id).collect::<Vec<_>>());
    assert_fails_exactly(&report, &[]);
    eprintln!("broken_oidc: the control run took {:?}", started.elapsed());

    let off = proxy::Faults::default();
    // In the order of CHECKS within each run, as the report lists them.
    let runs: [(proxy::Faults, &[(&str, &str)]); 4] = [
        (
            proxy::Faults { discovery_without_pkce: true, drop_nonce: true, ignore_max_age: true, ..off },
            &[
                ("oidcc-discovery", "code_challenge_methods_supported lacks S256"),
                ("oidcc-server", "the ID token's nonce is not the request's"),
                ("oidcc-max-age-1", "did not ask to log in again"),
            ],
        ),
        (
            proxy::Faults {
                id_token_bad_signature: true,
                userinfo_refuses_post_body: true,
                errors_to_any_redirect_uri: true,
                ..off
            },
            &[
                ("oidcc-idtoken-signature", "signature or claims do not verify with the JWKS key"),
                ("oidcc-userinfo-post-body", "userinfo by POST body answered 401"),
                ("oidcc-ensure-registered-redirect-uri", "redirected to an unregistered redirect_uri"),
            ],
        ),
        (
            proxy::Faults { userinfo_get_other_sub: true, ignore_prompt: true, refresh_not_rotated: true, ..off },
            &[
                ("oidcc-userinfo-get", "userinfo's sub differs from the ID token's"),
                ("oidcc-prompt-none-not-logged-in", "did not answer the client but 303"),
                ("oidcc-refresh-token", "the refresh token was not rotated"),
            ],
        ),
        (
            proxy::Faults { refresh_same_access_token: true, pkce_not_checked: true, ..off },
            &[
                ("oidcc-refresh-token", "answered the access token issued before"),
                ("oidcc-ensure-request-with-valid-pkce-succeeds", "a wrong code_verifier was answered 200"),
            ],
        ),
    ];
    for (run, (faults, expected)) in runs.into_iter().enumerate() {
        *switch.lock().expect("the switch") = faults;
        let report = run_checks(&gw, &issuer, run + 1, &CHECKS).await;
        assert_eq!(report.outcomes.len(), CHECKS.len());
        assert_fails_exactly(&report, expected);
    }
    // The other half of the PKCE check: a token endpoint refusing the right verifier. Every
    // login's code is refused then, so the check runs alone, with the sixth user.
    *switch.lock().expect("the switch") = proxy::Faults { valid_verifier_refused: true, ..off };
    let pkce = "oidcc-ensure-request-with-valid-pkce-succeeds";
    let report = run_checks(&gw, &issuer, 5, &[pkce]).await;
    assert_fails_exactly(&report, &[(pkce, "the token endpoint answered 400 to a valid request")]);
    eprintln!("broken_oidc: the six runs took {:?}", started.elapsed());
}
