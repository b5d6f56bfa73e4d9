//! `vigie rpps refresh`: what the Annuaire Santé's FHIR API says now of every confirmed
//! professional (annuaire-sante.md §4): profession, category and specialty refreshed, a
//! Practitioner no longer `active` or whose PractitionerRoles all ended flagged as struck off and,
//! under `derivation.on_struck_off = "deny_dmp"`, the DMP withheld. Every professional is read
//! before anything is written: an outage mid-way changes nobody.
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::rpps::Link;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

use super::bundle::Professional;
use super::config::OnStruckOff;
use super::fhir::Fhir;

/// What a refresh changes (or would, in a dry run) for one professional.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Refreshed {
    /// Directory id.
    pub identity_id: String,
    /// Matricule.
    pub matricule: String,
    /// idNat.
    pub idnat: String,
    /// `field: old → new` for each of profession and specialty that changed.
    pub updated: Vec<String>,
    /// Why they are struck off now (`None`: exercising).
    pub struck_off: Option<String>,
    /// Whether the struck-off standing changed with this refresh.
    pub standing_changed: bool,
    /// Whether the DMP is withheld from them after it.
    pub dmp_withheld: bool,
}

impl Refreshed {
    /// The change in words: `profession: 60 → 10; struck off: …`.
    pub fn said(&self) -> String {
        let mut said = self.updated.clone();
        match (&self.struck_off, self.standing_changed) {
            (Some(why), true) => said.push(format!(
                "struck off: {why}{}",
                if self.dmp_withheld { "; VIHF issuance withheld (derivation.on_struck_off = deny_dmp)" } else { "" }
            )),
            (None, true) => said.push("exercising again per the Annuaire Santé".into()),
            _ => {}
        }
        said.join("; ")
    }
}

/// The audit line of an applied change.
fn event(c: &Refreshed, reason: String) -> AuditEvent {
    AuditEvent {
        kind: Some(AuditKind::Lifecycle),
        outcome: Some(if c.struck_off.is_some() { Outcome::Failure } else { Outcome::Success }),
        subject: Some(c.identity_id.clone()),
        idnat: Some(c.idnat.clone()),
        actor: Some("rpps-refresh:fhir".into()),
        object: Some(format!("derivation:{}", c.matricule)),
        reason: Some(if c.struck_off.is_some() { format!("rpps_exercise_ended: {reason}") } else { reason }),
        ..Default::default()
    }
}

/// Why the API's answer says this professional no longer exercises, if it does.
fn ended(found: &[Professional], idnat: &str) -> Option<String> {
    match found.iter().find(|p| p.idnat == idnat) {
        None => Some("not found in the Annuaire Santé API".into()),
        Some(p) if !p.active => Some("the Annuaire Santé lists the Practitioner as no longer active".into()),
        Some(p) if !p.exercising() => Some("every PractitionerRole in the Annuaire Santé has ended".into()),
        Some(_) => None,
    }
}

fn changed(what: &str, old: &Option<String>, new: &Option<String>) -> Option<String> {
    (old != new && new.is_some())
        .then(|| format!("{what}: {} → {}", old.as_deref().unwrap_or("none"), new.as_deref().unwrap_or("none")))
}

/// Refreshes every confirmed professional from `api`; with `dry_run`, only says what would
/// change. An error from the API (after every professional was asked, before any write) changes nobody.
/// The periodic refresh gives its `lease`, confirmed before each write and carried by each (its
/// fence): once another replica holds it (this one paused past its TTL), this run stops writing.
pub async fn refresh(
    dir: &SqlDirectory,
    api: &Fhir,
    policy: OnStruckOff,
    dry_run: bool,
    lease: Option<&crate::directory_sync::Lease>,
) -> anyhow::Result<Vec<Refreshed>> {
    let links = dir.rpps_links().await?;
    let fenced = crate::directory_sync::fenced(dir, lease);
    let mut read: Vec<(Link, Vec<Professional>)> = Vec::with_capacity(links.len());
    for link in links {
        let found = api.by_identifier(&link.idnat).await.map_err(|e| {
            anyhow::anyhow!("{e:#}; nobody was changed (read {} of the confirmed professionals)", read.len())
        })?;
        read.push((link, found));
    }
    let mut out = Vec::new();
    for (link, found) in read {
        let struck_off = ended(&found, &link.idnat);
        let now = found.iter().find(|p| p.idnat == link.idnat).map(Professional::entry);
        let mut updated = Vec::new();
        if let Some(e) = &now {
            updated.extend(changed("profession", &link.profession_code, &e.profession_code));
            updated.extend(changed("specialty", &link.savoir_faire_code, &e.savoir_faire_code));
        }
        let withheld = match (&struck_off, policy) {
            (Some(why), OnStruckOff::DenyDmp) => Some(format!("struck off the RPPS: {why}")),
            _ => None,
        };
        let standing_changed = struck_off != link.struck_off || withheld.is_some() != link.dmp_withheld.is_some();
        if !updated.is_empty() || standing_changed {
            if !dry_run {
                // One replica at a time refreshes: a holder whose lease lapsed leaves the rest to
                // the replica that took it over (what it wrote so far stays: each link is one write).
                // Those written are returned, to be audited.
                if let Some(lease) = lease
                    && !lease.confirm().await
                {
                    tracing::warn!(
                        written = out.len(),
                        "RPPS refresh: the lease lapsed and another replica took it over; this run stops writing"
                    );
                    return Ok(out);
                }
                // Stopped the same way when the write is refused by the lease's fence (this one
                // paused after confirming it).
                let written = fenced
                    .rpps_refresh_link(&link.identity_id, now.as_ref(), struck_off.as_deref(), withheld.as_deref())
                    .await;
                match written {
                    Err(e) if lease.is_some_and(|l| l.fenced_out(&e)) => return Ok(out),
                    written => written?,
                }
            }
            out.push(Refreshed {
                identity_id: link.identity_id,
                matricule: link.matricule,
                idnat: link.idnat,
                updated,
                struck_off,
                standing_changed,
                dmp_withheld: withheld.is_some(),
            });
        }
    }
    Ok(out)
}

