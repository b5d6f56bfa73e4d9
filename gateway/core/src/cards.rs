//! The card ports: validating a presented card ([`CardValidation`]) and the card registry, the CPS/CPE cards of each agent, their binding to the agent and their
//! life cycle (seeds 000: HR and medical affairs track and bind cards, "the IT department must not
//! hold the cards").
//!
//! A CPS needs no record to log in: it binds to the identity whose idNat is its certificate's CN.
//! A record still matters for it: a card declared lost or stolen is refused by its certificate
//! (issuer + serial) even though its idNat still names a person. A nominative CPE logs in only
//! through a record, made when HR binds it to an agent.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::directory::DirectoryError;
pub use crate::names::names_match;

mod validation;
pub use validation::{
    CardIdentity, CardKind, CardRejection, CardSubject, CardValidation, CrlOrigin, CrlStatus, RevocationCheck,
    ValidatedCard,
};

/// Where a card is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// Asked for by the agent or their manager.
    Requested,
    /// Ordered from the ANS (CPS) or the card provider (CPE).
    Ordered,
    /// Received by HR / medical affairs, not yet handed over.
    Received,
    /// In the agent's hands and bound: logs in.
    HandedOver,
    /// Given back (leaver, replacement).
    Returned,
    /// Declared lost: refused at once, its sessions ended.
    Lost,
    /// Declared stolen: refused at once, its sessions ended.
    Stolen,
    /// Past its validity.
    Expired,
}

impl CardStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [CardStatus; 8] = [
        CardStatus::Requested,
        CardStatus::Ordered,
        CardStatus::Received,
        CardStatus::HandedOver,
        CardStatus::Returned,
        CardStatus::Lost,
        CardStatus::Stolen,
        CardStatus::Expired,
    ];

    /// Stable label (API, audit, database).
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Requested => "requested",
            CardStatus::Ordered => "ordered",
            CardStatus::Received => "received",
            CardStatus::HandedOver => "handed_over",
            CardStatus::Returned => "returned",
            CardStatus::Lost => "lost",
            CardStatus::Stolen => "stolen",
            CardStatus::Expired => "expired",
        }
    }

    /// The status with this label.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether a card in this status may log in.
    pub fn allows_login(self) -> bool {
        self == CardStatus::HandedOver
    }

    /// Whether entering this status must end the sessions the card opened at once.
    pub fn ends_sessions(self) -> bool {
        matches!(self, CardStatus::Lost | CardStatus::Stolen | CardStatus::Returned | CardStatus::Expired)
    }

    /// The statuses a card in this status may move to by a declared change. `handed_over` is
    /// entered only by binding the card (reading it, [`CardRegistry::bind`]), so it is in no list:
    /// a card lost, stolen, returned or expired never logs in again — a new card is ordered.
    pub fn next(self) -> &'static [CardStatus] {
        use CardStatus::*;
        match self {
            Requested => &[Ordered, Received, Returned],
            Ordered => &[Received, Lost, Returned],
            Received => &[Returned, Lost, Stolen, Expired],
            HandedOver => &[Returned, Lost, Stolen, Expired],
            // A lost card may turn out stolen, or be found and given back (not used again).
            Lost => &[Stolen, Returned],
            Expired => &[Returned],
            Stolen | Returned => &[],
        }
    }

    /// Whether a declared change from this status to `to` is allowed: see [`CardStatus::next`].
    pub fn may_become(self, to: CardStatus) -> bool {
        self.next().contains(&to)
    }

    /// Whether a card in this status may be bound to its certificate (and so handed over).
    pub fn may_bind(self) -> bool {
        matches!(self, CardStatus::Requested | CardStatus::Ordered | CardStatus::Received)
    }
}

/// A card of an agent, from its request to its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Registry id.
    pub id: String,
    /// The agent (directory identity id) the card is for.
    pub identity_id: String,
    /// `cps` or `cpe`.
    pub kind: String,
    /// Current status.
    pub status: CardStatus,
    /// Issuer DN of the card's authentication certificate, once bound (as `vigie-igc-sante` writes it).
    pub issuer_dn: Option<String>,
    /// Serial of that certificate in lowercase hex as encoded, once bound.
    pub serial_hex: Option<String>,
    /// The certificate's CN, once bound.
    pub cn: Option<String>,
    /// When the card was bound (RFC 3339), and by whom (directory id or admin name).
    pub bound_at: Option<String>,
    /// Who bound it.
    pub bound_by: Option<String>,
    /// The reason given when the name check was overridden at binding.
    pub override_reason: Option<String>,
    /// Created / last changed (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl Card {
    /// The fingerprint that names this card in sessions: see [`card_fingerprint`].
    pub fn fingerprint(&self) -> Option<String> {
        Some(card_fingerprint(self.issuer_dn.as_deref()?, self.serial_hex.as_deref()?))
    }

    /// Bound to its certificate but not handed over: the binding came without the card (see
    /// [`CardRegistry::bind_pending`]) and waits for its holder to present it.
    pub fn pending_presentation(&self) -> bool {
        self.status == CardStatus::Received && self.issuer_dn.is_some()
    }
}

/// The name of a card certificate in sessions and audit: `card:` + issuer DN + `#` + serial hex.
/// Readable, and the same on every replica.
pub fn card_fingerprint(issuer_dn: &str, serial_hex: &str) -> String {
    format!("card:{issuer_dn}#{serial_hex}")
}

