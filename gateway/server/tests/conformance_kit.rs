//! The conformance kit (`conformance/kit`) run against the real `vigie serve` on the embedded
//! demo: every module passes or says why it does not apply; against a gateway weakened in one
//! way, exactly the module that checks it fails (a check that cannot fail is a defect).
mod broken_oidc;
mod broken_security;
mod proxy;
mod relay;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vigie_conformance::profile::Profile;
use vigie_conformance::{Report, RunOptions, Verdict};

use crate::common::*;

async fn run_kit(gw: &Gateway, out: Option<PathBuf>) -> Report {
    run_only(gw, &gw.issuer, &[], out).await
}

/// The modules whose id starts with one of `only` (all when empty) against `target`, with the
/// demo's profile and CA.
async fn run_only(gw: &Gateway, target: &str, only: &[&str], out: Option<PathBuf>) -> Report {
    let profile = Profile::from_demo(&gw.demo).expect("a profile from demo.json");
    vigie_conformance::run(RunOptions {
        target: target.to_owned(),
        profile,
        ca_pem: gw.demo["ca_pem"].as_str().map(str::to_owned),
        out,
        only: only.iter().map(|s| (*s).to_owned()).collect(),
    })
    .await
    .expect("the kit runs")
}

/// The failed modules' ids and reasons.
fn failures(r: &Report) -> Vec<(String, String)> {
    r.outcomes
        .iter()
        .filter_map(|o| match &o.verdict {
            Verdict::Fail(why) => Some((o.id.clone(), why.clone())),
            _ => None,
        })
        .collect()
}

