//! The LDAP source against a real slapd (the harness the gateway's integration tests use):
//! LDAPS and StartTLS with the test CA, the service bind, the password by bind, AD's account
//! states read from the entry, nested groups with a cycle, both profiles, login names that
//! try to change the filter.
#[path = "../../../gateway/server/tests/common/ldap.rs"]
mod ldap;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ldap::Slapd;
use vigie_directory_ldap::{AccountState, Attributes, LdapConfig, LdapSource, Profile, Refusal, SyncMark};

fn config(slapd: &Slapd, profile: Profile, urls: Vec<String>, starttls: bool) -> LdapConfig {
    LdapConfig {
        profile,
        urls,
        starttls,
        ca_file: Some(slapd.ca_file.clone()),
        bind_dn: ldap::SERVICE_DN.into(),
        bind_password_file: slapd.password_file.clone(),
        user_base: format!("ou=people,{}", ldap::BASE),
        group_base: Some(format!("ou=groups,{}", ldap::BASE)),
        // slapd has the AD attributes but not LDAP_MATCHING_RULE_IN_CHAIN, nor AD's classes.
        user_filter: Some("(objectClass=user)".into()),
        attributes: Attributes::default(),
        group_expansion: Some(vigie_directory_ldap::GroupExpansion::Client),
        group_roles: BTreeMap::from([("GG-Admin-Cartes".into(), "cards".into())]),
        connect_timeout_ms: 3000,
        operation_timeout_ms: 5000,
        sync_interval_secs: 0,
        full_sync_interval_secs: 86_400,
        matricule_changes: Default::default(),
    }
}

fn source(slapd: &Slapd, profile: Profile) -> LdapSource {
    LdapSource::from_files(config(slapd, profile, vec![slapd.ldaps_url.clone()], false), "directory.ldap")
        .expect("the source")
}

#[tokio::test]
async fn an_ad_profile_user_logs_in_by_bind_with_nested_groups_and_a_cycle() {
    let slapd = Slapd::start();
    let ad = source(&slapd, Profile::Ad);
    let user = ad.check_password("demo.infirmiere", ldap::PASSWORD).await.expect("reachable").expect("accepted");
    assert_eq!(user.id, ldap::INFIRMIERE_GUID, "the objectGUID, as Windows prints it");
    assert_eq!(user.login, "demo.infirmiere");
    assert_eq!(user.matricule.as_deref(), Some("M000101"));
    assert_eq!((user.given_name.as_deref(), user.family_name.as_deref()), (Some("Camille"), Some("Martin")));
    let mut groups: Vec<String> =
        user.groups.iter().map(|g| g.split(',').next().unwrap_or_default().to_owned()).collect();
    groups.sort();
    assert_eq!(groups, ["cn=GG-Admin-Cartes", "cn=GG-Cycle-A", "cn=GG-Cycle-B", "cn=GG-Soins", "cn=GG-Tous"]);
    assert_eq!(user.roles, ["cards"], "GG-Admin-Cartes reached through GG-Soins");

    let wrong = ad.check_password("demo.infirmiere", "not-the-password").await.expect("reachable");
    assert_eq!(wrong, Err(Refusal::BadPassword));
    let unknown = ad.check_password("nobody", ldap::PASSWORD).await.expect("reachable");
    assert_eq!(unknown, Err(Refusal::UnknownUser));
    // RFC 4513 §5.1.2: an empty password would be an unauthenticated bind, which slapd accepts.
    let empty = ad.check_password("demo.infirmiere", "").await.expect("reachable");
    assert_eq!(empty, Err(Refusal::BadPassword));
}

#[tokio::test]
async fn ad_account_states_are_read_though_slapd_accepts_the_bind() {
    let slapd = Slapd::start();
    let ad = source(&slapd, Profile::Ad);
    for (login, state) in [
        ("demo.interne", AccountState::Disabled),
        ("ad.locked", AccountState::Locked),
        ("ad.expired", AccountState::Expired),
        ("ad.mustchange", AccountState::MustChangePassword),
    ] {
        let got = ad.check_password(login, ldap::PASSWORD).await.expect("reachable");
        assert_eq!(got, Err(Refusal::State(state)), "{login}");
        // The state is told only to whoever knows the password.
        let wrong = ad.check_password(login, "not-the-password").await.expect("reachable");
        assert_eq!(wrong, Err(Refusal::BadPassword), "{login}");
    }
}

#[tokio::test]
async fn login_names_that_try_to_widen_the_filter_find_no_one() {
    let slapd = Slapd::start();
    let ad = source(&slapd, Profile::Ad);
    // Each would match exactly demo.infirmiere if it reached the filter unescaped.
    for login in ["demo.infirmi*", "*infirmiere", "demo.infirmiere)(uid=demo.infirmiere", "demo.infirmiere)(|(uid=x"] {
        let got = ad.check_password(login, ldap::PASSWORD).await.expect("reachable");
        assert_eq!(got, Err(Refusal::UnknownUser), "{login:?}");
    }
}

