//! `GET /admin/audit?…`: the trail searched over HTTP (issue 18, "Using it"; docs/audit.md,
//! "Searching"), for an admin API token holding the role `audit` and the scope `audit:read`, the
//! policy on administration asked as for every admin call (`admin::auth::require_token`). Each
//! search is itself written to the trail: who searched what, how many records came back.
//!
//! Parameters (each at most once; lists comma-separated): `person` (directory ids or idNats),
//! `client`, `kind` (event kinds), `result` (`success`/`failure`), `from`, `to` (RFC 3339 or
//! `YYYY-MM-DD`), `limit` (1–1000, default 100), `before` (the `next` of the previous page).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use vigie_core::roles::Scope;

use super::search::{self, Query, Trail};
use crate::admin::auth::{Gate, GateParts, require_token};
use crate::config::Config;
use crate::web::http::{parse_params, problem};
use vigie_directory_sql::audit_trail::PgAuditTrail;

/// The trail the searches read, a part of the state (`Part<AuditTrail>`, built with it): in
/// PostgreSQL one small pool opened at the first search and kept as long as the state (its
/// migrations run once), so two gateways of one process never share one; for files the paths
/// (listed again at each search: a rotation adds files).
#[derive(Default)]
pub struct AuditTrail {
    postgres: tokio::sync::OnceCell<PgAuditTrail>,
}

impl AuditTrail {
    /// The trail `config` names, for one search.
    pub(crate) async fn open(&self, config: &Config) -> anyhow::Result<Trail> {
        match config.audit.postgres_url(&config.directory.url) {
            Some(url) => Ok(Trail::Postgres(self.postgres(url).await?)),
            None => Trail::open(&config.audit, &config.directory.url).await,
        }
    }

    async fn postgres(&self, url: &str) -> anyhow::Result<PgAuditTrail> {
        let pool = self.postgres.get_or_try_init(|| async { PgAuditTrail::open(url, 2).await }).await?;
        Ok(pool.clone())
    }
}

fn bad_request(detail: &str) -> HttpResponse {
    problem(StatusCode::BAD_REQUEST, "Invalid search", detail)
}

/// The query of the request's parameters, or what is wrong with them.
pub fn query_of(raw: &str) -> Result<Query, String> {
    let params = parse_params(raw.as_bytes())?;
    let known = ["person", "client", "kind", "result", "from", "to", "limit", "before"];
    if let Some((k, _)) = params.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter `{}`: expected {}",
            k.chars().take(40).collect::<String>(),
            known.join(", ")
        ));
    }
    let list = |k: &str| -> Vec<String> {
        params
            .get(k)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let persons = list("person");
    if let Some(p) = persons.iter().find(|p| p.len() > 100) {
        return Err(format!("a `person` is at most 100 characters ({} given)", p.len()));
    }
    let limit = match params.get("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=search::MAX_LIMIT).contains(&n) => n,
        Some(_) => return Err(format!("`limit` must be an integer from 1 to {}", search::MAX_LIMIT)),
    };
    let before = match params.get("before").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err("`before` must be the `next` number of a previous page".into()),
    };
    Ok(Query {
        persons,
        client: params.get("client").map(str::to_owned),
        kinds: list("kind").iter().map(|k| search::parse_kind(k)).collect::<Result<_, _>>()?,
        outcome: params.get("result").map(search::parse_outcome).transpose()?,
        from: params.get("from").map(|v| search::parse_time("from", v)).transpose()?,
        to: params.get("to").map(|v| search::parse_time("to", v)).transpose()?,
        before,
        limit,
    })
}

/// The trail of this process searched for `query` by the operator `actor`, the search audited
/// (who, what, how many records) when it could be made: this page and the people console.
pub(crate) async fn searched_by(gate: &Gate<'_>, actor: &str, query: &Query) -> anyhow::Result<search::Page> {
    let page = search::search(&gate.trail.open(gate.config).await?, query).await?;
    let mut event = search::searched(actor, query, page.records.len());
    event.ip = Some(gate.caller.ip.clone());
    event.user_agent = gate.caller.user_agent.clone();
    event.request_id = Some(gate.caller.request_id.clone());
    gate.audit.record(event);
    Ok(page)
}

