//! Paths of the Pro Santé Connect login the other tests leave out, end to end against the PSC
//! stand-in (conformance/psc-sandbox): PSC's return to `/logout/psc` (known, used and unknown
//! `state`), `vigie users withdraw` of an announcement, and the gateway authenticating to PSC's
//! token endpoint by `private_key_jwt` and by `tls_client_auth`.
//! Needs Node.js and `npm ci` in conformance/psc-sandbox: the tests fail saying so otherwise.
use crate::cli::{run, stdout};
use crate::common;
use crate::logout::logout_url;

use common::psc::{PSC_CLIENT_ID, PscSandbox};
use common::psc_client_auth::{JWT_CLIENT, MTLS_CLIENT, MTLS_SUBJECT_DN, PscClientAuth};
use common::*;
use serde_json::{Value, json};

const CLIENT_SECRET: &str = "s3cret-of-the-psc-paths-client";
/// Dr Marie Durand of the stand-in, the demo's `demo.durand`.
const DR_DURAND: &str = "810001234567";
/// Paul Martin, pharmacien, of the stand-in: nobody in the demo's directory.
const PAUL_MARTIN: &str = "810009876543";
/// What the "signed out" page says (`GET /logout/psc` with nothing to continue to).
const SIGNED_OUT: &str = "<h1>Se déconnecter</h1>\n<p>Vous êtes déconnecté. Vous pouvez fermer cette page.</p>";

async fn gateway(env: &[(String, String)]) -> Gateway {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Gateway::start(&env).await
}

/// A demo gateway whose PSC is the plain stand-in on `port` (client `vigie`, its secret).
async fn with_plain_psc(port: u16, jit: bool) -> Gateway {
    let mut env = vec![
        ("VIGIE_PSC__ISSUER".to_owned(), format!("http://127.0.0.1:{port}/auth/realms/esante-wallet")),
        ("VIGIE_PSC__CLIENT_ID".to_owned(), PSC_CLIENT_ID.to_owned()),
        ("VIGIE_PSC__CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS".to_owned(), "1".to_owned()),
    ];
    if jit {
        env.push(("VIGIE_PSC__JIT".to_owned(), "true".to_owned()));
    }
    gateway(&env).await
}

/// Authorization request → the login page, once it offers e-CPS (after the gateway's first
/// probe of PSC) → `/login/psc` → PSC, reached with `psc_http` (the login was chosen beforehand
/// with the stand-in's `next-login`, so PSC answers with a redirect back) → the gateway's callback,
/// on PSC's registered address, then on the issuer's host. The gateway's last answer.
async fn through_psc(b: &mut Browser<'_>, psc_http: &reqwest::Client, psc_issuer: &str, a: &Authz) -> Resp {
    let r = b.authorize(a).await;
    let login_page = r.location();
    let flow = query_of(&format!("https://x{login_page}"))["flow"].clone();
    let offered = eventually(15, || {
        let mut page = gw_browser_like(b);
        let login_page = login_page.clone();
        async move { page.get(&login_page).await.body.contains("/login/psc?flow=").then_some(()) }
    })
    .await;
    assert!(offered.is_some(), "the login page offers e-CPS once PSC answers the gateway's probe");
    let go = b.get(&format!("/login/psc?flow={flow}")).await;
    assert_eq!(go.status, 302, "off to PSC: {}", go.body);
    let mut url = go.location();
    assert!(url.starts_with(psc_issuer), "{url}");
    let callback = format!("https://127.0.0.1:{}/login/psc/callback?", b.gw.port);
    // oidc-provider's own hops (authorization, resume): a few at most.
    for _ in 0..5 {
        if url.starts_with(&callback) {
            let back = b.get(&url).await;
            assert_eq!(back.status, 302, "from PSC's registered address to the issuer's host: {}", back.body);
            return b.get(&back.location()).await;
        }
        let r = psc_http.get(&url).send().await.expect("PSC reachable");
        assert!(r.status().is_redirection(), "PSC answers the chosen login with a redirect: {}", r.status());
        let next = r.headers()["location"].to_str().expect("Location").to_owned();
        url = if next.starts_with('/') {
            format!("{}{next}", url::Url::parse(psc_issuer).expect("issuer").origin().ascii_serialization())
        } else {
            next
        };
    }
    panic!("PSC did not send the browser back to the gateway: {url}");
}

