//! Refresh in process, on the demo's state: with an ephemeral store that fails on command
//! (`vigie_core::testkit::FailingStore`), and with the directory changed under a live grant —
//! what the real binary cannot be made to do from outside.
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{App, test, web};
use serde_json::Value;
use vigie_core::cards::CardStatus;
use vigie_core::testkit::FailingStore;
use vigie_core::{Authentication, Factor, Mie};
use vigie_gateway::app::AppState;
use vigie_gateway::oidc::grant::{self, RefreshRecord};

/// The demo's state in its own data directory, its store wrapped to fail on command.
struct Demo {
    state: web::Data<AppState>,
    store: Arc<FailingStore>,
    demo: Value,
    dir: PathBuf,
}

impl Demo {
    async fn start() -> Demo {
        Self::start_with(|_| {}).await
    }

    /// The demo with its configuration changed by `change` before the state is built.
    async fn start_with(change: impl FnOnce(&mut vigie_gateway::config::Config)) -> Demo {
        vigie_gateway::jose::install();
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vigie-inproc-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut config = vigie_gateway::demo::prepare(&dir, "127.0.0.1:0".parse().expect("addr")).await.expect("demo");
        change(&mut config);
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
        let mut state = vigie_gateway::app::build_state(config, metrics).await.expect("state");
        let d = vigie_gateway::demo::seed(&state.config, &dir, state.ports.directory.as_ref()).await.expect("seed");
        vigie_gateway::demo::bind_demo_cpe(&dir, state.ports.directory.as_ref(), state.ports.cards.as_ref())
            .await
            .expect("cpe");
        let demo_json = vigie_gateway::demo::describe(&dir, &d).expect("demo.json");
        let demo = serde_json::from_str(&std::fs::read_to_string(demo_json).expect("demo.json")).expect("JSON");
        let store = Arc::new(FailingStore::new(state.ports.store.clone()));
        state.ports.store = store.clone();
        Demo { state: web::Data::new(state), store, demo, dir }
    }

    /// A demo user with a bound card in the registry: identity id, login name, card fingerprint
    /// and card id.
    async fn user_with_a_card(&self) -> (String, String, String, String) {
        for u in self.demo["users"].as_array().expect("users") {
            let username = u["username"].as_str().expect("username");
            let account =
                self.state.ports.directory.account_by_username(username).await.expect("directory").expect("user");
            let cards = self.state.ports.cards.cards_of(&account.identity_id).await.expect("cards");
            if let Some(card) = cards.iter().find(|c| c.fingerprint().is_some()) {
                let fingerprint = card.fingerprint().expect("fingerprint");
                return (account.identity_id, username.to_owned(), fingerprint, card.id.clone());
            }
        }
        panic!("a demo user has a bound card")
    }

    /// The tokens of a card login of `identity_id` to demo-app, as a code would give them.
    async fn tokens(&self, identity_id: &str, card: &str) -> grant::TokenResponse {
        self.tokens_for("demo-app", identity_id, card).await
    }

