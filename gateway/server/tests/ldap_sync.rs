//! The directory sync as a life cycle (issue 16), against a real slapd: a pass after the first
//! reads and applies only the entries changed since (slapd's `entryCSN`), a deletion is found by
//! the full pass; a linked entry whose matricule changes in the directory is refused by default
//! (HR owns the matricule) or followed by identity id, never a second identity; the roles a
//! login brings from the directory's groups are audited, added and removed.
use crate::common;
use crate::ldap::{BY_ENTRY_UUID, NURSE, start, sync_args, sync_with, try_login};

use common::ldap::{self as slapd, Slapd};
use common::*;

/// `vigie directory sync --changed` (a changed-since pass) on the data directory of `gw`.
fn sync_changed(s: &Slapd, gw: &Gateway, more: &[(&str, &str)]) -> String {
    sync_args(s, gw, &["--changed"], more)
}

fn person(login: &str) -> String {
    format!("uid={login},ou=people,{}", slapd::BASE)
}

#[tokio::test]
async fn a_changed_since_pass_reads_and_applies_only_the_changes_and_the_full_pass_finds_the_leaver() {
    let s = Slapd::start_with(100);
    let gw = start(&s).await;
    let env = [BY_ENTRY_UUID];
    // No mark yet: `--changed` makes a full pass. The test DIT's 6 and 100 agents: 103 joiners;
    // the demo's 3 people linked (updated); demo.interne and ad.expired disabled.
    assert_eq!(
        sync_changed(&s, &gw, &env),
        "directory sync (full pass, 106 read): 103 created, 3 updated, 0 unchanged, 2 disabled, 0 skipped (no \
         matricule), 0 refused (matricule changed), 0 left"
    );

    s.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n",
        person("agent.5")
    ));
    s.modify(&format!("dn: {}\nchangetype: modify\nreplace: sn\nsn: Nouveau\n", person("agent.6")));
    s.modify(&format!("dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Agnes\n", person("agent.7")));
    s.modify(&format!("dn: {}\nchangetype: delete\n", person("agent.8")));
    // Only the 3 changed entries are read (the deletion is no entry), and applied.
    assert_eq!(
        sync_changed(&s, &gw, &env),
        "directory sync (changed since the last pass, 3 read): 0 created, 3 updated, 0 unchanged, 1 disabled, 0 \
         skipped (no matricule), 0 refused (matricule changed), 0 left"
    );
    let line = gw.audit_line(|l| l["kind"] == "directory_sync" && l["username"] == "agent.5").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("disabled or expired")), "{line}");

    // The full pass reads everyone and finds the leaver.
    assert_eq!(
        sync_with(&s, &gw, &env),
        "directory sync (full pass, 105 read): 0 created, 0 updated, 105 unchanged, 0 disabled, 0 skipped (no \
         matricule), 0 refused (matricule changed), 1 left"
    );
    gw.audit_line(|l| {
        l["kind"] == "directory_sync"
            && l["username"] == "agent.8"
            && l["reason"].as_str().is_some_and(|r| r.contains("gone from the directory"))
    })
    .await;
    assert_eq!(
        sync_changed(&s, &gw, &env),
        "directory sync (changed since the last pass, 0 read): 0 created, 0 updated, 0 unchanged, 0 disabled, 0 \
         skipped (no matricule), 0 refused (matricule changed), 0 left"
    );
}

/// The nurse's `sub` after a password + TOTP login, and the flow's answer.
async fn nurse_sub(gw: &Gateway) -> serde_json::Value {
    let totp = gw.totp(NURSE).await;
    let (_, a, done) = try_login(gw, NURSE, slapd::PASSWORD, &totp).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("a code");
    jwt_part(&redeem(gw, &a, &code).await.id, 1)["sub"].clone()
}

#[tokio::test]
async fn a_matricule_changed_in_the_directory_is_refused_or_followed_never_a_second_identity_and_roles_are_audited() {
    let s = Slapd::start();
    let gw = start(&s).await;
    let sub = nurse_sub(&gw).await;
    // GG-Soins ⊂ GG-Admin-Cartes: the role `cards`, granted at this login, audited.
    let granted = gw.audit_line(|l| l["kind"] == "role_changed" && l["username"] == NURSE).await;
    assert_eq!(granted["object"], "roles added: cards; removed: none", "{granted}");
    assert_eq!((granted["actor"].as_str(), granted["outcome"].as_str()), (Some("directory-groups"), Some("success")));
    assert!(granted["subject"].as_str().is_some_and(|s| !s.is_empty()), "{granted}");

    let first = sync_with(&s, &gw, &[]);
    assert!(first.ends_with("0 refused (matricule changed), 0 left"), "{first}");
    // The nurse (linked by her objectGUID) gets another matricule in the directory, and leaves
    // GG-Soins.
    s.modify(&format!("dn: {}\nchangetype: modify\nreplace: employeeID\nemployeeID: M777777\n", person(NURSE)));
    s.modify(&format!(
        "dn: cn=GG-Soins,ou=groups,{}\nchangetype: modify\nreplace: member\nmember: {}\n",
        slapd::BASE,
        person("ad.locked")
    ));

    // By default HR owns the matricule: refused, audited, and again at the next pass.
    for _ in 0..2 {
        assert_eq!(
            sync_with(&s, &gw, &[]),
            "directory sync (full pass, 6 read): 0 created, 0 updated, 5 unchanged, 0 disabled, 0 skipped (no \
             matricule), 1 refused (matricule changed), 0 left"
        );
    }
    let refused = gw.audit_line(|l| l["kind"] == "directory_sync" && l["outcome"] == "failure").await;
    assert_eq!(
        (refused["username"].as_str(), refused["object"].as_str()),
        (Some(NURSE), Some("matricule:M000101 -> M777777"))
    );
    assert!(refused["reason"].as_str().is_some_and(|r| r.contains("matricule_changes")), "{refused}");

    // Followed: the linked identity takes the new matricule, by its id.
    let follow = ("VIGIE_DIRECTORY__LDAP__MATRICULE_CHANGES", "follow");
    assert_eq!(
        sync_with(&s, &gw, &[follow]),
        "directory sync (full pass, 6 read): 0 created, 1 updated, 5 unchanged, 0 disabled, 0 skipped (no \
         matricule), 0 refused (matricule changed), 0 left"
    );
    let followed =
        gw.audit_line(|l| l["kind"] == "directory_sync" && l["outcome"] == "success" && l["username"] == NURSE).await;
    assert_eq!(followed["object"], "matricule:M000101 -> M777777", "{followed}");
    assert!(sync_with(&s, &gw, &[follow]).contains("0 created, 0 updated, 6 unchanged"));

    // The same person: same `sub`; the role her groups no longer give is revoked, audited.
    assert_eq!(nurse_sub(&gw).await, sub);
    gw.audit_line(|l| {
        l["kind"] == "role_changed" && l["username"] == NURSE && l["object"] == "roles added: none; removed: cards"
    })
    .await;
}
