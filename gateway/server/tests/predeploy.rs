//! The commands a deployment runs before `vigie serve`, against it: `check-config` (every file
//! `serve` loads at start is checked, a configuration that passes starts, one that fails names
//! its key and does not start) and `migrate` (the directory's schema brought up to date once).
use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

use crate::cli::{new_secret, run, stdout};

/// A deployment in a temporary directory: a TLS pair, a key set, a client, a SQLite directory,
/// the audit file beside them.
struct Deployment {
    dir: PathBuf,
    port: u16,
}

impl Deployment {
    fn new() -> Deployment {
        let marker = temp_file("tls.crt", "");
        let dir = marker.parent().expect("temp dir").to_owned();
        let key = rcgen::KeyPair::generate().expect("TLS key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .and_then(|p| p.self_signed(&key))
            .expect("TLS certificate");
        std::fs::write(dir.join("tls.crt"), cert.pem()).expect("write");
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("write");
        let keys = run(&["keys", "generate", "--out", dir.join("keys.json").to_str().expect("UTF-8 path")]);
        assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));
        Deployment { dir, port: free_port() }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn write(&self, name: &str, content: &str) -> String {
        std::fs::write(self.dir.join(name), content).expect("write");
        self.path(name)
    }

    /// Writes the configuration: the good files, but those `files` names (`("tls_cert", path)`,
    /// `keys`, `audit`), and the sections of `extra`.
    fn config(&self, files: &[(&str, String)], extra: &str) -> String {
        let (_, hash) = new_secret();
        let value = |k: &str, default: String| {
            files.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone()).unwrap_or(default)
        };
        let text = format!(
            r#"
issuer = "https://localhost:{port}"
server = {{ listen = "127.0.0.1:{port}", tls_cert = "{crt}", tls_key = "{key}" }}
directory.url = "sqlite://{db}"
keys.file = "{keys}"
audit.file = "{audit}"
clients = [{{ client_id = "dpi", client_secret_hash = "{hash}", auth_method = "client_secret_basic", redirect_uris = ["https://dpi.chu.example/cb"] }}]
{extra}
"#,
            port = self.port,
            crt = value("tls_cert", self.path("tls.crt")),
            key = value("tls_key", self.path("tls.key")),
            db = self.path("dir.db"),
            keys = value("keys", self.path("keys.json")),
            audit = value("audit", self.path("audit.jsonl")),
        );
        self.write("vigie.toml", &text)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `vigie serve --config PATH`, its stderr kept.
fn spawn_serve(config: &str) -> Child {
    Command::new(BIN)
        .args(["serve", "--config", config])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning vigie serve")
}

/// Whether `serve` stopped on its own within 30 s (its stderr), or was still running (`None`,
/// then stopped).
fn refused(mut child: Child) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().expect("waiting for vigie").is_some() {
            let out = child.wait_with_output().expect("vigie output");
            assert!(!out.status.success(), "serve ended with success");
            return Some(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Whether `serve` accepted connections on `port` within 60 s; stopped either way.
fn started(mut child: Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break Ok(());
        }
        if child.try_wait().expect("waiting for vigie").is_some() {
            let out = child.wait_with_output().expect("vigie output");
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if Instant::now() > deadline {
            break Err("not listening after 60 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[test]
fn a_configuration_that_check_config_accepts_starts() {
    let d = Deployment::new();
    let anchor = vigie_igc_sante::testpki::TestPki::generate().expect("test PKI").anchors_pem();
    let anchor = d.write("anchor.pem", &anchor);
    let config = d.config(&[], &format!("[cards]\nenabled = true\n[cards.trust]\nanchors = [\"{anchor}\"]\n"));
    let out = run(&["check-config", &config]);
    assert!(out.status.success(), "check-config refused a good file: {}", String::from_utf8_lossy(&out.stderr));
    started(spawn_serve(&config), d.port).expect("serve starts what check-config accepted");
}

/// A setting whose file `serve` cannot use: the key that must be named.
struct Case {
    key: &'static str,
    files: Vec<(&'static str, String)>,
    extra: String,
}

fn bad_cases(d: &Deployment) -> Vec<Case> {
    let empty = d.write("empty.pem", "");
    let garbage = d.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    let bad_policies = d.dir.join("policies");
    std::fs::create_dir_all(&bad_policies).expect("mkdir");
    std::fs::write(bad_policies.join("broken.cedar"), "permit(principal, action, resource) when { nonsense")
        .expect("write");
    let cards = |anchor: &str| format!("[cards]\nenabled = true\n[cards.trust]\nanchors = [\"{anchor}\"]\n");
    let anchor = d.write("anchor.pem", &vigie_igc_sante::testpki::TestPki::generate().expect("test PKI").anchors_pem());
    // A cache directory below a file can be neither read nor made.
    let crl_cache = format!("{}\ncrl_cache_dir = \"{empty}/crl\"\n", cards(&anchor));
    let ldap = |password: &str, ca: &str| {
        format!(
            "directory.ldap = {{ profile = \"ad\", urls = [\"ldaps://127.0.0.1:1\"], bind_dn = \"cn=svc\", \
             bind_password_file = \"{password}\", user_base = \"dc=x\", ca_file = \"{ca}\" }}\n"
        )
    };
    let service_password = d.write("ldap-password", "s3rvice\n");
    vec![
        Case { key: "cards.trust", files: vec![], extra: cards(&d.path("missing-anchor.pem")) },
        Case { key: "cards.trust", files: vec![], extra: cards(&empty) },
        Case { key: "cards.trust.crl_cache_dir", files: vec![], extra: crl_cache },
        Case { key: "server.tls_cert", files: vec![("tls_cert", empty.clone())], extra: String::new() },
        Case { key: "server.tls_key", files: vec![("tls_key", garbage.clone())], extra: String::new() },
        Case {
            key: "keys.file",
            files: vec![("keys", d.write("keys-bad.json", "{\"keys\": 3}"))],
            extra: String::new(),
        },
        Case { key: "policy.dir", files: vec![], extra: format!("[policy]\ndir = \"{}\"\n", bad_policies.display()) },
        Case { key: "demo.ca_file", files: vec![], extra: format!("[demo]\nca_file = \"{garbage}\"\n") },
        Case { key: "audit.file", files: vec![("audit", d.path("no-such-dir/audit.jsonl"))], extra: String::new() },
        Case { key: "store.ca_file", files: vec![], extra: redis_tls(&format!("ca_file = \"{garbage}\"")) },
        Case {
            key: "store.ca_file",
            files: vec![],
            extra: redis_tls(&format!("ca_file = \"{}\"", d.path("no-ca.pem"))),
        },
        Case {
            key: "store.client_key",
            files: vec![],
            extra: redis_tls(&format!("client_cert = \"{anchor}\"\nclient_key = \"{anchor}\"")),
        },
        Case {
            key: "directory.ldap.bind_password_file",
            files: vec![],
            extra: ldap(&d.path("no-such-password"), &anchor),
        },
        Case { key: "directory.ldap.ca_file", files: vec![], extra: ldap(&service_password, &garbage) },
        Case {
            key: "audit.syslog",
            files: vec![],
            extra: format!("[audit.syslog]\nurl = \"tls://127.0.0.1:1\"\nca_file = \"{garbage}\"\n"),
        },
    ]
}

/// A `[store]` on Redis over TLS (never reached: the files are refused first) with `keys`.
fn redis_tls(keys: &str) -> String {
    format!("[store]\nkind = \"redis\"\nurl = \"rediss://127.0.0.1:1\"\n{keys}\n")
}

#[test]
fn check_config_names_the_key_of_each_file_serve_cannot_use_and_fails() {
    let d = Deployment::new();
    for case in bad_cases(&d) {
        let config = d.config(&case.files, &case.extra);
        let out = run(&["check-config", &config]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "check-config passed a bad `{}`: {stderr}", case.key);
        let naming = stderr.lines().filter(|l| l.contains(&format!("`{}`:", case.key))).count();
        assert_eq!(naming, 1, "one line names `{}`:\n{stderr}", case.key);
        assert!(!Path::new(&d.path("dir.db")).exists(), "check-config opened the directory");
    }
}

#[test]
fn serve_refuses_to_start_on_every_file_check_config_refuses() {
    let d = Deployment::new();
    for case in bad_cases(&d) {
        let config = d.config(&case.files, &case.extra);
        let stderr = refused(spawn_serve(&config))
            .unwrap_or_else(|| panic!("serve started with a bad `{}` that check-config refuses", case.key));
        assert!(stderr.contains(&format!("`{}`:", case.key)), "serve names `{}`:\n{stderr}", case.key);
    }
}

#[test]
fn migrate_brings_a_new_sqlite_directory_up_to_date_once_then_serve_starts() {
    let d = Deployment::new();
    let config = d.config(&[], "");
    let first = stdout(&run(&["migrate", "--config", &config]));
    assert!(first.starts_with("directory (SQLite): schema migrated from version none (new database) to "), "{first}");
    assert!(Path::new(&d.path("dir.db")).exists(), "the directory file is created");
    let second = stdout(&run(&["migrate", "--config", &config]));
    let version = first.trim_end().rsplit(' ').next().expect("the version reached");
    assert_eq!(
        second,
        format!("directory (SQLite): schema at version {version}, up to date; nothing applied\n"),
        "a second run applies nothing"
    );
    started(spawn_serve(&config), d.port).expect("serve starts on the migrated directory");
}
