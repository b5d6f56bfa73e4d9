//! Operations endpoints: liveness, readiness with each dependency's state, Prometheus metrics.
//! `/readyz` and `/metrics` are on the ops listener when `server.ops_listen` is set, else on the
//! main listeners.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::config::Config;
use crate::state::{OidcState, Part, PolicyGate, Ports, Upstreams};

/// Set once the process got SIGTERM (`wiring::serve`): `/readyz` then answers 503 `draining`
/// while every other request is still served, so that the orchestrator routes new ones elsewhere.
#[derive(Default)]
pub struct Draining(std::sync::atomic::AtomicBool);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the store and the directory answer and signing keys are loaded, and the process
/// is not draining.
pub async fn readyz(
    draining: Option<actix_web::web::Data<Draining>>,
    config: Part<Config>,
    ports: Part<Ports>,
    oidc: Part<OidcState>,
    policy: Part<PolicyGate>,
    upstreams: Part<Upstreams>,
    audit: Part<crate::state::Audit>,
) -> HttpResponse {
    // Checks run together and answer within 800 ms: under the 1 s default timeout of a
    // Kubernetes readiness probe, even when a dependency hangs.
    let timeout = std::time::Duration::from_millis(800);
    // A failed check's error names hosts, URLs and SQL, and CRL sources, PSC's issuer and the
    // policy directory describe the inside: they go to the log, and into the answer only on the
    // ops listener, never to whoever can reach the public port (there: states, counts, generic
    // reasons).
    let detailed = config.server.ops_listen.is_some();
    let check = |name: &str, r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => json!({ "status": "up" }),
        Ok(Err(e)) => {
            tracing::warn!(check = name, error = %e, "readiness check failed");
            let detail = if detailed { e } else { "the check failed: see the gateway's log".into() };
            json!({ "status": "down", "detail": detail })
        }
        Err(_) => json!({ "status": "down", "detail": "no answer within 800 ms" }),
    };
    let (store, directory) = tokio::join!(
        tokio::time::timeout(timeout, async { ports.store.ping().await.map_err(|e| e.to_string()) }),
        tokio::time::timeout(timeout, async { ports.directory.ping().await.map_err(|e| e.to_string()) }),
    );
    let (store, directory) = (check("store", store), check("directory", directory));
    let keys = json!({ "status": "up", "keys": oidc.keys.get().jwks_json().matches("\"kid\"").count() });
    // The audit trail: with `on_failure = "fail_closed"` a trail that cannot be written makes
    // the replica not ready (it refuses what must be traced); spooling, it stays ready, degraded.
    let (audit_check, audit_blocks) = crate::audit::readiness(&audit, &config.audit);
    let up = store["status"] == "up" && directory["status"] == "up" && !audit_blocks;
    let mut checks = json!({
        "store": store, "directory": directory, "signing_keys": keys,
        "policy": match &policy.reload {
            Some(p) => json!({ "status": "up", "engine": policy.engine.name(),
                               "source": if detailed { json!(p.source_dir()) } else { json!("directory") },
                               "policies": p.policy_ids().len() }),
            None => json!({ "status": "up", "engine": policy.engine.name(), "source": "built-in" }),
        },
    });
    // CRL sources: informative, never "not ready" — a source that cannot be reached leaves its
    // cached CRL in use (within the configured grace), and card login goes on. Each source's
    // failure is logged where it is fetched.
    if let Some(v) = &upstreams.card_validator {
        let crls = v.crl_status();
        let now = crate::now();
        let stale = crls.iter().any(|c| c.next_update.is_none_or(|n| n < now));
        checks["card_crls"] = json!({ "status": if stale { "degraded" } else { "up" } });
        if detailed {
            checks["card_crls"]["sources"] = json!(crls);
        } else if stale {
            checks["card_crls"]["detail"] =
                json!("a card CRL is missing or past its nextUpdate: the gateway's log names the source");
        }
    }
    // Pro Santé Connect: informative too — local MIE go on without it (the last health probe).
    if let Some(p) = &upstreams.psc {
        checks["psc"] = p.readiness(detailed);
    }
    // Circuit breakers (degraded mode): informative as well.
    checks["upstreams"] = upstreams.health.readiness(detailed)["upstreams"].clone();
    checks["audit"] = audit_check;
    let degraded = upstreams.health.degraded();
    let draining = draining.is_some_and(|d| d.is_on());
    let status = if draining {
        "draining"
    } else if up {
        "ready"
    } else {
        "not_ready"
    };
    let body = json!({ "status": status, "degraded": degraded, "checks": checks });
    HttpResponse::build(if up && !draining { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }).json(body)
}

pub async fn metrics(upstreams: Part<Upstreams>, prometheus: Part<PrometheusHandle>) -> HttpResponse {
    if let Some(v) = &upstreams.card_validator {
        for c in v.crl_status() {
            if let Some(next) = c.next_update {
                metrics::gauge!("vigie_crl_next_update_seconds", "url" => c.url.clone()).set(next as f64);
            }
            if let Some(n) = c.entries {
                metrics::gauge!("vigie_crl_entries", "url" => c.url.clone()).set(n as f64);
            }
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(prometheus.render())
}
