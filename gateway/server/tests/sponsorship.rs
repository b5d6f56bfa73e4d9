//! Sponsorship (seeds 000, issue 7), end to end against the real binary and a real SMTP server
//! (Python aiosmtpd, `tests/smtp-sink`): a colleague of the same unit, signed in with their card,
//! vouches for a professional without a usable card, who answers their security questions on the
//! same screen; the temporary code logs in where the policies allow a sponsorship and nowhere
//! else, and expires; a lost card is suspended at once; both people get an e-mail.
use crate::common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vigie_igc_sante::testpki::{CardSpec, TestPki};

/// Paul Durand, the demo's médecin (UF1203, UF2101), who has the demo CPS.
const PAUL: &str = "demo.medecin";
const PAUL_IDNAT: &str = "810100000011";
/// Camille Martin, infirmière (UF1203): shares UF1203 with Paul.
const CAMILLE: &str = "demo.infirmiere";
/// Léa Bernard, interne (UF2101): shares UF2101 with Paul.
const LEA_IDNAT: &str = "810100000029";
const PHONE: &str = "02 37 44 72 36";

/// The SMTP sink: a real SMTP server keeping each message it accepts, decoded by Python's own
/// e-mail parser into `NNNN.json`.
pub(crate) struct SmtpSink {
    port: u16,
    dir: PathBuf,
    child: Child,
    _stdin: ChildStdin,
}

impl SmtpSink {
    /// Starts the sink (creating its virtualenv first if needed); `fail_first` messages are
    /// answered 451 (try again later) before any is accepted.
    pub(crate) fn start(fail_first: u32) -> SmtpSink {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp-sink");
        let setup = Command::new(root.join("setup")).status().expect("running tests/smtp-sink/setup");
        assert!(setup.success(), "tests/smtp-sink/setup failed (python3 with venv and pip access needed)");
        let port = free_port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("smtp-sink-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("sink.py"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .args(["--fail-first", &fail_first.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the sink says ready");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        let stdin = child.stdin.take().unwrap();
        SmtpSink { port, dir, child, _stdin: stdin }
    }

    /// The gateway's `[mail]` towards this sink (plain SMTP on loopback).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("VIGIE_MAIL__ENABLED", "true".to_owned()),
            ("VIGIE_MAIL__HOST", "127.0.0.1".to_owned()),
            ("VIGIE_MAIL__PORT", self.port.to_string()),
            ("VIGIE_MAIL__SECURITY", "plain".to_owned()),
            ("VIGIE_MAIL__FROM", "Vigie CHU <vigie@chu-demo.example>".to_owned()),
            ("VIGIE_MAIL__RETRY_DELAY_MS", "200".to_owned()),
            ("VIGIE_SPONSORSHIP__HELPDESK_PHONE", PHONE.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The messages received so far, in order.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()).collect()
    }

    /// Waits until `n` messages arrived (the gateway sends them in the background).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Value> {
        eventually(15, || async { Some(self.messages()).filter(|m| m.len() >= n) })
            .await
            .unwrap_or_else(|| panic!("{n} e-mails expected, got {:#?}", self.messages()))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `[mail]` towards a relay that is down (nothing listens on `port`): two attempts, 100 ms apart.
pub(crate) fn dead_relay(port: &str) -> [(&'static str, &str); 6] {
    [
        ("VIGIE_MAIL__ENABLED", "true"),
        ("VIGIE_MAIL__HOST", "127.0.0.1"),
        ("VIGIE_MAIL__PORT", port),
        ("VIGIE_MAIL__SECURITY", "plain"),
        ("VIGIE_MAIL__ATTEMPTS", "2"),
        ("VIGIE_MAIL__RETRY_DELAY_MS", "100"),
    ]
}

async fn start_gateway(extra: &[(&str, &str)], sink: Option<&SmtpSink>) -> Gateway {
    let mut env: Vec<(String, String)> = sink.map(SmtpSink::env).unwrap_or_default();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Gateway::start(&refs).await
}

/// A browser signed in with the demo médecin's CPS (phishing-resistant).
async fn paul_with_card(gw: &Gateway) -> Browser<'_> {
    let mut b = gw.browser_with_demo_card(PAUL);
    b.sign_in_with_card(&Authz::new(gw, "demo-app")).await;
    b
}