/// The issuer DN and serial a [`card_fingerprint`] names (the DN may hold `#`, the serial not).
pub fn parse_card_fingerprint(fingerprint: &str) -> Option<(&str, &str)> {
    fingerprint.strip_prefix("card:")?.rsplit_once('#')
}

/// One step of a card's life, with its date and comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEvent {
    /// The card.
    pub card_id: String,
    /// The status entered (or kept, for a comment or a binding).
    pub status: CardStatus,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub by: String,
    /// Free text.
    pub comment: Option<String>,
}

/// Cards and their life cycle.
#[async_trait]
pub trait CardRegistry: Send + Sync {
    /// The card whose authentication certificate has this issuer and serial, if registered.
    async fn card_by_certificate(&self, issuer_dn: &str, serial_hex: &str) -> Result<Option<Card>, DirectoryError>;
    /// The card with this id.
    async fn card(&self, id: &str) -> Result<Option<Card>, DirectoryError>;
    /// The cards of an agent, newest first.
    async fn cards_of(&self, identity_id: &str) -> Result<Vec<Card>, DirectoryError>;
    /// Registers a card for an agent in a first status (usually `requested`).
    async fn create_card(
        &self,
        identity_id: &str,
        kind: &str,
        status: CardStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Card, DirectoryError>;
    /// Binds a card to its certificate and hands it over. Refused when another card of the
    /// registry already has this certificate.
    #[allow(clippy::too_many_arguments)]
    async fn bind(
        &self,
        card_id: &str,
        issuer_dn: &str,
        serial_hex: &str,
        cn: &str,
        by: &str,
        override_reason: Option<&str>,
    ) -> Result<Card, DirectoryError>;
    /// Registers, bound and handed over, the card of kind `kind` (`cps`) whose certificate its
    /// holder `identity_id` just presented at login (a CPS found by its idNat). Idempotent for
    /// that holder: logins with the same new card at once register it once and all get that
    /// record (`false`: it was there already; `true`: this call registered it). Refused
    /// ([`DirectoryError::Invalid`], naming the card's holder) when the certificate is bound to a
    /// card of another agent.
    async fn register_presented(
        &self,
        identity_id: &str,
        kind: &str,
        (issuer_dn, serial_hex, cn): (&str, &str, &str),
        by: &str,
    ) -> Result<(Card, bool), DirectoryError>;
    /// Binds a card to its certificate without handing it over: it stays `received`, pending its
    /// first presentation (its certificate came without the card, e.g. through the admin API),
    /// and logs in only once [`CardRegistry::confirm_presented`] hands it over. Refused as
    /// [`CardRegistry::bind`] is.
    async fn bind_pending(
        &self,
        card_id: &str,
        issuer_dn: &str,
        serial_hex: &str,
        cn: &str,
        by: &str,
    ) -> Result<Card, DirectoryError>;
    /// Hands over a card pending presentation ([`Card::pending_presentation`]), its holder having
    /// just presented it; returns the card as it now is (unchanged when it was no longer
    /// pending: a status declared meanwhile wins).
    async fn confirm_presented(&self, card_id: &str, by: &str) -> Result<Card, DirectoryError>;
    /// Moves a card to a status, with a comment.
    async fn set_status(
        &self,
        card_id: &str,
        status: CardStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Card, DirectoryError>;
    /// The life of a card, oldest first.
    async fn events(&self, card_id: &str) -> Result<Vec<CardEvent>, DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_fingerprint_gives_back_its_issuer_and_serial() {
        let dn = "CN=TEST CA#2,O=ASIP-SANTE,C=FR";
        assert_eq!(parse_card_fingerprint(&card_fingerprint(dn, "0a1b")), Some((dn, "0a1b")));
        assert_eq!(parse_card_fingerprint("fido2:abc"), None);
        assert_eq!(parse_card_fingerprint("card:no-serial"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_card_fingerprint_gives_back_its_issuer_and_serial(dn in "\\PC{0,80}", serial in "[0-9a-f]{1,40}") {
            let fingerprint = card_fingerprint(&dn, &serial);
            proptest::prop_assert_eq!(parse_card_fingerprint(&fingerprint), Some((dn.as_str(), serial.as_str())));
        }

        #[test]
        fn the_fingerprint_parser_never_panics(s in "\\PC{0,120}") {
            let _ = parse_card_fingerprint(&s);
        }
    }

    #[test]
    fn lost_or_stolen_cards_never_come_back_to_handed_over() {
        for from in CardStatus::ALL {
            assert!(!from.may_become(CardStatus::HandedOver), "{from:?} -> handed_over only by binding");
            assert!(!from.may_become(from), "{from:?} -> itself is no change");
        }
        for end in [CardStatus::Lost, CardStatus::Stolen, CardStatus::Returned, CardStatus::Expired] {
            assert!(!end.may_bind(), "{end:?} cannot be bound again");
            assert!(end.next().iter().all(|n| !n.allows_login()));
        }
        assert!(CardStatus::HandedOver.may_become(CardStatus::Lost));
        assert!(CardStatus::Lost.may_become(CardStatus::Stolen));
        assert!(!CardStatus::Stolen.may_become(CardStatus::Lost));
        for s in CardStatus::ALL {
            assert_eq!(CardStatus::parse(s.as_str()), Some(s));
        }
    }
}