/// `vigie rpps refresh [--dry-run] [--json]`: prints each change; applied ones are audited
/// (`lifecycle`, `object` `derivation:<matricule>`, old → new) and every replica re-reads.
pub async fn cli(config: &crate::config::Config, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let dir = SqlDirectory::open(&config.directory.url).await?;
    let api = Fhir::from_config(&config.derivation)?.ok_or_else(|| {
        anyhow::anyhow!("`derivation.fhir_url` is not set: the refresh reads the Annuaire Santé's FHIR API")
    })?;
    let changes = refresh(&dir, &api, config.derivation.on_struck_off, dry_run, None).await?;
    if json {
        println!("{}", serde_json::json!({ "dry_run": dry_run, "changes": changes }));
    }
    for c in &changes {
        let reason = c.said();
        if !json {
            println!("{}{} ({}): {reason}", if dry_run { "would change " } else { "" }, c.matricule, c.idnat);
        }
        if dry_run {
            continue;
        }
        crate::cli::audit_now(config, event(c, reason))?;
    }
    if !json {
        println!(
            "{} professional(s) {}",
            changes.len(),
            if dry_run { "would change (dry run: nothing written)" } else { "changed" }
        );
    }
    if !dry_run && !changes.is_empty() {
        crate::policy::view::tell_replicas(config).await;
    }
    Ok(())
}

/// Runs the refresh every `derivation.refresh_interval_secs` in `serve`, on one replica at a time
/// (a lease in the shared store); a failed run (the API down) changes nobody, is logged and counted
/// (`vigie_rpps_refresh_total{result}`), and is tried again at the next period.
pub fn spawn(
    config: crate::state::Part<crate::config::Config>,
    ports: crate::state::Part<crate::state::Ports>,
    audit: crate::state::Part<crate::state::Audit>,
) {
    let Some(every) = config.derivation.refresh_interval_secs.filter(|s| *s > 0) else { return };
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lease = crate::session::keys::directory_sync_lease("rpps-refresh");
        let ttl = std::time::Duration::from_secs(every.saturating_mul(2).clamp(60, 7200));
        loop {
            tick.tick().await;
            let store = ports.store.as_ref();
            let held = match crate::directory_sync::Lease::take(ports.store.clone(), lease.clone(), ttl, "vigie serve")
                .await
            {
                Ok(Ok(held)) => held,
                Ok(Err(_)) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "RPPS refresh: the lease could not be taken; tried again next period");
                    continue;
                }
            };
            let result = match Fhir::from_config(&config.derivation) {
                Ok(Some(api)) => {
                    refresh(&ports.lifecycle, &api, config.derivation.on_struck_off, false, Some(&held)).await
                }
                Ok(None) => Err(anyhow::anyhow!("`derivation.fhir_url` is not set")),
                Err(e) => Err(e),
            };
            match result {
                Ok(changes) => {
                    for c in &changes {
                        audit.record(event(c, c.said()));
                    }
                    if !changes.is_empty()
                        && let Err(e) = crate::policy::view::signal_change(store).await
                    {
                        tracing::warn!(error = %e, "RPPS refresh: replicas not told; their caches lapse by themselves");
                    }
                    tracing::info!(changed = changes.len(), "RPPS refresh from the Annuaire Santé");
                    metrics::counter!("vigie_rpps_refresh_total", "result" => "applied").increment(1);
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "RPPS refresh failed; tried again next period");
                    metrics::counter!("vigie_rpps_refresh_total", "result" => "failed").increment(1);
                }
            }
            held.release().await;
        }
    });
}
