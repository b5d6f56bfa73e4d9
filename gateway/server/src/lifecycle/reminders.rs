//! E-mail reminders before an end date (`[lifecycle.reminders]`, docs/identity-lifecycle.md
//! "Reminders before expiry"): beside the end-date watch, never holding it up, one replica at a
//! time (a lease) claims each reminder in the directory before sending it, so that a restart or a
//! second replica never sends one twice; a relay that fails is tried again at the next look.
use std::time::Duration;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::mail::{Mailer, Notice};
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::lifecycle::stamp;
use vigie_directory_sql::reminders::{Expiring, Recipient, Reminder};

use super::config::RemindersConfig;
use crate::config::Config;
use crate::directory_sync::Lease;
use crate::mail::{helpdesk, local};
use crate::session::keys;
use crate::state::{Audit, Part, Ports, Upstreams};

/// A claim still `sending` after this long was left by a process that died mid-send: freed.
const STALE_CLAIM: time::Duration = time::Duration::hours(1);

/// Starts the reminders when `[lifecycle.reminders]` is set and enabled.
pub fn spawn(config: Part<Config>, ports: Part<Ports>, upstreams: Part<Upstreams>, audit: Part<Audit>) {
    let Some(reminders) = config.lifecycle.reminders.clone().filter(|r| r.enabled) else { return };
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(reminders.every_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            once(&reminders, &config, &ports, &upstreams, &audit).await;
        }
    });
}

async fn once(r: &RemindersConfig, config: &Config, ports: &Ports, upstreams: &Upstreams, audit: &Audit) {
    let lease = keys::directory_sync_lease("reminders");
    // Longer than a pass with a slow relay; a replica that dies mid-pass holds the others back
    // this long at most (and its claims, an hour: `STALE_CLAIM`).
    let ttl = Duration::from_secs(r.every_secs.saturating_mul(2).clamp(60, 3600));
    let lease = match Lease::take(ports.store.clone(), lease, ttl, "vigie serve").await {
        Ok(Ok(lease)) => lease,
        Ok(Err(_)) => return,
        Err(e) => {
            tracing::warn!(error = %e, "reminders: the lease could not be taken; tried again at the next look");
            return;
        }
    };
    let record = |event: AuditEvent| audit.record(event);
    if let Err(e) = pass(r, config, &ports.lifecycle, upstreams.mailer.as_ref(), &record, &lease).await {
        tracing::warn!(error = %e, "reminders: the end dates could not be read; tried again at the next look");
    }
    lease.release().await;
}

/// The tightest threshold `left` has reached: 2 days left with `[14, 3, 1]` is the 3-day one.
pub fn threshold(days: &[u32], left: time::Duration) -> Option<u32> {
    days.iter().copied().filter(|d| left <= time::Duration::days(i64::from(*d))).min()
}

/// One look: each reminder due is claimed, sent and settled, while this replica holds `lease`; the
/// claims carry its fence: one refused stops the look, as a lapsed lease does.
async fn pass(
    r: &RemindersConfig,
    config: &Config,
    dir: &SqlDirectory,
    mailer: &dyn Mailer,
    audit: &dyn Fn(AuditEvent),
    lease: &Lease,
) -> Result<(), vigie_core::directory::DirectoryError> {
    let now = time::OffsetDateTime::now_utc();
    // The claims carry the lease's fence; a settlement records what became of this replica's own
    // claim (a mail sent is sent), whoever holds the lease by then.
    let fenced = crate::directory_sync::fenced(dir, Some(lease));
    match fenced.forget_stale_reminders(&stamp(now - STALE_CLAIM)).await {
        Err(e) if lease.fenced_out(&e) => return Ok(()),
        forgotten => forgotten?,
    };
    let longest = r.days.iter().copied().max().unwrap_or(0);
    let soon = dir.expiring(&stamp(now), &stamp(now + time::Duration::days(i64::from(longest)))).await?;
    for person in &soon {
        let Ok(end) = time::OffsetDateTime::parse(&person.end_at, &time::format_description::well_known::Rfc3339)
        else {
            tracing::warn!(matricule = %person.matricule, "reminders: an end date the directory holds is not an instant");
            continue;
        };
        let Some(days) = threshold(&r.days, end - now) else { continue };
        let mut to = vec![(Recipient::Person, person.email.clone())];
        if r.to_sponsor
            && let Some((_, _, email)) = &person.sponsor
        {
            to.push((Recipient::Sponsor, email.clone()));
        }
        for (recipient, address) in to {
            let reminder = Reminder { identity_id: &person.identity_id, end_at: &person.end_at, days, recipient };
            // One replica at a time sends: a holder paused past its lease's TTL while another took
            // over stops here, before claiming and sending; the holder of the lease sends.
            if !lease.confirm().await {
                tracing::warn!("reminders: the lease lapsed and another replica took it over; this look stops");
                return Ok(());
            }
            let claimed = match fenced.claim_reminder(reminder, &stamp(now)).await {
                Err(e) if lease.fenced_out(&e) => return Ok(()),
                claimed => claimed?,
            };
            if !claimed {
                continue;
            }
            let (subject, body) = text(config, person, recipient, end.unix_timestamp());
            let sent = match &address {
                None => Err(None),
                Some(address) => mailer
                    .send(&Notice { from: r.from.as_deref(), to: address, subject: &subject, body: &body })
                    .await
                    .map_err(|e| Some(e.to_string())),
            };
            let on = format!("end date {}, {days} day(s) before", person.end_at);
            let (state, result, outcome, reason) = match sent {
                Ok(attempts) => (Some("sent"), "sent", Outcome::Success, format!("{on}: sent ({attempts} attempt(s))")),
                Err(None) => (
                    Some("no_address"),
                    "no_address",
                    Outcome::Failure,
                    format!("{on}: not sent, the directory has no e-mail address"),
                ),
                Err(Some(e)) => {
                    // Freed: the next look tries again. Not audited each time; logged and counted.
                    tracing::warn!(matricule = %person.matricule, to = recipient.as_str(), error = %e,
                        "reminder not sent; tried again at the next look");
                    metrics::counter!("vigie_lifecycle_reminders_total", "result" => "failed").increment(1);
                    dir.settle_reminder(reminder, None, &stamp(now)).await?;
                    continue;
                }
            };
            dir.settle_reminder(reminder, state, &stamp(now)).await?;
            metrics::counter!("vigie_lifecycle_reminders_total", "result" => result).increment(1);
            audit(AuditEvent {
                kind: Some(AuditKind::ReminderSent),
                outcome: Some(outcome),
                subject: Some(person.identity_id.clone()),
                actor: Some("lifecycle-reminders".into()),
                object: Some(format!("to:{}", recipient.as_str())),
                reason: Some(reason),
                ..Default::default()
            });
        }
    }
    Ok(())
}