/// Asserts that exactly `expected` failed, each for a reason containing its fragment.
fn assert_fails_exactly(r: &Report, expected: &[(&str, &str)]) {
    let got = failures(r);
    let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, want, "{got:#?}");
    for ((id, why), (_, fragment)) in got.iter().zip(expected) {
        assert!(why.contains(fragment), "{id} failed, but not for its reason ({fragment:?}): {why}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_against_the_demo_and_its_reports_mask_every_secret() {
    let gw = Gateway::start(&[]).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("conformance-kit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let report = run_kit(&gw, Some(out.clone())).await;

    let ids: Vec<&str> = report.outcomes.iter().map(|o| o.id.as_str()).collect();
    let all: Vec<&str> = vigie_conformance::modules().iter().map(|m| m.id).collect();
    assert_eq!(ids, all, "every module of every plan ran, none silently skipped");
    for o in &report.outcomes {
        match &o.verdict {
            Verdict::Pass => {}
            Verdict::NotApplicable(why) => {
                assert!(!why.trim().is_empty(), "{} is not applicable without a reason", o.id)
            }
            Verdict::Fail(why) => panic!("{} failed against the demo: {why}\n{:#?}", o.id, o.evidence),
        }
        assert!(!o.evidence.is_empty(), "{} kept no evidence", o.id);
    }

    // The demo registers a back-channel test client (demo-bcl) whose URI is where the kit listens.
    let bcl = report.outcomes.iter().find(|o| o.id == "oidcc-backchannel-rp-initiated-logout").expect("the module ran");
    assert_eq!(bcl.verdict, Verdict::Pass, "{:#?}", bcl.evidence);
    // The RIE table's FIDO2 rows run as logins with the kit's software key, not "not applicable".
    for id in ["rie-fido2-software-key-opens-non-sensitive", "rie-fido2-software-key-sensitive-refused"] {
        let o = report.outcomes.iter().find(|o| o.id == id).expect("the FIDO2 row ran");
        assert_eq!(o.verdict, Verdict::Pass, "{id}: {:#?}", o.evidence);
    }

    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase ").count(), all.len(), "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let fr = std::fs::read_to_string(out.join("report.fr.html")).expect("report.fr.html");
    let en = std::fs::read_to_string(out.join("report.en.html")).expect("report.en.html");
    assert!(fr.contains("Rapport de conformité") && fr.contains("CONFORME") && fr.contains("report.en.html"));
    assert!(en.contains("conformance report") && en.contains("PASS") && en.contains("RFC 9207 §2"));
    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    assert!(json.contains("\"oidcc-codereuse-30seconds\""));

    // The evidence shows requests and answers, never a password, TOTP seed, client secret or
    // token: each file is searched for every secret the profile and the run handled.
    let mut secrets: Vec<String> = Vec::new();
    for u in gw.demo["users"].as_array().expect("users") {
        secrets.push(u["password"].as_str().expect("password").into());
        secrets.push(u["totp_secret"].as_str().expect("totp secret").into());
    }
    for c in gw.demo["clients"].as_array().expect("clients") {
        secrets.extend(c["client_secret"].as_str().map(str::to_owned));
    }
    let tokens = report.outcomes.iter().flat_map(|o| &o.evidence).filter(|e| e.status == 200).count();
    assert!(tokens > 0, "the run has answers to show");
    for (name, text) in
        [("junit.xml", &junit), ("report.fr.html", &fr), ("report.en.html", &en), ("report.json", &json)]
    {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{name} shows a secret of the profile");
        }
        assert!(!text.contains("eyJ"), "{name} shows a JWT (a token) in clear");
        assert!(!text.contains("PHNhbWwy"), "{name} shows a VIHF (base64url of <saml2) in clear");
        if name != "junit.xml" {
            assert!(text.contains("masked"), "{name} says where it masked secrets");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// `policy.password_totp_transition_until` in the future lets password + TOTP open a sensitive
/// client: the kit flags exactly that rule of the RIE (a fresh login and a session's SSO). The
/// DMP still refuses that session a VIHF (`20_dmp.cedar`: the DMP's transition ended on
/// 1 January 2026); a policy set that lets it through fails the DMP refusal check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_flags_a_gateway_where_password_totp_opens_a_sensitive_client() {
    const TRANSITION: (&str, &str) = ("VIGIE_POLICY__PASSWORD_TOTP_TRANSITION_UNTIL", "2099-12-31");
    let gw = Gateway::start(&[TRANSITION]).await;
    let report = run_kit(&gw, None).await;
    let failed: Vec<&str> = report.failures().iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        failed,
        ["rie-password-totp-sensitive-refused", "rie-password-totp-session-steps-up-at-sensitive"],
        "{:#?}",
        report.failures()
    );
    // The password + TOTP session of the DPI existed, and was refused a VIHF.
    let dmp = report.outcomes.iter().find(|o| o.id == "dmp-vihf-refusals").expect("the DMP refusals ran");
    assert!(
        dmp.verdict == Verdict::Pass
            && dmp.evidence.iter().any(|e| e.body.contains("a session of the DPI, refused a VIHF")),
        "{:?} {:#?}",
        dmp.verdict,
        dmp.evidence
    );
    drop(gw);

    // An establishment re-opening the DMP to password + TOTP in its transition period.
    let dmp_rule = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default/20_dmp.cedar"))
        .expect("policies/default/20_dmp.cedar");
    let hole = "(context.authentication.mie == \"fido2\" && context.authentication.factors.contains(\"hwk\"))";
    assert!(dmp_rule.contains(hole), "20_dmp.cedar names the attested key");
    let edited = dmp_rule.replace(
        hole,
        &format!("{hole} ||\n   (context.authentication.mie == \"password_totp\" && context.password_totp_transition)"),
    );
    let dir = policies_with("20_dmp.cedar", &edited);
    let gw = Gateway::start(&[TRANSITION, ("VIGIE_POLICY__DIR", dir.to_str().expect("a UTF-8 path"))]).await;
    let report = run_only(&gw, &gw.issuer, &["dmp-vihf-refusals"], None).await;
    // The VIHF is masked in the reason as in the evidence.
    assert_fails_exactly(&report, &[("dmp-vihf-refusals", "password + TOTP session of the DPI")]);
    assert!(
        matches!(&report.outcomes[0].verdict, Verdict::Fail(why) if why.contains("with a VIHF")),
        "{:?}",
        report.outcomes[0].verdict
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `openssl s_server` on the demo's certificate, or on a self-signed one when `self_signed`, with
/// `args`; killed when dropped.
struct SServer(Child, u16);

impl SServer {
    fn start(gw: &Gateway, self_signed: bool, args: &[&str]) -> SServer {
        let found = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        assert!(found, "the openssl binary is missing: apt-get install -y openssl");
        let (cert, key) = if self_signed {
            let dir = gw.data_dir.join("self-signed");
            std::fs::create_dir_all(&dir).expect("a directory");
            let ok = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
                .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "1"])
                .arg("-keyout")
                .arg(dir.join("k.pem"))
                .arg("-out")
                .arg(dir.join("c.pem"))
                .stderr(Stdio::null())
                .status()
                .expect("openssl req");
            assert!(ok.success(), "openssl req made no certificate");
            (dir.join("c.pem"), dir.join("k.pem"))
        } else {
            (gw.data_dir.join("tls.crt"), gw.data_dir.join("tls.key"))
        };
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        // 30 s at most, polled: a loaded machine may be slow to start it.
        let listening = (0..600).any(|_| {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if !up {
                std::thread::sleep(Duration::from_millis(50));
            }
            up
        });
        assert!(listening, "openssl s_server did not listen within 30 s");
        SServer(child, port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS server that still speaks TLS 1.0, takes any suite and sends no HSTS fails exactly the
/// version, suite and HSTS checks (its chain, the demo's, is valid); one with a certificate no
/// trusted CA issued fails the chain check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_checks_fail_against_a_weak_tls_server() {
    let gw = Gateway::start(&[]).await;
    let weak = SServer::start(&gw, false, &["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0"]);
    let report = run_only(&gw, &format!("https://localhost:{}", weak.1), &["tls-"], None).await;
    assert_fails_exactly(
        &report,
        &[
            ("tls-protocol-versions", "accepted TLS 1.0"),
            ("tls-cipher-suites", "without forward secrecy or AEAD"),
            ("tls-hsts", "no Strict-Transport-Security"),
        ],
    );
    let untrusted = SServer::start(&gw, true, &[]);
    let report = run_only(&gw, &format!("https://localhost:{}", untrusted.1), &["tls-certificate-chain"], None).await;
    assert_fails_exactly(&report, &[("tls-certificate-chain", "does not verify")]);
}

/// Behind a proxy that breaks the end-session endpoint (it redirects anywhere, adds a state,
/// ends nothing), drops the `claims` parameter, the authorization response's `iss` and the
/// cookies' HttpOnly, each check of those behaviours fails for its reason, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logout_claims_iss_and_cookie_checks_fail_behind_an_altering_proxy() {
    let (gw, issuer, switch) = proxy::gateway_behind().await;
    let only = ["oidcc-rp-initiated-logout", "oidcc-claims-essential", "rfc9207-", "rfc9700-clickjacking"];
    // The control: through the proxy breaking nothing, every one of these checks passes.
    let report = run_only(&gw, &issuer, &only, None).await;
    assert_fails_exactly(&report, &[]);
    assert_eq!(report.outcomes.len(), 8, "{:#?}", report.outcomes.iter().map(|o| &o.id).collect::<Vec<_>>());
    *switch.lock().expect("the switch") = proxy::Faults {
        open_logout: true,
        drop_claims: true,
        drop_iss: true,
        cookies_not_httponly: true,
        ..Default::default()
    };
    let report = run_only(&gw, &issuer, &only, None).await;
    assert_fails_exactly(
        &report,
        &[
            ("oidcc-claims-essential", "still got a code"),
            ("oidcc-rp-initiated-logout", "the session lives on"),
            ("oidcc-rp-initiated-logout-bad-id-token-hint", "broken signature was followed by a redirect"),
            ("oidcc-rp-initiated-logout-modified-id-token-hint", "modified claims was followed by a redirect"),
            ("oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", "followed by a redirect"),
            ("oidcc-rp-initiated-logout-no-state", "a state came back"),
            ("rfc9207-iss-in-authorization-response", "iss in the authorization response is None"),
            ("rfc9700-clickjacking-and-cookies", "lacks Secure, HttpOnly or SameSite"),
        ],
    );
}

/// `login.amr` saying a card login is a password (`["pwd"]`, for every client, so for the FI
/// tiers too): the kit flags exactly PSC's ID token check, whose amr no longer says a
/// phishing-resistant two-factor login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_flags_a_fi_tiers_id_token_whose_amr_is_not_phishing_resistant() {
    let gw = Gateway::start(&[("VIGIE_LOGIN__AMR__CPS", "[\"pwd\"]"), ("VIGIE_LOGIN__AMR__CPE", "[\"pwd\"]")]).await;
    let report = run_only(&gw, &gw.issuer, &["psc-", "rie-"], None).await;
    assert_fails_exactly(&report, &[("psc-fi-tiers-id-token", "does not say a phishing-resistant")]);
}

/// `dmp.vihf.validity_secs` at 10 minutes (EX_AIR-040 says 30 s): the DMP plan flags exactly the
/// lifetime check; the structure, signature, identity and refusals still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_flags_a_vihf_that_lives_longer_than_30_seconds() {
    let gw = Gateway::start(&[("VIGIE_DMP__VIHF__VALIDITY_SECS", "600")]).await;
    let report = run_only(&gw, &gw.issuer, &["dmp-"], None).await;
    assert_eq!(report.outcomes.len(), 4, "{:#?}", report.outcomes.iter().map(|o| &o.id).collect::<Vec<_>>());
    assert_fails_exactly(&report, &[("dmp-vihf-lifetime", "EX_AIR-040 allows 30 s at most")]);
}

/// The default policies and one more file: a copy an establishment could have written.
fn policies_with(name: &str, extra: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kit-policies-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a policy directory");
    let src = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default"));
    for e in std::fs::read_dir(src).expect("policies/default").flatten() {
        if e.file_name().to_string_lossy().ends_with(".cedar") {
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copying a policy");
        }
    }
    std::fs::write(dir.join(name), extra).expect("the extra policy");
    dir
}

/// The RIE plan against a gateway with the default policies and `extra` (in `name`): exactly
/// `expected` fail, each for its reason; the report.
async fn rie_table_fails_exactly_with(name: &str, extra: &str, expected: &[(&str, &str)]) -> Report {
    let dir = policies_with(name, extra);
    let gw = Gateway::start(&[("VIGIE_POLICY__DIR", dir.to_str().expect("a UTF-8 path"))]).await;
    let report = run_only(&gw, &gw.issuer, &["rie-"], None).await;
    assert_eq!(report.outcomes.len(), 8, "{:#?}", report.outcomes.iter().map(|o| &o.id).collect::<Vec<_>>());
    assert_fails_exactly(&report, expected);
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// A policy set stricter than the RIE asks (no password + TOTP, no card on non-sensitive
/// clients): the RIE table's two "allow" cells of non-sensitive clients fail, and only them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rie_table_flags_a_policy_refusing_what_the_rie_allows() {
    let report = rie_table_fails_exactly_with(
        "99_too_strict.cedar",
        "@id(\"test-too-strict\")\nforbid (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { !resource.sensitive && [\"cps\", \"cpe\", \"password_totp\"].contains(context.authentication.mie) };\n",
        &[
            ("rie-password-totp-non-sensitive-allowed", "got no code for the non-sensitive client"),
            ("rie-cps-opens-non-sensitive", "expected a redirect to the client, got 403"),
        ],
    )
    .await;
    // The kit enrols its FIDO2 key after a password + TOTP login, which this target refuses:
    // those rows say so, rather than passing or failing for a reason that is not theirs.
    for o in report.outcomes.iter().filter(|o| o.id.starts_with("rie-fido2-software-key-")) {
        assert!(
            matches!(&o.verdict, Verdict::NotApplicable(why) if why.contains("enrols its key on the account page")),
            "{}: {:?}",
            o.id,
            o.verdict
        );
    }
}

/// A policy set forbidding FIDO2 keys on non-sensitive clients, and letting any key into
/// sensitive ones (as if a software key were a MIE of the RIE): exactly the RIE table's two FIDO2
/// cells fail, each for its reason; the password and card cells still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rie_table_flags_a_policy_that_gets_fido2_keys_wrong() {
    rie_table_fails_exactly_with(
        "99_fido2_wrong.cedar",
        "@id(\"test-no-key-inside\")\nforbid (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { !resource.sensitive && context.authentication.mie == \"fido2\" };\n\
         @id(\"test-any-key-sensitive\")\npermit (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { resource.sensitive && context.authentication.mie == \"fido2\" };\n",
        &[
            ("rie-fido2-software-key-opens-non-sensitive", "expected a redirect to the client, got 403"),
            ("rie-fido2-software-key-sensitive-refused", "opened the sensitive client demo-dpi"),
        ],
    )
    .await;
}

