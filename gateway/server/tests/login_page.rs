//! The password + TOTP login page: login CSRF, what a failed login shows and records, TOTP
//! replay, account lockout and the per-address limit.
use crate::common;

use common::*;
use serde_json::Value;
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

// Each test that logs in owns one demo user, so that failures counted against one account
// never lock another test out.
const WRONG_PASSWORD_USER: &str = "demo.infirmiere";
const REPLAY_USER: &str = "demo.medecin";
const LOCKOUT_USER: &str = "demo.interne";

/// A browser on the login page of a fresh flow: (browser, flow, csrf).
async fn on_login_page(gw: &Gateway) -> (Browser<'_>, String, String) {
    let mut b = gw.browser();
    let r = b.authorize(&Authz::new(gw, "demo-app")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(b.cookie(BROWSER_COOKIE).is_some(), "the flow is bound to this browser");
    let page = b.get(&r.location()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let flow = page.hidden("flow").expect("flow");
    let csrf = page.hidden("csrf").expect("csrf");
    (b, flow, csrf)
}

async fn attempt(b: &mut Browser<'_>, flow: &str, csrf: &str, user: &str, password: &str, totp: &str) -> Resp {
    b.post_form(
        "/login/password",
        &[("flow", flow), ("csrf", csrf), ("username", user), ("password", password), ("totp", totp)],
    )
    .await
}

/// The text of the error shown on a refused login.
fn shown_error(r: &Resp) -> String {
    let start = r.body.find(r#"role="alert""#).unwrap_or_else(|| panic!("an error message: {}", r.body));
    let text = &r.body[start..];
    let from = text.find('>').expect("element") + 1;
    let to = text.find("</p>").expect("end of message");
    text[from..to].to_owned()
}

#[tokio::test]
async fn login_form_posted_without_the_browser_cookie_or_with_a_wrong_csrf_is_forbidden() {
    let gw = gw().await;
    let user = gw.user(WRONG_PASSWORD_USER).clone();
    let (mut b, flow, csrf) = on_login_page(gw).await;

    // Posted from another browser (login CSRF): the flow id and CSRF token alone do not do.
    let mut other = gw.browser();
    let r = attempt(&mut other, &flow, &csrf, &user.username, &user.password, "000000").await;
    assert_eq!(r.status, 403, "{}", r.body);

    let r = attempt(&mut b, &flow, "wrong-csrf", &user.username, &user.password, "000000").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b
        .post_form("/login/password", &[("flow", &flow), ("username", &user.username), ("password", &user.password)])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Another browser's binding cookie does not do either.
    let (other_browser, _, _) = on_login_page(gw).await;
    let mut mixed = gw.browser();
    mixed.cookies = other_browser.cookies.clone();
    let r = attempt(&mut mixed, &flow, &csrf, &user.username, &user.password, "000000").await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same_and_are_audited_without_secrets() {
    let gw = gw().await;
    let password = format!("Wrong-{}", random(9));
    let (mut b, flow, csrf) = on_login_page(gw).await;
    let code = gw.totp(WRONG_PASSWORD_USER).await;
    let wrong = attempt(&mut b, &flow, &csrf, WRONG_PASSWORD_USER, &password, &code).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let unknown_name = format!("nobody.{}", random(4).to_lowercase());
    let unknown = attempt(&mut b, &flow, &csrf, &unknown_name, &password, &code).await;
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    assert_eq!(shown_error(&wrong), shown_error(&unknown), "the message tells nothing of which was wrong");
    assert!(!wrong.body.contains(&password), "the password is not sent back");
    // The same form can be tried again.
    assert_eq!(wrong.hidden("flow").as_deref(), Some(flow.as_str()));

    let failures = eventually(5, || async {
        let lines: Vec<Value> = gw
            .audit_lines()
            .into_iter()
            .filter(|e| {
                e["kind"] == "login" && (e["username"] == WRONG_PASSWORD_USER || e["username"] == unknown_name.as_str())
            })
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .await
    .expect("both failed logins are in audit.jsonl");
    for e in &failures {
        assert_eq!(e["outcome"], "failure", "{e}");
        assert!(e["ip"].is_string() && e["at"].is_string(), "who and when: {e}");
        let fields = e.as_object().expect("an audit event is an object");
        for (k, v) in fields {
            assert!(!["password", "totp", "otp", "code"].contains(&k.as_str()), "no {k} field: {e}");
            let v = v.to_string();
            assert!(!v.contains(&password), "the password is not in the audit trail: {e}");
            if !["request_id", "sid", "subject", "at"].contains(&k.as_str()) {
                assert!(!v.contains(&code), "the TOTP code is not in the audit trail: {e}");
            }
        }
    }
    // Nor anywhere in the audit file.
    let whole = std::fs::read_to_string(gw.data_dir.join("audit.jsonl")).expect("audit.jsonl");
    assert!(!whole.contains(&password));
}

#[tokio::test]
async fn a_totp_code_used_once_is_refused_the_second_time() {
    let gw = gw().await;
    let user = gw.user(REPLAY_USER).clone();
    let code = gw.totp(REPLAY_USER).await;
    let (mut b, flow, csrf) = on_login_page(gw).await;
    let first = attempt(&mut b, &flow, &csrf, &user.username, &user.password, &code).await;
    assert_eq!(first.status, 303, "the first use logs in: {}", first.body);

    // RFC 6238 §5.2: the same code, seconds later, from another browser.
    let (mut b, flow, csrf) = on_login_page(gw).await;
    let replay = attempt(&mut b, &flow, &csrf, &user.username, &user.password, &code).await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert!(replay.set_cookie(SESSION_COOKIE).is_none(), "no session from a replayed code");
    assert_eq!(last_login_reason(gw, REPLAY_USER, 2).await, "TOTP code already used");

    // A fresh code still works: the replay did not lock anything.
    let fresh = gw.totp(REPLAY_USER).await;
    let ok = attempt(&mut b, &flow, &csrf, &user.username, &user.password, &fresh).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

#[tokio::test]
async fn five_failures_lock_the_account_even_against_the_right_password() {
    let gw = gw().await;
    let user = gw.user(LOCKOUT_USER).clone();
    let (mut b, flow, csrf) = on_login_page(gw).await;
    for i in 0..5 {
        let r = attempt(&mut b, &flow, &csrf, &user.username, &format!("wrong-{i}"), "000000").await;
        assert_eq!(r.status, 401, "failure {i}: {}", r.body);
    }
    let code = gw.totp(LOCKOUT_USER).await;
    let r = attempt(&mut b, &flow, &csrf, &user.username, &user.password, &code).await;
    assert_eq!(r.status, 401, "locked: the right password and code are refused: {}", r.body);
    assert!(r.set_cookie(SESSION_COOKIE).is_none());
    assert_eq!(last_login_reason(gw, LOCKOUT_USER, 6).await, "account locked after repeated failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_concurrent_wrong_passwords_are_evaluated_at_most_five_times() {
    // A gateway of its own, with room per address: only the account's lock is under test.
    let gw = Gateway::start(&[("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "100")]).await;
    let user = gw.user(LOCKOUT_USER).clone();
    let mut pages = Vec::new();
    for _ in 0..15 {
        pages.push(on_login_page(&gw).await);
    }
    let answers = futures_util::future::join_all(pages.iter_mut().enumerate().map(|(i, (b, flow, csrf))| {
        let wrong = format!("wrong-{i}");
        let username = user.username.clone();
        async move { attempt(b, flow, csrf, &username, &wrong, "000000").await.status }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == 401), "{answers:?}");
    let reasons = eventually(5, || async {
        let r: Vec<String> = gw
            .audit_lines()
            .into_iter()
            .filter(|e| e["kind"] == "login" && e["username"] == LOCKOUT_USER)
            .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
            .collect();
        (r.len() >= 15).then_some(r)
    })
    .await
    .expect("15 login events in the audit trail");
    let evaluated = reasons.iter().filter(|r| *r == "wrong password").count();
    let locked = reasons.iter().filter(|r| *r == "account locked after repeated failures").count();
    assert_eq!((evaluated, locked), (5, 10), "only the first 5 attempts are checked: {reasons:?}");

    // Locked: the right password and code are refused without being checked.
    let (mut b, flow, csrf) = on_login_page(&gw).await;
    let code = gw.totp(LOCKOUT_USER).await;
    let r = attempt(&mut b, &flow, &csrf, &user.username, &user.password, &code).await;
    assert_eq!(r.status, 401, "locked: {}", r.body);
    assert!(r.set_cookie(SESSION_COOKIE).is_none());
    assert_eq!(last_login_reason(&gw, LOCKOUT_USER, 16).await, "account locked after repeated failures");
}

/// The `reason` of the last of at least `n` login events of `username` in the audit trail.
async fn last_login_reason(gw: &Gateway, username: &str, n: usize) -> String {
    eventually(5, || async {
        let events: Vec<Value> =
            gw.audit_lines().into_iter().filter(|e| e["kind"] == "login" && e["username"] == username).collect();
        (events.len() >= n).then(|| events.last().map(|e| e["reason"].as_str().unwrap_or_default().to_owned()))?
    })
    .await
    .unwrap_or_else(|| panic!("{n} login events of {username} in the audit trail"))
}

#[tokio::test]
async fn too_many_attempts_from_one_address_get_429_with_retry_after() {
    // A gateway of its own: the per-address counter would disturb the other tests.
    let gw = Gateway::start(&[("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "3"), ("VIGIE_LOGIN__IP_WINDOW_SECS", "120")]).await;
    let (mut b, flow, csrf) = on_login_page(&gw).await;
    for i in 0..3 {
        let r = attempt(&mut b, &flow, &csrf, &format!("nobody{i}"), "wrong", "000000").await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    // Even the right credentials wait now.
    let user = gw.users[0].clone();
    let code = gw.totp(&user.username).await;
    let r = attempt(&mut b, &flow, &csrf, &user.username, &user.password, &code).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let retry = r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).expect("a Retry-After in seconds");
    assert!((1..=120).contains(&retry), "Retry-After {retry}");
}

#[tokio::test]
async fn login_page_of_an_unknown_flow_says_to_start_again() {
    let gw = gw().await;
    let r = gw.browser().get("/login?flow=no-such-flow").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let r = gw.browser().get("/login").await;
    assert_eq!(r.status, 400, "{}", r.body);
}
