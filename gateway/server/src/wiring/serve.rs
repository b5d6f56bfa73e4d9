//! The listeners: HTTPS (with the plain HTTP one behind a proxy, and the ops one), and the
//! background tasks that run beside them (key, policy and CRL reloads, pending revocations, probes).
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{App, HttpServer, middleware::from_fn, web};
use anyhow::Context;
use vigie_core::audit::AuditEvent;
use vigie_policies::ReloadablePolicies;

use crate::health::endpoints::Draining;
use crate::keys::Keys;
use crate::state::{AppState, Audit, Part};

/// Runs the HTTPS listener (and the plain one behind a proxy, and the ops one) until SIGTERM /
/// Ctrl-C, then drains and stops gracefully (`stop_on_signal`).
/// `on_bound` runs once the listeners are bound, before the first request is served: what it
/// announces is then true.
pub async fn serve(state: AppState, on_bound: impl FnOnce(&AppState) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let tls = crate::web::tls::server_config(
        &state.config.server.tls_cert,
        &state.config.server.tls_key,
        crate::web::tls::client_ca_subjects(state.upstreams.card_validator.as_deref(), &state.config.cards),
    )?;
    let listen = state.config.server.listen;
    let plain = state.config.server.plain_http_listen;
    let max_body = state.config.server.max_body_bytes;
    let workers = state.config.server.workers;
    let (drain, shutdown_timeout) = (state.config.server.drain_secs, state.config.server.shutdown_timeout_secs);
    let state = web::Data::new(state);
    let draining = web::Data::new(Draining::default());
    for warning in crate::admin::auth::token_warnings(&state.config.admin.tokens, crate::now()) {
        tracing::warn!("{warning}");
    }
    spawn_key_reloader(state.oidc.keys.clone());
    spawn_revocation_sweeper(state.clone());
    crate::login::cps::crl::spawn_refresher(&state.upstreams);
    spawn_policy_reloader(state.config.policy.reload_poll_secs, state.policy.reload.clone(), state.audit.clone());
    // Probes PSC (`psc.probe_interval_secs`), the CRL sources and the DMP; feeds the breakers.
    crate::health::spawn(Part::of(&state), Part::of(&state));
    // Drops the caches of principals and identities when access changed elsewhere (a second at most).
    crate::policy::view::spawn(Part::of(&state), Part::of(&state));
    // Syncs `[directory.ldap]` every `sync_interval_secs`, one replica at a time (a lease).
    crate::directory_sync::spawn(Part::of(&state), Part::of(&state), Part::of(&state), Part::of(&state));
    // The HR feed every `lifecycle.hr_feed.interval_secs` (one replica: a lease), and the end dates.
    crate::lifecycle::feed::spawn(Part::of(&state), Part::of(&state), Part::of(&state));
    crate::lifecycle::watch::spawn(Part::of(&state), Part::of(&state));
    crate::lifecycle::reminders::spawn(Part::of(&state), Part::of(&state), Part::of(&state), Part::of(&state));
    crate::derivation::refresh::spawn(Part::of(&state), Part::of(&state), Part::of(&state));

    let (s, d) = (state.clone(), draining.clone());
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .app_data(d.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::FormConfig::default().limit(max_body))
            .app_data(web::JsonConfig::default().limit(max_body))
            .wrap(from_fn(plain_http_only_from_proxies))
            .wrap(from_fn(crate::web::http::edge))
            .wrap(from_fn(close_when_draining))
            .wrap(from_fn(crate::audit::durable::wait))
            .configure(|cfg| crate::wiring::routes::routes(cfg, &s.config))
            .default_service(web::to(crate::ops::not_found))
    })
    .on_connect(crate::web::tls::on_connect)
    // Without it, Nagle's algorithm holds a response written right after a TLS record the
    // client has not acknowledged yet (a session ticket at the end of a handshake) until the
    // client's delayed ACK, 40 ms later: measured on card logins, one new connection each.
    .tcp_nodelay(true)
    // SIGTERM is ours (`stop_on_signal`): actix would stop accepting at once.
    .disable_signals()
    .shutdown_timeout(shutdown_timeout)
    .client_request_timeout(Duration::from_secs(10))
    .bind_rustls_0_23(listen, tls)
    .with_context(|| format!("binding {listen}: check `server.listen` / --listen"))?;
    if workers > 0 {
        server = server.workers(workers);
    }
    if let Some(addr) = plain {
        server = server.bind(addr).with_context(|| format!("binding {addr}: check `server.plain_http_listen`"))?;
    }
    let ops = match state.config.server.ops_listen {
        Some(addr) => {
            let (s, d) = (state.clone(), draining.clone());
            let ops = HttpServer::new(move || {
                App::new()
                    .app_data(s.clone())
                    .app_data(d.clone())
                    .wrap(from_fn(crate::web::http::edge))
                    .configure(crate::wiring::routes::ops_routes)
                    .default_service(web::to(crate::ops::not_found))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(shutdown_timeout)
            .bind(addr)
            .with_context(|| format!("binding {addr}: check `server.ops_listen`"))?;
            Some(ops.run())
        }
        None => None,
    };
    on_bound(&state)?;
    tracing::info!(%listen, issuer = %state.config.issuer, "vigie listening");
    let server = server.run();
    let handles = (server.handle(), ops.as_ref().map(|o| o.handle()));
    actix_web::rt::spawn(stop_on_signal(draining.into_inner(), drain, shutdown_timeout, handles));
    let served = match ops {
        Some(ops) => futures_util::future::try_join(server, ops).await.map(|_| ()),
        None => server.await,
    }
    .context("HTTP server");
    // The connections are drained: what they audited is queued; write it out before the end.
    state.audit.flush();
    tracing::info!("stopped: requests finished, audit written");
    served
}

/// SIGTERM (or SIGINT) as Kubernetes needs it: the pod leaves the Service's endpoints some time
/// after the signal, so first `/readyz` turns 503 for `drain_secs` while everything is served
/// (responses carry `Connection: close`, moving keep-alive clients to another replica); then the
/// listeners stop accepting, and the requests in flight get up to `shutdown_timeout_secs`. A
/// second signal cuts the drain short.
async fn stop_on_signal(
    draining: Arc<Draining>,
    drain: u64,
    shutdown_timeout: u64,
    (server, ops): (actix_web::dev::ServerHandle, Option<actix_web::dev::ServerHandle>),
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM / SIGINT: stopping needs SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    draining.start();
    tracing::info!(signal = name, drain_secs = drain, "draining: /readyz answers 503, requests are still served");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(drain)) => {}
        _ = term.recv() => tracing::info!("second signal: the drain is cut short"),
        _ = int.recv() => tracing::info!("second signal: the drain is cut short"),
    }
    tracing::info!(
        shutdown_timeout_secs = shutdown_timeout,
        "drain over: no new connections, finishing requests in flight"
    );
    // Ops last: its `/readyz` says `draining` until the main listeners are done.
    server.stop(true).await;
    if let Some(ops) = ops {
        ops.stop(true).await;
    }
}

