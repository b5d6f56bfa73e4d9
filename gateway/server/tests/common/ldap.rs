//! A real OpenLDAP `slapd` for tests: configured from a `cn=config` LDIF in a temp dir, on free
//! ports (LDAP with StartTLS, and LDAPS, under an rcgen CA), with a test DIT of an establishment
//! whose users carry Active Directory's attributes (a small schema of ours with Microsoft's OIDs:
//! Debian's msuser.schema has no equality rules), nested groups and a cycle. Stopped on drop.
//! Shared by the gateway's integration tests and the adapter's tests (`#[path]`): std and rcgen only.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub const BASE: &str = "dc=chu-test,dc=fr";
pub const SERVICE_DN: &str = "cn=svc-vigie,ou=services,dc=chu-test,dc=fr";
pub const SERVICE_PASSWORD: &str = "service-secret-7Hq";
/// Every test user's directory password (not the demo's SQL password).
pub const PASSWORD: &str = "Mdp-annuaire-2026!";
/// `GG-Soins` is in `GG-Admin-Cartes` (mapped to the role `cards` by the tests), which is in
/// `GG-Tous`; `GG-Cycle-A` and `GG-Cycle-B` are in each other.
pub const NESTED_GROUP: &str = "cn=GG-Admin-Cartes,ou=groups,dc=chu-test,dc=fr";
/// The objectGUID of `demo.infirmiere`, as Windows prints it.
pub const INFIRMIERE_GUID: &str = "00112233-4455-6677-8899-aabbccddeeff";

/// Microsoft's attribute OIDs ([MS-ADA1], [MS-ADA3]) with equality rules slapd can search by.
const AD_SCHEMA: &str = r#"dn: cn=adlike,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adlike
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.2 NAME 'objectGUID' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.662 NAME 'lockoutTime' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.159 NAME 'accountExpires' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.96 NAME 'pwdLastSet' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.35 NAME 'employeeID' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcObjectClasses: ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY MAY ( sAMAccountName $ userAccountControl $ objectGUID $ lockoutTime $ accountExpires $ pwdLastSet $ employeeID ) )
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// One running slapd.
pub struct Slapd {
    dir: PathBuf,
    child: Option<Child>,
    /// `ldap://127.0.0.1:<port>` (StartTLS).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:<port>`.
    pub ldaps_url: String,
    /// The CA that issued the server's certificate (PEM file).
    pub ca_file: PathBuf,
    /// A file holding the service account's password.
    pub password_file: PathBuf,
}

impl Slapd {
    /// Starts slapd with the test DIT; panics with its log if it does not come up in 30 s.
    pub fn start() -> Slapd {
        Self::start_with(0)
    }

    /// The test DIT and `extra` more users (`agent.<n>`, matricule `X<n>`, in no group): for
    /// figures.
    pub fn start_with(extra: usize) -> Slapd {
        let dir = std::env::temp_dir().join(format!("vigie-slapd-{}-{}", std::process::id(), free_port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).expect("slapd config dir");
        std::fs::create_dir_all(dir.join("data")).expect("slapd data dir");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("writing a slapd file");
            path
        };

        let (ca_file, cert_file, key_file) = tls_files(&dir);
        let password_file = write("service-password", &format!("{SERVICE_PASSWORD}\n"));

        let config = format!(
            r#"dn: cn=config
objectClass: olcGlobal
cn: config
olcTLSCACertificateFile: {ca}
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file://{adlike}

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {data}
olcSuffix: {BASE}
olcRootDN: cn=admin,{BASE}
olcRootPW: admin-secret
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{SERVICE_DN}" read by self read by * none
olcLimits: dn.exact="{SERVICE_DN}" size.soft=500 size.hard=500 size.pr=500 size.prtotal=unlimited
"#,
            ca = ca_file.display(),
            cert = cert_file.display(),
            key = key_file.display(),
            adlike = write("adlike.ldif", AD_SCHEMA).display(),
            data = dir.join("data").display(),
        );
        let config_ldif = write("config.ldif", &config);
        let mut text = dit();
        for n in 0..extra {
            text.push_str(&format!(
                "dn: uid=agent.{n},ou=people,{BASE}\nobjectClass: inetOrgPerson\nobjectClass: user\nuid: agent.{n}\n\
                 sAMAccountName: agent.{n}\ncn: Agent {n}\ngivenName: Agent\nsn: Numero{n}\nemployeeID: X{n:06}\n\
                 userAccountControl: 512\n\n"
            ));
        }
        let dit = write("dit.ldif", &text);
        slapadd(&["-n", "0", "-F"], &dir.join("config"), &config_ldif);
        slapadd(&["-n", "1", "-F"], &dir.join("config"), &dit);

        let mut slapd = Slapd {
            dir: dir.clone(),
            child: None,
            ldap_url: String::new(),
            ldaps_url: String::new(),
            ca_file,
            password_file,
        };
        slapd.run(free_port(), free_port());
        slapd
    }

