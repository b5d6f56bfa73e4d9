//! The LDAP source against a real Active Directory: a Samba AD DC provisioned into a temp dir
//! (`samba-tool domain provision`), where the DC itself refuses the binds of disabled accounts
//! and of those that must change their password (AD's `data 533` / `773` sub-codes), and walks
//! nested groups with `LDAP_MATCHING_RULE_IN_CHAIN`, and a changed-since listing reads only what
//! changed after the DC's `highestCommittedUSN` (issue 16). Samba's LDAP ports are fixed (389/636): one
//! DC per machine, so this file holds one test.
#[path = "../../../gateway/server/tests/common/ldap.rs"]
mod ldap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigie_directory_ldap::{AccountState, Attributes, LdapConfig, LdapSource, Profile, Refusal, SyncMark};

const ADMIN_PASSWORD: &str = "Adm1n-Passw0rd!";
/// AD's complexity rules (0000052D) want three classes of characters.
const PASSWORD: &str = "Mdp-Annuaire-2026!";
const BASE: &str = "DC=chu-test,DC=fr";

struct Dc {
    dir: PathBuf,
    child: Child,
}

impl Drop for Dc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tool(conf: &Path, args: &[&str]) {
    let out = Command::new("samba-tool")
        .args(args)
        .arg("-s")
        .arg(conf)
        .output()
        .expect("samba-tool (apt-get install samba samba-ad-dc samba-ad-provision)");
    assert!(
        out.status.success(),
        "samba-tool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_dc() -> Dc {
    let dir = std::env::temp_dir().join(format!("vigie-samba-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("samba dir");
    let (ca, cert, key) = ldap::tls_files(&dir);
    let out = Command::new("samba-tool")
        .args(["domain", "provision", "--use-rfc2307", "--server-role=dc", "--dns-backend=NONE"])
        .args(["--realm=CHU-TEST.FR", "--domain=CHUTEST", &format!("--adminpass={ADMIN_PASSWORD}")])
        .arg(format!("--targetdir={}", dir.display()))
        .args(["--option=interfaces=lo", "--option=bind interfaces only=yes"])
        .args([
            format!("--option=tls certfile={}", cert.display()),
            format!("--option=tls keyfile={}", key.display()),
            format!("--option=tls cafile={}", ca.display()),
        ])
        .output()
        .expect("samba-tool");
    assert!(out.status.success(), "provision: {}", String::from_utf8_lossy(&out.stderr));
    let conf = dir.join("etc/smb.conf");
    // The key file must be private for Samba to use it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    tool(&conf, &["user", "create", "nurse", PASSWORD, "--given-name=Camille", "--surname=Martin"]);
    tool(&conf, &["user", "create", "intern", PASSWORD]);
    tool(&conf, &["user", "disable", "intern"]);
    tool(&conf, &["user", "create", "newcomer", PASSWORD, "--must-change-at-next-login"]);
    tool(&conf, &["group", "add", "GG-Soins"]);
    tool(&conf, &["group", "add", "GG-Admin-Cartes"]);
    tool(&conf, &["group", "addmembers", "GG-Soins", "nurse"]);
    tool(&conf, &["group", "addmembers", "GG-Admin-Cartes", "GG-Soins"]);
    // A cycle: GG-Admin-Cartes is also in GG-Soins.
    tool(&conf, &["group", "addmembers", "GG-Soins", "GG-Admin-Cartes"]);
    let log = std::fs::File::create(dir.join("samba.log")).expect("samba.log");
    let child = Command::new("samba")
        .args(["-i", "-M", "single", "-s"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("samba");
    let mut dc = Dc { dir, child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", 636)).is_err() {
        if let Ok(Some(status)) = dc.child.try_wait() {
            panic!(
                "samba exited with {status}: {}",
                std::fs::read_to_string(dc.dir.join("samba.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "samba did not listen on 636 within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    dc
}

#[tokio::test]
async fn a_real_ad_refuses_disabled_and_must_change_accounts_and_walks_nested_groups() {
    let dc = start_dc();
    let password_file = dc.dir.join("service-password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).expect("a file");
    let config = LdapConfig {
        profile: Profile::Ad,
        urls: vec!["ldaps://127.0.0.1:636".into()],
        starttls: false,
        ca_file: Some(dc.dir.join("ca.pem")),
        bind_dn: format!("CN=Administrator,CN=Users,{BASE}"),
        bind_password_file: password_file,
        user_base: format!("CN=Users,{BASE}"),
        group_base: None,
        user_filter: None,
        attributes: Attributes::default(),
        group_expansion: None,
        group_roles: BTreeMap::from([("GG-Admin-Cartes".into(), "cards".into())]),
        connect_timeout_ms: 5000,
        operation_timeout_ms: 10000,
        sync_interval_secs: 0,
        full_sync_interval_secs: 86_400,
        matricule_changes: Default::default(),
    };
    let ad = LdapSource::from_files(config, "directory.ldap").expect("the source");
    // The DC may accept connections a moment before it answers binds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = ad.ping().await {
        assert!(Instant::now() < deadline, "the DC does not answer: {e}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let nurse = ad.check_password("nurse", PASSWORD).await.expect("reachable").expect("accepted");
    assert_eq!(nurse.id.len(), 36, "objectGUID as a UUID: {}", nurse.id);
    assert_eq!(nurse.given_name.as_deref(), Some("Camille"));
    assert_eq!(nurse.roles, ["cards"], "GG-Admin-Cartes through GG-Soins, by IN_CHAIN: {:?}", nurse.groups);
    assert_eq!(ad.check_password("nurse", "Wrong-Passw0rd!").await.expect("reachable"), Err(Refusal::BadPassword));
    assert_eq!(ad.check_password("nobody", PASSWORD).await.expect("reachable"), Err(Refusal::UnknownUser));
    assert_eq!(
        ad.check_password("intern", PASSWORD).await.expect("reachable"),
        Err(Refusal::State(AccountState::Disabled))
    );
    assert_eq!(
        ad.check_password("newcomer", PASSWORD).await.expect("reachable"),
        Err(Refusal::State(AccountState::MustChangePassword))
    );

    // Changed-since by USN: the DC's counter before the listing, named by the DC.
    let first = ad.users_since(None).await.expect("a full listing");
    assert!(first.full && first.users.iter().any(|u| u.login == "nurse"));
    let mark = first.mark.expect("a DC gives its highestCommittedUSN");
    assert!(matches!(&mark, SyncMark::Usn { server, .. } if server.contains("NTDS Settings")), "{mark:?}");
    let admin = format!("CN=Administrator,CN=Users,{BASE}");
    let ca = dc.dir.join("ca.pem");
    ldap::ldapmodify(
        &ca,
        "ldaps://127.0.0.1:636",
        &admin,
        ADMIN_PASSWORD,
        &format!("dn: {}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: 4242\n", nurse.dn),
    );
    let next = ad.users_since(Some(&mark)).await.expect("a changed-since listing");
    assert!(!next.full);
    assert_eq!(next.users.iter().map(|u| u.login.as_str()).collect::<Vec<_>>(), ["nurse"]);
    assert!(
        matches!(&next.mark, Some(SyncMark::Usn { usn, .. }) if matches!(&mark, SyncMark::Usn { usn: before, .. } if usn > before))
    );
    // Another DC's counter means nothing here: a full listing.
    let elsewhere = SyncMark::Usn { server: "CN=NTDS Settings,CN=DC9".into(), usn: 1 };
    assert!(ad.users_since(Some(&elsewhere)).await.expect("a full listing").full);
}
