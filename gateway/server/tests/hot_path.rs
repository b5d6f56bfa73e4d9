//! The SSO hot path with Redis and PostgreSQL (issue 15's figures): an SSO round trip reads no
//! account from the database (its standing is kept per replica while the deployment's mark of
//! access changes stays the same, `policy::standing`), yet a person who left is refused at the
//! very next request once the change is made, from another process, as ops make it.
use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::postgres::{psql, shared_database};
use common::redis::{RedisServer, Replica, ReplicaDemo, sso_round_trip};
use common::*;

use crate::replicas::{REDIRECT, authorize_url, set_cookie};

/// `LOCK TABLE accounts` held by a psql session of its own until dropped: any read of an account
/// waits for it.
struct AccountsLocked(std::process::Child);

impl AccountsLocked {
    fn take(url: &str) -> AccountsLocked {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("psql (PostgreSQL's client)");
        let sql = "BEGIN;\nLOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;\n";
        child.stdin.as_mut().expect("stdin").write_all(sql.as_bytes()).expect("psql's stdin");
        let granted = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                       WHERE c.relname = 'accounts' AND l.mode = 'AccessExclusiveLock' AND l.granted";
        let deadline = Instant::now() + Duration::from_secs(30);
        while psql(url, granted).trim() != "1" {
            assert!(Instant::now() < deadline, "the lock on accounts was not granted within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        AccountsLocked(child)
    }
}

impl Drop for AccountsLocked {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"COMMIT;\n");
        }
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_round_trips_on_redis_and_postgresql_read_no_account_yet_a_leaver_is_refused_at_once() {
    let Some(db) = shared_database("hot_path") else { return };
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("vigie-hot-path-{}-{}", std::process::id(), free_port()));
    let port = free_port();
    let issuer = format!("https://localhost:{port}");
    let env = [("VIGIE_DIRECTORY__URL", db.url.as_str()), ("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "600")];
    let replica = Replica::start(&dir, port, &redis, &issuer, &env);
    let base = replica.base();
    let demo = ReplicaDemo::read(&dir);
    let user = demo.users.iter().find(|u| u["username"] == "demo.infirmiere").expect("demo.infirmiere").clone();

    let r = demo.http.get(authorize_url(&base)).send().await.expect("authorize");
    let browser = set_cookie(&r, "__Host-vigie-browser");
    let login_path = r.headers()["location"].to_str().expect("location").to_owned();
    let r = demo.log_in(&base, &login_path, &browser, &user).await;
    assert_eq!(r.status(), 303, "login");
    let session = set_cookie(&r, "__Host-vigie-session");
    let silent = format!("{}&prompt=none", authorize_url(&base));
    let sso = || sso_round_trip(&demo.http, silent.clone(), &session, REDIRECT);
    assert!(sso().await.contains_key("code"), "SSO before the lock");

    // No SSO round trip waits for the accounts table: its standing was read once.
    let lock = AccountsLocked::take(&db.url);
    for i in 0..20 {
        let params = tokio::time::timeout(Duration::from_secs(10), sso())
            .await
            .unwrap_or_else(|_| panic!("SSO round trip {i} waited on the accounts table"));
        assert!(params.contains_key("code"), "SSO round trip {i} with the accounts table locked: {params:?}");
    }
    drop(lock);

    // Left, set from another process that tells the replicas through Redis: the next request of
    // the session gets no code.
    let out = Command::new(BIN)
        .args(["users", "set-status", "demo.infirmiere", "left", "--data-dir"])
        .arg(&dir)
        .env("VIGIE_DIRECTORY__URL", &db.url)
        .env("VIGIE_STORE__KIND", "redis")
        .env("VIGIE_STORE__URL", redis.url())
        .output()
        .expect("vigie users");
    assert!(out.status.success(), "vigie users set-status: {}", String::from_utf8_lossy(&out.stderr));
    let params = sso().await;
    assert_eq!(params.get("error").map(String::as_str), Some("login_required"), "OIDC Core §3.1.2.6: {params:?}");
    assert!(!params.contains_key("code"), "a code for a person who left: {params:?}");
    drop(replica);
    let _ = std::fs::remove_dir_all(&dir);
}
