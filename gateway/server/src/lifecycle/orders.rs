//! Card orders for joiners (issue 17, docs/identity-lifecycle.md "Card orders"): the HR feed orders
//! a CPS or CPE for each eligible joiner or returner, cancels the open order of a leaver, and a
//! card of that holder — registered by HR or first used at login — marks it received. Each change
//! is a `lifecycle` audit line, object `card-order:<id>`.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::card_orders::CardOrder;
use vigie_directory_sql::lifecycle::stamp;

use super::config::LifecycleConfig;
use super::feed::RunOutcome;

fn now() -> String {
    stamp(time::OffsetDateTime::now_utc())
}

fn audit_line(order: &CardOrder, actor: &str, reason: String) -> AuditEvent {
    AuditEvent {
        kind: Some(AuditKind::Lifecycle),
        outcome: Some(Outcome::Success),
        subject: Some(order.identity_id.clone()),
        actor: Some(actor.to_owned()),
        object: Some(format!("card-order:{}", order.id)),
        method: Some(order.kind.clone()),
        reason: Some(reason),
        ..Default::default()
    }
}

/// After an applied feed run: an order for each eligible joiner and returner (none while they
/// have one open), the open order of each leaver cancelled. A failure is logged: the feed is
/// applied, and the next run of the same feed does not repeat its joiners, so HR is told in the log.
pub async fn after_run(dir: &SqlDirectory, config: &LifecycleConfig, outcome: &RunOutcome, audit: &dyn Fn(AuditEvent)) {
    let RunOutcome::Applied { run, diff, .. } = outcome else { return };
    let actor = format!("hr-feed:{run}");
    for leaver in &diff.leavers {
        match dir
            .settle_card_order(&leaver.matricule, "cancelled", "the person left before the card came", &now())
            .await
        {
            Ok(Some(order)) => {
                audit(audit_line(&order, &actor, format!("card order cancelled: {} left", order.matricule)))
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, matricule = %leaver.matricule, "card order of a leaver not cancelled")
            }
        }
    }
    let Some(rule) = config.joiners.as_ref().and_then(|j| j.order_card.as_ref()) else { return };
    let kind_of = |metier: Option<&str>| rule.kind_of(metier);
    for person in diff.joiners.iter().chain(&diff.returning) {
        match dir.order_card(&person.matricule, &kind_of, rule.structure.as_deref(), &actor, &now()).await {
            Ok(Some(order)) => audit(audit_line(
                &order,
                &actor,
                format!(
                    "card ordered: {} for {} ({})",
                    order.kind,
                    order.matricule,
                    order.metier.as_deref().unwrap_or("-")
                ),
            )),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, matricule = %person.matricule, "card order of a joiner not made"),
        }
    }
}

/// A person whose access the end-date watch ended: their open order is cancelled.
pub async fn cancel_for(dir: &SqlDirectory, identity_id: &str, why: &str, audit: &dyn Fn(AuditEvent)) {
    match dir.settle_card_order(identity_id, "cancelled", why, &now()).await {
        Ok(Some(order)) => audit(audit_line(&order, "lifecycle-watch", format!("card order cancelled: {why}"))),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, identity = %identity_id, "card order of a leaver not cancelled"),
    }
}

/// A card of this holder, of `kind` (`cps`, `cpe`) and registered in the card registry at
/// `registered_at` (RFC 3339), was registered or used: their open order of that kind placed at or
/// before it, if any, is received (a CPE does not receive a CPS order, nor a card they had before
/// the order). Best effort: a failure is logged and does not stop the login or the registration.
pub async fn fulfil(
    dir: &SqlDirectory,
    identity_id: &str,
    (kind, registered_at): (&str, &str),
    card: &str,
    actor: &str,
    audit: &dyn Fn(AuditEvent),
) {
    // The orders' times are whole seconds; the registry's go to the nanosecond: compared as
    // strings, a card registered in the order's very second would be "before" it.
    let Some(registered) =
        crate::parse_rfc3339(registered_at).and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
    else {
        tracing::warn!(identity = %identity_id, %registered_at, "card order not marked received: the card's registration time is not RFC 3339");
        return;
    };
    let reason = format!("a card of the holder: {card}");
    match dir.receive_card_order(identity_id, kind, &stamp(registered), &reason, &now()).await {
        Ok(Some(order)) => audit(audit_line(&order, actor, format!("card order received: {reason}"))),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, identity = %identity_id, "card order not marked received"),
    }
}
