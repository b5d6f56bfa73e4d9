//! Card login (`GET /login/cps`) against the real binary, with a test PKI reproducing IGC-Santé's
//! subject layouts (`vigie_igc_sante::testpki`) and its CRL served over real HTTP by the test.
//! Every card ends as it should: with a code, or with a page that says why and an audit line.
use crate::common;

use std::path::{Path, PathBuf};

use common::crl::CrlServer;
use common::*;
use serde_json::Value;
use vigie_igc_sante::testpki::{CardSpec, TestCard, TestPki};

const PHR: &str = "urn:vigie:loa:2fa-phr";

pub(crate) struct Pki {
    pub(crate) pki: TestPki,
    pub(crate) dir: PathBuf,
}

impl Pki {
    pub(crate) fn new(name: &str) -> Pki {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("card-login-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = TestPki::generate().expect("test PKI");
        std::fs::write(dir.join("anchors.pem"), pki.anchors_pem()).unwrap();
        Pki { pki, dir }
    }

    fn anchors(&self) -> String {
        self.dir.join("anchors.pem").display().to_string()
    }

    pub(crate) fn issue(&self, spec: CardSpec, crl: &CrlServer) -> TestCard {
        self.pki.issue(&spec.crl_url(&crl.url)).expect("a test card")
    }
}

fn toml_list(items: &[&str]) -> String {
    format!("[{}]", items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", "))
}

