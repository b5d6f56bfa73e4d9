//! The PSC stand-in (conformance/psc-sandbox, contract C1) run as a real process for each test,
//! with a generated PKI for its TLS and for Vigie's client certificate.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use vigie_psc::{ClientAuth, Pending, Psc, PscError, PscLogin, PscSettings};

pub const REDIRECT: &str = "https://127.0.0.1:8443/login/psc/callback";
pub const POST_LOGOUT: &str = "https://127.0.0.1:8443/";
pub const DR_DURAND: &str = "810001234567";

/// A CA, the stand-in's server certificate (127.0.0.1) and Vigie's client certificate (CN=vigie).
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn generate() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "vigie-psc test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA");

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
        server.distinguished_name.push(DnType::CommonName, "psc-sandbox");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &ca).expect("server cert");

        let client_key = KeyPair::generate().expect("client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("params");
        client.distinguished_name.push(DnType::CommonName, "vigie");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca).expect("client cert");

        Pki {
            ca_pem: ca.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

/// An ES256 key for `private_key_jwt`: the PEM Vigie signs with, the public JWK PSC registers.
pub struct ClientKey {
    pub pem: String,
    pub jwk: Value,
}

impl ClientKey {
    pub fn generate() -> Self {
        let key = KeyPair::generate().expect("P-256 key");
        let raw = key.public_key_raw();
        assert_eq!(raw.len(), 65, "uncompressed P-256 point");
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "vigie-1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..])});
        ClientKey { pem: key.serialize_pem(), jwk }
    }
}

/// Everything one test needs: the PKI, the client key and the stand-in's config.
pub struct Fixture {
    pub pki: Pki,
    pub client_key: ClientKey,
    pub tls: bool,
}

impl Fixture {
    pub fn new(tls: bool) -> Self {
        Fixture { pki: Pki::generate(), client_key: ClientKey::generate(), tls }
    }

    /// One client per authentication method, plus one that gets its userinfo signed.
    pub fn config(&self, listen: &str) -> Value {
        let client = |id: &str, method: &str| {
            json!({"client_id": id, "client_secret": format!("{id}-secret"), "token_endpoint_auth_method": method,
                   "redirect_uris": [REDIRECT], "post_logout_redirect_uris": [POST_LOGOUT]})
        };
        let mut clients = vec![
            client("vigie-basic", "client_secret_basic"),
            client("vigie-post", "client_secret_post"),
            {
                let mut c = client("vigie-jwt", "private_key_jwt");
                c["jwks"] = json!({"keys": [self.client_key.jwk]});
                c
            },
            {
                let mut c = client("vigie-jwt-userinfo", "client_secret_basic");
                c["userinfo_signed_response_alg"] = json!("RS256");
                c
            },
        ];
        let mut config = json!({"listen": listen});
        if self.tls {
            let mut c = client("vigie-mtls", "tls_client_auth");
            c["tls_client_auth_subject_dn"] = json!("CN=vigie");
            // RFC 8705 §3, as PSC's metadata announce: the userinfo call must present the certificate.
            c["tls_client_certificate_bound_access_tokens"] = json!(true);
            clients.push(c);
            config["tls"] = json!({"cert": self.pki.server_cert_pem, "key": self.pki.server_key_pem,
                                   "client_ca": self.pki.ca_pem});
        }
        config["clients"] = Value::Array(clients);
        config
    }

    pub fn auth(&self, client_id: &str) -> ClientAuth {
        match client_id {
            "vigie-basic" | "vigie-jwt-userinfo" => ClientAuth::SecretBasic(format!("{client_id}-secret")),
            "vigie-post" => ClientAuth::SecretPost(format!("{client_id}-secret")),
            "vigie-jwt" => ClientAuth::PrivateKeyJwt {
                key_pem: self.client_key.pem.clone(),
                kid: Some("vigie-1".into()),
                alg: "ES256".into(),
            },
            "vigie-mtls" => {
                ClientAuth::Tls { cert_pem: self.pki.client_cert_pem.clone(), key_pem: self.pki.client_key_pem.clone() }
            }
            other => panic!("no such test client {other}"),
        }
    }

    pub fn settings(&self, sandbox: &Sandbox, client_id: &str) -> PscSettings {
        let mut s = PscSettings::new(&sandbox.issuer, client_id, self.auth(client_id), REDIRECT);
        s.allow_http = !self.tls;
        s.extra_ca_pem = self.tls.then(|| self.pki.ca_pem.clone());
        s.timeout_ms = 5000;
        s
    }

    pub fn psc(&self, sandbox: &Sandbox, client_id: &str) -> Psc {
        Psc::new(self.settings(sandbox, client_id)).expect("settings accepted")
    }

    pub fn start(&self) -> Sandbox {
        Sandbox::start(&self.config("127.0.0.1:0"), self.tls.then_some(&self.pki))
    }
}

/// A running stand-in; killed when dropped.
pub struct Sandbox {
    child: Child,
    dir: PathBuf,
    pub issuer: String,
    pub origin: String,
    pub port: u16,
    pub http: reqwest::Client,
}

fn sandbox_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/psc-sandbox")
}

