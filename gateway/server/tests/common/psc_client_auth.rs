//! The PSC stand-in (conformance/psc-sandbox, npm `oidc-provider`) over HTTPS, with one client
//! that authenticates to its token endpoint by `private_key_jwt` and one by `tls_client_auth`
//! (RFC 8705 §2.1), and the gateway configuration (`VIGIE_PSC__…`) of each. The stand-in holds
//! each client to its registered method (oidc-provider refuses any other) and logs the method it
//! saw (`/__control/log`). [`super::psc::PscSandbox`] registers one `client_secret_basic` client
//! over plain HTTP only, hence this one.

use super::*;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub const JWT_CLIENT: &str = "vigie-jwt";
pub const MTLS_CLIENT: &str = "vigie-mtls";
/// The subject of the gateway's client certificate, as the `tls_client_auth` client is registered.
pub const MTLS_SUBJECT_DN: &str = "CN=vigie-mtls";
const JWT_KID: &str = "vigie-psc-1";

pub struct PscClientAuth {
    /// The issuer it announces once started.
    pub issuer: String,
    /// Trusts the stand-in's CA alone; no redirects followed.
    pub http: reqwest::Client,
    port: u16,
    /// The key, certificates and CA the gateways read, and the stand-in's configuration.
    dir: PathBuf,
    /// What the stand-in's configuration says of its TLS and clients' keys.
    tls: Value,
    jwk: Value,
    child: Mutex<Option<Child>>,
    stdin: Mutex<Option<ChildStdin>>,
}