/// An establishment's `10_login.cedar` edited to let password + TOTP into sensitive clients
/// (the forbid disabled, the transition's permit made unconditional): the password row and the
/// step-up of a password session fail, for their reasons; the card and key rows still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rie_table_flags_a_policy_that_lets_a_password_session_in_without_step_up() {
    let login = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default/10_login.cedar"))
        .expect("policies/default/10_login.cedar");
    let edited =
        login.replace("!context.password_totp_transition", "false").replace("context.password_totp_transition", "true");
    assert_ne!(edited, login, "the default login policies read the transition period");
    rie_table_fails_exactly_with(
        "10_login.cedar",
        &edited,
        &[
            ("rie-password-totp-sensitive-refused", "opened the sensitive client demo-dpi"),
            ("rie-password-totp-session-steps-up-at-sensitive", "by SSO: a code was issued without a step-up"),
        ],
    )
    .await;
}

/// A tampering hop on the back-channel: `demo-bcl`'s logout token reaches the kit with another
/// `sid` written in (its signature kept): the back-channel check fails, on the signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backchannel_check_fails_when_the_logout_token_is_altered_on_the_way() {
    let gw = Gateway::start(&[]).await;
    let mut profile = Profile::from_demo(&gw.demo).expect("a profile from demo.json");
    let kit_port = free_port();
    let bcl = profile.clients.iter_mut().find(|c| c.id == "demo-bcl").expect("the demo's back-channel client");
    let registered =
        bcl.backchannel_logout_listen.replace(format!("127.0.0.1:{kit_port}")).expect("its listen address");
    let relay = relay::start(&registered, kit_port).await;
    let report = vigie_conformance::run(RunOptions {
        target: gw.issuer.clone(),
        profile,
        ca_pem: gw.demo["ca_pem"].as_str().map(str::to_owned),
        out: None,
        only: vec!["oidcc-backchannel".into()],
    })
    .await
    .expect("the kit runs");
    relay.abort();
    assert_fails_exactly(
        &report,
        &[("oidcc-backchannel-rp-initiated-logout", "signature or claims do not verify with the JWKS key")],
    );
}

