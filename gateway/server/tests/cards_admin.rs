//! HR and medical affairs manage cards (seeds 000: "the IT department must not hold the cards"):
//! the admin API and who may call it, a card's life from request to loss, binding with the name
//! check, a lost card's sessions ending, the admin page, and the `vigie cards …` CLI.
use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::{Value, json};
use vigie_igc_sante::testpki::{CardSpec, TestCard, TestPki};

/// Paul Durand, the demo's médecin.
const PAUL_IDNAT: &str = "810100000011";
/// Léa Bernard, the demo's interne.
const LEA_IDNAT: &str = "810100000029";

pub(crate) async fn call(gw: &Gateway, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Resp {
    let http = gw.http();
    let mut req = if method == "GET" { http.get(gw.url(path)) } else { http.post(gw.url(path)) };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Resp::of(req.send().await.expect("gateway reachable")).await
}

pub(crate) fn demo_token(gw: &Gateway) -> String {
    gw.demo["admin_api"]["token"].as_str().expect("demo.json admin_api.token").to_owned()
}

fn assert_problem(r: &Resp, status: u16, detail_has: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{}", r.body);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains(detail_has), "detail {detail:?} should say {detail_has:?}");
}

async fn agent_id(gw: &Gateway, token: &str, query: &str) -> String {
    let r = call(gw, Some(token), "GET", &format!("/admin/api/identities?q={query}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let found = r.json()["identities"].as_array().expect("identities").clone();
    assert_eq!(found.len(), 1, "one agent for {query}: {found:?}");
    found[0]["id"].as_str().expect("id").to_owned()
}

async fn new_card(gw: &Gateway, token: &str, agent: &str, kind: &str) -> String {
    let r =
        call(gw, Some(token), "POST", "/admin/api/cards", Some(json!({ "identity_id": agent, "kind": kind }))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().expect("card id").to_owned()
}

async fn set_status(gw: &Gateway, token: &str, card: &str, status: &str, comment: Option<&str>) -> Resp {
    let body = json!({ "status": status, "comment": comment });
    call(gw, Some(token), "POST", &format!("/admin/api/cards/{card}/status"), Some(body)).await
}

/// A gateway whose card login trusts a generated test PKI (revocation not checked here: the
/// card-login tests cover CRLs).
async fn with_cards() -> (Gateway, TestPki) {
    with_cards_and(&[]).await
}

/// [`with_cards`], with more configuration.
async fn with_cards_and(extra: &[(&str, &str)]) -> (Gateway, TestPki) {
    let pki = TestPki::generate().expect("test PKI");
    // Inline, beside the demo's own card CA (`anchors`), which issued HR's CPE.
    let anchors = format!("[{:?}]", pki.anchors_pem());
    let mut env = vec![
        ("VIGIE_CARDS__ENABLED", "true"),
        ("VIGIE_CARDS__TRUST__ANCHORS_PEM", anchors.as_str()),
        ("VIGIE_CARDS__TRUST__CHECK_REVOCATION", "false"),
    ];
    env.extend_from_slice(extra);
    (Gateway::start(&env).await, pki)
}

/// A browser that presents this card's certificate in the TLS handshake (the card middleware).
fn card_browser<'g>(gw: &'g Gateway, card: &TestCard) -> Browser<'g> {
    gw.browser_with_card(&card.chain_pem, &card.key_pem)
}

fn audit_of<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_no_token_a_wrong_token_and_a_token_without_the_role() {
    let hr = random(32);
    let fido2_desk = random(32);
    let tokens = format!(
        "[{{name=\"hr\", token_hash=\"sha256:{}\", roles=[\"cards\"]}}, \
         {{name=\"fido2-desk\", token_hash=\"sha256:{}\", roles=[\"fido2\"]}}]",
        sha256_b64(&hr),
        sha256_b64(&fido2_desk)
    );
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &tokens)]).await;
    let path = "/admin/api/identities?q=durand";

    let none = call(&gw, None, "GET", path, None).await;
    assert_problem(&none, 401, "Authorization: Bearer");
    // RFC 6750 §3: the challenge names the scheme.
    assert!(none.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer ")), "{:?}", none.headers);
    let wrong = call(&gw, Some(&random(32)), "GET", path, None).await;
    assert_problem(&wrong, 401, "not configured");
    assert!(wrong.header("www-authenticate").is_some_and(|h| h.contains("invalid_token")));
    let roleless = call(&gw, Some(&fido2_desk), "GET", path, None).await;
    assert_problem(&roleless, 403, "does not have the role cards");
    // A session cookie is no way into the API.
    let (browser, ..) = logged_in(&gw, "demo-cli", &["demo.rh"]).await;
    let cookie = format!("{SESSION_COOKIE}={}", browser.cookie(SESSION_COOKIE).expect("session cookie"));
    let by_cookie = Resp::of(gw.http().get(gw.url(path)).header("cookie", cookie).send().await.unwrap()).await;
    assert_eq!(by_cookie.status, 401, "{}", by_cookie.body);

    let ok = call(&gw, Some(&hr), "GET", path, None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["identities"][0]["family_name"], "Durand");

    let refusal = gw.audit_line(|l| l["kind"] == "refused" && l["actor"] == "token:fido2-desk").await;
    assert_eq!(refusal["outcome"], "failure");
    assert!(refusal["object"].as_str().unwrap().contains("role:cards"), "{refusal}");
    let trail = gw.settled_audit().await;
    let refusals: Vec<(&str, &str)> = audit_of(&trail, "refused")
        .into_iter()
        .map(|l| (l["actor"].as_str().unwrap_or("-"), l["reason"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        refusals,
        [
            ("-", "no admin API token"),
            ("-", "unknown admin API token"),
            ("token:fido2-desk", "token without the role"),
            ("-", "no admin API token"),
        ],
        "no token, wrong token, role, cookie"
    );
    // Never the token itself: the file read once everything above is written.
    let all = std::fs::read_to_string(gw.demo["audit_file"].as_str().unwrap()).unwrap();
    assert!(!all.contains(&hr) && !all.contains(&fido2_desk));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_admin_token_is_refused_and_every_use_of_a_live_one_is_audited() {
    let (old, live) = (random(32), random(32));
    let tokens = format!(
        "[{{name=\"old\", token_hash=\"sha256:{}\", roles=[\"cards\"], expires_at=\"2020-01-01T00:00:00Z\"}}, \
         {{name=\"live\", token_hash=\"sha256:{}\", roles=[\"cards\"], expires_at=\"2999-01-01T00:00:00Z\"}}]",
        sha256_b64(&old),
        sha256_b64(&live)
    );
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &tokens)]).await;
    let path = "/admin/api/identities?q=durand";
    let expired = call(&gw, Some(&old), "GET", path, None).await;
    assert_problem(&expired, 401, "expired");
    assert!(expired.header("www-authenticate").is_some_and(|h| h.contains("invalid_token")));
    let refusal = gw.audit_line(|l| l["kind"] == "refused" && l["actor"] == "token:old").await;
    assert!(refusal["reason"].as_str().unwrap().contains("expired"), "{refusal}");

    let ok = call(&gw, Some(&live), "GET", path, None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let paul = ok.json()["identities"][0]["id"].as_str().expect("Paul's id").to_owned();
    let cards = call(&gw, Some(&live), "GET", &format!("/admin/api/identities/{paul}/cards"), None).await;
    assert_eq!(cards.status, 200, "{}", cards.body);
    let uses: Vec<(Value, Value)> = gw
        .settled_audit()
        .await
        .into_iter()
        .filter(|l| l["kind"] == "admin_api" && l["actor"] == "token:live")
        .map(|l| (l["outcome"].clone(), l["object"].clone()))
        .collect();
    assert_eq!(
        uses,
        [
            (json!("success"), json!("GET /admin/api/identities")),
            (json!("success"), json!(format!("GET /admin/api/identities/{paul}/cards"))),
        ],
        "one line per use"
    );
}

/// A 403 for want of a scope: RFC 6750 §3.1 `insufficient_scope`, the scope named in the
/// challenge (§3) and in the problem.
fn assert_insufficient_scope(r: &Resp, scope: &str) {
    assert_problem(r, 403, &format!("the scope {scope}"));
    assert_eq!(r.json()["missing_scope"], scope, "{}", r.body);
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains(&format!("scope=\"{scope}\"")),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_calls_only_within_its_scopes_and_a_token_without_scopes_only_reads() {
    let (reader, legacy) = (random(32), random(32));
    let tokens = format!(
        "[{{name=\"reader\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"cards:read\"]}}, \
         {{name=\"legacy\", token_hash=\"sha256:{}\", roles=[\"cards\", \"fido2\"]}}]",
        sha256_b64(&reader),
        sha256_b64(&legacy)
    );
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &tokens)]).await;
    let ok = call(&gw, Some(&reader), "GET", &format!("/admin/api/identities?q={PAUL_IDNAT}"), None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let paul = ok.json()["identities"][0]["id"].as_str().expect("Paul's id").to_owned();
    let create = json!({ "identity_id": paul, "kind": "cps" });
    let r = call(&gw, Some(&reader), "POST", "/admin/api/cards", Some(create.clone())).await;
    assert_insufficient_scope(&r, "cards:write");
    let refusal = gw.audit_line(|l| l["kind"] == "refused" && l["actor"] == "token:reader").await;
    assert!(refusal["reason"].as_str().unwrap().contains("scope cards:write"), "{refusal}");

    // A token configured before scopes existed keeps reading, and writes nothing.
    let r = call(&gw, Some(&legacy), "GET", &format!("/admin/api/identities/{paul}/cards"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&gw, Some(&legacy), "GET", &format!("/admin/api/identities/{paul}/fido2"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_insufficient_scope(&call(&gw, Some(&legacy), "POST", "/admin/api/cards", Some(create)).await, "cards:write");
    let code = format!("/admin/api/identities/{paul}/fido2/enrolment-code");
    assert_insufficient_scope(&call(&gw, Some(&legacy), "POST", &code, None).await, "keys:enrol");
    let revoke = gw.http().delete(gw.url(&format!("/admin/api/identities/{paul}/fido2/some-key"))).bearer_auth(&legacy);
    assert_insufficient_scope(&Resp::of(revoke.send().await.unwrap()).await, "keys:revoke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administer_policy_decides_every_admin_api_call_and_refuses_from_outside() {
    // 127.0.0.1 is outside the establishment's network here.
    let gw = Gateway::start(&[("VIGIE_POLICY__ZONES", r#"{internal=["10.0.0.0/8"]}"#)]).await;
    let token = demo_token(&gw);
    let r = call(&gw, Some(&token), "GET", "/admin/api/identities?q=durand", None).await;
    assert_problem(&r, 403, "policy");
    assert!(!r.body.contains("external-zone"), "no policy internals in the answer: {}", r.body);
    let line = gw.audit_line(|l| l["kind"] == "policy_decision" && l["subject"] == "token:demo-rh").await;
    assert_eq!(
        (line["outcome"].clone(), line["object"].clone()),
        (json!("failure"), json!("external-zone-rie-mie-only"))
    );
    assert_eq!(line["client_id"], "admin-api:cards:read", "{line}");
    let refusal = gw.audit_line(|l| l["kind"] == "refused" && l["actor"] == "token:demo-rh").await;
    assert!(refusal["reason"].as_str().unwrap().contains("external-zone-rie-mie-only"), "{refusal}");

    // From inside, the same call is allowed, by the policy, and that decision is audited too; so
    // is a write's.
    let gw = Gateway::start(&[]).await;
    let token = demo_token(&gw);
    let paul = agent_id(&gw, &token, PAUL_IDNAT).await;
    new_card(&gw, &token, &paul, "cps").await;
    let decisions: Vec<(Value, Value, Value)> = gw
        .settled_audit()
        .await
        .into_iter()
        .filter(|l| l["kind"] == "policy_decision" && l["subject"] == "token:demo-rh")
        .map(|l| (l["client_id"].clone(), l["outcome"].clone(), l["object"].clone()))
        .collect();
    assert_eq!(
        decisions,
        [
            (json!("admin-api:cards:read"), json!("success"), json!("administer-api-token-role-scope")),
            (json!("admin-api:cards:write"), json!("success"), json!("administer-api-token-role-scope")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_tracks_a_card_from_request_to_receipt_and_the_history_keeps_every_step() {
    let gw = Gateway::start(&[]).await;
    let token = demo_token(&gw);
    let paul = agent_id(&gw, &token, PAUL_IDNAT).await;
    let card = new_card(&gw, &token, &paul, "cps").await;

    let r = set_status(&gw, &token, &card, "ordered", Some("commande ANS 2026-118")).await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ordered")), "{}", r.body);
    let r = set_status(&gw, &token, &card, "received", None).await;
    assert_eq!(r.json()["next"], json!(["returned", "lost", "stolen", "expired"]), "{}", r.body);
    assert_eq!(r.json()["allows_login"], false);

    // Refusals say what to do.
    assert_problem(&set_status(&gw, &token, &card, "handed_over", None).await, 409, "binding");
    assert_problem(&set_status(&gw, &token, &card, "perdue", None).await, 400, "expected one of requested");
    assert_problem(&set_status(&gw, &token, &card, "ordered", None).await, 409, "may become returned");
    let long = "x".repeat(1001);
    assert_problem(&set_status(&gw, &token, &card, "lost", Some(&long)).await, 400, "longer than 1000");
    let extra = json!({ "status": "lost", "owner": "x" });
    let r = call(&gw, Some(&token), "POST", &format!("/admin/api/cards/{card}/status"), Some(extra)).await;
    assert_problem(&r, 400, "unknown field `owner`");
    assert_problem(&set_status(&gw, &token, "no-such-card", "lost", None).await, 404, "no card");
    let r =
        call(&gw, Some(&token), "POST", "/admin/api/cards", Some(json!({ "identity_id": "nobody", "kind": "cps" })))
            .await;
    assert_problem(&r, 404, "no agent");
    let r = call(&gw, Some(&token), "POST", "/admin/api/cards", Some(json!({ "identity_id": paul, "kind": "vitale" })))
        .await;
    assert_problem(&r, 400, "`kind` must be");

    let r = call(&gw, Some(&token), "GET", &format!("/admin/api/cards/{card}/events"), None).await;
    let events = r.json()["events"].as_array().expect("events").clone();
    let steps: Vec<(&str, Option<&str>)> =
        events.iter().map(|e| (e["status"].as_str().unwrap(), e["comment"].as_str())).collect();
    assert_eq!(
        steps,
        vec![("requested", None), ("ordered", Some("commande ANS 2026-118")), ("received", None)],
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["by"] == "token:demo-rh"));
    let r = call(&gw, Some(&token), "GET", &format!("/admin/api/identities/{paul}/cards"), None).await;
    assert_eq!(r.json()["cards"][0]["id"], card.as_str(), "{}", r.body);

    let line = gw
        .audit_line(|l| l["kind"] == "card_status_changed" && l["reason"].as_str().unwrap().contains("-> received"))
        .await;
    assert_eq!((line["actor"].clone(), line["subject"].clone()), (json!("token:demo-rh"), json!(paul)));
    assert_eq!(audit_of(&gw.settled_audit().await, "card_created").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_whose_names_differ_binds_only_with_a_reason_and_the_reason_is_audited() {
    let (gw, pki) = with_cards().await;
    let token = demo_token(&gw);
    let paul = agent_id(&gw, &token, PAUL_IDNAT).await;
    let card = new_card(&gw, &token, &paul, "cps").await;
    let bind = |pem: String, reason: Option<&str>| json!({ "certificate_pem": pem, "identity_id": paul, "override_reason": reason });
    let path = format!("/admin/api/cards/{card}/bind");

    // His card carries his married name.
    let married = pki.issue(&CardSpec::cps(PAUL_IDNAT, "DURAND-MOREAU", "PAUL", "Médecin")).unwrap();
    let r = call(&gw, Some(&token), "POST", &path, Some(bind(married.chain_pem.clone(), None))).await;
    assert_problem(&r, 409, "not the agent's");
    assert_eq!(r.json()["card_names"]["surname"], "DURAND-MOREAU");
    assert_eq!(r.json()["agent_names"]["family_name"], "Durand");

    // Someone else's CPS: refused whatever the reason.
    let lea = pki.issue(&CardSpec::cps(LEA_IDNAT, "DURAND", "PAUL", "Médecin")).unwrap();
    let r = call(&gw, Some(&token), "POST", &path, Some(bind(lea.chain_pem.clone(), Some("confiance")))).await;
    assert_problem(&r, 409, "not their card");
    let line =
        gw.audit_line(|l| l["kind"] == "refused" && l["reason"].as_str().unwrap().contains("not their card")).await;
    assert_eq!(line["actor"], "token:demo-rh");
    // A card from a CA nobody trusts.
    let forged = pki.untrusted_ca.issue(&CardSpec::cps(PAUL_IDNAT, "DURAND", "PAUL", "Médecin")).unwrap();
    let r = call(&gw, Some(&token), "POST", &path, Some(bind(forged.chain_pem.clone(), Some("x")))).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_problem(
        &call(&gw, Some(&token), "POST", &path, Some(bind("garbage".into(), None))).await,
        400,
        "BEGIN CERTIFICATE",
    );

    // The certificate alone cannot override the name check (issue 12: anyone could send someone
    // else's certificate): the reason is given with the card in the reader.
    let r = call(&gw, Some(&token), "POST", &path, Some(bind(married.chain_pem.clone(), Some("nom d'usage")))).await;
    assert_problem(&r, 409, "card in the reader");
    let mut own = gw.browser_with_demo_card("demo.rh");
    own.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let mut hr = card_browser(&gw, &married);
    hr.cookies = own.cookies.clone();
    let page = hr.get(&format!("/admin/cards/bind?card={card}")).await;
    let csrf = page.hidden("csrf").expect("csrf");
    let form = [("card", card.as_str()), ("csrf", csrf.as_str()), ("override_reason", "nom d'usage")];
    let done = hr.post_form("/admin/cards/bind", &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let bound = call(&gw, Some(&token), "GET", &format!("/admin/api/cards/{card}"), None).await.json();
    assert_eq!((bound["status"].clone(), bound["allows_login"].clone()), (json!("handed_over"), json!(true)));
    assert_eq!(bound["override_reason"], "nom d'usage");
    assert_eq!(bound["cn"], PAUL_IDNAT);
    let line = gw.audit_line(|l| l["kind"] == "card_bound").await;
    assert!(line["actor"].as_str().unwrap().starts_with("staff:"), "{line}");
    assert!(line["reason"].as_str().unwrap().contains("overridden: nom d'usage"), "{line}");
    assert!(line["object"].as_str().unwrap().starts_with("card:"), "{line}");

    // One card, one record, through the API too.
    let own_card = pki.issue(&CardSpec::cps(PAUL_IDNAT, "DURAND", "PAUL", "Médecin")).unwrap();
    let (second, third) = (new_card(&gw, &token, &paul, "cps").await, new_card(&gw, &token, &paul, "cps").await);
    let to = |record: &str| format!("/admin/api/cards/{record}/bind");
    let r = call(&gw, Some(&token), "POST", &to(&second), Some(bind(own_card.chain_pem.clone(), None))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&gw, Some(&token), "POST", &to(&third), Some(bind(own_card.chain_pem, None))).await;
    assert_problem(&r, 409, "already bound");
}

/// Léa Bernard's CPE, or one with other names on it.
fn lea_cpe(pki: &TestPki, employee: &str, surname: &str, given_name: &str) -> TestCard {
    pki.issue(&CardSpec::cpe_nominative("CH DE TEST", "1760021832", employee, surname, given_name)).unwrap()
}

/// HR records a CPE for Léa and binds this certificate to it through the API.
async fn bind_lea_cpe_by_api(gw: &Gateway, card: &TestCard) -> (String, Resp) {
    let token = demo_token(gw);
    let lea = agent_id(gw, &token, LEA_IDNAT).await;
    let record = new_card(gw, &token, &lea, "cpe").await;
    let body = json!({ "certificate_pem": card.chain_pem, "identity_id": lea });
    let r = call(gw, Some(&token), "POST", &format!("/admin/api/cards/{record}/bind"), Some(body)).await;
    (record, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_bound_through_the_api_logs_in_only_once_its_holder_presents_it() {
    let (gw, pki) = with_cards().await;
    let token = demo_token(&gw);

    // A certificate sent without the card: names that differ cannot be overridden from afar
    // (someone else's card bound to Léa would log in as her).
    let someone_else = lea_cpe(&pki, "000000043", "MARTIN", "CAMILLE");
    let lea = agent_id(&gw, &token, LEA_IDNAT).await;
    let record = new_card(&gw, &token, &lea, "cpe").await;
    let body = json!({ "certificate_pem": someone_else.chain_pem, "override_reason": "nom d'usage" });
    let r = call(&gw, Some(&token), "POST", &format!("/admin/api/cards/{record}/bind"), Some(body)).await;
    assert_problem(&r, 409, "card in the reader");

    // Her own card: bound, but pending until she presents it.
    let cpe = lea_cpe(&pki, "000000042", "BERNARD", "LEA");
    let (card, r) = bind_lea_cpe_by_api(&gw, &cpe).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bound = r.json();
    assert_eq!(
        (bound["status"].clone(), bound["pending_presentation"].clone(), bound["allows_login"].clone()),
        (json!("received"), json!(true), json!(false)),
        "{bound}"
    );
    let line = gw.audit_line(|l| l["kind"] == "card_bound" && l["actor"] == "token:demo-rh").await;
    assert!(line["reason"].as_str().unwrap().contains("pending presentation"), "{line}");

    // She signs in with it: the handshake her card signed completes the binding.
    let mut browser = card_browser(&gw, &cpe);
    let a = Authz::new(&gw, "demo-app");
    let tokens = redeem(&gw, &a, &browser.sign_in_with_card(&a).await).await;
    assert_eq!(jwt_part(&tokens.id, 1)["sub"], lea.as_str());
    let now = call(&gw, Some(&token), "GET", &format!("/admin/api/cards/{card}"), None).await.json();
    assert_eq!((now["status"].clone(), now["pending_presentation"].clone()), (json!("handed_over"), json!(false)));
    let line = gw
        .audit_line(|l| l["kind"] == "card_bound" && l["reason"].as_str().is_some_and(|r| r.contains("presented")))
        .await;
    assert_eq!(line["subject"], lea.as_str(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_bound_through_the_api_and_not_presented_in_time_must_be_bound_again() {
    let (gw, pki) = with_cards_and(&[("VIGIE_CARDS__PENDING_PRESENTATION_SECS", "1")]).await;
    let cpe = lea_cpe(&pki, "000000042", "BERNARD", "LEA");
    let (card, r) = bind_lea_cpe_by_api(&gw, &cpe).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bound_at = r.json()["bound_at"].as_str().map(str::to_owned).expect("bound_at");
    let bound_at = time::OffsetDateTime::parse(&bound_at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("bound_at {bound_at:?} is RFC 3339: {e}"))
        .unix_timestamp();
    // The window (1 s, whole seconds) must pass on the clock: nothing the gateway shows marks its
    // end, and a presentation before it would complete the binding.
    let wait = (bound_at + 2 - now()).max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    let mut browser = card_browser(&gw, &cpe);
    let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
    let flow = r.location().split("flow=").nth(1).expect("flow id").to_owned();
    let refused = browser.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("associer de nouveau"), "{}", refused.body);
    let line = gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "failure").await;
    assert_eq!(line["reason"], "card_presentation_expired", "{line}");
    let still = call(&gw, Some(&demo_token(&gw)), "GET", &format!("/admin/api/cards/{card}"), None).await.json();
    assert_eq!(still["status"], "received", "{still}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_is_emailed_when_a_card_is_bound_to_their_account_and_a_relay_down_blocks_nothing() {
    let sink = crate::sponsorship::SmtpSink::start(0);
    let env = sink.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (gw, pki) = with_cards_and(&env).await;
    let cpe = lea_cpe(&pki, "000000042", "BERNARD", "LEA");
    let (_, r) = bind_lea_cpe_by_api(&gw, &cpe).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0]["rcpt_tos"], json!(["demo.interne@chu-demo.example"]), "{mails:#?}");
    let subject = mails[0]["subject"].as_str().unwrap();
    assert!(subject.contains("carte CPE a été associée à votre compte"), "{subject}");
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.starts_with("Bonjour Léa Bernard"), "French first: {body}");
    assert!(body.contains("à sa première utilisation"), "pending until presented: {body}");
    assert!(body.contains("service informatique au 02 37 44 72 36") && body.contains("A CPE card (serial "), "{body}");
    let line = gw.audit_line(|l| l["kind"] == "credential_notice").await;
    assert_eq!((line["outcome"].clone(), line["object"].clone()), (json!("success"), json!("card")), "{line}");

    // A relay that takes the connection and never answers: the binding is made all the same, its
    // answer and audit line written while the notice still waits on the relay; once the relay
    // goes away, the notice's failure is audited.
    let relay = crate::proxy::Proxy::start("127.0.0.1:9".parse().unwrap()).await;
    relay.blackhole().await;
    let port = relay.addr.port().to_string();
    // Each attempt waits on the relay up to a minute, far longer than the test takes to look.
    let mail = [&crate::sponsorship::dead_relay(&port)[..], &[("VIGIE_MAIL__TIMEOUT_SECS", "60")]].concat();
    let (gw, pki) = with_cards_and(&mail).await;
    let (record, r) = bind_lea_cpe_by_api(&gw, &lea_cpe(&pki, "000000042", "BERNARD", "LEA")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let trail = gw.settled_audit().await;
    assert_eq!(audit_of(&trail, "card_bound").len(), 1, "{trail:#?}");
    assert!(audit_of(&trail, "credential_notice").is_empty(), "the notice is still with the relay: {trail:#?}");
    relay.cut().await;
    let line = eventually(30, || async { gw.audit_lines().into_iter().find(|l| l["kind"] == "credential_notice") })
        .await
        .expect("the notice's failure is audited once the relay is gone");
    assert_eq!((line["outcome"].clone(), line["object"].clone()), (json!("failure"), json!("card")), "{line}");
    assert!(line["reason"].as_str().unwrap().contains("after 2 attempt(s)"), "{line}");
    let card = call(&gw, Some(&demo_token(&gw)), "GET", &format!("/admin/api/cards/{record}"), None).await.json();
    assert_eq!(card["pending_presentation"], true, "bound all the same: {card}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_declared_lost_ends_its_sessions_at_once_and_logs_in_no_more() {
    let (gw, pki) = with_cards().await;
    let token = demo_token(&gw);
    let paul = agent_id(&gw, &token, PAUL_IDNAT).await;
    let cps = pki.issue(&CardSpec::cps(PAUL_IDNAT, "DURAND", "PAUL", "Médecin")).unwrap();

    // HR signs in with their own CPE (administration needs a phishing-resistant MIE), then binds
    // Paul's card through the page, his card now in the reader of their workstation.
    let mut own = gw.browser_with_demo_card("demo.rh");
    let code = own.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    assert!(!code.is_empty());
    let mut hr = card_browser(&gw, &cps);
    hr.cookies = own.cookies.clone();
    let card = new_card(&gw, &token, &paul, "cps").await;
    let page = hr.get(&format!("/admin/cards/bind?card={card}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("DURAND") && page.body.contains("Durand"), "names side by side: {}", page.body);
    assert!(page.body.contains("Les noms concordent"), "{}", page.body);
    let csrf = page.hidden("csrf").expect("csrf");
    let forged = hr.post_form("/admin/cards/bind", &[("card", &card), ("csrf", "forged")]).await;
    assert_eq!(forged.status, 403, "a form without this session's token is refused: {}", forged.body);
    let done = hr.post_form("/admin/cards/bind", &[("card", &card), ("csrf", &csrf)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().contains("done=bound"), "{}", done.location());

    // Paul logs in with his card.
    let mut browser = card_browser(&gw, &cps);
    let a = Authz::new(&gw, "demo-app");
    let r = browser.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let flow = r.location().split("flow=").nth(1).expect("flow id").to_owned();
    let done = browser.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(done.status, 303, "card login: {}", done.body);
    let tokens = redeem(&gw, &a, &done.redirect_params()["code"]).await;
    assert_eq!(gw.introspect("demo-app", &tokens.access).await["active"], true);
    browser.code_without_login(&Authz::new(&gw, "demo-app")).await;

    // He loses it; HR declares it.
    let r = set_status(&gw, &token, &card, "lost", Some("perdue au self")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sessions_ended"], 1, "{}", r.body);

    // The session is gone, its tokens with it; the card no longer logs in.
    let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
    assert!(r.location().starts_with("/login?flow="), "back to the login page: {}", r.location());
    assert_eq!(gw.introspect("demo-app", &tokens.access).await["active"], false);
    let flow = r.location().split("flow=").nth(1).expect("flow id").to_owned();
    let refused = browser.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Cette carte est déclarée « perdue » : elle ne permet plus de se connecter."),
        "{}",
        refused.body
    );
    let line =
        gw.audit_line(|l| l["kind"] == "card_status_changed" && l["reason"].as_str().unwrap().contains("lost")).await;
    assert!(line["reason"].as_str().unwrap().contains("1 session(s) ended"), "{line}");
    // No way back without a new card.
    assert_problem(&set_status(&gw, &token, &card, "handed_over", None).await, 409, "binding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_uses_the_card_page_without_a_manual_and_staff_without_the_role_are_turned_away() {
    let gw = Gateway::start(&[]).await;

    // Not signed in: a way to sign in, through the built-in client, back to the page.
    let mut visitor = gw.browser();
    let r = visitor.get("/admin/cards").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains(r#"href="/admin/login?back=%2Fadmin%2Fcards""#), "{}", r.body);
    let r = visitor.get("/admin/login").await;
    assert_eq!(r.status, 303);
    let r = visitor.get(&r.location()).await;
    assert!(r.location().starts_with("/login?flow="), "the sign-in page: {} {}", r.location(), r.body);

    // A nurse has no business here.
    let (mut nurse, ..) = logged_in(&gw, "demo-cli", &["demo.infirmiere"]).await;
    let r = nurse.get("/admin/cards").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("grant-role"), "{}", r.body);

    // HR with a password + TOTP session: the role is not enough, the policy on administration asks
    // for a card or a key (and /admin/login asks for exactly that).
    let (mut weak, ..) = logged_in(&gw, "demo-cli", &["demo.rh"]).await;
    let r = weak.get("/admin/cards").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("carte CPS/CPE ou clé FIDO2"), "{}", r.body);
    let r = weak.get("/admin/login").await;
    let r = weak.get(&r.location()).await;
    assert!(r.location().starts_with("/login?flow="), "a stronger login is asked: {}", r.location());
    let page = weak.get(&r.location()).await;
    assert!(!page.body.contains(r#"action="/login/password""#), "no password form: {}", page.body);
    gw.audit_line(|l| {
        l["kind"] == "policy_decision"
            && l["client_id"] == "vigie-admin"
            && l["outcome"] == "failure"
            // No policy permits a password + TOTP session to administer: none decided.
            && l["object"] == "default-deny"
    })
    .await;

    let mut hr = gw.browser_with_demo_card("demo.rh");
    hr.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    // Signing in through /admin/login with a session comes straight back, without the code.
    let r = hr.get("/admin/login").await;
    let r = hr.get(&r.location()).await;
    assert!(r.location().starts_with(&gw.url("/admin/cards?code=")), "{}", r.location());
    let r = hr.get(&r.location()).await;
    assert_eq!((r.status, r.location()), (303, "/admin/cards".to_owned()));

    let r = hr.get("/admin/cards?q=BERNARD").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let link = r.body.split("href=\"/admin/cards?agent=").nth(1).and_then(|s| s.split('"').next()).expect("agent link");
    let agent = hr.get(&format!("/admin/cards?agent={link}")).await;
    assert!(agent.body.contains("Bernard") && agent.body.contains("Aucune carte suivie"), "{}", agent.body);
    let csrf = agent.hidden("csrf").expect("csrf in the forms");

    let forged = hr.post_form("/admin/cards/create", &[("agent", link), ("kind", "cps"), ("csrf", "x")]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let r = hr
        .post_form(
            "/admin/cards/create",
            &[("agent", link), ("kind", "cps"), ("status", "ordered"), ("comment", "commande"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = hr.get(&r.location()).await;
    assert!(page.body.contains("La carte est enregistrée") && page.body.contains("commandée"), "{}", page.body);
    let card = page.hidden("card").expect("the card's form");

    // A step that does not exist is refused on the page, in words.
    let r = hr
        .post_form(
            "/admin/cards/status",
            &[("card", &card), ("agent", link), ("status", "handed_over"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("binding"), "{}", r.body);
    let r = hr
        .post_form(
            "/admin/cards/status",
            &[("card", &card), ("agent", link), ("status", "lost"), ("comment", "colis perdu"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = hr.get(&format!("{}&lang=en", r.location())).await;
    assert!(page.body.contains("sessions have ended") && page.body.contains("colis perdu"), "{}", page.body);
    let line = gw.audit_line(|l| l["kind"] == "card_status_changed").await;
    assert!(line["actor"].as_str().unwrap().starts_with("staff:"), "{line}");
}

pub(crate) fn vigie(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).envs(env.iter().copied()).output().expect("running vigie");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_admin_api_and_grants_the_role() {
    let gw = Gateway::start(&[]).await;
    let token = demo_token(&gw);
    let ca: PathBuf = gw.data_dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let api = ["--url", &gw.issuer, "--ca", ca];
    let env = [("VIGIE_ADMIN_TOKEN", token.as_str())];

    let (ok, out, err) = vigie(&[&["cards", "list", "Bernard"][..], &api].concat(), &env);
    assert!(ok, "{err}");
    let lea: Value = serde_json::from_str(&out).expect("JSON");
    let lea = lea["identities"][0]["id"].as_str().expect("Léa's id").to_owned();

    let (ok, out, err) =
        vigie(&[&["cards", "add", &lea, "--kind", "cpe", "--comment", "arrivée"][..], &api].concat(), &env);
    assert!(ok, "{err}");
    let card: Value = serde_json::from_str(&out).expect("JSON");
    let card = card["id"].as_str().expect("card id").to_owned();
    let (ok, _, err) = vigie(&[&["cards", "status", &card, "received"][..], &api].concat(), &env);
    assert!(ok, "{err}");
    let (ok, _, err) = vigie(&[&["cards", "status", &card, "requested"][..], &api].concat(), &env);
    assert!(!ok && err.contains("cannot go from received to requested"), "{err}");
    let (ok, out, err) = vigie(&[&["cards", "events", &card][..], &api].concat(), &env);
    assert!(ok, "{err}");
    let events: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(events["events"].as_array().map(Vec::len), Some(2), "{events}");
    let (ok, out, _) = vigie(&[&["cards", "list", "--agent", &lea][..], &api].concat(), &env);
    assert!(ok && out.contains("\"received\""), "{out}");

    // A wrong token, from --token: the API's words come back.
    let (ok, _, err) = vigie(&[&["cards", "list", "Bernard", "--token", "nope"][..], &api].concat(), &[]);
    assert!(!ok && err.contains("not configured"), "{err}");

    // A token for the configuration.
    let (ok, out, _) = vigie(&["admin", "new-token", "--name", "drh", "--role", "cards"], &[]);
    assert!(ok);
    let printed = out.lines().find_map(|l| l.strip_prefix("token = ")).expect("token printed").trim().to_owned();
    assert!(out.contains(&format!("token_hash = \"sha256:{}\"", sha256_b64(&printed))), "{out}");
    assert!(out.contains("scopes = [\"cards:read\", \"people:read\", \"feeds:read\"]"), "read-only unless told: {out}");
    let (ok, out, _) = vigie(&["admin", "new-token", "--role", "cards", "--scope", "cards:read,cards:bind"], &[]);
    assert!(ok && out.contains("scopes = [\"cards:read\", \"cards:bind\"]"), "{out}");
    let (ok, _, err) = vigie(&["admin", "new-token", "--role", "cards", "--scope", "keys:enrol"], &[]);
    assert!(!ok && err.contains("needs the role fido2"), "{err}");
    assert!(!vigie(&["admin", "new-token", "--role", "root"], &[]).0);

    // A token entry that would let anyone in, or nobody, stops the start with its key named.
    let bad = format!(
        "[{{name=\"x\", token_hash=\"the-token-itself\", roles=[\"root\"]}}, \
         {{name=\"y\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"keys:enrol\", \"cards:all\"]}}]",
        sha256_b64("y")
    );
    let scratch = temp_file("unused", "");
    let scratch = scratch.parent().unwrap().join("data");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:1", "--data-dir", scratch.to_str().unwrap()])
        .env("VIGIE_ADMIN__TOKENS", &bad)
        .output()
        .expect("vigie serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("`admin.tokens[0].token_hash`: expected `sha256:"), "{err}");
    assert!(err.contains("`admin.tokens[0].roles[0]`: unknown role \"root\""), "{err}");
    // A scope outside the token's roles, or unknown.
    assert!(err.contains("`admin.tokens[1].scopes[0]`: the scope keys:enrol needs the role fido2"), "{err}");
    assert!(err.contains("`admin.tokens[1].scopes[1]`: unknown scope \"cards:all\""), "{err}");

    // The IT team gives the nurse the role; she can then open the page.
    let dir = gw.data_dir.to_str().unwrap();
    let (ok, out, err) = vigie(&["users", "grant-role", "demo.infirmiere", "cards", "--data-dir", dir], &[]);
    assert!(ok && out.contains("granted"), "{out}{err}");
    let line = gw.audit_line(|l| l["kind"] == "role_changed").await;
    assert_eq!((line["object"].clone(), line["reason"].clone()), (json!("role:cards"), json!("granted")), "{line}");
    let (ok, _, err) = vigie(&["users", "grant-role", "demo.infirmiere", "superuser", "--data-dir", dir], &[]);
    assert!(!ok && err.contains("unknown role"), "{err}");
    // With the role, what stops her now is only the policy on administration: a card or a key.
    let (mut nurse, ..) = logged_in(&gw, "demo-cli", &["demo.infirmiere"]).await;
    let r = nurse.get("/admin/cards").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains("grant-role") && r.body.contains("carte CPS/CPE ou clé FIDO2"), "{}", r.body);
}
