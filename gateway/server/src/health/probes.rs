//! The probes that never run on a request's path (one task per upstream), and the reading of what the
//! real calls met from the adapters' own records: both feed the breakers.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::state::{Part, Upstreams};

use super::{CRL, DMP, LDAP, PSC};

/// Starts the probes (one task per upstream) and the reading of the adapters' own health records.
pub fn spawn(upstreams: Part<Upstreams>, config: Part<Config>) {
    for name in upstreams.health.names() {
        let (upstreams, config) = (upstreams.clone(), config.clone());
        actix_web::rt::spawn(async move { probe_loop(&upstreams, &config, name).await });
    }
    actix_web::rt::spawn(async move { feed_loop(&upstreams).await });
}

async fn probe_loop(upstreams: &Upstreams, config: &Config, name: &'static str) {
    let monitor = &upstreams.health;
    let healthy = match (name, &upstreams.psc) {
        (PSC, Some(p)) => Duration::from_secs(p.config.probe_interval_secs.max(1)),
        _ => Duration::from_millis(monitor.config.probe_interval_ms.max(1)),
    };
    let mut limit = Duration::from_millis(monitor.config.probe_timeout_ms.max(1));
    if let (LDAP, Some(l)) = (name, &upstreams.ldap) {
        // Each directory server gets the probe's budget: a hanging one is passed over.
        limit *= u32::try_from(l.servers().max(1)).unwrap_or(u32::MAX);
    }
    let mut failing_for = 0u32;
    loop {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(limit, probe(upstreams, config, name)).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
        };
        failing_for = if outcome.is_ok() { 0 } else { failing_for.saturating_add(1) };
        monitor.record(name, outcome);
        // While not closed, probe again soon: the way back to normal is through successful probes.
        let wait = if failing_for == 0 && !monitor.available(name) {
            Duration::from_millis(monitor.config.backoff_initial_ms.max(1))
        } else {
            monitor.next_probe(healthy, failing_for)
        };
        tokio::time::sleep(wait).await;
    }
}

/// One probe: a small request that says whether the upstream answers.
async fn probe(upstreams: &Upstreams, config: &Config, name: &str) -> Result<(), String> {
    match name {
        PSC => match &upstreams.psc {
            Some(p) => match p.probe().await.error {
                None => Ok(()),
                Some(e) => Err(e),
            },
            None => Ok(()),
        },
        CRL => {
            let urls = crl_urls(upstreams, config);
            if urls.is_empty() {
                return Ok(());
            }
            let limit = Duration::from_millis(config.health.probe_timeout_ms.max(1));
            let tries = urls.iter().map(|u| async move {
                match upstreams.http.head(u).timeout(limit).send().await {
                    Ok(r) if !r.status().is_server_error() => Ok(()),
                    Ok(r) => Err(format!("{u}: HTTP status {}", r.status())),
                    Err(e) => Err(format!("{u}: {}", vigie_core::error_chain(&e))),
                }
            });
            let results = futures_util::future::join_all(tries).await;
            // The link is down when no source answers; one source down alone is `checks.card_crls`.
            if results.iter().any(Result::is_ok) {
                Ok(())
            } else {
                Err(results.into_iter().filter_map(Result::err).collect::<Vec<_>>().join("; "))
            }
        }
        // The service bind and a base-scope read of `user_base` (`LdapSource::probe`): what every
        // password login needs first.
        LDAP => match &upstreams.ldap {
            Some(l) => {
                l.probe(Duration::from_millis(config.health.probe_timeout_ms.max(1))).await.map_err(|e| e.to_string())
            }
            None => Ok(()),
        },
        DMP => {
            let Some(addr) = config.dmp.relay.base_url.as_deref().and_then(host_port) else { return Ok(()) };
            tokio::net::TcpStream::connect(&addr).await.map(drop).map_err(|e| format!("{addr}: {e}"))
        }
        _ => Ok(()),
    }
}

fn host_port(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

fn crl_urls(upstreams: &Upstreams, config: &Config) -> Vec<String> {
    let mut urls: Vec<String> = config.cards.trust.crl_urls.clone();
    if let Some(v) = &upstreams.card_validator {
        urls.extend(v.crl_status().into_iter().map(|s| s.url));
    }
    urls.sort();
    urls.dedup();
    urls
}

/// Reads what the real calls met, from the adapters' own records (no I/O), every 250 ms: PSC's token
/// and userinfo exchanges (its discovery and JWKS are what the probe does) and the CRL refreshes;
/// then shares the breakers with the other replicas (`Monitor::sync`, a shared store only).
async fn feed_loop(upstreams: &Upstreams) {
    let mut psc_seen: Option<(u64, u64)> = None;
    let mut crl_seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        if let Some(psc) = &upstreams.psc {
            let h = psc.client.health();
            let ops = [&h.token, &h.userinfo];
            let now = (ops.iter().map(|o| o.requests).sum::<u64>(), ops.iter().map(|o| o.failures).sum::<u64>());
            if let Some((req, fail)) = psc_seen {
                let (new_req, new_fail) = (now.0.saturating_sub(req), now.1.saturating_sub(fail));
                let latest_error = ops.iter().filter(|o| o.last_error.is_some()).max_by_key(|o| o.last_error_at);
                for _ in 0..new_fail.min(10) {
                    let e = latest_error.and_then(|o| o.last_error.clone()).unwrap_or_else(|| "failed".into());
                    upstreams.health.record(PSC, Err(e));
                }
                if new_req > new_fail {
                    let ms = ops.iter().filter_map(|o| o.last_latency_ms).max().unwrap_or(0);
                    upstreams.health.record(PSC, Ok(Duration::from_millis(ms)));
                }
            }
            psc_seen = Some(now);
        }
        if let Some(v) = &upstreams.card_validator {
            let mut ok = false;
            let mut errors = Vec::new();
            for s in v.crl_status() {
                let Some(at) = s.last_attempt else { continue };
                let before = crl_seen.insert(s.url.clone(), at);
                if before.is_some_and(|b| b < at) {
                    match s.last_error {
                        None => ok = true,
                        Some(e) => errors.push(format!("{}: {e}", s.url)),
                    }
                }
            }
            if ok {
                upstreams.health.record(CRL, Ok(Duration::ZERO));
            } else if !errors.is_empty() {
                upstreams.health.record(CRL, Err(errors.join("; ")));
            }
        }
        upstreams.health.evaluate();
        // Replicas: a transition is published within a tick, the deployment's state read each second.
        upstreams.health.sync(ticks % 4 == 1).await;
    }
}
