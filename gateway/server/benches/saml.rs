//! SAML logins per second (issue 19's figures): the release `vigie` built with `--features saml`
//! on the demo, one SP registered by the bench (its metadata written here, `[[saml.sps]]` and its
//! OIDC client by environment), `--concurrency` loops doing SP-initiated Web Browser SSO
//! (saml-profiles §4.1): an AuthnRequest by HTTP-Redirect (saml-bindings §3.4.4: raw DEFLATE,
//! base64) → `/authorize` as the SP's client → `/saml/callback` → the signed Response in its
//! HTTP-POST form. Two phases: with an existing Vigie session (password + TOTP once, then SSO), and
//! full logins with a test card (a new TLS handshake with the card certificate each time, a
//! 10,000-entry CRL, as `--bench load`'s card logins). Prints logins/s, p50, p99, the gateway's CPU
//! per login and the load average.
//!
//! So that it measures logins and not errors, every Response is checked (status `Success`,
//! `InResponseTo` the request's `ID`, `Audience` and `Recipient` the SP's, a `SignatureValue` in the
//! Assertion) and the first and last of each phase are verified by `xmlsec1 --verify` against the
//! IdP's certificate (and one altered copy must be refused, so that the check can fail).
//!
//! `cargo bench -p vigie-gateway --features saml --bench saml [-- --secs 10 --concurrency 32]`
//! (needs the `xmlsec1` and `openssl` CLIs; docs/benchmarks.md).
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

mod common;
use common::{CardSetup, Kill, RemoveDir, arg, card_setup, free_port, load_average, wait_for_demo};

const SP: &str = "https://bench.chu.example/saml";

/// The SP's metadata (saml-metadata §2.4.4): one HTTP-POST AssertionConsumerService, unsigned
/// requests.
fn sp_metadata() -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false" WantAssertionsSigned="true"><md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{SP}/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#
    )
}

/// `/saml/sso?SAMLRequest=…&RelayState=…` for a new AuthnRequest (saml-core §3.4.1) with `id`.
fn sso_url(base: &str, id: &str) -> String {
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{base}/saml/sso" AssertionConsumerServiceURL="{SP}/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{SP}</saml:Issuer></samlp:AuthnRequest>"#,
        vigie_gateway::rfc3339(vigie_gateway::now())
    );
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(xml.as_bytes()).expect("deflate");
    let request = STANDARD.encode(deflate.finish().expect("deflate"));
    let mut u = url::Url::parse(&format!("{base}/saml/sso")).expect("url");
    u.query_pairs_mut().append_pair("SAMLRequest", &request).append_pair("RelayState", "bench");
    u.to_string()
}

/// The cookies of one browser, by name.
#[derive(Clone, Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
    fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            if let Some((k, v)) = v.split(';').next().and_then(|kv| kv.split_once('=')) {
                self.0.insert(k.to_owned(), v.to_owned());
            }
        }
    }
}

/// The browser from `url` along the gateway's redirects; at the login page, `login` is given its
/// URL and the cookies and returns the next URL (or why it cannot log in). Ends with
/// the callback's page: the `SAMLResponse` (XML).
async fn walk<F, Fut>(
    http: &reqwest::Client,
    base: &str,
    url: String,
    jar: &mut Jar,
    login: F,
) -> Result<String, String>
where
    F: Fn(String, Jar) -> Fut,
    Fut: std::future::Future<Output = Result<(String, Jar), String>>,
{
    let mut url = url;
    for _ in 0..8 {
        let r = http.get(&url).header("cookie", jar.header()).send().await.map_err(|e| format!("{url}: {e}"))?;
        jar.take(&r);
        let status = r.status().as_u16();
        if (300..400).contains(&status) {
            let location = r.headers().get("location").and_then(|l| l.to_str().ok()).ok_or("no location")?;
            url = if location.starts_with('/') { format!("{base}{location}") } else { location.to_owned() };
            if url.contains("/login?flow=") {
                let (next, j) = login(url, jar.clone()).await?;
                (url, *jar) = (next, j);
            }
            continue;
        }
        let body = r.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{url}: status {status}: {}", body.chars().take(300).collect::<String>()));
        }
        let marker = r#"name="SAMLResponse" value=""#;
        let start = body.find(marker).map(|i| i + marker.len()).ok_or_else(|| format!("{url}: no SAMLResponse"))?;
        let b64 = &body[start..start + body[start..].find('"').unwrap_or(0)];
        let xml = STANDARD.decode(b64).map_err(|e| format!("SAMLResponse: {e}"))?;
        return String::from_utf8(xml).map_err(|e| e.to_string());
    }
    Err(format!("more than 8 redirects, last {url}"))
}

