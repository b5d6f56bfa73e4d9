//! E-mails telling a person that a credential was added to their account (issue 12): a FIDO2
//! key registered, a card bound. Whoever did not add it learns of it and can call the helpdesk
//! before the credential is used. Sent in the background: a missing address or a relay down
//! never blocks the action; the outcome is audited (`credential_notice`) and counted.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::Identity;

use crate::config::Config;
use crate::mail::Mailroom;
use crate::web::http::Caller;

/// What was added.
#[derive(Clone, Debug)]
pub enum Added {
    /// A FIDO2 security key, by the name its holder gave it.
    Key { name: String },
    /// A card bound to its certificate.
    Card {
        /// `cps` or `cpe`.
        kind: String,
        /// The certificate's serial (hex).
        serial: String,
        /// Bound without being read: active at its holder's first card login.
        pending: bool,
    },
}

impl Added {
    /// A card just bound.
    pub fn card(card: &vigie_core::cards::Card) -> Self {
        Added::Card {
            kind: card.kind.clone(),
            serial: card.serial_hex.clone().unwrap_or_default(),
            pending: card.pending_presentation(),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Added::Key { .. } => "fido2",
            Added::Card { .. } => "card",
        }
    }
}

/// Tells the person `identity_id` by e-mail that `added` was added to their account, in the
/// background; audited with the outcome.
pub fn credential_added(mail: Mailroom, caller: &Caller, identity_id: &str, added: Added) {
    let (caller, identity_id) = (caller.clone(), identity_id.to_owned());
    actix_web::rt::spawn(async move {
        let sent = async {
            let person = mail
                .ports
                .directory
                .identity(&identity_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the person is no longer in the directory")?;
            let (subject, body) = texts(&mail.config, &person, &added, crate::now());
            crate::mail::send_notice(
                mail.upstreams.mailer.as_ref(),
                mail.ports.sponsorships.as_ref(),
                &identity_id,
                &subject,
                &body,
            )
            .await
        };
        let (outcome, why) = match sent.await {
            Ok(attempts) => (Outcome::Success, format!("sent ({attempts} attempt(s))")),
            Err(e) => {
                tracing::warn!(error = %e, what = added.label(), "credential notice not sent");
                (Outcome::Failure, format!("not sent: {e}"))
            }
        };
        let result = if outcome == Outcome::Success { "sent" } else { "failed" };
        metrics::counter!("vigie_credential_notice_total", "result" => result).increment(1);
        mail.audit.record(AuditEvent {
            kind: Some(AuditKind::CredentialNotice),
            outcome: Some(outcome),
            subject: Some(identity_id),
            object: Some(added.label().into()),
            ip: Some(caller.ip.clone()),
            request_id: Some(caller.request_id.clone()),
            reason: Some(why),
            ..Default::default()
        });
    });
}

/// The subject and body, French first (the establishment's language), then English.
fn texts(config: &Config, person: &Identity, added: &Added, at: i64) -> (String, String) {
    let (day, hour) = crate::mail::local(config, at);
    let (call_fr, call_en) = crate::mail::helpdesk(config);
    let who = format!("{} {}", person.given_name, person.family_name);
    match added {
        Added::Key { name } => (
            "Vigie : une clé de sécurité a été ajoutée à votre compte".to_owned(),
            format!(
                "Bonjour {who},\n\nUne clé de sécurité (« {name} ») a été ajoutée à votre compte le {day} à {hour}. \
                 Elle permet de se connecter en votre nom.\n\n\
                 Si ce n'est pas vous, contactez le plus rapidement possible le service informatique{call_fr}.\n\n\
                 --\nA security key (\"{name}\") was added to your account on {day} at {hour}. If this was not you, \
                 call the IT department{call_en} as soon as possible.\n"
            ),
        ),
        Added::Card { kind, serial, pending } => {
            let kind = kind.to_uppercase();
            let (pending_fr, pending_en) = if *pending {
                (
                    " ; elle ne sera active qu'à sa première utilisation, avec son code",
                    "; it becomes active when first used, with its PIN",
                )
            } else {
                ("", "")
            };
            (
                format!("Vigie : une carte {kind} a été associée à votre compte"),
                format!(
                    "Bonjour {who},\n\nUne carte {kind} (numéro de série {serial}) a été associée à votre compte le \
                     {day} à {hour}{pending_fr}.\n\n\
                     Si ce n'est pas votre carte, contactez le plus rapidement possible le service informatique{call_fr}.\n\n\
                     --\nA {kind} card (serial {serial}) was bound to your account on {day} at {hour}{pending_en}. If it \
                     is not yours, call the IT department{call_en} as soon as possible.\n"
                ),
            )
        }
    }
}
