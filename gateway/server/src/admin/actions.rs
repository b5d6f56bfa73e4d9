//! What HR does to cards, whatever the surface (page, API): create a record, move it in its life
//! cycle (ending the card's sessions when it is lost or stolen), bind it after the coherence
//! check. Every change is audited here, once.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::cards::{Card, CardStatus, names_match};
use vigie_core::directory::{AccessTarget, DirectoryError, Identity};
use vigie_igc_sante::{CardKind, CardSubject};

use super::auth::{Admin, Gate};
use crate::config::CardsConfig;
use crate::login::cps::validate::PresentedCard;
use crate::session::Ending;
use crate::state::{Audit, Ports};
use crate::web::http::Caller;

/// Why an admin action did not happen.
#[derive(Debug)]
pub enum ActionError {
    /// No such card or agent.
    NotFound(String),
    /// The request contradicts the card's state or the directory (a conflict HR can resolve).
    Refused(String),
    /// The names on the card are not the agent's: binding needs an override reason.
    NamesDiffer(NamesDiffer),
    /// The directory or the store failed.
    Unavailable(String),
}

/// The names on a card next to the agent's, when they differ.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NamesDiffer {
    /// `SN`, `GN` of the card's certificate (empty when absent).
    pub card: (String, String),
    /// Family and given name in the directory.
    pub agent: (String, String),
}

impl From<DirectoryError> for ActionError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid(m) => ActionError::Refused(m),
            DirectoryError::Unavailable(m) => ActionError::Unavailable(m),
            fenced @ DirectoryError::Fenced { .. } => ActionError::Unavailable(fenced.to_string()),
        }
    }
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionError::NotFound(m) | ActionError::Refused(m) | ActionError::Unavailable(m) => f.write_str(m),
            ActionError::NamesDiffer(d) => write!(
                f,
                "the names on the card ({} {}) are not the agent's ({} {}): check that this is the agent's card, \
                 or give the reason to bind it anyway (e.g. a married name)",
                d.card.1, d.card.0, d.agent.1, d.agent.0
            ),
        }
    }
}

/// An administrator at work on cards: the ports and the audit trail they act through, the cards'
/// configuration, who they are and where they call from.
pub struct Office<'a> {
    pub ports: &'a Ports,
    pub audit: &'a Audit,
    pub cards: &'a CardsConfig,
    pub admin: &'a Admin,
    pub caller: &'a Caller,
}

impl<'a> Office<'a> {
    /// The office of `admin`, let in through `gate`.
    pub fn of(gate: &'a Gate<'a>, admin: &'a Admin) -> Self {
        Office { ports: gate.ports, audit: gate.audit, cards: &gate.config.cards, admin, caller: &gate.caller }
    }
}