/// What the SP would check before trusting the Response (saml-profiles §4.1.4.3), as text.
fn check(xml: &str, id: &str) -> Result<(), String> {
    let assertion = xml.find("Assertion ").ok_or("no Assertion")?;
    let signature = xml[assertion..].find("SignatureValue>").ok_or("the Assertion is not signed")?;
    let value = &xml[assertion + signature + "SignatureValue>".len()..];
    if value.starts_with('<') {
        return Err("an empty SignatureValue".into());
    }
    for (what, needle) in [
        ("status Success", "urn:oasis:names:tc:SAML:2.0:status:Success\"".to_owned()),
        ("InResponseTo", format!("InResponseTo=\"{id}\"")),
        ("Audience", format!("Audience>{SP}</")),
        ("Recipient", format!("Recipient=\"{SP}/acs\"")),
    ] {
        if !xml.contains(&needle) {
            return Err(format!(
                "the Response has not the right {what}: {}",
                xml.chars().take(400).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// `xmlsec1 --verify` of the Assertion's signature against the IdP's certificate.
fn xmlsec_verifies(xml: &str, cert: &std::path::Path, dir: &std::path::Path) -> bool {
    let file = dir.join(format!("response-{}.xml", free_port()));
    std::fs::write(&file, xml).expect("response file");
    let out = Command::new("xmlsec1")
        .args(["--verify", "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", "--pubkey-cert-pem"])
        .arg(cert)
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the `xmlsec1` CLI is needed (apt-get install xmlsec1)");
    let _ = std::fs::remove_file(&file);
    out.success()
}

/// The gateway's CPU seconds (user + system), from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s.rsplit_once(')').map(|(_, r)| r).unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// One login: the AuthnRequest's `ID` and the Response it got.
type Login = Result<(String, String), String>;

/// `concurrency` loops of `op` for `secs` after a 2-s warm-up; prints the figures; returns the
/// last Response (and its request ID) for a full verification.
async fn phase<F, Fut>(label: &str, pid: u32, secs: u64, concurrency: usize, op: F) -> (String, String)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Login> + Send,
{
    let op = Arc::new(op);
    let run = |secs: u64| {
        let op = op.clone();
        async move {
            let stop = Arc::new(AtomicBool::new(false));
            let last = Arc::new(Mutex::new(None));
            let first_error = Arc::new(Mutex::new(None));
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (op, stop, last, first_error) = (op.clone(), stop.clone(), last.clone(), first_error.clone());
                    tokio::spawn(async move {
                        let (mut took, mut errors) = (Vec::new(), 0usize);
                        while !stop.load(Ordering::Relaxed) {
                            let t = Instant::now();
                            match op(0).await.and_then(|(id, xml)| check(&xml, &id).map(|()| (id, xml))) {
                                Ok(done) => {
                                    took.push(t.elapsed());
                                    *last.lock().expect("lock") = Some(done);
                                }
                                Err(e) => {
                                    errors += 1;
                                    first_error.lock().expect("lock").get_or_insert(e);
                                }
                            }
                        }
                        (took, errors)
                    })
                })
                .collect();
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
            let (mut all, mut errors) = (Vec::new(), 0);
            for t in tasks {
                let (took, e) = t.await.expect("loop");
                all.extend(took);
                errors += e;
            }
            let secs = started.elapsed().as_secs_f64();
            let last = last.lock().expect("lock").take();
            let first_error = first_error.lock().expect("lock").take();
            (all, errors, secs, last, first_error)
        }
    };
    run(2).await;
    let (load, cpu) = (load_average(), cpu_secs(pid));
    let (mut took, errors, elapsed, last, first_error) = run(secs).await;
    let cpu = cpu_secs(pid) - cpu;
    took.sort();
    let at = |q: f64| {
        took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{label:<52} {:>6.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  gateway {:>5.0} µs CPU/login  ({} logins, {errors} errors, {elapsed:.1} s, load average before {load})",
        took.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
        cpu * 1e6 / took.len().max(1) as f64,
        took.len(),
    );
    if let Some(e) = first_error {
        println!("  first error: {e}");
    }
    last.expect("at least one login in the phase")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = arg("--secs", "10").parse().expect("--secs N");
    let concurrency: usize = arg("--concurrency", "32").parse().expect("--concurrency N");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("vigie-bench-saml-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let (key, cert) = vigie_gateway::saml::demo::key_and_certificate("vigie bench SAML IdP").expect("IdP key");
    let f = |name: &str, content: &str| {
        std::fs::write(dir.join(name), content).expect("bench file");
        dir.join(name).display().to_string()
    };
    let (key, cert_file) = (f("idp.key", &key), f("idp.crt", &cert));
    let (pairwise, metadata) =
        (f("pairwise", &vigie_gateway::secrets::random_token(48)), f("sp-md.xml", &sp_metadata()));

    let cards: CardSetup = card_setup();
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let data = dir.join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    cmd.args(["serve", "--data-dir"]).arg(&data).args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.env("VIGIE_LOG", "error")
        // One driver address opens every flow and posts every login.
        .env("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "1000000")
        .env("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "1000000")
        .env("VIGIE_ISSUER", &base)
        .env("VIGIE_CLIENTS", format!(r#"[{{client_id="bench-sp", auth_method="none", redirect_uris=["{base}/saml/callback"]}}]"#))
        .env(
            "VIGIE_SAML",
            format!(
                r#"{{key_file="{key}", cert_file="{cert_file}", pairwise_secret_file="{pairwise}", sps=[{{metadata="{metadata}", client_id="bench-sp", nameid="persistent", attributes=["given_name", "family_name", "idnat", "mie"]}}]}}"#
            ),
        )
        .envs(cards.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let gateway = Kill(cmd.spawn().expect("start vigie"));
    let pid = gateway.0.id();
    let demo = wait_for_demo(&data, port);
    let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().unwrap_or_default().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client");
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("Vigie SAML logins: {concurrency} concurrent loops, {secs} s per phase, {build} build, one SP ({SP})");

    // The session: the demo nurse, password + TOTP, once, through the SP's own login.
    let user = demo["users"][0].clone();
    let password_login = |url: String, jar: Jar| {
        let (http, base, user) = (http.clone(), base.clone(), user.clone());
        async move {
            let html = http.get(&url).header("cookie", jar.header()).send().await.map_err(|e| e.to_string())?;
            let html = html.text().await.map_err(|e| e.to_string())?;
            let hidden = |name: &str| {
                let marker = format!("name=\"{name}\" value=\"");
                let start = html.find(&marker).map(|i| i + marker.len())?;
                html[start..].split('"').next().map(str::to_owned)
            };
            let secret =
                vigie_gateway::totp::from_base32(user["totp_secret"].as_str().unwrap_or_default()).ok_or("totp")?;
            let code =
                vigie_gateway::totp::code_at_step(&secret, vigie_gateway::now() / vigie_gateway::totp::STEP_SECS);
            let r = http
                .post(format!("{base}/login/password"))
                .header("cookie", jar.header())
                .form(&[
                    ("flow", hidden("flow").ok_or("no flow")?.as_str()),
                    ("csrf", hidden("csrf").ok_or("no csrf")?.as_str()),
                    ("username", user["username"].as_str().unwrap_or_default()),
                    ("password", user["password"].as_str().unwrap_or_default()),
                    ("totp", &code),
                ])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let mut jar = jar;
            jar.take(&r);
            let next = r.headers().get("location").and_then(|l| l.to_str().ok()).ok_or("the login did not redirect")?;
            Ok((if next.starts_with('/') { format!("{base}{next}") } else { next.to_owned() }, jar))
        }
    };
    let mut session = Jar::default();
    let first = walk(&http, &base, sso_url(&base, "_bench-first"), &mut session, password_login).await;
    check(&first.expect("the first SAML login works"), "_bench-first").expect("the first Response is right");
    assert!(session.0.contains_key("__Host-vigie-session"), "the login opened a session");
    session.0.retain(|k, _| k == "__Host-vigie-session");

    // The check can fail: an altered Response is refused by the same verification.
    let sample = walk(&http, &base, sso_url(&base, "_bench-sample"), &mut session.clone(), |_, _| async {
        Err::<(String, Jar), _>("SSO expected, got the login page".to_owned())
    })
    .await
    .expect("SSO works");
    let cert_path = dir.join("idp.crt");
    assert!(xmlsec_verifies(&sample, &cert_path, &dir), "xmlsec1 verifies the Assertion's signature");
    let altered = sample.replacen("mie", "miE", 1);
    assert!(altered != sample && !xmlsec_verifies(&altered, &cert_path, &dir), "xmlsec1 refuses an altered Assertion");

    let n = Arc::new(AtomicUsize::new(0));
    let (h, b, s, counter) = (http.clone(), base.clone(), session.clone(), n.clone());
    let sso = move |_| {
        let (http, base, mut jar) = (h.clone(), b.clone(), s.clone());
        let id = format!("_sso-{}", counter.fetch_add(1, Ordering::Relaxed));
        async move {
            let no_login = |_, _| async { Err::<(String, Jar), _>("SSO expected, got the login page".to_owned()) };
            walk(&http, &base, sso_url(&base, &id), &mut jar, no_login).await.map(|xml| (id, xml))
        }
    };
    let (id, xml) =
        phase("SSO with an existing session (Redirect → signed Response)", pid, secs, concurrency, sso).await;
    check(&xml, &id).expect("last Response");
    assert!(xmlsec_verifies(&xml, &cert_path, &dir), "the phase's last Response verifies");

    let (identity, b, counter) = (cards.identity.clone(), base.clone(), n.clone());
    let card = move |_| {
        let (identity, ca, base) = (identity.clone(), ca.clone(), b.clone());
        let id = format!("_card-{}", counter.fetch_add(1, Ordering::Relaxed));
        async move {
            // A new client: a full TLS handshake with the card's certificate, as a new browser.
            let http = reqwest::Client::builder()
                .tls_certs_only([ca])
                .identity(identity)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?;
            let card_login = |url: String, jar: Jar| {
                let base = base.clone();
                async move {
                    let flow = url.split("flow=").nth(1).ok_or("no flow")?.to_owned();
                    Ok((format!("{base}/login/cps?flow={flow}"), jar))
                }
            };
            walk(&http, &base, sso_url(&base, &id), &mut Jar::default(), card_login).await.map(|xml| (id, xml))
        }
    };
    let (id, xml) = phase("full login by card (TLS + CRL 10k, no session)", pid, secs, concurrency, card).await;
    check(&xml, &id).expect("last Response");
    assert!(xmlsec_verifies(&xml, &cert_path, &dir), "the phase's last card Response verifies");
    assert!(xml.contains("SmartcardPKI"), "a card login answers SmartcardPKI");
    drop(gateway);
    drop(RemoveDir(dir));
}