/// The identity id of a demo user, through HR's API (demo token).
async fn identity_id(gw: &Gateway, query: &str) -> String {
    let token = gw.demo["admin_api"]["token"].as_str().expect("admin_api.token");
    let r = Resp::of(
        gw.http().get(gw.url(&format!("/admin/api/identities?q={query}"))).bearer_auth(token).send().await.unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["identities"][0]["id"].as_str().expect("an identity").to_owned()
}

/// The values of the colleague radio buttons of a page.
fn colleagues(html: &str) -> Vec<String> {
    html.split(r#"name="colleague" value=""#).skip(1).filter_map(|s| s.split('"').next().map(str::to_owned)).collect()
}

/// Searches `q` on the sponsor's page: the colleagues listed and the form's CSRF token.
async fn search(b: &mut Browser<'_>, q: &str) -> (Vec<String>, Option<String>, Resp) {
    let page = b.get(&format!("/sponsorship?q={q}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    (colleagues(&page.body), page.hidden("csrf"), page)
}

async fn start(b: &mut Browser<'_>, csrf: &str, colleague: &str, reason: &str) -> Resp {
    b.post_form("/sponsorship/start", &[("csrf", csrf), ("colleague", colleague), ("reason", reason)]).await
}

/// The questions a page asks (`<label for="aN">text</label>`), in order.
fn questions(html: &str) -> Vec<String> {
    (0..10)
        .map_while(|i| {
            let start = format!(r#"<label for="a{i}">"#);
            let rest = html.split(&start).nth(1)?;
            rest.split("</label>").next().map(str::to_owned)
        })
        .collect()
}

/// The demo answer to a question (demo.json `users[].security_answers`), found by its wording.
fn demo_answer(gw: &Gateway, username: &str, question: &str) -> String {
    let user = gw.demo["users"].as_array().unwrap().iter().find(|u| u["username"] == username).unwrap();
    let id = if question.contains("animal") {
        "animal"
    } else if question.contains("naissance") || question.contains("born") {
        "naissance"
    } else if question.contains("star") {
        "star"
    } else {
        panic!("a question the demo user did not enrol: {question}")
    };
    user["security_answers"][id].as_str().expect("demo answer").to_owned()
}

/// Answers the questions of `page` for `username`: right (written differently: case, accents,
/// spaces) or wrong.
async fn answer(b: &mut Browser<'_>, page: &Resp, username: &str, right: bool) -> Resp {
    let asked = questions(&page.body);
    assert_eq!(asked.len(), 2, "two questions asked (sponsorship.asked): {}", page.body);
    let csrf = page.hidden("csrf").expect("csrf");
    let ceremony = page.hidden("ceremony").expect("ceremony");
    let mut form = vec![("csrf".to_owned(), csrf), ("ceremony".to_owned(), ceremony)];
    for (i, q) in asked.iter().enumerate() {
        let a = if right { format!("  {} ", demo_answer(b.gw, username, q).to_uppercase()) } else { "Rex".into() };
        form.push((format!("a{i}"), a));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post_form("/sponsorship/answer", &form).await
}

/// The temporary code of a granted page.
fn temporary_code(page: &Resp) -> String {
    assert_eq!(page.status, 200, "{}", page.body);
    let rest = page.body.split(r#"id="temporary-code""#).nth(1).expect("the code on the page");
    rest.split('>').nth(1).and_then(|s| s.split('<').next()).expect("code text").to_owned()
}

/// The whole sponsorship of `username` (found by `q`) for `reason`: the temporary code.
pub(crate) async fn sponsor(b: &mut Browser<'_>, q: &str, username: &str, reason: &str) -> String {
    let (found, csrf, _) = search(b, q).await;
    assert_eq!(found.len(), 1, "one colleague for {q}");
    let asked = start(b, &csrf.expect("csrf"), &found[0], reason).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let granted = answer(b, &asked, username, true).await;
    temporary_code(&granted)
}

/// A fresh browser logging in to `client` with the username and the temporary code.
async fn login_with_code<'g>(gw: &'g Gateway, client: &str, username: &str, code: &str) -> (Browser<'g>, Authz, Resp) {
    let mut b = gw.browser();
    let a = Authz::new(gw, client);
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&r.location()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let flow = r.location().split("flow=").nth(1).expect("flow").to_owned();
    let csrf = page.hidden("csrf").expect("the login page's csrf");
    let done = b
        .post_form("/login/sponsorship", &[("flow", &flow), ("csrf", &csrf), ("username", username), ("code", code)])
        .await;
    (b, a, done)
}

/// Whether a fresh browser's login page for `client` offers the temporary code's form.
async fn login_page_offers_sponsorship(gw: &Gateway, client: &str) -> bool {
    let mut b = gw.browser();
    let r = b.authorize(&Authz::new(gw, client)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&r.location()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body.contains(r#"action="/login/sponsorship""#)
}

/// A login page without the values that differ from one page to the next (flow, CSRF token).
fn without_form_tokens(page: &Resp) -> String {
    ["flow", "csrf"].iter().fold(page.body.clone(), |body, name| {
        let value = page.hidden(name).unwrap_or_else(|| panic!("a hidden {name}: {}", page.body));
        body.replace(&value, "")
    })
}

/// The end of the temporary credential a `sponsorship_granted` audit line names (Unix seconds).
pub(crate) fn credential_until(granted: &Value) -> i64 {
    let reason = granted["reason"].as_str().unwrap_or_default();
    let until = reason
        .strip_prefix("temporary credential until ")
        .and_then(|r| r.split(';').next())
        .unwrap_or_else(|| panic!("the credential's end in {granted}"));
    time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{until} is RFC 3339: {e}"))
        .unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_card_sponsored_by_same_unit_gets_24h_access() {
    // The relay refuses the first message once (451): the gateway retries.
    let sink = SmtpSink::start(1);
    let gw = start_gateway(&[], Some(&sink)).await;
    let mut paul = paul_with_card(&gw).await;

    // The search lists colleagues sharing a unit only.
    let (found, _, page) = search(&mut paul, "martin").await;
    assert_eq!(found.len(), 1, "{}", page.body);
    assert!(page.body.contains("Camille Martin"), "{}", page.body);
    assert!(search(&mut paul, "petit").await.0.is_empty(), "Luc Petit shares no unit with Paul");

    let granted_from = now();
    let code = sponsor(&mut paul, "camille", CAMILLE, "forgotten").await;
    let granted_by = now();
    assert_eq!(code.len(), 19, "XXXX-XXXX-XXXX-XXXX: {code}");

    // The code logs Camille in to the demo app (non-sensitive) as a sponsorship.
    assert!(login_page_offers_sponsorship(&gw, "demo-app").await, "the demo app's login page offers the code");
    let (_, a, done) = login_with_code(&gw, "demo-app", CAMILLE, &code.to_lowercase()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let tokens = redeem(&gw, &a, &done.redirect_params()["code"]).await;
    let claims = jwt_part(&tokens.id, 1);
    assert_eq!(claims["acr"], ACR_2FA, "two factors, not phishing-resistant: {claims}");
    assert!(claims["amr"].as_array().unwrap().contains(&json!("mfa")), "{claims}");
    gw.audit_line(|l| l["kind"] == "login" && l["method"] == "sponsorship" && l["outcome"] == "success").await;

    // Not the DPI (sensitive): no policy permits a sponsorship there; the page does not offer it.
    assert!(!login_page_offers_sponsorship(&gw, "demo-dpi").await, "the DPI's login page has no code form");
    let (_, _, dpi) = login_with_code(&gw, "demo-dpi", CAMILLE, &code).await;
    assert_eq!(dpi.status, 403, "{}", dpi.body);
    assert!(!dpi.body.contains(r#"action="/login/sponsorship""#), "the step-up page offers no sponsorship");
    let refused = gw
        .audit_line(|l| l["kind"] == "policy_decision" && l["client_id"] == "demo-dpi" && l["method"] == "sponsorship")
        .await;
    assert_eq!(refused["outcome"], "failure", "{refused}");
    // Not the DMP: the default policy set forbids it by name (20_dmp.cedar, dmp-never-sponsorship).
    let eval = Command::new(BIN)
        .args(["policy", "eval", "--action", "access_dmp"])
        .args(["--principal", r#"{"category": "medical", "profession_code": "10", "has_idnat": true}"#])
        .args(["--resource", r#"{"type": "dmp"}"#])
        .args(["--context", r#"{"authentication": {"mie": "sponsorship"}, "network_zone": "internal"}"#])
        .output()
        .expect("vigie policy eval");
    let eval: Value = serde_json::from_slice(&eval.stdout).unwrap_or_else(|_| panic!("{eval:?}"));
    assert_eq!(eval["allowed"], false, "{eval}");
    assert!(eval["policies"].as_array().unwrap().contains(&json!("dmp-never-sponsorship")), "{eval}");

    // Two e-mails, one each, saying who, when, and whom to call.
    let mails = sink.wait_for(2).await;
    let to = |addr: &str| mails.iter().find(|m| m["rcpt_tos"] == json!([addr])).unwrap_or_else(|| panic!("{mails:#?}"));
    let to_paul = to("demo.medecin@chu-demo.example");
    assert!(to_paul["subject"].as_str().unwrap().contains("vous avez parrainé Camille Martin"), "{to_paul}");
    let body = to_paul["body"].as_str().unwrap();
    assert!(body.contains("Vous venez de parrainer l'utilisateur Camille Martin le "), "{body}");
    assert!(body.contains(&format!("service informatique au {PHONE}")), "{body}");
    assert!(body.contains("carte oubliée"), "{body}");
    let to_camille = to("demo.infirmiere@chu-demo.example");
    let body = to_camille["body"].as_str().unwrap();
    assert!(body.contains("Vous venez d'être parrainé(e) par l'utilisateur Paul Durand le "), "{body}");
    assert!(body.contains("valable jusqu'au"), "{body}");
    assert!(body.contains(PHONE), "{body}");
    assert_eq!(to_camille["content_type"], "text/plain");
    assert!(to_camille["from"].as_str().unwrap().contains("vigie@chu-demo.example"));
    assert!(!body.contains(&code) && !to_paul["body"].as_str().unwrap().contains(&code), "the code is never mailed");

    // Audited from start to end; the relay's first refusal was retried.
    let camille_id = identity_id(&gw, "camille").await;
    let granted = gw.audit_line(|l| l["kind"] == "sponsorship_granted").await;
    assert_eq!(
        (granted["subject"].as_str(), granted["method"].as_str()),
        (Some(camille_id.as_str()), Some("forgotten"))
    );
    // 24 hours (docs/sponsorship.md), from the grant: the access ends then (a refresh after the
    // credential's end is refused: `the_temporary_credential_expires`); until then it goes on.
    let until = credential_until(&granted);
    assert!((granted_from + 86_400..=granted_by + 86_400).contains(&until), "{granted}");
    Tokens::of(&gw.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh)]).await);
    gw.audit_line(|l| l["kind"] == "sponsorship_opened" && l["subject"] == camille_id.as_str()).await;
    gw.audit_line(|l| l["kind"] == "sponsorship_answers" && l["outcome"] == "success").await;
    let decision = gw
        .audit_line(|l| l["kind"] == "policy_decision" && l["client_id"] == format!("sponsorship:{camille_id}"))
        .await;
    assert!(decision["object"].as_str().unwrap().contains("sponsor-same-unit-phishing-resistant"), "{decision}");
    let retried = gw.audit_line(|l| l["kind"] == "sponsorship_mail" && l["object"] == "to:sponsor").await;
    assert_eq!(retried["outcome"], "success");
    assert!(retried["reason"].as_str().unwrap().contains("2 attempt(s)"), "{retried}");
    gw.audit_line(|l| l["kind"] == "sponsorship_mail" && l["object"] == "to:sponsored" && l["outcome"] == "success")
        .await;
    let trail = std::fs::read_to_string(gw.data_dir.join("audit.jsonl")).unwrap_or_default();
    let trail = if trail.is_empty() { format!("{:?}", gw.audit_lines()) } else { trail };
    assert!(!trail.contains(&code) && !trail.contains("Médor"), "no code, no answer in the audit trail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sponsor_sharing_no_unit_with_the_colleague_is_refused() {
    let gw = start_gateway(&[], None).await;
    let mut paul = paul_with_card(&gw).await;
    let luc = identity_id(&gw, "petit").await;
    let (_, csrf, _) = search(&mut paul, "martin").await;
    // Posted by hand: the search would not list him.
    let r = start(&mut paul, &csrf.unwrap(), &luc, "forgotten").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("unité fonctionnelle"), "{}", r.body);
    assert!(questions(&r.body).is_empty(), "no question asked");
    let line = gw.audit_line(|l| l["kind"] == "sponsorship_refused" && l["subject"] == luc.as_str()).await;
    assert!(line["reason"].as_str().unwrap().contains("refused by policy"), "{line}");
    let decision =
        gw.audit_line(|l| l["kind"] == "policy_decision" && l["client_id"] == format!("sponsorship:{luc}")).await;
    assert_eq!(decision["outcome"], "failure");
    // A form without this session's token is refused before anything.
    let forged = start(&mut paul, "forged", &luc, "forgotten").await;
    assert_eq!(forged.status, 403);
    let trail = gw.settled_audit().await;
    assert_eq!(trail.iter().filter(|l| l["kind"] == "sponsorship_refused").count(), 1, "{trail:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sponsor_signed_in_with_password_and_totp_is_refused() {
    let gw = start_gateway(&[], None).await;
    let (mut paul, ..) = logged_in(&gw, "demo-app", &[PAUL]).await;
    let (found, csrf, _) = search(&mut paul, "martin").await;
    let r = start(&mut paul, &csrf.unwrap(), &found[0], "forgotten").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(questions(&r.body).is_empty());
    let line = gw.audit_line(|l| l["kind"] == "sponsorship_refused").await;
    assert!(line["reason"].as_str().unwrap().contains("password_totp"), "{line}");
    // Nor may such a session enrol security questions.
    let page = paul.get("/account/questions").await;
    assert_eq!(page.status, 403, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_answers_are_counted_and_lock_the_colleague_out() {
    let gw = start_gateway(&[("VIGIE_SPONSORSHIP__MAX_WRONG_PER_COLLEAGUE", "2")], None).await;
    let mut paul = paul_with_card(&gw).await;
    let (found, csrf, _) = search(&mut paul, "martin").await;
    let (camille, csrf) = (found[0].clone(), csrf.unwrap());
    let asked = start(&mut paul, &csrf, &camille, "unusable").await;
    assert_eq!(asked.status, 200, "{}", asked.body);

    let again = answer(&mut paul, &asked, CAMILLE, false).await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains(r#"id="wrong-answers""#), "{}", again.body);
    assert!(!again.body.contains("temporary-code"));
    // A form posted twice finds its ceremony used up.
    let replay = answer(&mut paul, &asked, CAMILLE, true).await;
    assert_eq!(replay.status, 400, "{}", replay.body);

    let locked = answer(&mut paul, &again, CAMILLE, false).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.body.contains("sponsorship-locked"), "{}", locked.body);
    // Locked: even the right answers are not asked for any more.
    let r = start(&mut paul, &csrf, &camille, "unusable").await;
    assert_eq!(r.status, 429, "{}", r.body);

    let trail = gw.settled_audit().await;
    let wrong: Vec<&Value> = trail.iter().filter(|l| l["kind"] == "sponsorship_answers").collect();
    assert_eq!(wrong.len(), 2, "{wrong:#?}");
    assert!(
        wrong[1]["reason"].as_str().unwrap().contains("colleague 2/2")
            && wrong[1]["reason"].as_str().unwrap().contains("locked")
    );
    let refused = gw.audit_line(|l| l["kind"] == "sponsorship_refused").await;
    assert!(refused["reason"].as_str().unwrap().contains("locked"), "{refused}");
    assert!(!trail.iter().any(|l| l["kind"] == "sponsorship_granted"), "{trail:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_temporary_credential_expires() {
    const TTL: i64 = 4;
    let gw = start_gateway(&[("VIGIE_SPONSORSHIP__CREDENTIAL_TTL_SECS", &TTL.to_string())], None).await;
    let mut paul = paul_with_card(&gw).await;
    let code = sponsor(&mut paul, "martin", CAMILLE, "awaiting").await;
    let (mut camille, a, ok) = login_with_code(&gw, "demo-app", CAMILLE, &code).await;
    assert_eq!(ok.status, 303, "valid at first: {}", ok.body);
    let tokens = redeem(&gw, &a, &ok.redirect_params()["code"]).await;
    let granted = gw.audit_line(|l| l["kind"] == "sponsorship_granted").await;
    let until = credential_until(&granted);

    // The login's grant lives as long as the credential: refreshed (each refresh rechecks the
    // sponsorship) until it is refused, which must not happen before the credential's end.
    let refresh_token = tokio::sync::Mutex::new(tokens.refresh);
    let ended = eventually(TTL as u64 + 10, || {
        let (gw, refresh_token) = (&gw, &refresh_token);
        async move {
            let mut current = refresh_token.lock().await;
            let r = gw.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", &current)]).await;
            if r.status == 200 {
                *current = Tokens::of(&r).refresh;
                return None;
            }
            Some((r, now()))
        }
    })
    .await;
    let (refused, at) = ended.expect("the grant ends with the credential");
    assert!(at >= until, "refused at {at}, before the credential's end {until}");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_grant", "{}", refused.body);
    assert!(refused.body.contains("the sponsorship of this login has ended"), "{}", refused.body);
    // Nor does the session of that login answer for the credential any more.
    let sso = camille.authorize(&Authz::new(&gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(sso.redirect_params().get("error").map(String::as_str), Some("login_required"), "{}", sso.location());

    let (_, _, late) = login_with_code(&gw, "demo-app", CAMILLE, &code).await;
    assert_eq!(late.status, 401, "{}", late.body);
    let line =
        gw.audit_line(|l| l["kind"] == "login" && l["method"] == "sponsorship" && l["outcome"] == "failure").await;
    assert_eq!(line["reason"], "no temporary credential in force (none granted, expired or revoked)", "{line}");
    // A wrong code is refused too, saying nothing more on the page.
    let (_, _, wrong) = login_with_code(&gw, "demo-app", CAMILLE, "AAAA-BBBB-CCCC-DDDD").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        without_form_tokens(&wrong),
        without_form_tokens(&late),
        "the same page for an expired and a wrong code"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_card_declared_at_sponsorship_is_suspended_and_its_sessions_end() {
    let pki = TestPki::generate().expect("test PKI");
    let anchors = format!("[{:?}]", pki.anchors_pem());
    let gw = start_gateway(
        &[
            ("VIGIE_CARDS__ENABLED", "true"),
            ("VIGIE_CARDS__TRUST__ANCHORS_PEM", &anchors),
            ("VIGIE_CARDS__TRUST__CHECK_REVOCATION", "false"),
        ],
        None,
    )
    .await;
    let token = gw.demo["admin_api"]["token"].as_str().unwrap().to_owned();
    let api = |method: &str, path: &str, body: Option<Value>| {
        let http = gw.http();
        let mut req = if method == "GET" { http.get(gw.url(path)) } else { http.post(gw.url(path)) };
        req = req.bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { Resp::of(req.send().await.unwrap()).await }
    };
    // HR recorded and bound Paul's CPS.
    let paul_id = identity_id(&gw, PAUL_IDNAT).await;
    let paul_card = pki.issue(&CardSpec::cps(PAUL_IDNAT, "DURAND", "PAUL", "Médecin")).unwrap();
    let r = api("POST", "/admin/api/cards", Some(json!({ "identity_id": paul_id, "kind": "cps" }))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let card = r.json()["id"].as_str().unwrap().to_owned();
    let bind = json!({ "certificate_pem": paul_card.chain_pem, "identity_id": paul_id });
    let r = api("POST", &format!("/admin/api/cards/{card}/bind"), Some(bind)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Paul signed in with it this morning.
    let mut paul = gw.browser_with_card(&paul_card.chain_pem, &paul_card.key_pem);
    let a = Authz::new(&gw, "demo-app");
    let tokens = redeem(&gw, &a, &paul.sign_in_with_card(&a).await).await;

    // He lost it; Léa (same UF2101), with her own card, sponsors him.
    let lea_card = pki.issue(&CardSpec::cps(LEA_IDNAT, "BERNARD", "LEA", "Médecin")).unwrap();
    let mut lea = gw.browser_with_card(&lea_card.chain_pem, &lea_card.key_pem);
    lea.sign_in_with_card(&Authz::new(&gw, "demo-app")).await;
    let (found, csrf, _) = search(&mut lea, "durand paul").await;
    assert_eq!(found, std::slice::from_ref(&paul_id));
    let asked = start(&mut lea, &csrf.unwrap(), &paul_id, "lost").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let granted = answer(&mut lea, &asked, PAUL, true).await;
    let code = temporary_code(&granted);
    assert!(granted.body.contains("1 carte(s) suspendue(s), 1 session(s) fermée(s)"), "{}", granted.body);

    // The card is lost in the registry, at once; its session and tokens are gone.
    let r = api("GET", &format!("/admin/api/cards/{card}"), None).await;
    assert_eq!(r.json()["status"], "lost", "{}", r.body);
    let back = paul.authorize(&Authz::new(&gw, "demo-app")).await;
    assert!(back.location().starts_with("/login?flow="), "session ended: {}", back.location());
    assert_eq!(gw.introspect("demo-app", &tokens.access).await["active"], false);
    let flow = back.location().split("flow=").nth(1).unwrap().to_owned();
    let refused = paul.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(refused.status, 403, "the lost card logs in no more: {}", refused.body);
    let line = gw.audit_line(|l| l["kind"] == "card_status_changed").await;
    assert!(line["actor"].as_str().unwrap().starts_with("sponsorship:"), "{line}");
    assert!(line["reason"].as_str().unwrap().contains("1 session(s) ended"), "{line}");
    // And the temporary code works.
    let (_, _, ok) = login_with_code(&gw, "demo-app", PAUL, &code).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

/// The default policy set with the day's sponsorships bounded to `k` instead of 3: what an
/// establishment edits in `40_sponsor.cedar`. The directory is removed when the test is done.
fn policies_with_sponsorships_a_day(k: u32) -> PathBuf {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default"));
    let sponsor = std::fs::read_to_string(src.join("40_sponsor.cedar")).unwrap();
    let bounded = sponsor.replace("context.sponsorships_today >= 3", &format!("context.sponsorships_today >= {k}"));
    assert_ne!(bounded, sponsor, "the default policy bounds the day's sponsorships");
    let dir = temp_file("40_sponsor.cedar", &bounded).parent().unwrap().to_owned();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".cedar") && name != "40_sponsor.cedar" {
            std::fs::copy(e.path(), dir.join(name)).unwrap();
        }
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sponsor_sponsors_at_most_k_colleagues_a_day_as_the_policy_says() {
    let policies = policies_with_sponsorships_a_day(1);
    let gw = start_gateway(&[("VIGIE_POLICY__DIR", policies.to_str().unwrap())], None).await;
    let mut paul = paul_with_card(&gw).await;
    sponsor(&mut paul, "martin", CAMILLE, "forgotten").await;
    let (found, csrf, _) = search(&mut paul, "bernard").await;
    let r = start(&mut paul, &csrf.unwrap(), &found[0], "forgotten").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("nombre maximal de parrainages"), "{}", r.body);
    let line = gw.audit_line(|l| l["kind"] == "sponsorship_refused").await;
    let reason = line["reason"].as_str().unwrap();
    assert!(reason.contains("daily limit") && reason.contains("[sponsor-at-most-3-a-day]"), "{line}");
    // The policy decision itself is audited, with the policy that refused.
    let decision = gw
        .audit_line(|l| {
            l["kind"] == "policy_decision" && l["outcome"] == "failure" && l["object"] == "sponsor-at-most-3-a-day"
        })
        .await;
    assert_eq!(decision["client_id"], format!("sponsorship:{}", found[0]), "{decision}");
    remove_temp(&policies.join("40_sponsor.cedar"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_questions_are_enrolled_with_a_card_and_never_shown_back() {
    let gw = start_gateway(&[], None).await;
    let mut paul = paul_with_card(&gw).await;
    let page = paul.get("/account/questions").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Quel est votre surnom ?") && page.body.contains("(déjà enregistrée)"));
    assert!(!page.body.contains("Médor") && !page.body.contains("Chartres"), "answers never shown back");
    let csrf = page.hidden("csrf").expect("csrf");

    let two = paul
        .post_form("/account/questions", &[("csrf", &csrf), ("answer.surnom", "Popaul"), ("answer.star", "Bowie")])
        .await;
    assert_eq!(two.status, 422, "at least three answers: {}", two.body);
    let forged = paul.post_form("/account/questions", &[("csrf", "forged"), ("answer.surnom", "x")]).await;
    assert_eq!(forged.status, 403);
    let saved = paul
        .post_form(
            "/account/questions",
            &[("csrf", &csrf), ("answer.surnom", "Popaul"), ("answer.star", "David Bowie"), ("answer.mere", "Lefèvre")],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains(r#"id="saved""#), "{}", saved.body);
    assert!(!saved.body.contains("Popaul") && !saved.body.contains("Bowie") && !saved.body.contains("Lefèvre"));
    let line = gw.audit_line(|l| l["kind"] == "security_questions" && l["outcome"] == "success").await;
    assert!(line["reason"].as_str().unwrap().contains("surnom"), "{line}");
    assert!(!format!("{line}").contains("Popaul"));

    // Saving replaced the demo's three answers with these three (animal, naissance, star gone).
    let again = paul.get("/account/questions").await;
    assert_eq!(again.body.matches("(déjà enregistrée)").count(), 3, "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sponsorship_works_in_degraded_mode_with_psc_unreachable() {
    // Pro Santé Connect (and with it the external link) unreachable: nothing listens there.
    let dead = free_port();
    let issuer = format!("http://127.0.0.1:{dead}/auth/realms/esante-wallet");
    let sink = SmtpSink::start(0);
    let gw = start_gateway(
        &[
            ("VIGIE_PSC__ISSUER", &issuer),
            ("VIGIE_PSC__PROBE_INTERVAL_SECS", "1"),
            ("VIGIE_PSC__TIMEOUT_MS", "500"),
            ("VIGIE_HEALTH__MIN_STATE_MS", "500"),
            ("VIGIE_HEALTH__BACKOFF_INITIAL_MS", "200"),
            ("VIGIE_HEALTH__BACKOFF_MAX_MS", "500"),
        ],
        Some(&sink),
    )
    .await;
    let ready = eventually(30, || async {
        let r = Resp::of(gw.http().get(gw.url("/readyz")).send().await.ok()?).await;
        Some(r.json()).filter(|j| j["degraded"] == true)
    })
    .await;
    assert!(ready.is_some(), "the gateway went to degraded mode");

    let mut paul = paul_with_card(&gw).await;
    let code = sponsor(&mut paul, "martin", CAMILLE, "forgotten").await;
    let (_, _, ok) = login_with_code(&gw, "demo-app", CAMILLE, &code).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // The e-mails go through the establishment's own relay.
    assert_eq!(sink.wait_for(2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sponsor_without_a_session_signs_in_with_their_card_from_the_page() {
    let gw = start_gateway(&[], None).await;
    let mut paul = gw.browser_with_demo_card(PAUL);
    let page = paul.get("/sponsorship").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains(r#"href="/sponsorship/login""#), "{}", page.body);

    // Through the authorization endpoint, asking for a phishing-resistant MIE: the login page
    // offers the card, not the password form.
    let r = paul.get("/sponsorship/login").await;
    assert_eq!(r.status, 303);
    let authorize = paul.get(&r.location()).await;
    assert_eq!(authorize.status, 303, "{}", authorize.body);
    let login = paul.get(&authorize.location()).await;
    assert!(login.body.contains("/login/cps?flow="), "{}", login.body);
    assert!(!login.body.contains(r#"action="/login/password""#), "{}", login.body);
    let flow = authorize.location().split("flow=").nth(1).expect("flow").to_owned();
    let done = paul.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().starts_with(&gw.url("/sponsorship?")), "{}", done.location());
    let back = paul.get(&done.location()).await;
    assert_eq!((back.status, back.location()), (303, "/sponsorship".to_owned()), "the code leaves the address bar");
    let (found, csrf, _) = search(&mut paul, "martin").await;
    assert_eq!(found.len(), 1);
    assert!(csrf.is_some());
    // The same for the security questions page.
    let mut fresh = gw.browser_with_demo_card(PAUL);
    let questions = fresh.get("/account/questions").await;
    assert_eq!(questions.status, 401);
    assert!(questions.body.contains(r#"href="/sponsorship/login?to=questions""#), "{}", questions.body);
}

/// A mail relay that takes each connection and never says a word (an SMTP server speaks first):
/// the gateway's client waits on it until `mail.timeout_secs`. It counts the connections.
struct SilentRelay {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentRelay {
    fn start() -> SilentRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the relay");
        let port = listener.local_addr().expect("the relay's address").port();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, stopped) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Held open, unanswered, until the relay is dropped.
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    count.fetch_add(1, Ordering::SeqCst);
                    held.push(conn);
                }
            }
        });
        SilentRelay { port, accepted, stop, thread: Some(thread) }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop up so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mail_relay_never_blocks_the_sponsorship() {
    const RELAY_TIMEOUT_SECS: u64 = 4;
    let relay = SilentRelay::start();
    let port = relay.port.to_string();
    let timeout = RELAY_TIMEOUT_SECS.to_string();
    let mut env = dead_relay(&port).to_vec();
    env.push(("VIGIE_MAIL__TIMEOUT_SECS", &timeout));
    let gw = start_gateway(&env, None).await;
    let mut paul = paul_with_card(&gw).await;
    let (found, csrf, _) = search(&mut paul, "martin").await;
    let asked = start(&mut paul, &csrf.expect("csrf"), &found[0], "forgotten").await;
    assert_eq!(asked.status, 200, "{}", asked.body);

    let started = std::time::Instant::now();
    let granted = answer(&mut paul, &asked, CAMILLE, true).await;
    let took = started.elapsed();
    let code = temporary_code(&granted);
    // Granted while the e-mails still wait on the relay: nothing about them is audited yet.
    let trail = gw.settled_audit().await;
    assert!(!trail.iter().any(|l| l["kind"] == "sponsorship_mail"), "granted after the mails ended: {trail:#?}");
    // The one wall-clock bound: a grant that waited on the relay would take one relay timeout at
    // least; a normal grant takes a tenth of that or less, even on a loaded machine.
    assert!(took < Duration::from_secs(RELAY_TIMEOUT_SECS), "the grant took {took:?}");
    let (_, _, ok) = login_with_code(&gw, "demo-app", CAMILLE, &code).await;
    assert_eq!(ok.status, 303, "{}", ok.body);

    // Each e-mail: two attempts, each a connection the relay held until the timeout, then given up.
    let failed = eventually(4 * RELAY_TIMEOUT_SECS + 10, || async {
        let lines: Vec<Value> = gw.audit_lines().into_iter().filter(|l| l["kind"] == "sponsorship_mail").collect();
        (lines.len() == 2).then_some(lines)
    })
    .await
    .expect("both e-mails given up after their attempts");
    for role in ["to:sponsor", "to:sponsored"] {
        let line = failed.iter().find(|l| l["object"] == role).unwrap_or_else(|| panic!("{role}: {failed:#?}"));
        assert_eq!(line["outcome"], "failure", "{line}");
        assert!(line["reason"].as_str().unwrap().contains("after 2 attempt(s)"), "retried, then given up: {line}");
    }
    assert_eq!(relay.accepted(), 4, "two e-mails, two attempts each, each held by the relay");
}
