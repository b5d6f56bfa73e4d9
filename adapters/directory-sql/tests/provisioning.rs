//! The provisioning port (SCIM people and groups) on a real SQLite file and a real PostgreSQL
//! database: linking to HR's record, uniqueness, versions, disabling, and group roles.
#[macro_use]
mod common;

use vigie_core::directory::{Directory, Identity};
use vigie_core::provisioning::{GroupRecord, Provisioning, ProvisioningError, UserRecord};
use vigie_core::roles::{Role, Roles};
use vigie_directory_sql::SqlDirectory;

fn person(user_name: &str, matricule: Option<&str>, active: bool) -> UserRecord {
    UserRecord {
        user_name: user_name.into(),
        external_id: Some(format!("ext-{user_name}")),
        active,
        family_name: "Durand".into(),
        given_name: "Marie".into(),
        matricule: matricule.map(Into::into),
        idnat: None,
        metier: Some("IDE".into()),
        units: vec!["UF1".into(), "UF2".into(), "UF3".into()],
        document: format!(r#"{{"userName":"{user_name}"}}"#),
    }
}

fn group(name: &str, members: &[&str]) -> GroupRecord {
    GroupRecord {
        display_name: name.into(),
        external_id: None,
        members: members.iter().map(|m| m.to_string()).collect(),
        role: Role::parse(name).ok(),
        document: format!(r#"{{"displayName":"{name}"}}"#),
    }
}

on_both! {
async fn a_provisioned_person_links_to_hr_and_follows_versions(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    // HR imported this person; the SCIM client then provisions them by matricule.
    let hr = Identity {
        id: String::new(),
        matricule: "M042".into(),
        family_name: "Durand".into(),
        given_name: "Marie".into(),
        birth_date: Some("1980-02-03".into()),
        metier: None,
        grade: Some("IDE-CS".into()),
        idnat: None,
        units: vec![],
    };
    let hr_id = dir.upsert_identity(&hr).await.unwrap();
    let stored = dir.create_user(&person("mdurand", Some("M042"), true)).await.unwrap();
    assert_eq!((stored.id.as_str(), stored.version, stored.active), (hr_id.as_str(), 1, true));
    let identity = dir.identity(&hr_id).await.unwrap().unwrap();
    assert_eq!(identity.grade.as_deref(), Some("IDE-CS"), "what SCIM does not carry stays");
    assert_eq!(identity.units.iter().map(|u| u.share).sum::<u8>(), 100);
    assert_eq!(identity.units[0].share, 34, "the main unit takes what the division leaves");
    assert_eq!(dir.account_by_username("mdurand").await.unwrap().map(|a| a.disabled), Some(false));

    // Taken once only; another login name is unique too.
    assert!(matches!(dir.create_user(&person("other", Some("M042"), true)).await, Err(ProvisioningError::Uniqueness(_))));
    assert!(matches!(dir.create_user(&person("mdurand", None, true)).await, Err(ProvisioningError::Uniqueness(_))));

    // A replacement at a stale version changes nothing; at the current one it applies.
    let off = person("mdurand", Some("M042"), false);
    assert!(matches!(dir.replace_user(&hr_id, &off, Some(7)).await, Err(ProvisioningError::VersionMismatch(1))));
    assert!(!dir.account_disabled(&hr_id).await.unwrap());
    let v2 = dir.replace_user(&hr_id, &off, Some(1)).await.unwrap();
    assert_eq!((v2.version, v2.active), (2, false));
    assert!(dir.account_disabled(&hr_id).await.unwrap(), "active=false disables the account");
    assert!(matches!(dir.replace_user("nobody", &off, None).await, Err(ProvisioningError::NotFound)));

    // Deleted: no longer provisioned, the account stays disabled, the identity stays.
    dir.delete_user(&hr_id, Some(2)).await.unwrap();
    assert_eq!(dir.user(&hr_id).await.unwrap(), None);
    assert!(dir.account_disabled(&hr_id).await.unwrap());
    assert!(dir.identity(&hr_id).await.unwrap().is_some());
    assert!(matches!(dir.delete_user(&hr_id, None).await, Err(ProvisioningError::NotFound)));
}
}

on_both! {
async fn a_group_named_after_a_role_grants_it_to_its_members_only_while_they_are_in_it(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let a = dir.create_user(&person("a.member", None, true)).await.unwrap().id;
    let b = dir.create_user(&person("b.member", None, true)).await.unwrap().id;
    // A role granted otherwise is never taken back by a group.
    dir.grant(&b, Role::Fido2, "cli:test").await.unwrap();

    let cards = dir.create_group(&group("cards", &[&a, &b])).await.unwrap();
    assert_eq!(cards.members.len(), 2);
    assert!(dir.roles_of(&a).await.unwrap().contains(&Role::Cards));
    let fido = dir.create_group(&group("fido2", &[&b])).await.unwrap();
    assert!(matches!(dir.create_group(&group("cards", &[])).await, Err(ProvisioningError::Uniqueness(_))));
    assert!(matches!(dir.create_group(&group("x", &["not-provisioned"])).await, Err(ProvisioningError::Invalid(_))));

    // a leaves the group: the role goes with it; b keeps it.
    dir.replace_group(&cards.id, &group("cards", &[&b]), Some(1)).await.unwrap();
    assert_eq!(dir.roles_of(&a).await.unwrap(), Vec::<Role>::new());
    assert_eq!(dir.roles_of(&b).await.unwrap(), vec![Role::Cards, Role::Fido2]);
    // The fido2 group goes: b's own grant of fido2 was not the group's, it stays.
    dir.delete_group(&fido.id, None).await.unwrap();
    assert_eq!(dir.roles_of(&b).await.unwrap(), vec![Role::Cards, Role::Fido2]);
    // b is deleted: the role the cards group gave goes, and so does the membership.
    dir.delete_user(&b, None).await.unwrap();
    assert_eq!(dir.roles_of(&b).await.unwrap(), vec![Role::Fido2]);
    assert!(dir.group(&cards.id).await.unwrap().unwrap().members.is_empty());
}
}
