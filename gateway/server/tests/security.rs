//! Fixes of the last security review, each against the real binary: a role removed through SCIM
//! is refused by every replica within the polling period; a person who left gets no code from
//! their SSO session, nor claims from `/userinfo`, before the revocation sweep; an account made
//! generic reads no more claims through a sensitive client's token; and many concurrent token
//! requests of one client with the right secret all pass, while the lockout still holds against
//! parallel guesses. docs/security.md lists each defence with its test.
use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::postgres::shared_database;
use common::redis::{RedisServer, Replica, ReplicaDemo, each_replica_refuses, sso_round_trip};
use common::*;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::replicas::{REDIRECT, VERIFIER, authorize_url, set_cookie};

static GW: OnceCell<Gateway> = OnceCell::const_new();

/// One gateway for the tests that change different demo persons.
async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

/// `vigie users …` on the gateway's data directory (another process, as ops run it).
fn users(gw: &Gateway, args: &[&str]) {
    let out = Command::new(BIN).arg("users").args(args).arg("--data-dir").arg(&gw.data_dir).output().expect("vigie");
    assert!(out.status.success(), "vigie users {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// RFC 6750 §3.1: a refused token gets 401 `invalid_token` with the challenge naming it.
fn assert_invalid_token(r: &Resp, says: &str) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_token", "{}", r.body);
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(r.json()["error_description"].as_str().is_some_and(|d| d.contains(says)), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_left_gets_no_code_from_their_session_even_before_the_sweep() {
    let gw = gw().await;
    let (mut b, _, _, _) = logged_in(gw, "demo-app", &["demo.infirmiere"]).await;
    let silent = || Authz::new(gw, "demo-app").with("prompt", "none");
    let r = b.authorize(&silent()).await;
    assert!(r.redirect_params().contains_key("code"), "SSO with prompt=none while active: {}", r.location());

    users(gw, &["set-status", "demo.infirmiere", "left"]);
    // At once: the sweep that ends the sessions of a leaver runs every 5 s.
    let r = b.authorize(&silent()).await;
    let p = r.redirect_params();
    assert_eq!(p.get("error").map(String::as_str), Some("login_required"), "OIDC Core §3.1.2.6: {p:?}");
    assert!(!p.contains_key("code"), "a code for a person who left: {p:?}");
    let cleared = r.set_cookie("__Host-vigie-session").unwrap_or_default();
    assert!(cleared.to_ascii_lowercase().contains("max-age=0"), "the session cookie is cleared: {cleared:?}");
    // The session is ended, not only refused: without prompt=none, the login page.
    let r = b.authorize(&Authz::new(gw, "demo-app")).await;
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_refuses_the_token_of_a_suspended_agent_at_once() {
    let gw = gw().await;
    let (_, _, _, tokens) = logged_in(gw, "demo-app", &["demo.interne"]).await;
    assert_eq!(gw.userinfo(&tokens.access).await.status, 200);
    users(gw, &["set-status", "demo.interne", "suspended"]);
    assert_invalid_token(&gw.userinfo(&tokens.access).await, "employment status is suspended");
}

/// `set-kind` ends no session and revokes no token: only userinfo's own check stops the token of
/// the DPI (a sensitive client, `generic-account-never-sensitive`) from reading claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_refuses_a_sensitive_clients_token_once_the_account_is_generic() {
    let gw = gw().await;
    let mut card = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(gw, "demo-dpi");
    let code = card.sign_in_with_card(&a).await;
    let tokens = redeem(gw, &a, &code).await;
    assert_eq!(gw.userinfo(&tokens.access).await.status, 200);
    users(gw, &["set-kind", "demo.medecin", "generic"]);
    assert_invalid_token(&gw.userinfo(&tokens.access).await, "generic-account-never-sensitive");
    users(gw, &["set-kind", "demo.medecin", "personal"]);
    assert_eq!(gw.userinfo(&tokens.access).await.status, 200, "personal again: the token reads claims again");
}

/// A client's back end redeems many codes at once from one address, on a replica whose counters
/// are in Redis (a deployment's store: each count is a round trip, so requests overlap): none is
/// refused for being concurrent. Then a burst of wrong secrets: at most the limit plus the few
/// checks in flight are checked, and the right secret is refused after it, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_concurrent_code_exchanges_with_the_right_secret_all_pass_and_the_lockout_holds() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("vigie-client-auth-{}-{}", std::process::id(), free_port()));
    let port = free_port();
    let replica = Replica::start(&dir, port, &redis, &format!("https://localhost:{port}"), &[]);
    let base = replica.base();
    let demo = ReplicaDemo::read(&dir);
    let r = demo.http.get(authorize_url(&base)).send().await.expect("authorize");
    let browser = set_cookie(&r, "__Host-vigie-browser");
    let login_path = r.headers()["location"].to_str().expect("location").to_owned();
    let r = demo.log_in(&base, &login_path, &browser, &demo.users[0]).await;
    assert_eq!(r.status(), 303, "login");
    let session = set_cookie(&r, "__Host-vigie-session");
    let mut codes = Vec::new();
    for _ in 0..60 {
        let r = demo.http.get(authorize_url(&base)).header("cookie", &session).send().await.expect("SSO");
        let location = r.headers()["location"].to_str().expect("location").to_owned();
        codes.push(query_of(&location).remove("code").unwrap_or_else(|| panic!("a code: {location}")));
    }
    let token = |secret: String, code: String| {
        let form = [
            ("client_id", "demo-cli".to_owned()),
            ("client_secret", secret),
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ];
        let req = demo.http.post(format!("{base}/token")).form(&form);
        async move { Resp::of(req.send().await.expect("token endpoint")).await }
    };
    let started = Instant::now();
    let answers = join_all(codes.iter().map(|c| token(demo.secret.clone(), c.clone()))).await;
    eprintln!("60 concurrent code exchanges in {:?}", started.elapsed());
    let refused: Vec<&str> = answers.iter().filter(|r| r.status != 200).map(|r| r.body.as_str()).collect();
    assert!(refused.is_empty(), "{} of 60 refused: {:?}", refused.len(), refused.first());

    let guesses = join_all((0..40).map(|_| token("wrong".into(), "abc".into()))).await;
    assert!(guesses.iter().all(|r| r.status == 401), "every wrong secret is refused");
    let checked = guesses.iter().filter(|r| r.header("retry-after").is_none()).count();
    eprintln!("{checked} of 40 concurrent wrong secrets were checked (limit 20)");
    assert!((20..=23).contains(&checked), "{checked} wrong secrets checked: the limit is 20, 4 at a time");
    let r = token(demo.secret.clone(), "abc".into()).await;
    assert_eq!((r.status, r.json()["error"].clone()), (401, json!("invalid_client")), "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("60"), "locked out: the right secret is not checked");
    drop(replica);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A policy of the establishment that opens the command-line client only to holders of the role
/// `cards` (a role a SCIM Group of that name grants): decided on the principal each replica caches
/// (the login page, asked before anyone is known, still offers the login).
const CLI_NEEDS_ROLE: &str = r#"
@id("test-cli-needs-role-cards")
forbid (principal is Vigie::Identity, action == Vigie::Action::"login_to_client", resource == Vigie::Client::"demo-cli")
unless { principal.roles.contains("cards") || principal == Vigie::Identity::"anonymous" };
"#;

/// Two replicas on one PostgreSQL and one Redis, the principal cache ten minutes long: a person
/// provisioned by SCIM and given the role by a SCIM Group gets SSO on both; a SCIM PATCH on A
/// empties the group, and both refuse the next SSO round trip within the polling period (1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_removed_through_scim_on_one_replica_is_refused_by_every_replica_within_seconds() {
    let Some(db) = shared_database("role_signal") else { return };
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("vigie-role-signal-{}-{}", std::process::id(), free_port()));
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("policy dir");
    let defaults = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default");
    for f in std::fs::read_dir(defaults).expect("default policies").flatten() {
        std::fs::copy(f.path(), policies.join(f.file_name())).expect("copy a policy");
    }
    std::fs::write(policies.join("90_test.cedar"), CLI_NEEDS_ROLE).expect("test policy");
    let (pa, pb) = (free_port(), free_port());
    let issuer = format!("https://localhost:{pa}");
    let policy_dir = policies.display().to_string();
    let env = [
        ("VIGIE_DIRECTORY__URL", db.url.as_str()),
        ("VIGIE_POLICY__DIR", policy_dir.as_str()),
        ("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "600"),
    ];
    let replica_a = Replica::start(&dir, pa, &redis, &issuer, &env);
    let replica_b = Replica::start(&dir, pb, &redis, &issuer, &env);
    let (a, b) = (replica_a.base(), replica_b.base());
    let demo = ReplicaDemo::read(&dir);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json")).unwrap();
    let token = doc["scim_api"]["token"].as_str().expect("scim_api.token").to_owned();
    let scim = |method: reqwest::Method, path: String, body: Value| {
        let req = demo.http.request(method, format!("{a}/scim/v2{path}")).bearer_auth(&token);
        async move {
            let r = req.header("content-type", "application/scim+json").body(body.to_string()).send().await;
            let r = r.expect("SCIM");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or_default())
        }
    };

    // A person provisioned by SCIM, with the credentials ops give them, and the role by a Group.
    let (status, person) = scim(
        reqwest::Method::POST,
        "/Users".into(),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "role.holder",
            "name": {"familyName": "Roux", "givenName": "Inès"},
            "active": true,
        }),
    )
    .await;
    assert_eq!(status, 201, "{person}");
    let vigie = |args: &[&str], stdin: Option<&str>| {
        let mut c = Command::new(BIN);
        c.arg("users").args(args).arg("--data-dir").arg(&dir).env("VIGIE_DIRECTORY__URL", &db.url);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("vigie users");
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("stdin");
        }
        let out = child.wait_with_output().expect("vigie users");
        assert!(out.status.success(), "vigie users {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let password = "Un-mot-de-passe-assez-long";
    vigie(&["set-password", "role.holder"], Some(&format!("{password}\n")));
    let printed = vigie(&["enroll-totp", "role.holder"], None);
    let secret = printed.lines().find_map(|l| l.strip_prefix("totp secret (base32): ")).expect("secret").trim();
    let user = json!({"username": "role.holder", "password": password, "totp_secret": secret});
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "cards",
        "members": [{"value": person["id"]}],
    });
    let (status, created) = scim(reqwest::Method::POST, "/Groups".into(), group).await;
    assert_eq!(status, 201, "{created}");
    let group_id = created["id"].as_str().expect("the group's id").to_owned();

    // Login on A, then SSO on each replica: each caches the principal it decided on.
    let r = demo.http.get(authorize_url(&a)).send().await.expect("authorize on A");
    let browser = set_cookie(&r, "__Host-vigie-browser");
    let login_path = r.headers()["location"].to_str().expect("location").to_owned();
    let r = demo.log_in(&a, &login_path, &browser, &user).await;
    assert_eq!(r.status(), 303, "login on A");
    assert!(r.headers()["location"].to_str().unwrap().contains("code="), "the role holder gets a code on A");
    let session = set_cookie(&r, "__Host-vigie-session");
    let (http, session) = (&demo.http, session.as_str());
    let sso = move |base: String| sso_round_trip(http, authorize_url(&base), session, REDIRECT);
    assert!(sso(b.clone()).await.contains_key("code"), "SSO on B while the role is held");
    assert!(sso(a.clone()).await.contains_key("code"), "SSO on A while the role is held");

    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "members", "value": []}],
    });
    let (status, patched) = scim(reqwest::Method::PATCH, format!("/Groups/{group_id}"), patch).await;
    assert_eq!(status, 200, "{patched}");
    // The mark is read each second: well under `directory.identity_cache_secs` (600 s here).
    each_replica_refuses(&[("B", &b), ("A", &a)], Instant::now(), Duration::from_secs(4), "access_denied", sso).await;
    drop((replica_a, replica_b));
    let _ = std::fs::remove_dir_all(&dir);
}