/// The gateway's environment for card login against this test PKI and CRL source.
pub(crate) fn card_env(pki: &Pki, crl: &CrlServer, cache: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("VIGIE_CARDS__TRUST__ANCHORS".to_owned(), toml_list(&[&pki.anchors()])),
        ("VIGIE_CARDS__TRUST__CRL_URLS".to_owned(), toml_list(&[&crl.url])),
        ("VIGIE_CARDS__TRUST__CRL_CACHE_DIR".to_owned(), cache.display().to_string()),
        ("VIGIE_CARDS__TRUST__REFRESH_SECS".to_owned(), "1".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

pub(crate) async fn start(env: &[(String, String)]) -> Gateway {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Gateway::start(&env).await
}

/// Authorization request for `client` → login page → `GET /login/cps`. Returns the final response.
pub(crate) async fn card_login(gw: &Gateway, card: &TestCard, client: &str) -> (Authz, Resp) {
    let mut browser = gw.browser_with_card(&card.chain_pem, &card.key_pem);
    let a = Authz::new(gw, client);
    let r = browser.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.location();
    let page = browser.get(&location).await;
    assert!(page.body.contains("/login/cps?flow="), "the login page offers the card: {}", page.body);
    let flow = query_of(&format!("https://x{location}"))["flow"].clone();
    (a, browser.get(&format!("/login/cps?flow={flow}")).await)
}

/// Logs in with the card and returns the ID token's claims.
async fn logs_in(gw: &Gateway, card: &TestCard) -> Value {
    let (a, done) = card_login(gw, card, "demo-dpi").await;
    assert_eq!(done.status, 303, "the card logs in: {}", done.body);
    let code = done.redirect_params().get("code").cloned().unwrap_or_else(|| panic!("a code: {}", done.location()));
    let tokens = a.redeem(gw, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    jwt_part(tokens.json()["id_token"].as_str().unwrap(), 1)
}

/// Tries to log in with the card: a 403 (a card was presented, and refused), the page saying
/// `words` (the French sentence the person at the workstation reads first), and one audit line of
/// a failed login by `method` (`cps`, or `cpe` for a CPE the gateway could read) with this code.
async fn refused(gw: &Gateway, card: &TestCard, method: &str, code: &str, words: &str) {
    let (_, done) = card_login(gw, card, "demo-dpi").await;
    assert_eq!(done.status, 403, "refused ({code}): {}", done.body);
    assert!(done.body.contains(words), "the page says {words:?}: {}", done.body);
    assert!(done.body.contains("/login?flow="), "and leads back to the login page: {}", done.body);
    let request_id = done.header("x-request-id").expect("a request id").to_owned();
    let line = gw.audit_line(|l| l["kind"] == "login" && l["request_id"] == request_id.as_str()).await;
    assert_eq!(
        (&line["outcome"], &line["method"], &line["reason"]),
        (&Value::from("failure"), &Value::from(method), &Value::from(code)),
        "{line}"
    );
}

fn import(gw: &Gateway, csv_rows: &str) {
    let csv = gw.data_dir.join("import.csv");
    std::fs::write(
        &csv,
        format!("matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username\n{csv_rows}"),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["users", "import"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&gw.data_dir)
        .output()
        .expect("vigie users import");
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_card_ends_as_it_should() {
    let pki = Pki::new("kinds");
    let now = now();
    let revoked_serial = vec![0x42, 0x42, 0x01];
    let crl =
        CrlServer::start(pki.pki.crl_der(&[(revoked_serial.clone(), now - 3600)], now - 60, now + 3600).unwrap()).await;
    let gw = start(&card_env(&pki, &crl, &pki.dir.join("crl-cache"), &[])).await;
    import(&gw, "009001,Santoni,Ghjuvanni,1970-01-01,Masseur-kinésithérapeute,MK,00B7010446,UF1203:100,gsantoni\n");

    // A CPS with an RPPS idNat: the demo médecin, SN+CN+GN in one multi-valued RDN.
    let cps = pki.issue(CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin").profession(10, "SM26"), &crl);
    let id = logs_in(&gw, &cps).await;
    assert_eq!(id["acr"], PHR);
    assert_eq!(id["amr"], serde_json::json!(["sc", "pin", "mfa"]));
    assert_eq!(id["idnat"], "810100000011");
    gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "success" && l["method"] == "cps").await;

    // A CPS whose idNat holds a letter (Corsican ADELI).
    let corsican = pki.issue(CardSpec::cps("00B7010446", "SANTONI", "GHJUVANNI", "Masseur-Kinésithérapeute"), &crl);
    assert_eq!(logs_in(&gw, &corsican).await["idnat"], "00B7010446");

    // A CPS of nobody in the establishment.
    let stranger = pki.issue(CardSpec::cps("899700075122", "PHARMACH0007512", "CAROLE", "Pharmacien"), &crl);
    refused(
        &gw,
        &stranger,
        "cps",
        "unknown_professional",
        "Aucun agent de l&#39;établissement n&#39;a l&#39;identifiant national 899700075122",
    )
    .await;

    // A nominative CPE not bound by HR yet, and a non-nominative CPE.
    let cpe = pki.issue(CardSpec::cpe_nominative("CHU EXEMPLE", "1760021832", "000000018", "MARTIN", "CAMILLE"), &crl);
    refused(&gw, &cpe, "cpe", "card_not_bound", "Cette carte CPE n&#39;est pas encore associée à un agent").await;
    let shared = pki.issue(CardSpec::cpe_non_nominative("CHU EXEMPLE", "1760021832", "000000099"), &crl);
    refused(&gw, &shared, "cpe", "card_not_nominative", "Cette CPE n&#39;est pas nominative").await;

    // Revoked (in the CRL), expired, from an untrusted CA, without the client-auth EKU.
    let revoked = pki.issue(CardSpec::cps("810100000029", "BERNARD", "LEA", "Médecin").serial(&revoked_serial), &crl);
    refused(&gw, &revoked, "cps", "revoked", "Cette carte a été révoquée : elle ne permet plus de se connecter.").await;
    let expired = pki.issue(
        CardSpec::cps("810100000029", "BERNARD", "LEA", "Médecin").valid(now - 400 * 86_400, now - 86_400),
        &crl,
    );
    refused(&gw, &expired, "cps", "expired", "Cette carte a expiré : utilisez votre nouvelle carte").await;
    let foreign = pki
        .pki
        .untrusted_ca
        .issue(&CardSpec::cps("810100000029", "BERNARD", "LEA", "Médecin").crl_url(&crl.url))
        .unwrap();
    refused(&gw, &foreign, "cps", "untrusted_issuer", "pas émise par une autorité de confiance (IGC-Santé)").await;
    let no_eku = pki.issue(CardSpec::cps("810100000029", "BERNARD", "LEA", "Médecin").without_client_auth_eku(), &crl);
    refused(&gw, &no_eku, "cps", "no_client_auth_eku", "Ce certificat de la carte ne sert pas à se connecter").await;

    // No card at all on the connection.
    let mut browser = gw.browser();
    let r = browser.authorize(&Authz::new(&gw, "demo-dpi")).await;
    let flow = query_of(&format!("https://x{}", r.location()))["flow"].clone();
    let none = browser.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(none.body.contains("Aucune carte"), "{}", none.body);

    // A card login outside a flow of this browser is refused (login CSRF).
    let mut other = gw.browser_with_card(&cps.chain_pem, &cps.key_pem);
    let stolen_flow = other.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(stolen_flow.status, 403, "{}", stolen_flow.body);
    crl.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_header_counts_only_from_a_card_ingress() {
    let pki = Pki::new("ingress");
    let now = now();
    let crl = CrlServer::start(pki.pki.crl_der(&[], now - 60, now + 3600).unwrap()).await;
    let card = pki.issue(CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin"), &crl);
    let header: String =
        url::form_urlencoded::byte_serialize(card.cert_pem.as_bytes()).collect::<String>().replace('+', "%20");

    // Only `cards.ingress_header_from` may vouch for a card: not a proxy merely trusted to name
    // the client's address (`server.trusted_proxies`), not anyone else.
    let cases = [
        (Some(("VIGIE_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)), false),
        (None, false),
        (Some(("VIGIE_CARDS__INGRESS_HEADER_FROM", r#"["127.0.0.0/8"]"#)), true),
    ];
    for (i, (key, card_ingress)) in cases.into_iter().enumerate() {
        let extra: Vec<(&str, &str)> = key.into_iter().collect();
        let gw = start(&card_env(&pki, &crl, &pki.dir.join(format!("cache-{i}")), &extra)).await;
        let mut browser = gw.browser();
        let a = Authz::new(&gw, "demo-dpi");
        let r = browser.authorize(&a).await;
        let flow = query_of(&format!("https://x{}", r.location()))["flow"].clone();
        let req = browser.http.get(gw.url(&format!("/login/cps?flow={flow}"))).header("ssl-client-cert", &header);
        let done = browser.send(req).await;
        if card_ingress {
            assert_eq!(done.status, 303, "from a card ingress the header is the card: {}", done.body);
            assert!(done.location().starts_with("http://127.0.0.1:8768/callback?code="), "{}", done.location());
        } else {
            assert_eq!(done.status, 403, "{key:?}: {}", done.body);
            gw.audit_line(|l| {
                l["kind"] == "refused"
                    && l["reason"].as_str().is_some_and(|r| r.contains("not in `cards.ingress_header_from`"))
            })
            .await;
            gw.audit_line(|l| l["kind"] == "login" && l["reason"] == "untrusted_certificate_header").await;
        }
    }
    crl.stop();
}

/// Sleeps until the Unix second `t` has passed (at once if it has): for a point in time that
/// nothing the gateway shows marks (the end of a CRL's grace), the clock itself must pass.
async fn sleep_until(t: i64) {
    let wait = (t - now()).max(0) as u64 + 1;
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_crl_source_goes_away_the_cache_serves_until_the_grace_ends() {
    let pki = Pki::new("grace");
    let now = now();
    // A CRL whose nextUpdate comes in 20 s, with 20 s of grace. The steps below wait for points in
    // time measured from `now`, not for fixed durations, so a slow start (a loaded CI machine)
    // does not move them; but three gateways must start and log the card in before nextUpdate +
    // grace, which 8 + 12 s did not always leave on two loaded cores.
    const NEXT: i64 = 20;
    const GRACE: i64 = 20;
    let crl = CrlServer::start(pki.pki.crl_der(&[], now - 60, now + NEXT).unwrap()).await;
    let card = pki.issue(CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin"), &crl);
    let cache = pki.dir.join("crl-cache");
    let grace_secs = GRACE.to_string();
    let grace = [("VIGIE_CARDS__TRUST__GRACE_SECS", grace_secs.as_str())];
    // Its ops listener tells what went wrong with the CRL source (the public port does not).
    let ops = format!("127.0.0.1:{}", free_port());
    let refuse = start(&card_env(&pki, &crl, &cache, &[grace[0], ("VIGIE_SERVER__OPS_LISTEN", &ops)])).await;
    let accept = start(&card_env(
        &pki,
        &crl,
        &pki.dir.join("crl-cache-accept"),
        &[grace[0], ("VIGIE_CARDS__TRUST__AFTER_GRACE", "accept")],
    ))
    .await;
    assert_eq!(logs_in(&refuse, &card).await["acr"], PHR);
    assert_eq!(logs_in(&accept, &card).await["acr"], PHR);

    // The source goes away: the cached CRL is still used, before and after its nextUpdate.
    crl.stop();
    assert_eq!(logs_in(&refuse, &card).await["acr"], PHR);
    // A restarted gateway, with no network to the CRL, reads the CRL from its disk cache.
    let restarted = start(&card_env(&pki, &crl, &cache, &grace)).await;
    assert_eq!(logs_in(&restarted, &card).await["acr"], PHR);
    // Past nextUpdate, ops see it: still ready (the cache serves), the CRL stale, its source in
    // error. Waiting for that on `/readyz` is waiting for nextUpdate to pass.
    let readyz = || async {
        let r = reqwest::get(format!("http://{ops}/readyz")).await.expect("/readyz");
        assert_eq!(r.status(), 200, "a stale CRL leaves the gateway ready");
        r.json::<Value>().await.expect("JSON")
    };
    let ready = eventually(NEXT as u64 + 10, || async {
        let ready = readyz().await;
        (ready["checks"]["card_crls"]["status"] == "degraded").then_some(ready)
    })
    .await
    .expect("the CRL is reported stale once its nextUpdate has passed");
    assert!(common::now() > now + NEXT, "not stale before nextUpdate: {ready}");
    assert!(common::now() < now + NEXT + GRACE, "the test reached this point within the grace");
    let crls = &ready["checks"]["card_crls"];
    let source = crls["sources"].as_array().unwrap().iter().find(|s| s["url"] == crl.url.as_str());
    let source = source.unwrap_or_else(|| panic!("the CRL source is listed: {ready}"));
    // The source went away: nothing listens at its address any more.
    assert!(source["last_error"].as_str().is_some_and(|e| e.contains("Connection refused")), "{source}");
    assert_eq!(logs_in(&refuse, &card).await["acr"], PHR, "within grace");

    // Past the grace: refused by default, accepted (and audited) when configured so.
    sleep_until(now + NEXT + GRACE + 1).await;
    refused(
        &refuse,
        &card,
        "cps",
        "revocation_unknown",
        "La validité de la carte ne peut pas être vérifiée pour le moment",
    )
    .await;
    assert_eq!(logs_in(&accept, &card).await["acr"], PHR);
    accept.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.contains("past nextUpdate + grace"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cps_seen_at_login_is_in_the_registry_and_hr_can_declare_it_stolen() {
    let pki = Pki::new("seen");
    let now = now();
    let crl = CrlServer::start(pki.pki.crl_der(&[], now - 60, now + 3600).unwrap()).await;
    let gw = start(&card_env(&pki, &crl, &pki.dir.join("crl-cache"), &[])).await;
    let card = pki.issue(CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin"), &crl);
    let id = logs_in(&gw, &card).await;
    assert_eq!(logs_in(&gw, &card).await["sub"], id["sub"], "a second login finds the registered card");

    // HR sees the card among the médecin's cards, bound to its certificate, without holding it.
    let token = gw.demo["admin_api"]["token"].as_str().expect("demo admin token").to_owned();
    let http = gw.http();
    let sub = id["sub"].as_str().unwrap();
    let cards: Value = http
        .get(gw.url(&format!("/admin/api/identities/{sub}/cards")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cards = cards["cards"].as_array().unwrap_or_else(|| panic!("cards: {cards}")).clone();
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!(cards[0]["status"], "handed_over");
    assert_eq!(cards[0]["cn"], "810100000011");
    gw.audit_line(|l| l["kind"] == "card_bound" && l["subject"] == sub).await;

    // Declared stolen: that certificate logs in no more (the idNat still names the médecin).
    let r = http
        .post(gw.url(&format!("/admin/api/cards/{}/status", cards[0]["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "status": "stolen", "comment": "sac volé aux urgences" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    refused(
        &gw,
        &card,
        "cps",
        "card_suspended",
        "Cette carte est déclarée « volée » : elle ne permet plus de se connecter.",
    )
    .await;
    // The new card the ANS sends (same idNat, another certificate) logs in.
    let replacement = pki.issue(CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin"), &crl);
    assert_eq!(logs_in(&gw, &replacement).await["sub"], id["sub"]);

    // A disabled account logs in with no MIE, its card included.
    use vigie_core::directory::Directory;
    let url = format!("sqlite://{}", gw.data_dir.join("directory.db").display());
    let directory = vigie_directory_sql::SqlDirectory::open(&url).await.expect("the demo directory");
    let mut account = directory.account_by_username("demo.medecin").await.unwrap().expect("the médecin's account");
    account.disabled = true;
    directory.upsert_account(&account).await.unwrap();
    refused(&gw, &replacement, "cps", "account_disabled", "Votre compte est désactivé").await;
    crl.stop();
}
