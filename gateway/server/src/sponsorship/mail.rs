//! The sponsorship's e-mails to the sponsor and the colleague, sent through `crate::mail`.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::Identity;

use super::grant::Reason;
use super::name;
use crate::mail::{Mailroom, helpdesk, local, send_notice};
use crate::web::http::Caller;
use crate::web::pages::Lang;

/// The two e-mails of a sponsorship, sent in the background (never delaying the sponsorship),
/// each retried by the mailer; the outcome of each is audited (`sponsorship_mail`).
pub(super) fn spawn_notices(
    mail: Mailroom,
    caller: Caller,
    sponsor: Identity,
    colleague: Identity,
    reason: Reason,
    at: i64,
    expires_at: i64,
) {
    actix_web::rt::spawn(async move {
        let (day, hour) = local(&mail.config, at);
        let (until_day, until_hour) = local(&mail.config, expires_at);
        let (call_fr, call_en) = helpdesk(&mail.config);
        let to_sponsor = (
            &sponsor,
            "sponsor",
            format!("Parrainage d'une carte CPS / CPE : vous avez parrainé {}", name(&colleague)),
            format!(
                "Parrainage d'une carte CPS / CPE\n\nVous venez de parrainer l'utilisateur {who} le {day} à {hour} (motif : {rfr}).\n\n\
                 Si vous n'avez pas parrainé cet utilisateur, veuillez contacter le plus rapidement possible le service informatique{call_fr}.\n\n\
                 --\nYou sponsored {who} on {day} at {hour} (reason: {ren}). If this was not you, call the IT department{call_en} as soon as possible.\n",
                who = name(&colleague),
                rfr = reason.label(Lang::Fr),
                ren = reason.label(Lang::En),
            ),
        );
        let to_colleague = (
            &colleague,
            "sponsored",
            format!("Parrainage d'une carte CPS / CPE : vous avez été parrainé(e) par {}", name(&sponsor)),
            format!(
                "Parrainage d'une carte CPS / CPE\n\nVous venez d'être parrainé(e) par l'utilisateur {who} le {day} à {hour} (motif : {rfr}). \
                 Votre accès temporaire est valable jusqu'au {until_day} à {until_hour}.\n\n\
                 Si vous n'avez pas été parrainé(e) par cet utilisateur, veuillez contacter le plus rapidement possible le service informatique{call_fr}.\n\n\
                 --\nYou were sponsored by {who} on {day} at {hour} (reason: {ren}); your temporary access is valid until {until_day} at {until_hour}. \
                 If this was not you, call the IT department{call_en} as soon as possible.\n",
                who = name(&sponsor),
                rfr = reason.label(Lang::Fr),
                ren = reason.label(Lang::En),
            ),
        );
        for (person, role, subject, body) in [to_sponsor, to_colleague] {
            let (outcome, why) = match send_notice(
                mail.upstreams.mailer.as_ref(),
                mail.ports.sponsorships.as_ref(),
                &person.id,
                &subject,
                &body,
            )
            .await
            {
                Ok(attempts) => (Outcome::Success, format!("sent to the {role} ({attempts} attempt(s))")),
                Err(e) => {
                    tracing::warn!(role, error = %e, "sponsorship e-mail not sent");
                    (Outcome::Failure, format!("not sent to the {role}: {e}"))
                }
            };
            metrics::counter!("vigie_sponsorship_mail_total", "result" => if outcome == Outcome::Success { "sent" } else { "failed" })
                .increment(1);
            mail.audit.record(AuditEvent {
                kind: Some(AuditKind::SponsorshipMail),
                outcome: Some(outcome),
                subject: Some(colleague.id.clone()),
                actor: Some(format!("staff:{}", sponsor.id)),
                object: Some(format!("to:{role}")),
                ip: Some(caller.ip.clone()),
                request_id: Some(caller.request_id.clone()),
                reason: Some(why),
                ..Default::default()
            });
        }
    });
}