/// PEM of one DER block (RFC 7468 §2: base64 in lines of 64).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).expect("base64")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A gateway verifying attestation (`webauthn.attestation = "required"`) whose roots list a test
/// model's: the kit's key of that model (packed attestation) opens the DPI as `hwk`; the same
/// key withholding its attestation (format none) is refused as a hardware key, and the row fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hardware_key_row_passes_with_verified_attestation_and_fails_without() {
    use crate::softkey::{AttestationPki, VIRTUAL_AAGUID};
    let pki = AttestationPki::new("kit-model", VIRTUAL_AAGUID);
    let gw = Gateway::start(&[
        ("VIGIE_WEBAUTHN__ATTESTATION", "required"),
        ("VIGIE_WEBAUTHN__ATTESTATION_CA_FILES", &pki.env()),
    ])
    .await;
    let (cert, key) = pki.batch_der();
    let mut profile = Profile::from_demo(&gw.demo).expect("a profile from demo.json");
    let model = vigie_conformance::profile::Fido2Attestation {
        cert_pem: pem("CERTIFICATE", cert),
        key_pem: pem("PRIVATE KEY", key),
        aaguid: uuid::Uuid::from_bytes(VIRTUAL_AAGUID).to_string(),
        format: "packed".into(),
    };
    profile.fido2_attestation = Some(model.clone());
    profile.check().expect("the profile's test model loads");
    let run = |profile: Profile| {
        vigie_conformance::run(RunOptions {
            target: gw.issuer.clone(),
            profile,
            ca_pem: gw.demo["ca_pem"].as_str().map(str::to_owned),
            out: None,
            only: vec!["rie-fido2-".into()],
        })
    };
    let report = run(profile.clone()).await.expect("the kit runs");
    let verdict = |r: &Report, id: &str| r.outcomes.iter().find(|o| o.id == id).expect("the row ran").verdict.clone();
    let hwk = report.outcomes.iter().find(|o| o.id == "rie-fido2-hardware-key-opens-sensitive").expect("the row ran");
    assert_eq!(hwk.verdict, Verdict::Pass, "{:#?}", hwk.evidence);
    // The software key's rows: this target verifies attestation, so they say why they cannot run.
    for id in ["rie-fido2-software-key-opens-non-sensitive", "rie-fido2-software-key-sensitive-refused"] {
        assert!(
            matches!(verdict(&report, id), Verdict::NotApplicable(why) if why.contains("asks for direct attestation")),
            "{id}: {:?}",
            verdict(&report, id)
        );
    }

    // The can-fail proof: the same model's key, its attestation withheld.
    profile.fido2_attestation = Some(vigie_conformance::profile::Fido2Attestation { format: "none".into(), ..model });
    let report = run(profile).await.expect("the kit runs");
    assert_fails_exactly(
        &report,
        &[("rie-fido2-hardware-key-opens-sensitive", "refused to register a key of the test model")],
    );
}