/// `GET /admin/audit`
pub async fn search(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = match require_token(&req, &gate, Scope::AuditRead).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let query = match query_of(req.query_string()) {
        Ok(q) => q,
        Err(m) => return bad_request(&m),
    };
    let page = match searched_by(&gate, &admin.actor, &query).await {
        Ok(p) => p,
        Err(e) => {
            // The cause names files, hosts or SQL: the log has it, the caller what to do.
            tracing::error!(error = %format!("{e:#}"), "audit search failed");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Audit trail unavailable",
                "the audit trail cannot be read now: retry later; the administrators of Vigie find the cause in its log",
            );
        }
    };
    HttpResponse::Ok().json(json!({
        "records": page.records.iter().map(|r| json!({ "position": r.position, "record": r.raw })).collect::<Vec<_>>(),
        "next": page.next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::audit::{AuditKind, Outcome};

    #[test]
    fn parameters_become_the_query_and_bad_ones_are_named() {
        let q =
            query_of("person=u1,810100000011&kind=login,vihf_issued&result=failure&from=2026-12-01&limit=5&before=9")
                .unwrap();
        assert_eq!(q.persons, ["u1", "810100000011"]);
        assert_eq!(q.kinds, [AuditKind::Login, AuditKind::VihfIssued]);
        assert_eq!((q.outcome, q.limit, q.before), (Some(Outcome::Failure), 5, Some(9)));
        assert_eq!(q.from, crate::parse_rfc3339("2026-12-01T00:00:00Z"));
        for (raw, says) in [
            ("kind=logn", "unknown event kind \"logn\""),
            ("result=ok", "expected success or failure"),
            ("from=yesterday", "`from` \"yesterday\""),
            ("limit=0", "`limit` must be"),
            ("limit=5000", "`limit` must be"),
            ("before=x", "`before`"),
            ("subject=u1", "unknown parameter `subject`"),
            ("client=a&client=b", "repeated"),
        ] {
            let e = query_of(raw).unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
        }
    }

    /// Two gateways in one process (the integration tests, a test harness) each read their own
    /// trail: the pool belongs to the state, not to the process. With the pool in a static, the
    /// second gateway searched the first one's database. Needs `VIGIE_TEST_POSTGRES_URL`
    /// (tests/postgres.sh); says it is skipped without it.
    #[tokio::test]
    async fn two_gateways_in_one_process_each_search_their_own_trail() {
        let Ok(admin) = std::env::var("VIGIE_TEST_POSTGRES_URL") else {
            eprintln!("skipped: VIGIE_TEST_POSTGRES_URL is not set (tests/run starts a server and sets it)");
            return;
        };
        let server = sqlx::PgPool::connect(&admin).await.unwrap();
        let mut urls = Vec::new();
        for side in ["a", "b"] {
            let name = format!("t_audit_api_{side}_{}", std::process::id());
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&server)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&server).await.unwrap();
            urls.push((name.clone(), format!("{}/{name}", admin.rsplit_once('/').unwrap().0)));
        }
        let (first, second) = (AuditTrail::default(), AuditTrail::default());
        let a = first.postgres(&urls[0].1).await.unwrap();
        a.checkpoint(1, "the first gateway's checkpoint").await.unwrap();
        let b = second.postgres(&urls[1].1).await.unwrap();
        assert_eq!(b.checkpoints().await.unwrap(), Vec::new(), "the second gateway reads the first one's trail");
        assert_eq!(
            first.postgres(&urls[0].1).await.unwrap().checkpoints().await.unwrap().len(),
            1,
            "kept for the state"
        );
        for (t, (name, _)) in [a, b].iter().zip(&urls) {
            t.close().await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).execute(&server).await.unwrap();
        }
    }
}