    fn run(&mut self, ldap_port: u16, ldaps_port: u16) {
        self.ldap_url = format!("ldap://127.0.0.1:{ldap_port}");
        self.ldaps_url = format!("ldaps://127.0.0.1:{ldaps_port}");
        let log = std::fs::File::create(self.dir.join("slapd.log")).expect("slapd.log");
        // -d 0: stays in the foreground (a child this harness can stop), logging nothing extra.
        let child = Command::new("/usr/sbin/slapd")
            .arg("-h")
            .arg(format!("{}/ {}/", self.ldap_url, self.ldaps_url))
            .arg("-F")
            .arg(self.dir.join("config"))
            .arg("-d")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("slapd.log"))
            .stderr(log)
            .spawn()
            .expect("slapd (apt-get install slapd; tests/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [ldap_port, ldaps_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                    panic!("slapd exited with {status}: {}", self.log());
                }
                assert!(Instant::now() < deadline, "slapd did not listen within 30 s: {}", self.log());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Stops slapd (the directory down); [`Self::restart`] brings it back on the same ports.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let port = |url: &str| url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        let (ldap, ldaps) = (port(&self.ldap_url), port(&self.ldaps_url));
        self.run(ldap, ldaps);
    }

    /// Applies an LDIF change as the directory's administrator (`ldapmodify` over LDAPS).
    pub fn modify(&self, ldif: &str) {
        ldapmodify(&self.ca_file, &self.ldaps_url, &format!("cn=admin,{BASE}"), "admin-secret", ldif);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("VIGIE_KEEP_TEST_DATA").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Applies an LDIF change at `url` (LDAPS under `ca_file`) bound as `dn` (`ldapmodify`).
pub fn ldapmodify(ca_file: &Path, url: &str, dn: &str, password: &str, ldif: &str) {
    use std::io::Write;
    let mut child = Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", ca_file)
        .args(["-x", "-H", url, "-D", dn, "-w", password])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ldapmodify (apt-get install ldap-utils)");
    child.stdin.take().expect("stdin").write_all(ldif.as_bytes()).expect("writing the LDIF");
    let out = child.wait_with_output().expect("ldapmodify");
    assert!(out.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA and a certificate for 127.0.0.1 it issued, written in `dir` as `ca.pem`,
/// `server.pem`, `server.key`.
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "LDAP test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).expect("certificate");
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = server.signed_by(&key, &ca).expect("server certificate");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).expect("writing a TLS file");
        dir.join(name)
    };
    (write("ca.pem", &ca.pem()), write("server.pem", &cert.pem()), write("server.key", &key.serialize_pem()))
}

fn slapadd(args: &[&str], config: &Path, ldif: &Path) {
    let out = Command::new("/usr/sbin/slapadd")
        .args(args)
        .arg(config)
        .arg("-l")
        .arg(ldif)
        .output()
        .expect("slapadd (apt-get install slapd)");
    assert!(
        out.status.success(),
        "slapadd {}: {}{}",
        ldif.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One user: login, names, matricule, AD attributes (LDIF lines), groups.
struct TestUser {
    login: &'static str,
    given: &'static str,
    family: &'static str,
    matricule: &'static str,
    ad: &'static str,
}

const USERS: &[TestUser] = &[
    // The demo's nurse: the end-to-end tests log her in (her Vigie account holds the TOTP).
    TestUser {
        login: "demo.infirmiere",
        given: "Camille",
        family: "Martin",
        matricule: "M000101",
        ad: "userAccountControl: 512\nobjectGUID:: MyIRAFVEd2aImaq7zN3u/w==\npwdLastSet: 133000000000000000\naccountExpires: 9223372036854775807",
    },
    // Disabled in the directory (ACCOUNTDISABLE); slapd still accepts her bind.
    TestUser {
        login: "demo.interne",
        given: "Léa",
        family: "Bernard",
        matricule: "M000103",
        ad: "userAccountControl: 514",
    },
    // The demo's doctor, who also has a CPS card: the sync test disables him in the directory.
    TestUser {
        login: "demo.medecin",
        given: "Paul",
        family: "Durand",
        matricule: "M000102",
        ad: "userAccountControl: 512",
    },
    TestUser {
        login: "ad.locked",
        given: "Luc",
        family: "Verrou",
        matricule: "M900001",
        ad: "userAccountControl: 512\nlockoutTime: 133000000000000000",
    },
    TestUser {
        login: "ad.expired",
        given: "Eva",
        family: "Expire",
        matricule: "M900002",
        ad: "userAccountControl: 512\naccountExpires: 132223104000000000",
    }, // accountExpires: 2020-01-01 as a FILETIME
    TestUser {
        login: "ad.mustchange",
        given: "Max",
        family: "Change",
        matricule: "M900003",
        ad: "userAccountControl: 512\npwdLastSet: 0",
    },
];

fn dit() -> String {
    let mut out = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: chu-test\no: CHU de test\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: svc-vigie\nuserPassword: {SERVICE_PASSWORD}\n\n"
    );
    for u in USERS {
        out.push_str(&format!(
            "dn: uid={login},ou=people,{BASE}\nobjectClass: inetOrgPerson\nobjectClass: user\nuid: {login}\nsAMAccountName: {login}\n\
             cn: {given} {family}\ngivenName: {given}\nsn: {family}\nmail: {login}@chu-test.fr\nemployeeID: {matricule}\n\
             employeeNumber: {matricule}\nuserPassword: {PASSWORD}\n{ad}\n\n",
            login = u.login,
            given = u.given,
            family = u.family,
            matricule = u.matricule,
            ad = u.ad,
        ));
    }
    let person = |login: &str| format!("uid={login},ou=people,{BASE}");
    let group = |cn: &str| format!("cn={cn},ou=groups,{BASE}");
    let groups: [(&str, Vec<String>); 5] = [
        ("GG-Soins", vec![person("demo.infirmiere")]),
        ("GG-Admin-Cartes", vec![group("GG-Soins")]),
        ("GG-Tous", vec![group("GG-Admin-Cartes"), person("ad.locked")]),
        ("GG-Cycle-A", vec![group("GG-Cycle-B"), person("demo.infirmiere")]),
        ("GG-Cycle-B", vec![group("GG-Cycle-A")]),
    ];
    for (cn, members) in groups {
        out.push_str(&format!("dn: {}\nobjectClass: groupOfNames\ncn: {cn}\n", group(cn)));
        for m in members {
            out.push_str(&format!("member: {m}\n"));
        }
        out.push('\n');
    }
    out
}
