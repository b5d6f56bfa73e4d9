//! What a sponsorship gives: the reason a card is missing, the temporary credential (its code and
//! stored hash) and the grant itself, which suspends a lost or stolen card and is audited.
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::cards::CardStatus;
use vigie_core::directory::Identity;

use super::name;
use crate::account::{new_code, normal_code};
use crate::secrets::sha256_b64;
use crate::session::Ending;
use crate::web::http::Caller;
use crate::web::pages::{Lang, tr};

/// Why the professional has no usable card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Left at home.
    Forgotten,
    /// Lost: the card is suspended at once.
    Lost,
    /// Stolen: the card is suspended at once.
    Stolen,
    /// Does not work (unreadable chip, reader).
    Unusable,
    /// Not received yet.
    Awaiting,
}

impl Reason {
    /// Every reason, in the order the page lists them.
    pub const ALL: [Reason; 5] = [Reason::Forgotten, Reason::Lost, Reason::Stolen, Reason::Unusable, Reason::Awaiting];

    /// Stable label (form, audit, database).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Forgotten => "forgotten",
            Reason::Lost => "lost",
            Reason::Stolen => "stolen",
            Reason::Unusable => "unusable",
            Reason::Awaiting => "awaiting",
        }
    }

    /// The reason with this label.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub(super) fn label(self, l: Lang) -> &'static str {
        match self {
            Reason::Forgotten => tr(l, "carte oubliée", "card forgotten"),
            Reason::Lost => tr(l, "carte perdue", "card lost"),
            Reason::Stolen => tr(l, "carte volée", "card stolen"),
            Reason::Unusable => tr(l, "carte inutilisable", "card unusable"),
            Reason::Awaiting => tr(l, "carte pas encore reçue", "card not received yet"),
        }
    }

    /// The card status a sponsorship for this reason declares, suspending the card at once.
    pub fn card_status(self) -> Option<CardStatus> {
        match self {
            Reason::Lost => Some(CardStatus::Lost),
            Reason::Stolen => Some(CardStatus::Stolen),
            _ => None,
        }
    }
}

/// What a granted sponsorship gave.
pub struct Granted {
    /// The sponsorship's id.
    pub id: String,
    /// The temporary code, shown once.
    pub code: String,
    /// When it was granted and when the code stops working (Unix seconds).
    pub at: i64,
    pub expires_at: i64,
    /// Cards suspended (lost, stolen) and the sessions that ended with them.
    pub cards_suspended: usize,
    pub sessions_ended: usize,
}

/// The stored form of a temporary code (made by [`new_code`], the enrolment codes' maker): its
/// [`normal_code`], then SHA-256 (80 random bits need no slow hash; attempts are rate-limited
/// at the login).
pub fn code_hash(code: &str) -> String {
    let normal = normal_code(code);
    sha256_b64(format!("vigie-sponsorship-code\0{normal}").as_bytes())
}

/// Grants a sponsorship: records it with its temporary credential, and for a lost or stolen
/// card suspends the colleague's cards at once and ends their sessions (as HR's action does).
/// Audited (`sponsorship_granted`, `card_status_changed`).
pub async fn grant(
    ending: Ending<'_>,
    caller: &Caller,
    sponsor: &Identity,
    colleague: &Identity,
    reason: Reason,
) -> Result<Granted, String> {
    let at = crate::now();
    let expires_at = at + ending.config.sponsorship.credential_ttl_secs as i64;
    let code = new_code();
    let hash = code_hash(&code);
    let id = ending
        .ports
        .sponsorships
        .record_sponsorship(&vigie_core::sponsorship::NewSponsorship {
            sponsor_id: &sponsor.id,
            sponsored_id: &colleague.id,
            reason: reason.as_str(),
            at,
            code_hash: &hash,
            expires_at,
        })
        .await
        .map_err(|e| e.to_string())?;
    let (mut cards_suspended, mut sessions_ended) = (0, 0);
    if let Some(status) = reason.card_status() {
        let actor = format!("sponsorship:{}", sponsor.id);
        let comment = format!("declared {} at sponsorship {id} by {}", status.as_str(), name(sponsor));
        for card in ending.ports.cards.cards_of(&colleague.id).await.map_err(|e| e.to_string())? {
            if !card.status.may_become(status) {
                continue;
            }
            let (_, ended) =
                crate::admin::actions::change_status_by(ending, &actor, caller, &card.id, status, Some(&comment))
                    .await
                    .map_err(|e| e.to_string())?;
            cards_suspended += 1;
            sessions_ended += ended;
        }
    }
    ending.audit.record(AuditEvent {
        kind: Some(AuditKind::SponsorshipGranted),
        outcome: Some(Outcome::Success),
        subject: Some(colleague.id.clone()),
        actor: Some(format!("staff:{}", sponsor.id)),
        method: Some(reason.as_str().into()),
        object: Some(format!("sponsorship:{id}")),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: Some(format!(
            "temporary credential until {}; {cards_suspended} card(s) suspended, {sessions_ended} session(s) ended",
            crate::rfc3339(expires_at)
        )),
        ..Default::default()
    });
    metrics::counter!("vigie_sponsorships_total", "reason" => reason.as_str()).increment(1);
    Ok(Granted { id, code, at, expires_at, cards_suspended, sessions_ended })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_80_bits_and_compare_forgivingly() {
        let c = new_code();
        assert_eq!(c.len(), 19);
        assert_eq!(c.chars().filter(|c| *c == '-').count(), 3);
        assert_ne!(c, new_code());
        assert_eq!(code_hash(&c), code_hash(&c.to_lowercase().replace('-', " ")));
        assert_eq!(code_hash("AB0O-1IL1"), code_hash("ab00 1111"));
        assert_ne!(code_hash("ABCD"), code_hash("ABCE"));
    }

    #[test]
    fn lost_and_stolen_suspend_the_card_the_others_do_not() {
        assert_eq!(Reason::parse("lost").and_then(Reason::card_status), Some(CardStatus::Lost));
        assert_eq!(Reason::parse("stolen").and_then(Reason::card_status), Some(CardStatus::Stolen));
        for r in ["forgotten", "unusable", "awaiting"] {
            assert_eq!(Reason::parse(r).and_then(Reason::card_status), None);
        }
        assert_eq!(Reason::parse("other"), None);
    }
}
