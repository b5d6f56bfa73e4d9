//! Logging out: RP-Initiated Logout 1.0 at the end-session endpoint, and Back-Channel Logout
//! 1.0 reaching the demo application.
use crate::common;

use common::*;
use serde_json::json;
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

pub(crate) fn logout_url(gw: &Gateway, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&gw.url("/logout")).expect("logout URL");
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

async fn assert_signed_out(b: &mut Browser<'_>) {
    let r = b.authorize(&Authz::new(b.gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(r.redirect_params().get("error").map(String::as_str), Some("login_required"), "no session any more");
}

#[tokio::test]
async fn logout_with_id_token_hint_returns_to_the_app_with_state_and_ends_session_and_tokens() {
    let gw = gw().await;
    let (mut b, _, _, t) = logged_in(gw, "demo-cli", &gw.all_usernames()).await;
    let cookie = b.cookie(SESSION_COOKIE).expect("session cookie").to_owned();
    assert_eq!(gw.introspect("demo-cli", &t.access).await["active"], true);

    let back = gw.client("demo-cli").post_logout_redirect_uris[0].clone();
    let state = random(12);
    let r = b
        .get(&logout_url(gw, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", &back), ("state", &state)]))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), format!("{back}?state={state}"), "back to the registered URI with state");
    assert!(
        r.set_cookie(SESSION_COOKIE).is_some_and(|c| c.to_ascii_lowercase().contains("max-age=0")),
        "cookie cleared"
    );

    assert_signed_out(&mut b).await;
    // The session is gone on the server too, not only from this browser.
    let mut stale = gw.browser();
    stale.cookies.insert(SESSION_COOKIE.into(), cookie);
    assert_signed_out(&mut stale).await;

    assert_eq!(gw.introspect("demo-cli", &t.access).await, json!({ "active": false }));
    assert_eq!(gw.userinfo(&t.access).await.status, 401);
    let r = gw.token("demo-cli", &[("grant_type", "refresh_token"), ("refresh_token", &t.refresh)]).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.body);
}

#[tokio::test]
async fn logout_to_an_unregistered_post_logout_redirect_uri_gets_an_error_page() {
    let gw = gw().await;
    let app_back = gw.client("demo-app").post_logout_redirect_uris[0].clone();
    for params in [
        vec![("client_id", "demo-cli"), ("post_logout_redirect_uri", "https://attacker.example/bye")],
        // Registered, but for another client.
        vec![("client_id", "demo-cli"), ("post_logout_redirect_uri", app_back.as_str())],
        // No client to check it against.
        vec![("post_logout_redirect_uri", app_back.as_str())],
        vec![("id_token_hint", "not.a.token"), ("post_logout_redirect_uri", app_back.as_str())],
    ] {
        let r = gw.browser().get(&logout_url(gw, &params)).await;
        assert_eq!(r.status, 400, "{params:?}: {}", r.body);
        assert!(r.header("location").is_none(), "{params:?}: no redirect");
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    }
}

#[tokio::test]
async fn logout_without_a_hint_asks_the_user_to_confirm() {
    let gw = gw().await;
    let (mut b, _, _, _) = logged_in(gw, "demo-app", &gw.all_usernames()).await;
    // A page of another site could send the browser here: nothing happens without the user.
    let r = b.get("/logout").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let confirm = r.hidden("confirm").expect("a confirmation form");
    b.code_without_login(&Authz::new(gw, "demo-app").with("prompt", "none")).await;

    let r = b.post_form("/logout", &[("confirm", &confirm)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_signed_out(&mut b).await;
    // The confirmation is single-use.
    let r = b.post_form("/logout", &[("confirm", &confirm)]).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn logging_out_of_another_app_ends_the_demo_app_session_by_back_channel() {
    // Its own gateway: the counts below are this logout's alone.
    let gw = &Gateway::start(&[]).await;
    let mut b = gw.browser();
    // The demo application's own login, as a person would do it in a browser.
    let start = b.get("/demo-app/").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let login = b.get(&start.location()).await;
    let (user, code) = gw.any_user_totp(&gw.all_usernames()).await;
    let callback = b.submit_login(&login.location(), &user.username, &user.password, &code).await;
    assert_eq!(callback.status, 303, "{}", callback.body);
    assert!(callback.location().starts_with(&gw.url("/demo-app/callback?")), "{}", callback.location());
    let done = b.get(&callback.location()).await;
    assert_eq!((done.status, done.location()), (303, "/demo-app/".to_owned()), "{}", done.body);
    let home = b.get("/demo-app/").await;
    assert_eq!(home.status, 200, "signed in to the demo app: {}", home.body);

    // The same SSO session signs in demo-cli, which then logs the user out.
    let a = Authz::new(gw, "demo-cli");
    let code = b.code_without_login(&a).await;
    let t = redeem(gw, &a, &code).await;
    let back = gw.client("demo-cli").post_logout_redirect_uris[0].clone();
    let r = b.get(&logout_url(gw, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", &back)])).await;
    assert_eq!((r.status, r.location()), (303, back), "{}", r.body);

    // The demo app learned it by back-channel: its own session is gone.
    let signed_out = eventually(10, || {
        let mut probe = gw.browser();
        probe.cookies = b.cookies.clone();
        async move { (probe.get("/demo-app/").await.status == 303).then_some(()) }
    })
    .await;
    assert!(signed_out.is_some(), "the demo app session ends after the back-channel logout");

    // One logout token sent, acknowledged, received: demo-app is the one demo client with a
    // back-channel endpoint, so nothing else is left to count once the gateway counted its answer.
    let acknowledged = r#"vigie_backchannel_logout_total{client="demo-app",result="ok"} "#;
    let metrics = eventually(10, || async {
        let metrics = gw.browser().get("/metrics").await.body;
        metrics.contains(acknowledged).then_some(metrics)
    })
    .await
    .expect("the gateway counts the demo app's answer");
    let value = |line: &str| metrics.lines().find_map(|l| l.strip_prefix(line)).map(str::to_owned);
    assert_eq!(value("vigie_demo_app_backchannel_logouts_total ").as_deref(), Some("1"), "{metrics}");
    let sent =
        |result: &str| value(&format!(r#"vigie_backchannel_logout_total{{client="demo-app",result="{result}"}} "#));
    assert_eq!((sent("ok").as_deref(), sent("failed")), (Some("1"), None), "{metrics}");
}

#[tokio::test]
async fn an_id_token_hint_from_another_browser_ends_only_this_browsers_session_once_confirmed() {
    let gw = gw().await;
    let (mut victim, _, _, t) = logged_in(gw, "demo-cli", &gw.all_usernames()).await;
    let back = gw.client("demo-cli").post_logout_redirect_uris[0].clone();
    let hinted = logout_url(gw, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", &back), ("state", "s")]);

    // A browser without a session (an attacker holding the victim's ID token): nothing to end.
    let r = gw.browser().get(&hinted).await;
    assert_eq!((r.status, r.location()), (303, format!("{back}?state=s")), "{}", r.body);
    victim.code_without_login(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(gw.introspect("demo-cli", &t.access).await["active"], true, "the victim's tokens still work");

    // A browser with its own session: asked to confirm, and only its own session ends.
    let (mut other, _, _, _) = logged_in(gw, "demo-app", &gw.all_usernames()).await;
    let r = other.get(&hinted).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let confirm = r.hidden("confirm").expect("a confirmation form");
    victim.code_without_login(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    let r = other.post_form("/logout", &[("confirm", &confirm)]).await;
    assert_eq!((r.status, r.location()), (303, format!("{back}?state=s")), "{}", r.body);
    assert_signed_out(&mut other).await;
    victim.code_without_login(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(gw.introspect("demo-cli", &t.access).await["active"], true, "the victim's tokens still work");
}