fn audit(audit: &Audit, actor: &str, caller: &Caller, kind: AuditKind, card: &Card, reason: Option<String>) {
    audit.record(AuditEvent {
        kind: Some(kind),
        outcome: Some(Outcome::Success),
        subject: Some(card.identity_id.clone()),
        actor: Some(actor.to_owned()),
        object: Some(card.fingerprint().map_or_else(|| format!("card:{}", card.id), |f| format!("{f} ({})", card.id))),
        method: Some(card.kind.clone()),
        reason,
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
}

async fn agent(ports: &Ports, identity_id: &str) -> Result<Identity, ActionError> {
    ports.directory.identity(identity_id).await?.ok_or_else(|| {
        ActionError::NotFound(format!(
            "there is no agent with id {:?}: search the agent first",
            identity_id.chars().take(64).collect::<String>()
        ))
    })
}

/// The card with this id, or `NotFound`.
pub async fn card(ports: &Ports, card_id: &str) -> Result<Card, ActionError> {
    ports.cards.card(card_id).await?.ok_or_else(|| {
        ActionError::NotFound(format!("there is no card with id {:?}", card_id.chars().take(64).collect::<String>()))
    })
}

/// Records a card for an agent.
pub async fn create(
    office: &Office<'_>,
    identity_id: &str,
    kind: &str,
    status: CardStatus,
    comment: Option<&str>,
) -> Result<Card, ActionError> {
    let (admin, caller) = (office.admin, office.caller);
    agent(office.ports, identity_id).await?;
    let card = office.ports.cards.create_card(identity_id, kind, status, &admin.actor, comment).await?;
    audit(
        office.audit,
        &admin.actor,
        caller,
        AuditKind::CardCreated,
        &card,
        Some(format!("status {}", status.as_str())),
    );
    // A joiner's card order is received when HR registers a card for them (issue 17).
    let record = |e| office.audit.record(e);
    let registered = format!("{} {} registered by HR", card.kind.to_uppercase(), card.id);
    let card_of = (card.kind.as_str(), card.created_at.as_str());
    crate::lifecycle::orders::fulfil(&office.ports.lifecycle, identity_id, card_of, &registered, &admin.actor, &record)
        .await;
    Ok(card)
}

/// Moves a card in its life cycle. Entering lost, stolen, returned or expired ends at once every
/// session the card opened (tokens revoked, applications told). Returns the card and how many
/// sessions ended.
pub async fn change_status(
    ending: Ending<'_>,
    admin: &Admin,
    caller: &Caller,
    card_id: &str,
    status: CardStatus,
    comment: Option<&str>,
) -> Result<(Card, usize), ActionError> {
    change_status_by(ending, &admin.actor, caller, card_id, status, comment).await
}

/// [`change_status`] on behalf of `actor` (`staff:…`, `token:…`, or `sponsorship:…` when a
/// sponsor declares a colleague's card lost or stolen).
pub async fn change_status_by(
    ending: Ending<'_>,
    actor: &str,
    caller: &Caller,
    card_id: &str,
    status: CardStatus,
    comment: Option<&str>,
) -> Result<(Card, usize), ActionError> {
    let ports = ending.ports;
    let before = card(ports, card_id).await?;
    let ends = status.ends_sessions().then(|| before.fingerprint()).flatten();
    // A retry of a status the card already has, after its sessions could not all be ended,
    // ends them now instead of being refused as "already lost".
    let retry = before.status == status && comment.is_none() && ends.is_some();
    // The durable note first: should the ending below fail or the process stop, the next sweep
    // ends the sessions (`session::complete_pending`); then the status, which refuses the
    // card's logins from now on; then the sessions it already opened.
    let target = ends.map(AccessTarget::Credential);
    let note = match &target {
        Some(t) => Some(ports.revocations.add_pending_revocation(t, &format!("card {}", status.as_str())).await?),
        None => None,
    };
    let card = if retry { before.clone() } else { ports.cards.set_status(card_id, status, actor, comment).await? };
    let mut ended = 0;
    if let (Some(target), Some(note)) = (&target, &note) {
        ended = crate::session::end_access(ending, caller, target).await.map_err(|e| {
            ActionError::Unavailable(format!(
                "the status is saved but the card's sessions could not all be ended ({e}): they end within \
                 {} seconds, or send the same status again",
                crate::session::SWEEP_SECS
            ))
        })?;
        ports.revocations.revocation_done(note).await?;
    }
    let reason = format!(
        "{} -> {}{}; {ended} session(s) ended",
        before.status.as_str(),
        card.status.as_str(),
        comment.map(|c| format!(": {}", c.chars().take(200).collect::<String>())).unwrap_or_default()
    );
    audit(ending.audit, actor, caller, AuditKind::CardStatusChanged, &card, Some(reason));
    Ok((card, ended))
}

/// How the presented card compares with the agent it is bound to.
#[derive(Debug, PartialEq, Eq)]
pub enum Coherence {
    /// Same person: bind.
    Match,
    /// The names differ: bind only with an override reason.
    NamesDiffer(NamesDiffer),
}

/// The coherence check of a binding (seeds 000: "Nom de l'agent = Nom présent sur la carte"):
/// the certificate's kind must be the record's; a CPS's CN (its idNat) must be the agent's idNat
/// — no override, an idNat names one person; a non-nominative CPE is bound to nobody; names are
/// compared accent-, case- and separator-insensitively.
pub fn coherence(record_kind: &str, subject: &CardSubject, agent: &Identity) -> Result<Coherence, String> {
    match (record_kind, subject.kind) {
        ("cps", CardKind::Cps) | ("cpe", CardKind::CpeNominative) => {}
        (_, CardKind::CpeNonNominative) => {
            return Err("this is a non-nominative CPE (no name on it): it is shared within a structure and is \
                        bound to no agent"
                .into());
        }
        (kind, found) => {
            let found = if found == CardKind::Cps { "a CPS" } else { "a CPE" };
            return Err(format!("the card in the reader is {found}, but this record is for a {kind} card"));
        }
    }
    if subject.kind == CardKind::Cps {
        let card_idnat = subject.idnat.as_ref().map(|i| i.as_str()).unwrap_or(subject.cn.as_str());
        match &agent.idnat {
            None => {
                return Err(format!(
                    "the agent has no idNat in the directory: a CPS binds to the holder of its idNat ({card_idnat}); \
                     have HR record the agent's RPPS/ADELI"
                ));
            }
            Some(own) if own.as_str() != card_idnat => {
                return Err(format!(
                    "this CPS belongs to idNat {card_idnat}, not to the agent (idNat {}): it is not their card",
                    own.as_str()
                ));
            }
            Some(_) => {}
        }
    }
    let card_sn = subject.surname.clone().unwrap_or_default();
    let card_gn = subject.given_name.clone().unwrap_or_default();
    if names_match(&card_sn, &card_gn, &agent.family_name, &agent.given_name) {
        Ok(Coherence::Match)
    } else {
        Ok(Coherence::NamesDiffer(NamesDiffer {
            card: (card_sn, card_gn),
            agent: (agent.family_name.clone(), agent.given_name.clone()),
        }))
    }
}

/// How the certificate of a binding came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// From the card in the reader (the admin page: the TLS handshake the card signed after its
    /// PIN): the card is handed over at once.
    InReader,
    /// Sent without the card (the admin API, `vigie cards bind`): anyone holding a certificate
    /// (they are public) could send it, so the card is bound pending its holder's first
    /// presentation ([`vigie_core::cards::CardRegistry::bind_pending`]), and names that differ
    /// cannot be overridden.
    CertificateOnly,
}

/// Why an override of the name check sent without the card is refused.
pub const OVERRIDE_NEEDS_CARD: &str = "the names on the card are not the agent's, and a certificate sent without the card \
     cannot override that: bind it on the admin page (/admin/cards) with the card in the reader, giving the reason there";

/// Longest override reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Binds a card record to the validated card presented (over TLS or sent as PEM), after the
/// coherence check; a name mismatch binds only with an override reason, which the audit line
/// and the card's history keep, and only with the card in the reader. A certificate sent
/// without the card binds pending its holder's first presentation.
pub async fn bind(
    office: &Office<'_>,
    card_id: &str,
    presented: &PresentedCard,
    override_reason: Option<&str>,
    presence: Presence,
) -> Result<Card, ActionError> {
    let (ports, admin, caller) = (office.ports, office.admin, office.caller);
    let record = card(ports, card_id).await?;
    let agent = agent(ports, &record.identity_id).await?;
    let reason = override_reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ActionError::Refused(format!("the override reason is longer than {MAX_REASON_CHARS} characters")));
    }
    let id = &presented.identity;
    let checked = match coherence(&record.kind, &id.subject, &agent) {
        Err(refusal) => Err(ActionError::Refused(refusal)),
        Ok(Coherence::Match) => Ok(None),
        Ok(Coherence::NamesDiffer(_)) if reason.is_some() && presence == Presence::CertificateOnly => {
            Err(ActionError::Refused(OVERRIDE_NEEDS_CARD.into()))
        }
        Ok(Coherence::NamesDiffer(d)) => reason.map(Some).ok_or(ActionError::NamesDiffer(d)),
    };
    let (issuer, serial, cn, by) = (&id.issuer_dn, &id.serial_hex, &id.subject.cn, &admin.actor);
    let bound = match (checked, presence) {
        (Ok(used), Presence::InReader) => {
            ports.cards.bind(card_id, issuer, serial, cn, by, used).await.map(|card| (card, used)).map_err(Into::into)
        }
        (Ok(_), Presence::CertificateOnly) => {
            ports.cards.bind_pending(card_id, issuer, serial, cn, by).await.map(|card| (card, None)).map_err(Into::into)
        }
        (Err(e), _) => Err(e),
    };
    let (card, used_reason) = match bound {
        Ok(b) => b,
        Err(e) => {
            // A card refused at binding (someone else's, names differing, already bound) is a
            // security event too.
            office.audit.record(AuditEvent {
                kind: Some(AuditKind::Refused),
                outcome: Some(Outcome::Failure),
                subject: Some(record.identity_id.clone()),
                actor: Some(admin.actor.clone()),
                object: Some(format!("{} ({card_id})", presented.fingerprint)),
                method: Some(record.kind.clone()),
                reason: Some(format!("binding refused: {e}")),
                ip: Some(caller.ip.clone()),
                user_agent: caller.user_agent.clone(),
                request_id: Some(caller.request_id.clone()),
                ..Default::default()
            });
            return Err(e);
        }
    };
    let audit_reason = match used_reason {
        Some(r) => format!(
            "names differ (card: {} {}; agent: {} {}); overridden: {r}",
            id.subject.given_name.as_deref().unwrap_or_default(),
            id.subject.surname.as_deref().unwrap_or_default(),
            agent.given_name,
            agent.family_name
        ),
        None => "names match".into(),
    };
    let audit_reason = match presence {
        Presence::InReader => audit_reason,
        Presence::CertificateOnly => format!(
            "{audit_reason}; pending presentation: logs in once its holder presents it (within {} s)",
            office.cards.pending_presentation_secs
        ),
    };
    audit(office.audit, &admin.actor, caller, AuditKind::CardBound, &card, Some(audit_reason));
    Ok(card)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::IdNat;

    fn agent(family: &str, given: &str, idnat: Option<&str>) -> Identity {
        Identity {
            id: "a1".into(),
            matricule: "M1".into(),
            family_name: family.into(),
            given_name: given.into(),
            birth_date: None,
            metier: None,
            grade: None,
            idnat: idnat.map(|i| IdNat::parse(i).unwrap()),
            units: vec![],
        }
    }

    fn subject(kind: CardKind, cn: &str, sn: Option<&str>, gn: Option<&str>) -> CardSubject {
        CardSubject {
            kind,
            idnat: IdNat::parse(cn).ok(),
            cn: cn.into(),
            surname: sn.map(Into::into),
            given_name: gn.map(Into::into),
            title: None,
            organization: None,
            structure_id: None,
            pseudonym: None,
        }
    }

    #[test]
    fn a_cps_binds_to_the_holder_of_its_idnat_only() {
        let cps = subject(CardKind::Cps, "810100000011", Some("DURAND"), Some("PAUL"));
        assert_eq!(coherence("cps", &cps, &agent("Durand", "Paul", Some("810100000011"))), Ok(Coherence::Match));
        let other = coherence("cps", &cps, &agent("Durand", "Paul", Some("810100000029"))).unwrap_err();
        assert!(other.contains("not their card"), "{other}");
        let none = coherence("cps", &cps, &agent("Durand", "Paul", None)).unwrap_err();
        assert!(none.contains("no idNat"), "{none}");
        assert!(coherence("cpe", &cps, &agent("Durand", "Paul", Some("810100000011"))).unwrap_err().contains("CPS"));
    }

    #[test]
    fn different_names_need_an_override_and_a_shared_cpe_binds_to_nobody() {
        let cps = subject(CardKind::Cps, "810100000011", Some("MARTIN"), Some("PAULE"));
        match coherence("cps", &cps, &agent("Durand", "Paule", Some("810100000011"))) {
            Ok(Coherence::NamesDiffer(d)) => {
                assert_eq!(d.card, ("MARTIN".into(), "PAULE".into()));
                assert_eq!(d.agent, ("Durand".into(), "Paule".into()));
            }
            other => panic!("{other:?}"),
        }
        let cpe = subject(CardKind::CpeNominative, "3760021832/000000018", Some("LE GALL"), Some("ELODIE"));
        assert_eq!(coherence("cpe", &cpe, &agent("Le-Gall", "Élodie", None)), Ok(Coherence::Match));
        let shared = subject(CardKind::CpeNonNominative, "3760021832/000000019", None, None);
        assert!(coherence("cpe", &shared, &agent("Le-Gall", "Élodie", None)).unwrap_err().contains("non-nominative"));
    }
}