impl PscClientAuth {
    /// The stand-in to be started on `port`: its PKI and the gateways' key and certificate, so
    /// that gateways can be configured for it (see [`Self::start`]).
    pub fn new(port: u16) -> PscClientAuth {
        let dir = temp_file("psc-ca.pem", "").parent().expect("a directory").to_owned();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("writing a PSC test file");

        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "PSC stand-in test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
        let signed = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(names).expect("certificate");
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![usage];
            (p.signed_by(&key, &ca).expect("certificate").pem(), key.serialize_pem())
        };
        let (server_cert, server_key) =
            signed(vec!["127.0.0.1".into()], "psc-sandbox", ExtendedKeyUsagePurpose::ServerAuth);
        let cn = MTLS_SUBJECT_DN.strip_prefix("CN=").expect("a CN");
        let (client_cert, client_key) = signed(vec![], cn, ExtendedKeyUsagePurpose::ClientAuth);
        write("psc-ca.pem", &ca.pem());
        write("mtls.crt", &client_cert);
        write("mtls.key", &client_key);
        let jwt_key = KeyPair::generate().expect("P-256 key");
        write("jwt.key", &jwt_key.serialize_pem());
        let point = jwt_key.public_key_raw();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": JWT_KID, "use": "sig", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]) });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA PEM")])
            .build()
            .expect("HTTP client");
        PscClientAuth {
            issuer: format!("https://127.0.0.1:{port}/auth/realms/esante-wallet"),
            http,
            port,
            tls: json!({ "cert": server_cert, "key": server_key, "client_ca": ca.pem() }),
            jwk,
            dir,
            child: Mutex::new(None),
            stdin: Mutex::new(None),
        }
    }

    /// Starts it, its clients' redirect URIs those of gateways on `gateway_ports`.
    pub fn start(&self, gateway_ports: &[u16]) {
        let uris = |path: &str| -> Vec<String> {
            gateway_ports.iter().map(|p| format!("https://127.0.0.1:{p}{path}")).collect()
        };
        let client = |id: &str, method: &str| {
            json!({ "client_id": id, "token_endpoint_auth_method": method,
                "redirect_uris": uris("/login/psc/callback"), "post_logout_redirect_uris": uris("/logout/psc") })
        };
        let mut jwt = client(JWT_CLIENT, "private_key_jwt");
        jwt["jwks"] = json!({ "keys": [self.jwk] });
        let mut mtls = client(MTLS_CLIENT, "tls_client_auth");
        mtls["tls_client_auth_subject_dn"] = json!(MTLS_SUBJECT_DN);
        let config = json!({ "listen": format!("127.0.0.1:{}", self.port), "tls": self.tls, "clients": [jwt, mtls] });
        std::fs::write(self.dir.join("psc-sandbox.json"), config.to_string()).expect("the stand-in's configuration");

        let sandbox = super::psc::psc_sandbox_dir();
        assert!(sandbox.join("node_modules").is_dir(), "run `npm ci` in {} first (tests/run does)", sandbox.display());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("psc-sandbox-watchdog")
            .arg(&self.dir)
            .arg(std::env::var("VIGIE_KEEP_TEST_DATA").unwrap_or_default())
            .arg("node")
            .arg(sandbox.join("server.mjs"))
            .arg("--config")
            .arg(self.dir.join("psc-sandbox.json"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting node");
        *self.stdin.lock().expect("stdin") = child.stdin.take();
        let mut ready = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("stdout")));
        *self.child.lock().expect("child") = Some(child);
        // Its only line on stdout, once it listens (its contract); the end of stdout if it stops.
        let line = ready.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(line, format!("PSC-SANDBOX READY {}", self.issuer), "the PSC stand-in started (see its stderr)");
    }

    fn env(&self, client_id: &str, method: &str, files: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("VIGIE_PSC__ISSUER".to_owned(), self.issuer.clone()),
            ("VIGIE_PSC__CLIENT_ID".to_owned(), client_id.to_owned()),
            ("VIGIE_PSC__CLIENT_AUTH".to_owned(), method.to_owned()),
            ("VIGIE_PSC__CA_FILE".to_owned(), self.file("psc-ca.pem")),
            ("VIGIE_PSC__PROBE_INTERVAL_SECS".to_owned(), "1".to_owned()),
        ];
        env.extend(files.iter().map(|(k, v)| (format!("VIGIE_PSC__{k}"), v.clone())));
        env
    }

    /// A gateway's `[psc]` as the `private_key_jwt` client: its key, `kid` and `alg`.
    pub fn private_key_jwt_env(&self) -> Vec<(String, String)> {
        let key = [
            ("PRIVATE_KEY_FILE", self.file("jwt.key")),
            ("PRIVATE_KEY_KID", JWT_KID.to_owned()),
            ("PRIVATE_KEY_ALG", "ES256".to_owned()),
        ];
        self.env(JWT_CLIENT, "private_key_jwt", &key)
    }

    /// A gateway's `[psc]` as the `tls_client_auth` client: its certificate and key.
    pub fn tls_client_auth_env(&self) -> Vec<(String, String)> {
        let files = [("TLS_CERT_FILE", self.file("mtls.crt")), ("TLS_KEY_FILE", self.file("mtls.key"))];
        self.env(MTLS_CLIENT, "tls_client_auth", &files)
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("UTF-8 path").to_owned()
    }

    /// The next authorization request of `client_id` completes at once as `idnat`, by e-CPS.
    pub async fn next_login(&self, client_id: &str, idnat: &str) {
        let body = json!({ "idnat": idnat, "means": "ecps", "client_id": client_id });
        let r = self.http.post(self.control("next-login")).json(&body).send().await.expect("control");
        assert_eq!(r.status(), 200, "__control/next-login {body}");
    }

    /// The stand-in's log of the calls to `endpoint` (`token`, `userinfo`…).
    pub async fn log_of(&self, endpoint: &str) -> Vec<Value> {
        let r = self.http.get(self.control(&format!("log?endpoint={endpoint}"))).send().await.expect("control log");
        r.json().await.expect("the control log is a JSON list")
    }

    fn control(&self, path: &str) -> String {
        let origin = url::Url::parse(&self.issuer).expect("issuer URL").origin().ascii_serialization();
        format!("{origin}/__control/{path}")
    }
}

impl Drop for PscClientAuth {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog kill the stand-in.
        drop(self.stdin.lock().map(|mut s| s.take()).ok().flatten());
        if let Ok(mut c) = self.child.lock()
            && let Some(mut child) = c.take()
        {
            let _ = child.wait();
        }
    }
}