/// The subject and body, French then English: when access ends and whom to ask to extend it.
fn text(config: &Config, p: &Expiring, to: Recipient, end: i64) -> (String, String) {
    let (day, hour) = local(config, end);
    let (call_fr, call_en) = helpdesk(config);
    let manager = p.sponsor.as_ref().map(|(_, name, _)| name.as_str()).filter(|n| !n.is_empty());
    match to {
        Recipient::Person => {
            let (ask_fr, ask_en) = match manager {
                Some(m) => (
                    format!("votre responsable ({m}) ou le service des ressources humaines"),
                    format!("your manager ({m}) or HR"),
                ),
                None => ("le service des ressources humaines".to_owned(), "HR".to_owned()),
            };
            (
                format!("Votre accès se termine le {day} / Your access ends on {day}"),
                format!(
                    "Bonjour {name},\n\nVotre accès au système d'information de l'établissement se termine le {day} à {hour}.\n\n\
                     Si votre mission continue au-delà, demandez à {ask_fr} de prolonger votre date de fin avant cette date. \
                     Pour toute question, contactez le service informatique{call_fr}.\n\n\
                     --\nYour access to the establishment's information system ends on {day} at {hour}. If your work goes on after \
                     that, ask {ask_en} to extend your end date before then. For any question, call the IT department{call_en}.\n",
                    name = p.name,
                ),
            )
        }
        Recipient::Sponsor => (
            format!("Fin d'accès de {name} le {day} / {name}'s access ends on {day}", name = p.name),
            format!(
                "Bonjour,\n\nL'accès de {name} (matricule {m}), dont vous êtes responsable, se termine le {day} à {hour}.\n\n\
                 Si sa mission continue au-delà, demandez au service des ressources humaines de prolonger sa date de fin avant \
                 cette date ; sinon, vous n'avez rien à faire.\n\n\
                 --\n{name} (matricule {m}), for whom you are responsible, loses access on {day} at {hour}. If their work goes on \
                 after that, ask HR to extend their end date before then; otherwise there is nothing to do.\n",
                name = p.name,
                m = p.matricule,
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use time::Duration;

    /// Counts the notices it is given; the relay always accepts.
    #[derive(Default)]
    struct Outbox(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl Mailer for Outbox {
        async fn send(&self, notice: &Notice<'_>) -> Result<u32, vigie_core::mail::NotSent> {
            self.0.lock().unwrap().push(notice.to.to_owned());
            Ok(1)
        }
    }

    /// A contractor whose access ends in two days joins, without an e-mail address.
    async fn a_contractor_ending_in_two_days_joins(dir: &SqlDirectory) {
        let ends = (time::OffsetDateTime::now_utc() + Duration::days(2)).date();
        let feed = format!(
            "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username,start_date,end_date,\
             sponsor,kind\nH00001,Nom,Prénom,1980-01-01,Infirmier,IDE,,UF7001:100,hr.p1,2020-01-01,{ends},,contractor\n"
        );
        let options = crate::lifecycle::feed::RunOptions { dry_run: false, force: false, max_leavers_percent: 100.0 };
        crate::lifecycle::feed::run_text(dir, &feed, "feed.csv", "feed.csv", options, None, &|_| {})
            .await
            .expect("the contractor joins");
    }

    /// A configuration and the default reminders.
    fn settings() -> (Config, RemindersConfig) {
        let config: Config = toml::from_str(
            "issuer = \"https://vigie.example\"\n[directory]\nurl = \"sqlite::memory:\"\n[keys]\nfile = \"k\"",
        )
        .expect("a configuration");
        (config, toml::from_str("").expect("the default reminders"))
    }

    /// Replica A, paused past its lease's TTL while B took the lease over, wakes up in its look
    /// at the end dates: it claims and sends nothing, and B's look then handles the reminder
    /// (here: audited as not sent, the feed gives no e-mail address).
    #[tokio::test]
    async fn a_holder_whose_lease_lapsed_sends_no_reminder() {
        let dir = SqlDirectory::open("sqlite::memory:").await.expect("a directory");
        a_contractor_ending_in_two_days_joins(&dir).await;
        let (config, r) = settings();
        let store: Arc<dyn vigie_core::store::EphemeralStore> = Arc::new(vigie_store_embedded::EmbeddedStore::new());
        let (lapsed, taker) =
            crate::directory_sync::lapsed_lease(store, &keys::directory_sync_lease("reminders")).await;
        let outbox = Outbox::default();
        let audited = Mutex::new(Vec::new());
        let audit = |e: AuditEvent| audited.lock().unwrap().push(e.reason.unwrap_or_default());

        pass(&r, &config, &dir, &outbox, &audit, &lapsed).await.expect("a look");
        assert!(audited.lock().unwrap().is_empty(), "the lapsed holder handled no reminder");

        pass(&r, &config, &dir, &outbox, &audit, &taker).await.expect("a look");
        let audited = audited.lock().unwrap();
        assert_eq!(audited.len(), 1, "the holder handles it: the lapsed one did not claim it: {audited:?}");
        assert!(audited[0].contains("no e-mail address"), "{audited:?}");
        assert!(outbox.0.lock().unwrap().is_empty());
    }

    /// Replica A confirms its lease from its last renewal (a third of the TTL not yet gone: the
    /// store is not asked), but the lease was lost meanwhile (deleted: a Redis failover, an
    /// operator) and B took it over and looked first. A contractor due after B's look is not
    /// claimed by A (its look's writes are refused by the lease's fence): B's next look handles
    /// the reminder.
    #[tokio::test]
    async fn a_look_confirmed_from_a_stale_renewal_claims_nothing_after_the_next_holders() {
        let dir = SqlDirectory::open("sqlite::memory:").await.expect("a directory");
        let (config, r) = settings();
        let store: Arc<dyn vigie_core::store::EphemeralStore> = Arc::new(vigie_store_embedded::EmbeddedStore::new());
        let (key, ttl) = (keys::directory_sync_lease("reminders"), std::time::Duration::from_secs(600));
        let a = Lease::take(store.clone(), key.clone(), ttl, "vigie serve").await.unwrap().expect("a free lease");
        store.delete(&key).await.unwrap();
        let b = Lease::take(store, key, ttl, "vigie serve").await.unwrap().expect("the lost lease is taken");
        let outbox = Outbox::default();
        let audited = Mutex::new(Vec::new());
        let audit = |e: AuditEvent| audited.lock().unwrap().push(e.reason.unwrap_or_default());
        pass(&r, &config, &dir, &outbox, &audit, &b).await.expect("B's look: nobody due yet");
        a_contractor_ending_in_two_days_joins(&dir).await;

        pass(&r, &config, &dir, &outbox, &audit, &a).await.expect("A's look stops quietly");
        assert!(audited.lock().unwrap().is_empty(), "A handled no reminder");
        assert!(!a.held(), "A stops");

        pass(&r, &config, &dir, &outbox, &audit, &b).await.expect("B's next look");
        assert_eq!(audited.lock().unwrap().len(), 1, "B handles it: A did not claim it");
    }

    #[test]
    fn the_tightest_threshold_reached_is_the_one_sent() {
        let days = [14, 3, 1];
        assert_eq!(threshold(&days, Duration::days(2)), Some(3));
        assert_eq!(threshold(&days, Duration::days(10)), Some(14));
        assert_eq!(threshold(&days, Duration::hours(20)), Some(1));
        assert_eq!(threshold(&days, Duration::days(3)), Some(3), "exactly 3 days left is the 3-day reminder");
        assert_eq!(threshold(&days, Duration::days(15)), None);
    }
}
