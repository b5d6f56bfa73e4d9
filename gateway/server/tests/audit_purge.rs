//! The purge of the trail in PostgreSQL against the real binary and the run's PostgreSQL
//! (docs/audit.md, "Retention and purge"): the gateway's role can neither UPDATE nor DELETE a
//! record nor call the purge; `vigie audit purge` through a purge role of its own stubs what is
//! past retention under a signed note; `verify` reports the purged range and still names a row
//! stubbed by hand, an edit and a removal.
use std::process::Command;

use crate::audit_trail::{offline_config, psql_may_fail, shared_checkpoint_key, verify_table};
use crate::common::{self, BIN};
use time::format_description::well_known::Rfc3339;

/// `vigie` with `args`: exit status and everything it printed.
fn vigie(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("running vigie");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The same URL as another (password-less, trust-authenticated) role of the test server.
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{role}@{host}")
}

#[test]
fn the_postgresql_trail_is_purged_by_a_role_that_cannot_edit_it_and_verify_reports_the_purged_range() {
    let Some(db) = common::postgres::shared_database("audit_purge") else { return };
    let admin = std::env::var(common::postgres::POSTGRES_URL_VAR).unwrap();
    let dir = std::env::temp_dir().join(format!("vigie-pg-purge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (key, public) = shared_checkpoint_key(&dir);
    // The trail's tables, made by its migrations (as the owner, the migration Job's role).
    let (status, out) = verify_table(&public, &db.url);
    assert_eq!(status, 0, "an empty trail: {out}");

    // Records as replicas write them: a login 400 days old (past the default year), a VIHF as
    // old (10 years for DMP traces), a recent login; a checkpoint over them.
    let signer = vigie_gateway::audit::note::Signer::load("vigie.demo/audit", &key).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut link = vigie_gateway::audit::chain::Link::default();
    let mut rows = Vec::new();
    for (kind, age) in [("login", 400), ("vihf_issued", 400), ("login", 10), ("logout", 2)] {
        let at = (now - time::Duration::days(age)).format(&Rfc3339).unwrap();
        let event = format!(r#"{{"at":"{at}","kind":"{kind}","username":"jdupont"}}"#);
        rows.push(vigie_gateway::audit::pg::seal_after(&mut link, &event).0);
    }
    for r in &rows {
        common::postgres::psql(
            &db.url,
            &format!(
                "INSERT INTO audit_records (seq, prev, hash, record) VALUES ({}, '{}', '{}', '{}')",
                r.seq,
                r.prev,
                r.hash,
                r.record.replace('\'', "''")
            ),
        );
    }
    let note = signer.checkpoint(&link, "t").replace('\'', "''");
    common::postgres::psql(&db.url, &format!("INSERT INTO audit_checkpoints (size, note) VALUES (4, '{note}')"));

    // The roles docs/audit.md describes: the gateway's (SELECT, INSERT) and the purge's (SELECT,
    // EXECUTE on vigie_audit_purge).
    let (gateway, purger) = (format!("vigie_gw_{}", std::process::id()), format!("vigie_purge_{}", std::process::id()));
    common::postgres::psql(
        &db.url,
        &format!(
            "CREATE ROLE {gateway} LOGIN; CREATE ROLE {purger} LOGIN; \
             GRANT SELECT, INSERT ON audit_records, audit_checkpoints TO {gateway}; \
             GRANT SELECT ON audit_records, audit_checkpoints, audit_purge_notes TO {purger}; \
             GRANT EXECUTE ON FUNCTION vigie_audit_purge(BIGINT[], TEXT[], DATE, TEXT) TO {purger}"
        ),
    );
    let drop_roles = || {
        let _ = psql_may_fail(&admin, &format!("DROP ROLE IF EXISTS {gateway}; DROP ROLE IF EXISTS {purger}"));
    };
    let as_gateway = as_role(&db.url, &gateway);
    for sql in [
        "UPDATE audit_records SET record = '' WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "SELECT vigie_audit_purge(ARRAY[1]::BIGINT[], ARRAY['x'], current_date, 'n')",
    ] {
        let (ok, err) = psql_may_fail(&as_gateway, sql);
        assert!(!ok && err.contains("permission denied"), "the gateway's role: {sql}: {err}");
    }
    let as_purger = as_role(&db.url, &purger);
    for sql in ["UPDATE audit_records SET record = '' WHERE seq = 1", "DELETE FROM audit_records WHERE seq = 1"] {
        let (ok, err) = psql_may_fail(&as_purger, sql);
        assert!(!ok && err.contains("permission denied"), "the purge's role: {sql}: {err}");
    }

    let config = offline_config(
        &dir,
        &format!(
            "url = \"{}\"\npurge_url = \"{as_purger}\"\ncheckpoint_key = \"{}\"\norigin = \"vigie.demo/audit\"\n",
            db.url,
            key.display()
        ),
    );
    let before = common::postgres::psql(&db.url, "SELECT record FROM audit_records ORDER BY seq");
    let (status, out) = vigie(&["audit", "purge", "--dry-run", "--config", &config]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("would purge 1 record(s) past their retention (between seq 1 and 1)"), "{out}");
    assert_eq!(common::postgres::psql(&db.url, "SELECT record FROM audit_records ORDER BY seq"), before);

    let (status, out) = vigie(&["audit", "purge", "--config", &config]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("purged 1 record(s)") && out.contains("3 kept"), "{out}");
    let first = common::postgres::psql(&db.url, "SELECT record FROM audit_records WHERE seq = 1");
    let day = now.date().to_string();
    assert_eq!(
        first.trim_end(),
        format!(r#"{{"seq":1,"prev":"{}","purged":"{day}","hash":"{}"}}"#, rows[0].prev, rows[0].hash)
    );
    let notes = common::postgres::psql(&db.url, "SELECT count(*) FROM audit_purge_notes");
    assert_eq!(notes.trim(), "1", "one signed purge note");
    let (status, out) = vigie(&["audit", "verify", "--config", &config]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("intact: 4 records") && out.contains("records 1..1 purged by policy on "), "{out}");
    let (status, out) = vigie(&["audit", "purge", "--config", &config]);
    assert!(status == 0 && out.contains("nothing past its retention") && out.contains("1 purged before"), "{out}");

    // A stub no signed note lists: the trigger lets a well-formed stub through for the owner,
    // verify names it.
    let third = common::postgres::psql(&db.url, "SELECT record FROM audit_records WHERE seq = 3");
    common::postgres::psql(
        &db.url,
        &format!(
            r#"UPDATE audit_records SET record = '{{"seq":3,"prev":"{}","purged":"{day}","hash":"{}"}}' WHERE seq = 3"#,
            rows[2].prev, rows[2].hash
        ),
    );
    let (status, out) = verify_table(&public, &db.url);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("audit_records:3: record seq 3: a purged record, but no signed purge note covers it"),
        "{out}"
    );
    // Put back (the trigger off, as a superuser could), then an edit, then a removal.
    let restore = |seq: usize, record: &str| {
        common::postgres::psql(
            &db.url,
            &format!(
                "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only; \
                 UPDATE audit_records SET record = '{}' WHERE seq = {seq}",
                record.trim_end().replace('\'', "''")
            ),
        )
    };
    restore(3, &third);
    assert_eq!(verify_table(&public, &db.url).0, 0, "the row put back, the trail verifies again");
    restore(2, &rows[1].record.replace("jdupont", "mmartin"));
    let (status, out) = verify_table(&public, &db.url);
    assert!(status == 1 && out.contains("audit_records:2: record seq 2: its content does not match its hash"), "{out}");
    restore(2, &rows[1].record);
    common::postgres::psql(&db.url, "DELETE FROM audit_records WHERE seq = 2");
    let (status, out) = verify_table(&public, &db.url);
    assert!(status == 1 && out.contains("record seq 3: expected seq 2 here: seq 2..2 removed"), "{out}");

    drop(db);
    drop_roles();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A chain of records of `kinds` aged `days`, as the writer seals a new file after a rotation.
fn chain_file(path: &std::path::Path, records: &[(&str, i64)]) -> vigie_gateway::audit::chain::Link {
    let now = time::OffsetDateTime::now_utc();
    let mut link = vigie_gateway::audit::chain::Link::default();
    let mut lines = String::new();
    for (kind, age) in records {
        let at = (now - time::Duration::days(*age)).format(&Rfc3339).unwrap();
        lines.push_str(&link.seal(&format!(r#"{{"at":"{at}","kind":"{kind}","username":"jdupont"}}"#)));
    }
    std::fs::write(path, lines).unwrap();
    link
}

#[test]
fn rotated_copies_of_the_file_trail_are_purged_each_keeping_its_chain_verifiable() {
    let dir = std::env::temp_dir().join(format!("vigie-rotated-purge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (key, public) = shared_checkpoint_key(&dir);
    let signer = vigie_gateway::audit::note::Signer::load("vigie.demo/audit", &key).unwrap();
    // logrotate's copies (each a chain of its own: the writer starts one in each new file), one
    // with its checkpoints beside it, and the live trail.
    let two = chain_file(&dir.join("audit.jsonl.2"), &[("login", 800), ("logout", 700), ("vihf_issued", 700)]);
    let note = serde_json::json!({"checkpoint": signer.checkpoint(&two, "t")});
    std::fs::write(dir.join("audit.jsonl.2.checkpoints"), format!("{note}\n")).unwrap();
    chain_file(&dir.join("audit.jsonl.1"), &[("login", 500), ("login", 30)]);
    let live = chain_file(&dir.join("audit.jsonl"), &[("login", 400), ("login", 1)]);
    let note = serde_json::json!({"checkpoint": signer.checkpoint(&live, "t")});
    std::fs::write(dir.join("audit.jsonl.checkpoints"), format!("{note}\n")).unwrap();
    let d = dir.display();
    let config = offline_config(
        &dir,
        &format!("file = \"{d}/audit.jsonl\"\ncheckpoint_key = \"{}\"\norigin = \"vigie.demo/audit\"\n", key.display()),
    );

    let (status, out) = vigie(&["audit", "purge", "--config", &config]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains(&format!("{d}/audit.jsonl.2: purged 2 record(s) past their retention (between seq 1 and 2)")),
        "{out}"
    );
    assert!(out.contains(&format!("{d}/audit.jsonl.1: purged 1 record(s)")), "{out}");
    for (file, purged) in [
        ("audit.jsonl.2", "records 1..2 purged"),
        ("audit.jsonl.1", "records 1..1 purged"),
        ("audit.jsonl", "records 1..1 purged"),
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.lines().next().unwrap().contains("jdupont"), "{file}: {text}");
        let (status, out) = vigie(&["audit", "verify", "--key", public.to_str().unwrap(), path.to_str().unwrap()]);
        assert_eq!(status, 0, "{file}: {out}");
        assert!(out.contains(purged), "{file}: {out}");
    }
    // The DMP trace of the oldest copy keeps its ten years; a record of a copy stubbed by hand
    // (its link kept, no signed note) is named.
    let two = std::fs::read_to_string(dir.join("audit.jsonl.2")).unwrap();
    assert!(two.lines().nth(2).unwrap().contains("vihf_issued"), "{two}");
    let path = dir.join("audit.jsonl.1");
    let one = std::fs::read_to_string(&path).unwrap();
    let second: serde_json::Value = serde_json::from_str(one.lines().nth(1).unwrap()).unwrap();
    let stub =
        format!("{{\"seq\":2,\"prev\":{},\"purged\":\"2026-12-05\",\"hash\":{}}}", second["prev"], second["hash"]);
    std::fs::write(&path, format!("{}\n{stub}\n", one.lines().next().unwrap())).unwrap();
    let (status, out) = vigie(&["audit", "verify", "--key", public.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("audit.jsonl.1:2: record seq 2: a purged record, but no signed purge note covers it"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