impl Sandbox {
    pub fn start(config: &Value, pki: Option<&Pki>) -> Sandbox {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = sandbox_dir();
        assert!(
            dir.join("server.mjs").is_file(),
            "the PSC stand-in is missing: {} has no server.mjs (contract C1)",
            dir.display()
        );
        assert!(
            dir.join("node_modules").is_dir(),
            "the PSC stand-in's dependencies are not installed: run `cd conformance/psc-sandbox && npm ci`"
        );
        let tmp = std::env::temp_dir().join(format!("vigie-psc-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&tmp).expect("temp dir");
        let config_file = tmp.join("psc-sandbox.json");
        std::fs::write(&config_file, serde_json::to_vec_pretty(config).expect("json")).expect("write config");
        let mut child = match Command::new("node")
            .arg(dir.join("server.mjs"))
            .arg("--config")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("`node` is not installed: the PSC tests run the stand-in with Node.js >= 20.19")
            }
            Err(e) => panic!("cannot start the PSC stand-in: {e}"),
        };
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the PSC stand-in did not print `PSC-SANDBOX READY <issuer>` within 60 s (see its stderr above)")
            }
        };
        let issuer = line
            .strip_prefix("PSC-SANDBOX READY ")
            .unwrap_or_else(|| panic!("unexpected first line from the PSC stand-in: {line:?}"))
            .trim()
            .to_owned();
        let url = url::Url::parse(&issuer).expect("issuer URL");
        let origin = url.origin().ascii_serialization();
        let port = url.port().expect("port");
        let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pki) = pki {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA")]);
        }
        Sandbox { child, dir: tmp, issuer, origin, port, http: b.build().expect("client") }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp =
            self.http.post(format!("{}/__control/{path}", self.origin)).json(&body).send().await.expect("control");
        let status = resp.status();
        let v: Value = resp.json().await.expect("control JSON");
        assert!(status.is_success(), "__control/{path} {body}: {status} {v}");
        v
    }

    pub async fn next_login(&self, idnat: &str) {
        self.control("next-login", json!({"idnat": idnat, "means": "ecps"})).await;
    }

    pub async fn next_login_with(&self, body: Value) {
        self.control("next-login", body).await;
    }

    pub async fn misbehave(&self, body: Value) {
        self.control("misbehave", body).await;
    }

    pub async fn reset(&self) {
        self.control("reset", json!({})).await;
    }

    pub async fn log(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/__control/log", self.origin))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("log JSON")
    }

    pub async fn log_of(&self, endpoint: &str) -> Vec<Value> {
        self.log().await.into_iter().filter(|e| e["endpoint"] == endpoint).collect()
    }

    /// The browser's part: GET the authorization URL (a login was pre-selected) and read the
    /// code and state from the redirect back to Vigie.
    pub async fn authorize(&self, url: &str) -> (String, String) {
        let resp = self.http.get(url).send().await.expect("authorization request");
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_else(|| panic!("the authorization endpoint did not redirect: {}", resp.status()))
            .to_owned();
        assert!(location.starts_with(REDIRECT), "redirected elsewhere than the callback: {location}");
        let url = url::Url::parse(&location).expect("callback URL");
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let code = param("code").unwrap_or_else(|| panic!("no code in the callback: {location}"));
        (code, param("state").expect("state in the callback"))
    }

    /// One whole login of `idnat` through `psc`.
    pub async fn login(&self, psc: &Psc, idnat: &str) -> Result<PscLogin, PscError> {
        self.next_login(idnat).await;
        let (url, pending): (String, Pending) = psc.begin().await?;
        let (code, state) = self.authorize(&url).await;
        pending.check_state(&state)?;
        psc.finish(&code, &pending).await
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