    /// The tokens of a card login (its SSO session started) of `identity_id` to `client_id`.
    async fn tokens_for(&self, client_id: &str, identity_id: &str, card: &str) -> grant::TokenResponse {
        let now = vigie_gateway::now();
        let auth =
            Authentication::new(identity_id.into(), Mie::Cpe, vec![Factor::Sc, Factor::Pin], now).with_credential(card);
        let browser = test::TestRequest::default().to_http_request();
        let (_, session, _) =
            vigie_gateway::session::start(&self.state, &browser, auth.clone()).await.expect("session");
        let client = self.state.client(client_id).expect("a demo client");
        let record = RefreshRecord {
            client_id: client_id.into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            authentication: auth,
            sid: session.sid,
            grant_id: vigie_gateway::secrets::random_token(16),
            family_expires_at: now + 3600,
            generation: 0,
            secret_hash: String::new(),
            acr: None,
        };
        grant::mint(&self.state, client, &record, None).await.unwrap_or_else(|_| panic!("minting"))
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// A token request of `client_id`, authenticated with its secret (HTTP Basic).
    async fn token(&self, client_id: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let app = test::init_service(
            App::new()
                .app_data(self.state.clone())
                .configure(|cfg| vigie_gateway::app::routes(cfg, &self.state.config)),
        )
        .await;
        let secret = self.demo["clients"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["client_id"] == client_id))
            .and_then(|c| c["client_secret"].as_str())
            .expect("the client's secret");
        let req = test::TestRequest::post()
            .uri("/token")
            .peer_addr("127.0.0.1:40000".parse().expect("addr"))
            .insert_header(("authorization", format!("Basic {}", b64(&format!("{client_id}:{secret}")))))
            .set_form(form)
            .to_request();
        let r = test::call_service(&app, req).await;
        let status = r.status().as_u16();
        let body: Value = serde_json::from_slice(&test::read_body(r).await).unwrap_or(Value::Null);
        (status, body)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A refresh whose rotation meets a store error when it writes the family's new record, after the
/// claim: the demo, the token refreshed, and the answer.
async fn refresh_failing_at_the_rotation() -> (Demo, String, u16, Value) {
    let demo = Demo::start().await;
    let (identity, _, card, _) = demo.user_with_a_card().await;
    let t = demo.tokens(&identity, &card).await;
    demo.store.fail_next_put("rt:");
    let (status, body) = demo.refresh(&t.refresh_token).await;
    (demo, t.refresh_token, status, body)
}

#[actix_web::test]
async fn a_refresh_retried_after_a_store_error_is_no_reuse() {
    let (demo, refresh_token, status, body) = refresh_failing_at_the_rotation().await;
    assert!(status >= 500, "{body}");
    // The client's retry of the same token is no second use of it (RFC 9700 §4.14.2).
    let (status, body) = demo.refresh(&refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[actix_web::test]
async fn a_store_that_does_not_answer_reaches_the_client_as_a_503_naming_no_internals() {
    let (_, _, status, body) = refresh_failing_at_the_rotation().await;
    // A store that does not answer is a 503 the client retries (issue 15), not a 500; what
    // failed is for the log only.
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(body["error_description"], "Vigie cannot complete the request now; retry in a few seconds", "{body}");
}

#[actix_web::test]
async fn a_refresh_after_the_agent_left_is_refused_and_ends_the_grant() {
    let demo = Demo::start().await;
    let (identity, account, card, _) = demo.user_with_a_card().await;
    let t = demo.tokens(&identity, &card).await;
    assert!(demo.state.ports.policy_attributes.set_employment_status(&account, "left").await.expect("directory"));
    let (status, body) = demo.refresh(&t.refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // The grant is revoked: its access token is dead too.
    assert!(grant::verify_access_token(&demo.state, &t.access_token).await.is_err());
    // Back to active, the revoked grant stays revoked.
    assert!(demo.state.ports.policy_attributes.set_employment_status(&account, "active").await.expect("directory"));
    let (status, body) = demo.refresh(&t.refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

#[actix_web::test]
async fn a_refresh_after_the_card_of_the_login_was_declared_lost_is_refused() {
    let demo = Demo::start().await;
    let (identity, _, card, card_id) = demo.user_with_a_card().await;
    let t = demo.tokens(&identity, &card).await;
    let (status, body) = demo.refresh(&t.refresh_token).await;
    assert_eq!(status, 200, "control: the card's grant refreshes: {body}");
    let rotated = body["refresh_token"].as_str().expect("refresh_token").to_owned();
    demo.state.ports.cards.set_status(&card_id, CardStatus::Lost, "test", Some("perdue")).await.expect("registry");
    let (status, body) = demo.refresh(&rotated).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| d.contains("lost")), "{body}");
}

#[actix_web::test]
async fn a_token_exchange_after_the_agent_left_is_refused_and_ends_the_grant() {
    let demo = Demo::start().await;
    let (identity, account, card, _) = demo.user_with_a_card().await;
    let t = demo.tokens_for("demo-dpi", &identity, &card).await;
    assert!(demo.state.ports.policy_attributes.set_employment_status(&account, "left").await.expect("directory"));
    let (status, body) = demo
        .token(
            "demo-dpi",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", &t.access_token),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("requested_token_type", "urn:ietf:params:oauth:token-type:saml2"),
                ("patient_ins", "207058575627097"),
            ],
        )
        .await;
    // RFC 8693 §2.2.2: a subject token "unacceptable based on policy" is invalid_request.
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    // The grant is revoked: its access and refresh tokens are dead.
    assert!(grant::verify_access_token(&demo.state, &t.access_token).await.is_err());
    assert!(demo.state.ports.policy_attributes.set_employment_status(&account, "active").await.expect("directory"));
    let (status, body) =
        demo.token("demo-dpi", &[("grant_type", "refresh_token"), ("refresh_token", &t.refresh_token)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

// Rolling upgrade: what the previous version left in a shared store (Redis) is still served.

#[actix_web::test]
async fn a_family_written_by_the_previous_version_still_refreshes() {
    let demo = Demo::start().await;
    let (identity, _, card, _) = demo.user_with_a_card().await;
    let t = demo.tokens(&identity, &card).await;
    let family = t.refresh_token.split('.').next().expect("family").to_owned();
    let key = vigie_gateway::session::keys::refresh_family(&family);
    let store = demo.state.ports.store.clone();
    let compact = store.get(&key).await.expect("store").expect("the family's record");
    let record = RefreshRecord::decode(&key, &family, &compact).expect("a record");
    // The previous version wrote the struct as a JSON object.
    let previous = serde_json::to_vec(&record).expect("JSON");
    assert_eq!(previous.first(), Some(&b'{'));
    store.put(&key, &previous, std::time::Duration::from_secs(3600)).await.expect("store");
    let (status, body) = demo.refresh(&t.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let rewritten = store.get(&key).await.expect("store").expect("the family's record");
    assert_eq!(rewritten.first(), Some(&b'['), "the new generation is written in the compact layout");
    let (status, _) = demo.refresh(&t.refresh_token).await;
    assert_eq!(status, 400, "the rotated token of the previous layout is spent");
}

/// A code of demo-app for a card login, stored as a replica would have stored it, with the
/// family id given; returns the code and its redirect URI.
async fn stored_code(demo: &Demo, family: impl FnOnce(&str) -> String) -> (String, &'static str) {
    use vigie_core::store::StoreExt;
    let (identity, _, card, _) = demo.user_with_a_card().await;
    let now = vigie_gateway::now();
    let auth = Authentication::new(identity, Mie::Cpe, vec![Factor::Sc, Factor::Pin], now).with_credential(card);
    let browser = test::TestRequest::default().to_http_request();
    let (_, session, _) = vigie_gateway::session::start(&demo.state, &browser, auth.clone()).await.expect("session");
    let (code, redirect) = (vigie_gateway::secrets::random_token(32), "http://127.0.0.1:8768/callback");
    let grant = vigie_gateway::oidc::CodeGrant {
        client_id: "demo-app".into(),
        redirect_uri: redirect.into(),
        scopes: vec!["openid".into()],
        nonce: None,
        code_challenge: None,
        authentication: auth,
        sid: session.sid,
        grant_id: family(&code),
        acr: None,
    };
    let key = vigie_gateway::session::keys::authorization_code(&code);
    demo.state.ports.store.put_json(&key, &grant, std::time::Duration::from_secs(60)).await.expect("store");
    (code, redirect)
}

/// Redeems `code`, checks what marks it as used, then that its replay is refused and revokes
/// what it issued.
async fn redeemed_once_and_replay_revokes(demo: &Demo, code: &str, redirect: &str, mark: Option<String>) {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect)];
    let (status, body) = demo.token("demo-app", &form).await;
    assert_eq!(status, 200, "{body}");
    let store = demo.state.ports.store.clone();
    let used = vigie_gateway::session::keys::used_authorization_code(code);
    assert_eq!(store.get(&used).await.expect("store"), mark.map(String::into_bytes));
    let (status, _) = demo.token("demo-app", &form).await;
    assert_eq!(status, 400, "a code is redeemed once");
    let (status, body) = demo.refresh(body["refresh_token"].as_str().expect("a refresh token")).await;
    assert_eq!(status, 400, "the replay revoked what the code issued: {body}");
}

#[actix_web::test]
async fn a_code_issued_by_the_previous_version_is_redeemed_once_and_its_replay_revokes() {
    let demo = Demo::start().await;
    // The previous version drew the family id at random, and marked a used code apart.
    let family = vigie_gateway::secrets::random_token(16);
    let (code, redirect) = stored_code(&demo, |_| family.clone()).await;
    redeemed_once_and_replay_revokes(&demo, &code, redirect, Some(family)).await;
}

#[actix_web::test]
async fn a_code_is_marked_used_by_its_family_alone() {
    let demo = Demo::start().await;
    let (code, redirect) = stored_code(&demo, grant::family_of_code).await;
    redeemed_once_and_replay_revokes(&demo, &code, redirect, None).await;
}

#[actix_web::test]
async fn while_the_previous_version_still_runs_grants_are_kept_as_it_reads_them() {
    let demo = Demo::start_with(|c| c.tokens.compact_families = false).await;
    let (code, redirect) = stored_code(&demo, grant::family_of_code).await;
    let family = grant::family_of_code(&code);
    redeemed_once_and_replay_revokes(&demo, &code, redirect, Some(family.clone())).await;
    let key = vigie_gateway::session::keys::refresh_family(&family);
    let record = demo.state.ports.store.get(&key).await.expect("store").expect("the family's record");
    assert!(serde_json::from_slice::<RefreshRecord>(&record).is_ok(), "the previous layout");
}

// Rotation by compare-and-set (issue 15): no entry kept per rotation.

#[actix_web::test]
async fn a_rotation_over_a_record_changed_since_it_was_read_hands_out_nothing() {
    let demo = Demo::start().await;
    let (identity, _, card, _) = demo.user_with_a_card().await;
    let refresh_token = demo.tokens(&identity, &card).await.refresh_token;
    let family = grant::RefreshToken::parse(&refresh_token).expect("a refresh token").family.to_owned();
    let (store, key) = (&demo.state.ports.store, vigie_gateway::session::keys::refresh_family(&family));
    let read = store.get(&key).await.expect("store").expect("the family's record");
    // Another request rotates the generation meanwhile.
    let (status, body) = demo.refresh(&refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let winner = store.get(&key).await.expect("store").expect("the family's record");
    let mut next = RefreshRecord::decode(&key, &family, &read).expect("a record");
    next.generation += 1;
    let client = demo.state.client("demo-app").expect("demo-app");
    let late = grant::mint_rotation(&demo.state, client, &next, &read).await.unwrap_or_else(|_| panic!("minting"));
    assert!(late.is_none(), "a rotation over a stale record must lose");
    assert_eq!(store.get(&key).await.expect("store"), Some(winner), "the loser wrote nothing");
}

#[actix_web::test]
async fn a_rotation_keeps_no_claim_unless_the_previous_version_may_still_run() {
    for compact in [true, false] {
        let demo = Demo::start_with(|c| c.tokens.compact_families = compact).await;
        let (identity, _, card, _) = demo.user_with_a_card().await;
        let t = demo.tokens(&identity, &card).await;
        let family = t.refresh_token.split('.').next().expect("family").to_owned();
        let (status, body) = demo.refresh(&t.refresh_token).await;
        assert_eq!(status, 200, "{body}");
        let claim = vigie_gateway::session::keys::refresh_rotation(&family, 0);
        let held = demo.state.ports.store.get(&claim).await.expect("store");
        // The previous version rotates by this claim alone: while it may run, both exclude each other.
        assert_eq!(held.is_some(), !compact, "compact_families = {compact}");
        let (status, _) = demo.refresh(&t.refresh_token).await;
        assert_eq!(status, 400, "the rotated token is spent (compact_families = {compact})");
    }
}

/// A session of `identity_id` opened in the demo's state, by its `sid`.
async fn open_session(demo: &Demo, identity_id: &str) -> String {
    let auth = Authentication::new(identity_id.into(), Mie::Cpe, vec![Factor::Sc, Factor::Pin], vigie_gateway::now());
    let browser = test::TestRequest::default().to_http_request();
    vigie_gateway::session::start(&demo.state, &browser, auth).await.expect("session").1.sid
}

#[actix_web::test]
async fn ending_a_persons_access_writes_each_sessions_end_once() {
    let demo = Demo::start().await;
    let (identity, _, _, _) = demo.user_with_a_card().await;
    let sid = open_session(&demo, &identity).await;
    let caller = vigie_gateway::web::http::Caller::internal("test");
    let target = vigie_core::directory::AccessTarget::Identity(identity.clone());
    let ended = vigie_gateway::session::end_access(&**demo.state, &caller, &target).await.expect("ended");
    assert_eq!(ended, 1);
    // The revocation mark is what every token check reads: written once per session, not once by
    // the ending and again by the logout it goes through.
    assert_eq!(demo.store.puts_under(&format!("revoked-sid:{sid}")), 1, "the session's end was written more than once");
    assert!(vigie_gateway::session::by_sid(demo.state.ports.store.as_ref(), &sid).await.expect("store").is_none());
}