/// During the drain, every response of the main listeners closes its connection (HTTP/1.1
/// `Connection: close`, RFC 9112 §9.6): the client's next request opens a new connection, which
/// the orchestrator routes to a replica that is not stopping.
async fn close_when_draining<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let draining = req.app_data::<web::Data<Draining>>().is_some_and(|d| d.is_on());
    let mut res = next.call(req).await?;
    if draining {
        res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

/// Reloads the policy set on SIGHUP and when its files change (every `policy.reload_poll_secs`):
/// validated first, swapped atomically; an invalid change keeps the set in force and says why in
/// the log, an audit line and `vigie_policy_reload_total{result="rejected"}`.
fn spawn_policy_reloader(poll: u64, reload: Option<Arc<ReloadablePolicies>>, audit: Audit) {
    actix_web::rt::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: the policy set reloads only when its files change");
            return;
        };
        let Some(policies) = reload else {
            // The built-in set cannot change; SIGHUP must still not end the process.
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: the built-in policy set is in force (no `policy.dir`), nothing to reload");
            }
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(poll.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                _ = hup.recv() => Some(policies.reload().map(|()| true)),
                _ = tick.tick(), if poll > 0 => Some(policies.reload_if_changed()),
            };
            match result {
                Some(Ok(true)) => policy_reloaded(&audit, &policies, None),
                Some(Err(e)) => policy_reloaded(&audit, &policies, Some(e.to_string())),
                _ => {}
            }
        }
    });
}

fn policy_reloaded(audit: &Audit, policies: &ReloadablePolicies, error: Option<String>) {
    let ids = policies.policy_ids();
    let (result, outcome, reason) = match &error {
        None => {
            tracing::info!(policies = ids.len(), dir = %policies.source_dir().display(), "policy set reloaded");
            (
                "applied",
                vigie_core::audit::Outcome::Success,
                format!("{} policies in force: {}", ids.len(), ids.join(", ")),
            )
        }
        Some(e) => {
            tracing::error!(error = %e, "the changed policy set is invalid; the previous set stays in force");
            ("rejected", vigie_core::audit::Outcome::Failure, format!("changed set refused, previous kept: {e}"))
        }
    };
    metrics::counter!("vigie_policy_reload_total", "result" => result).increment(1);
    audit.record(AuditEvent {
        kind: Some(vigie_core::audit::AuditKind::PolicyReloaded),
        outcome: Some(outcome),
        object: Some(policies.source_dir().display().to_string()),
        reason: Some(reason),
        ..Default::default()
    });
}

/// Completes the endings of access still pending (a status set from the command line, an
/// ending that failed): at start, then every `session::SWEEP_SECS`.
fn spawn_revocation_sweeper(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(crate::session::SWEEP_SECS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            crate::session::complete_pending((&**state).into()).await;
        }
    });
}

fn spawn_key_reloader(keys: Arc<Keys>) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            match keys.reload_if_changed() {
                Ok(true) => tracing::info!("signing keys reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "signing keys not reloaded; the previous set stays in use"),
            }
        }
    });
}

/// Middleware of the main listeners: the plain-HTTP listener (`server.plain_http_listen`) exists
/// for the TLS-terminating proxies only; anyone else reaching it gets 403 and is told to use
/// HTTPS, before any handler runs.
async fn plain_http_only_from_proxies<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let from_proxy = req.app_config().secure()
        || req
            .peer_addr()
            .zip(req.app_data::<web::Data<AppState>>())
            .is_some_and(|(peer, state)| state.config.server.is_trusted_proxy(peer.ip()));
    if from_proxy {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let resp = crate::web::http::problem(
        StatusCode::FORBIDDEN,
        "Use HTTPS",
        "this plain-HTTP port serves only the TLS-terminating proxies; connect over HTTPS",
    );
    Ok(req.into_response(resp).map_into_right_body())
}
