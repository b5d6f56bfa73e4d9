//! A database file of its own per test, removed (with its WAL files) when the test ends.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, Identity};

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct TempDb {
    pub path: PathBuf,
}

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        let path = std::env::temp_dir().join(format!(
            "vigie-directory-{name}-{}-{}.db",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let db = TempDb { path };
        db.remove();
        db
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

pub fn camille() -> Identity {
    Identity {
        id: String::new(),
        matricule: "004512".into(),
        family_name: "Lefèvre".into(),
        given_name: "Camille".into(),
        birth_date: Some("1979-03-14".into()),
        metier: Some("Médecin".into()),
        grade: Some("Praticien hospitalier".into()),
        idnat: Some(IdNat::parse("810002004512").unwrap()),
        units: vec![Affectation { uf: "UF1234".into(), share: 60 }, Affectation { uf: "UF2201".into(), share: 40 }],
    }
}

pub fn ines() -> Identity {
    Identity {
        id: String::new(),
        matricule: "005377".into(),
        family_name: "Da Silva".into(),
        given_name: "Inès".into(),
        birth_date: None,
        metier: Some("Secrétaire médicale".into()),
        grade: None,
        idnat: None,
        units: vec![],
    }
}

pub fn account(identity_id: &str, username: &str) -> Account {
    Account {
        identity_id: identity_id.into(),
        username: username.into(),
        password_hash: None,
        totp_secret: None,
        disabled: false,
    }
}