/// A browser with `b`'s cookies, to look at a page without changing `b`'s state.
fn gw_browser_like<'g>(b: &Browser<'g>) -> Browser<'g> {
    let mut other = b.gw.browser();
    other.cookies = b.cookies.clone();
    other
}

/// A PSC login through `demo-app` (the one chosen at the stand-in) that must succeed.
async fn psc_login<'g>(gw: &'g Gateway, psc_http: &reqwest::Client, psc_issuer: &str) -> (Browser<'g>, Tokens) {
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let done = through_psc(&mut b, psc_http, psc_issuer, &a).await;
    let code = done.redirect_params().get("code").cloned().unwrap_or_else(|| panic!("a code: {}", done.location()));
    let tokens = redeem(gw, &a, &code).await;
    (b, tokens)
}

fn plain_http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_psc_continues_to_the_client_once_per_state_and_shows_the_signed_out_page_otherwise() {
    let port = free_port();
    let gw = with_plain_psc(port, false).await;
    let psc = PscSandbox::start(port, CLIENT_SECRET, &[gw.port]);

    // Unknown state, none, or one longer than any the gateway makes: the session at the gateway
    // ended already; there is nowhere else to go.
    for query in ["?state=never-issued", "", &format!("?state={}", "a".repeat(65))] {
        let r = gw.browser().get(&format!("/logout/psc{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert!(r.body.contains(SIGNED_OUT), "{query}: {}", r.body);
        assert!(r.header("location").is_none());
    }

    psc.next_login(DR_DURAND, "ecps").await;
    let (mut b, tokens) = psc_login(&gw, &plain_http(), &psc.issuer).await;
    let back = gw.client("demo-app").post_logout_redirect_uris[0].clone();
    let logout =
        logout_url(&gw, &[("id_token_hint", &tokens.id), ("post_logout_redirect_uri", &back), ("state", "au-revoir")]);
    let to_psc = b.get(&logout).await;
    assert_eq!(to_psc.status, 303, "{}", to_psc.body);
    let at_psc = b.get(&to_psc.location()).await;
    assert_eq!(at_psc.status, 302, "PSC's logout ends its session at once: {}", at_psc.body);
    let return_leg = at_psc.location();
    let state = query_of(&return_leg).get("state").cloned().expect("the gateway's state comes back");
    assert_eq!(return_leg, format!("https://127.0.0.1:{}/logout/psc?state={state}", gw.port));

    let done = b.get(&return_leg).await;
    assert_eq!((done.status, done.location()), (303, format!("{back}?state=au-revoir")), "{}", done.body);
    assert!(done.set_cookie(SESSION_COOKIE).is_some_and(|c| c.to_ascii_lowercase().contains("max-age=0")));
    // The state serves once: a replay is the unknown-state branch.
    let replay = gw.browser().get(&return_leg).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert!(replay.body.contains(SIGNED_OUT), "{}", replay.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_withdraw_takes_back_an_announcement_so_that_the_first_psc_login_creates_nobody() {
    let port = free_port();
    let gw = with_plain_psc(port, true).await;
    let psc = PscSandbox::start(port, CLIENT_SECRET, &[gw.port]);
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let cli = |args: &[&str]| stdout(&run(&[args, &["--data-dir", dir][..]].concat()));

    let announced = cli(&["users", "announce", PAUL_MARTIN, "--family", "Martin", "--given", "Paul", "--days", "2"]);
    assert!(announced.starts_with(&format!("{PAUL_MARTIN} Paul Martin announced until ")), "{announced}");
    assert_eq!(cli(&["users", "withdraw", PAUL_MARTIN]), format!("announcement of {PAUL_MARTIN} withdrawn\n"));
    let line = gw.audit_line(|l| l["kind"] == "identity_announced" && l["reason"] == "withdrawn").await;
    assert_eq!(line["object"], format!("announcement:{PAUL_MARTIN}"), "{line}");
    assert_eq!(cli(&["users", "announced"]), "", "nothing left announced");
    let again = run(&["users", "withdraw", PAUL_MARTIN, "--data-dir", dir]);
    assert_eq!(
        (again.status.code(), String::from_utf8_lossy(&again.stderr).into_owned()),
        (Some(2), format!("vigie: no announcement for {PAUL_MARTIN}\n"))
    );

    psc.next_login(PAUL_MARTIN, "ecps").await;
    let mut b = gw.browser();
    let refused = through_psc(&mut b, &plain_http(), &psc.issuer, &Authz::new(&gw, "demo-app")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains(&format!(
            "Vous n&#39;êtes pas connu(e) de l&#39;établissement (identifiant national {PAUL_MARTIN})."
        )),
        "{}",
        refused.body
    );
    let trail = gw.settled_audit().await;
    assert!(!trail.iter().any(|l| l["method"] == "psc_jit"), "nobody created: {trail:#?}");

    // Announced again, the same login creates the identity: the withdrawal was what stopped it.
    cli(&["users", "announce", PAUL_MARTIN, "--family", "Martin", "--given", "Paul", "--days", "2"]);
    psc.next_login(PAUL_MARTIN, "ecps").await;
    let (_, tokens) = psc_login(&gw, &plain_http(), &psc.issuer).await;
    let sub = jwt_part(&tokens.id, 1)["sub"].clone();
    let line = gw.audit_line(|l| l["method"] == "psc_jit" && l["username"] == PAUL_MARTIN).await;
    assert_eq!(line["subject"], sub, "{line}");
}

/// The token request the stand-in logged for `client_id` (one login, one token request).
async fn token_call(psc: &PscClientAuth, client_id: &str) -> Value {
    let calls: Vec<Value> =
        psc.log_of("token").await.into_iter().filter(|e| e["client_id"] == client_id && e["status"] == 200).collect();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    calls[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_authenticates_to_psc_by_private_key_jwt_or_tls_client_auth_as_configured() {
    let psc = PscClientAuth::new(free_port());
    let jwt_gw = gateway(&psc.private_key_jwt_env()).await;
    let mtls_gw = gateway(&psc.tls_client_auth_env()).await;
    psc.start(&[jwt_gw.port, mtls_gw.port]);

    psc.next_login(JWT_CLIENT, DR_DURAND).await;
    let (_, tokens) = psc_login(&jwt_gw, &psc.http, &psc.issuer).await;
    assert_eq!(jwt_part(&tokens.id, 1)["acr"], ACR_2FA);
    let call = token_call(&psc, JWT_CLIENT).await;
    assert_eq!(call["client_auth"], "private_key_jwt", "{call}");
    let assertion = &call["client_assertion"];
    assert_eq!(
        (assertion["alg"].clone(), assertion["iss"].clone(), assertion["sub"].clone(), assertion["aud"].clone()),
        (
            json!("ES256"),
            json!(JWT_CLIENT),
            json!(JWT_CLIENT),
            json!(format!("{}/protocol/openid-connect/token", psc.issuer))
        ),
        "{call}"
    );
    assert_eq!(call["params"].get("client_secret"), None, "{call}");

    psc.next_login(MTLS_CLIENT, DR_DURAND).await;
    let (_, tokens) = psc_login(&mtls_gw, &psc.http, &psc.issuer).await;
    assert_eq!(jwt_part(&tokens.id, 1)["acr"], ACR_2FA);
    let call = token_call(&psc, MTLS_CLIENT).await;
    assert_eq!(call["client_auth"], "tls_client_auth", "{call}");
    assert_eq!(
        (call["tls_client_cert"].clone(), call["tls_client_cert_authorized"].clone()),
        (json!(MTLS_SUBJECT_DN), json!(true)),
        "{call}"
    );
    assert_eq!((call["params"].get("client_secret"), call["params"].get("client_assertion")), (None, None), "{call}");
}