#[tokio::test]
async fn the_openldap_profile_reads_entry_uuid_over_starttls_after_a_dead_server() {
    let slapd = Slapd::start();
    // The first URL answers nothing: the next one is tried.
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let mut c = config(&slapd, Profile::Openldap, vec![dead, slapd.ldap_url.clone()], true);
    c.user_filter = None;
    c.group_expansion = None;
    c.attributes = Attributes { matricule: Some("employeeID".into()), ..Default::default() };
    let ol = LdapSource::from_files(c, "directory.ldap").expect("the source");
    let user = ol.user("demo.infirmiere").await.expect("reachable").expect("found");
    assert_eq!(user.id.len(), 36, "an entryUUID: {}", user.id);
    assert_ne!(user.id, ldap::INFIRMIERE_GUID);
    assert_eq!(user.matricule.as_deref(), Some("M000101"));
    assert_eq!(user.roles, ["cards"]);
    assert!(ol.check_password("demo.infirmiere", ldap::PASSWORD).await.expect("reachable").is_ok());
}

#[tokio::test]
async fn a_wrong_ca_a_wrong_service_password_and_a_down_directory_are_outages_that_say_so() {
    let mut slapd = Slapd::start();
    // Another CA: the TLS handshake fails, whatever the password.
    let other = Slapd::start();
    let mut c = config(&slapd, Profile::Ad, vec![slapd.ldaps_url.clone()], false);
    c.ca_file = Some(other.ca_file.clone());
    let e = LdapSource::from_files(c, "directory.ldap").expect("the source").ping().await.expect_err("refused");
    assert!(e.to_string().contains("127.0.0.1"), "{e}");

    let bad = slapd.dir().join("bad-password");
    std::fs::write(&bad, "not-the-service-password\n").expect("a file");
    let mut c = config(&slapd, Profile::Ad, vec![slapd.ldaps_url.clone()], false);
    c.bind_password_file = bad;
    let e = LdapSource::from_files(c, "directory.ldap").expect("the source").ping().await.expect_err("refused");
    assert!(e.to_string().contains("service bind was refused"), "{e}");
    assert!(!e.to_string().contains("not-the-service-password"), "{e}");

    let ad = source(&slapd, Profile::Ad);
    slapd.stop();
    let started = Instant::now();
    let e = ad.check_password("demo.infirmiere", ldap::PASSWORD).await.expect_err("down");
    assert!(e.to_string().contains("unavailable"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "a down directory answers within the timeouts");
    slapd.restart();
    assert!(ad.check_password("demo.infirmiere", ldap::PASSWORD).await.expect("back").is_ok());
}

#[test]
fn missing_files_name_their_key() {
    let dir = std::env::temp_dir();
    let c = LdapConfig {
        profile: Profile::Ad,
        urls: vec!["ldaps://127.0.0.1:1".into()],
        starttls: false,
        ca_file: Some(dir.join("vigie-no-such-ca.pem")),
        bind_dn: "cn=svc".into(),
        bind_password_file: dir.join("vigie-no-such-password"),
        user_base: "dc=x".into(),
        group_base: None,
        user_filter: None,
        attributes: Attributes::default(),
        group_expansion: None,
        group_roles: BTreeMap::new(),
        connect_timeout_ms: 1000,
        operation_timeout_ms: 1000,
        sync_interval_secs: 0,
        full_sync_interval_secs: 86_400,
        matricule_changes: Default::default(),
    };
    let e = LdapSource::from_files(c, "directory.ldap").expect_err("no such file").to_string();
    assert!(e.starts_with("`directory.ldap.bind_password_file`: cannot read"), "{e}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port()
}

/// The figures of docs/directory.md: `cargo test -p vigie-directory-ldap --test slapd -- --ignored
/// --nocapture figures`. A connection costs TCP + TLS + the service bind (what `ping` does); a
/// password check adds the user search, the user bind, the service re-bind and the group searches.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn figures() {
    let slapd = Slapd::start();
    let ad = std::sync::Arc::new(source(&slapd, Profile::Ad));
    let timed = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    let mut pings = Vec::new();
    let mut checks = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        ad.ping().await.expect("ping");
        pings.push(t.elapsed());
        let t = Instant::now();
        assert!(ad.check_password("demo.infirmiere", ldap::PASSWORD).await.expect("reachable").is_ok());
        checks.push(t.elapsed());
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let ad = ad.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    assert!(ad.check_password("demo.infirmiere", ldap::PASSWORD).await.expect("reachable").is_ok());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let rate = 400.0 / started.elapsed().as_secs_f64();
    println!("connect + TLS + service bind (p50, p99): {:?}", timed(pings));
    println!("password check with 5 nested groups (p50, p99): {:?}", timed(checks));
    println!("password checks per second, 8 at a time: {rate:.0}");
}

/// The probe's budget per server, as `health.probe_timeout_ms` gives it.
const PROBE: Duration = Duration::from_secs(2);

/// The health probe goes one step further than `ping`: a `user_base` that does not exist (a
/// renamed OU, a wrong base after a migration) answers the service bind but fails the probe,
/// as every login would; a stopped server fails it within the timeouts, a restarted one passes.
#[tokio::test]
async fn the_probe_binds_reads_the_base_and_fails_on_a_missing_base_or_a_stopped_server() {
    let mut slapd = Slapd::start();
    let ad = source(&slapd, Profile::Ad);
    ad.probe(PROBE).await.expect("the directory answers");

    let mut c = config(&slapd, Profile::Ad, vec![slapd.ldaps_url.clone()], false);
    c.user_base = format!("ou=gone,{}", ldap::BASE);
    let gone = LdapSource::from_files(c, "directory.ldap").expect("the source");
    gone.ping().await.expect("the service bind alone succeeds");
    let e = gone.probe(PROBE).await.expect_err("no such base");
    assert!(e.to_string().contains("reading `user_base`"), "{e}");
    assert!(!e.to_string().contains(ldap::SERVICE_PASSWORD), "{e}");

    slapd.stop();
    let started = Instant::now();
    let e = ad.probe(PROBE).await.expect_err("stopped");
    assert!(e.to_string().contains("127.0.0.1"), "the error names the server: {e}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    slapd.restart();
    ad.probe(PROBE).await.expect("back");
}

/// A first server that accepts connections and never answers (a DC hung or blackholed: the
/// kernel completes the TCP handshake, nothing reads the TLS hello): the probe passes it over
/// within its budget, and from then on the server that answered is tried first, by probes and
/// logins alike, instead of paying the hung one's timeouts each time.
#[tokio::test]
async fn a_hanging_first_server_is_passed_over_by_the_probe_and_then_tried_last() {
    let slapd = Slapd::start();
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("a socket nobody reads");
    let hung_url = format!("ldaps://127.0.0.1:{}", hung.local_addr().expect("its address").port());
    let c = config(&slapd, Profile::Ad, vec![hung_url, slapd.ldaps_url.clone()], false);
    let ad = LdapSource::from_files(c, "directory.ldap").expect("the source");
    let budget = Duration::from_millis(1500);
    let started = Instant::now();
    ad.probe(budget).await.expect("the second server answers");
    let first = started.elapsed();
    assert!(first >= budget && first < budget * 3, "the hung server cost the budget once: {first:?}");
    let started = Instant::now();
    ad.probe(budget).await.expect("again");
    assert!(started.elapsed() < budget, "the answering server is tried first now: {:?}", started.elapsed());
    let started = Instant::now();
    assert!(ad.check_password("demo.infirmiere", ldap::PASSWORD).await.expect("reachable").is_ok());
    // A login that tried the hung server first would wait `connect_timeout_ms` (3 s) for it.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    drop(hung);
}

/// Issue 16: a pass after the first reads only what changed (slapd has no USN: its `entryCSN`,
/// strictly after the mark, even within the same second as the load); a deletion is not among the changes (the full pass finds leavers).
#[tokio::test]
async fn a_changed_since_listing_reads_only_the_entries_changed_since_the_mark() {
    let slapd = Slapd::start_with(100);
    let source = source(&slapd, Profile::Ad);
    let first = source.users_since(None).await.expect("the first listing");
    assert!(first.full);
    assert_eq!(first.users.len(), 106, "the test DIT's 6 users and the 100 agents");
    let mark = first.mark.expect("slapd gives every entry an entryCSN");
    assert!(matches!(mark, SyncMark::Csn(_)), "{mark:?}");

    let person = |login: &str| format!("uid={login},ou=people,{}", ldap::BASE);
    for n in [3, 50, 97] {
        slapd.modify(&format!(
            "dn: {}\nchangetype: modify\nreplace: sn\nsn: Renomme{n}\n",
            person(&format!("agent.{n}"))
        ));
    }
    slapd.modify(&format!("dn: {}\nchangetype: delete\n", person("agent.10")));
    let next = source.users_since(Some(&mark)).await.expect("the changed-since listing");
    assert!(!next.full);
    let mut read: Vec<(String, Option<String>)> =
        next.users.iter().map(|u| (u.login.clone(), u.family_name.clone())).collect();
    read.sort();
    assert_eq!(
        read,
        [("agent.3", "Renomme3"), ("agent.50", "Renomme50"), ("agent.97", "Renomme97")]
            .map(|(l, f)| (l.to_owned(), Some(f.to_owned())))
    );
    let later = next.mark.expect("a mark");
    assert!(SyncMark::decode(&later.encode()) == Some(later.clone()) && later != mark, "the mark moved: {later:?}");

    // Nothing changed since: nothing read, the mark stays.
    let quiet = source.users_since(Some(&later)).await.expect("a quiet listing");
    assert_eq!((quiet.users.len(), quiet.mark.as_ref()), (0, Some(&later)));
    // A mark of another kind (a DC's USN) cannot be used on this server: a full listing.
    let usn = SyncMark::Usn { server: "CN=NTDS Settings,CN=DC9".into(), usn: 7 };
    let full = source.users_since(Some(&usn)).await.expect("a full listing");
    assert!(full.full);
    assert_eq!(full.users.len(), 105, "agent.10 is gone");
}
