//! A backend gone, then back, for real: vigie on a PostgreSQL server and a Redis server of the
//! test's own, the server stopped under it (`pg_ctl stop`) and started again on the same data
//! directory and port. What a person and an API client see meanwhile, and that vigie recovers
//! without a restart.
use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::postgres::PgServer;
use common::redis::RedisServer;
use common::*;

/// The directory's connect timeout in these tests: a request answers within it (plus margin).
const CONNECT_TIMEOUT_MS: &str = "2000";
/// The directory's statement timeout in these tests: a statement waiting on a lock gives up then.
const STATEMENT_TIMEOUT_MS: &str = "1500";

async fn get(gw: &Gateway, path: &str, token: Option<&str>) -> (Resp, Duration) {
    let started = Instant::now();
    let mut req = gw.http().get(gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = Resp::of(req.send().await.expect("the gateway answers")).await;
    (r, started.elapsed())
}

/// A card created for `agent` through the admin API (a card row and its first event).
async fn create_card(gw: &Gateway, token: &str, agent: &str) -> (Resp, Duration) {
    let started = Instant::now();
    let r = gw
        .http()
        .post(gw.url("/admin/api/cards"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "identity_id": agent, "kind": "cps" }))
        .send()
        .await
        .expect("the gateway answers");
    (Resp::of(r).await, started.elapsed())
}

/// A password + TOTP login of a fresh browser: the response to the submitted form.
async fn password_login(gw: &Gateway) -> (Resp, Duration) {
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let r = b.authorize(&a).await;
    let location = r.location();
    let (user, code) = gw.any_user_totp(&gw.all_usernames()).await;
    let started = Instant::now();
    let r = b.submit_login(&location, &user.username, &user.password, &code).await;
    (r, started.elapsed())
}

fn assert_503_within_timeout(what: &str, r: &Resp, took: Duration) {
    assert_eq!(r.status, 503, "{what}: {}", r.body);
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{what}: Retry-After {:?}", r.headers);
    assert!(took < Duration::from_secs(10), "{what} answered after {took:?}: the connect timeout bounds it");
    assert!(!r.body.contains("postgres") && !r.body.contains("127.0.0.1"), "{what} keeps the inside out: {}", r.body);
}

/// An authorization request the gateway cannot serve now: sent back to the client with
/// `error=temporarily_unavailable` (RFC 6749 §4.1.2.1), within the timeouts, never a 500.
fn assert_temporarily_unavailable(what: &str, r: &Resp, took: Duration) {
    assert_eq!(r.status, 303, "{what}: {}", r.body);
    assert_eq!(r.redirect_params().get("error").map(String::as_str), Some("temporarily_unavailable"), "{what}");
    assert!(took < Duration::from_secs(10), "{what} answered after {took:?}");
}

#[tokio::test]
async fn postgres_stopped_gives_503_with_retry_after_and_recovers_without_a_restart() {
    let mut pg = PgServer::start("");
    let url = pg.create_database("vigie");
    let redis = RedisServer::start();
    let gw = Gateway::start(&[
        ("VIGIE_DIRECTORY__URL", &url),
        ("VIGIE_DIRECTORY__CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT_MS),
        ("VIGIE_DIRECTORY__STATEMENT_TIMEOUT_MS", STATEMENT_TIMEOUT_MS),
        // Every token reads the identity's claims from the directory: the SSO round trip needs it.
        ("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "0"),
        ("VIGIE_STORE__KIND", "redis"),
        ("VIGIE_STORE__URL", &redis.url()),
    ])
    .await;
    let token = gw.demo["admin_api"]["token"].as_str().expect("demo.json admin_api.token").to_owned();
    let admin = "/admin/api/identities?q=durand";
    let (before, _) = get(&gw, admin, Some(&token)).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let agent = before.json()["identities"][0]["id"].as_str().expect("an agent").to_owned();
    let rows =
        || common::postgres::psql(&url, "SELECT (SELECT count(*) FROM cards), (SELECT count(*) FROM card_events)");
    let rows_before = rows();
    // A user signed in before the outage: their SSO session lives in Redis.
    let (mut signed_in, ..) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;

    pg.stop();

    let (health, _) = get(&gw, "/healthz", None).await;
    assert_eq!(health.status, 200, "liveness does not depend on the database: {}", health.body);
    let (ready, took) = get(&gw, "/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["checks"]["directory"]["status"], "down", "{}", ready.body);
    assert_eq!(ready.json()["checks"]["store"]["status"], "up", "{}", ready.body);
    assert!(took < Duration::from_secs(3), "/readyz answers within the probe's timeout: {took:?}");

    let (login, took) = password_login(&gw).await;
    eprintln!("during the outage: a login answered {} in {took:?}", login.status);
    assert_503_within_timeout("a login", &login, took);
    assert!(login.header("content-type").is_some_and(|c| c.starts_with("text/html")), "a page for a browser");
    assert!(login.body.contains("indisponible") || login.body.contains("unavailable"), "{}", login.body);

    let (api, took) = get(&gw, admin, Some(&token)).await;
    eprintln!("during the outage: the admin API answered {} in {took:?}", api.status);
    assert_503_within_timeout("the admin API", &api, took);
    assert_eq!(api.header("content-type"), Some("application/problem+json"));
    assert_eq!(api.json()["status"], 503);

    // A write (a card and its first history event, one transaction) during the outage.
    let (write, took) = create_card(&gw, &token, &agent).await;
    assert_503_within_timeout("a card created through the admin API", &write, took);
    assert_eq!(write.header("content-type"), Some("application/problem+json"));

    // The SSO round trip of the user signed in before: the session is in Redis; whatever the
    // gateway needs of the directory, it answers a page or a redirect, never a 500.
    let started = Instant::now();
    let sso = signed_in.authorize(&Authz::new(&gw, "demo-app")).await;
    eprintln!("during the outage: an SSO authorization answered {} in {:?}", sso.status, started.elapsed());
    // RFC 6749 §4.1.2.1: the authorization endpoint tells the client, by redirection, to try
    // again (`temporarily_unavailable`); the client shows its own page.
    assert_temporarily_unavailable("an SSO round trip", &sso, started.elapsed());

    pg.start_again();
    let back = Instant::now();
    let recovered = eventually(30, || async {
        let (r, _) = get(&gw, admin, Some(&token)).await;
        (r.status == 200).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "the admin API answers again once PostgreSQL is back: {}", pg.log());
    eprintln!("admin API back {:?} after PostgreSQL started again", back.elapsed());
    assert_eq!(rows(), rows_before, "nothing of the refused write was kept");
    let (login, _) = password_login(&gw).await;
    assert_eq!(login.status, 303, "a login succeeds again without restarting vigie: {}", login.body);
    let (ready, _) = get(&gw, "/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    // Slow: another client holds a lock on the accounts table; a login's read waits for it
    // until `directory.statement_timeout_ms`, then the page says to retry.
    let locker = Locker::hold(&url, "accounts").await;
    let (slow, took) = password_login(&gw).await;
    eprintln!("a locked table: a login answered {} in {took:?}", slow.status);
    assert_503_within_timeout("a login on a locked table", &slow, took);
    assert!(took >= Duration::from_millis(1400), "it waited for the statement timeout: {took:?}");
    locker.release();
    let (login, _) = password_login(&gw).await;
    assert_eq!(login.status, 303, "the lock released, logins go on: {}", login.body);

    // Interrupted half-way: a card's creation writes the card, then its first history event;
    // with the events table locked, the second statement times out and the first is rolled back.
    let locker = Locker::hold(&url, "card_events").await;
    let (write, took) = create_card(&gw, &token, &agent).await;
    eprintln!("a locked card_events: a card creation answered {} in {took:?}", write.status);
    assert_503_within_timeout("a card created while its events table is locked", &write, took);
    locker.release();
    assert_eq!(rows(), rows_before, "the card row written before the event was rolled back");
}

/// Another client of the database holding an exclusive lock on a table, in an open transaction.
struct Locker {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
}

impl Locker {
    async fn hold(url: &str, table: &str) -> Locker {
        let mut child = std::process::Command::new("psql")
            .args(["-X", "-q", url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql");
        let mut stdin = child.stdin.take().expect("psql's stdin");
        writeln!(stdin, "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT 1;").expect("psql");
        stdin.flush().expect("psql");
        let query = format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted"
        );
        let held = eventually(20, || async { (common::postgres::psql(url, &query).trim() == "1").then_some(()) }).await;
        assert!(held.is_some(), "the test's lock on {table} is held");
        Locker { child, stdin }
    }

    fn release(mut self) {
        writeln!(self.stdin, "ROLLBACK;").expect("psql");
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Redis (the store: sessions, flows, codes) stopped and started again on its port. This Redis
/// keeps nothing on disk (the test's choice), so the sessions it held are gone when it returns;
/// a Redis with persistence or a replica keeps them.
#[tokio::test]
async fn redis_stopped_sends_authorization_requests_back_as_temporarily_unavailable_and_recovers() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let gw = Gateway::start(&[("VIGIE_STORE__KIND", "redis"), ("VIGIE_STORE__URL", &redis.url())]).await;
    let (_, _, _, tokens) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;

    redis.stop();
    let (health, _) = get(&gw, "/healthz", None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    let (ready, _) = get(&gw, "/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["checks"]["store"]["status"], "down", "{}", ready.body);
    let started = Instant::now();
    let r = gw.browser().authorize(&Authz::new(&gw, "demo-app")).await;
    eprintln!("Redis down: an authorization request answered {} in {:?}", r.status, started.elapsed());
    assert_temporarily_unavailable("an authorization request", &r, started.elapsed());
    // The token endpoint cannot redirect: a 503 with Retry-After that a client retries, never a
    // 500 that reads as a bug of the gateway (the refresh family is in the store).
    let started = Instant::now();
    let r = gw.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh)]).await;
    assert_eq!(r.status, 503, "a refresh while the store is down: {}", r.body);
    assert_eq!(r.json()["error"], "temporarily_unavailable", "{}", r.body);
    assert!(r.header("retry-after").is_some(), "a refresh while the store is down says when to retry: {:?}", r.headers);
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());

    let redis = RedisServer::start_on(port, &[]);
    let back = Instant::now();
    let recovered = eventually(30, || async {
        let r = gw.browser().authorize(&Authz::new(&gw, "demo-app")).await;
        (r.status == 303).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "authorization works again once Redis is back");
    eprintln!("Redis back: requests served {:?} after it started again", back.elapsed());
    logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    drop(redis);
}
