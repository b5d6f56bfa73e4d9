//! The login flow: an authorization request waiting for its user to log in, stored until a
//! verifier ends it (`login::complete`), bound to the browser that started it.
use serde::{Deserialize, Serialize};
use vigie_core::{AssuranceLevel, Mie};

use super::AuthRequest;

/// Binds a login flow to the browser that started it: a login form posted from elsewhere
/// (login CSRF) lacks this cookie.
pub const BROWSER_COOKIE: &str = "__Host-vigie-browser";

/// A login in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginFlow {
    pub request: AuthRequest,
    /// CSRF token of the login form.
    pub csrf: String,
    /// SHA-256 of the browser-binding cookie.
    pub browser: String,
    /// What the login page offers, and whether it says why it asks again.
    #[serde(flatten)]
    pub offer: Offer,
}

/// The MIE a flow's page offers. Stored as the two fields of earlier versions (`offered`, a list
/// or absent; `step_up`), so that a flow written by either version is read by the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredOffer", into = "StoredOffer")]
pub enum Offer {
    /// Every method (a flow whose policy named no MIE).
    Every,
    /// The MIE the policy would accept for this client.
    Named(Vec<Mie>),
    /// Step-up: a session or a login was too weak for the client; these MIE would do, and the
    /// page says why it asks again.
    StepUp(Vec<Mie>),
}

impl Offer {
    /// Whether the page offers one of `mie`.
    pub fn offers_any(&self, mie: &[Mie]) -> bool {
        match self {
            Offer::Every => true,
            Offer::Named(o) | Offer::StepUp(o) => mie.iter().any(|m| o.contains(m)),
        }
    }

    pub fn is_step_up(&self) -> bool {
        matches!(self, Offer::StepUp(_))
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredOffer {
    #[serde(default)]
    offered: Option<Vec<Mie>>,
    #[serde(default)]
    step_up: bool,
}

impl From<StoredOffer> for Offer {
    fn from(s: StoredOffer) -> Self {
        // No version wrote a step-up without its list: read as offering every method.
        match (s.offered, s.step_up) {
            (None, _) => Offer::Every,
            (Some(o), false) => Offer::Named(o),
            (Some(o), true) => Offer::StepUp(o),
        }
    }
}

impl From<Offer> for StoredOffer {
    fn from(o: Offer) -> Self {
        match o {
            Offer::Every => StoredOffer { offered: None, step_up: false },
            Offer::Named(o) => StoredOffer { offered: Some(o), step_up: false },
            Offer::StepUp(o) => StoredOffer { offered: Some(o), step_up: true },
        }
    }
}

/// The strongest level a login method of this build reaches: cards and FIDO2 keys are
/// phishing-resistant two-factor MIE.
pub fn best_level() -> AssuranceLevel {
    AssuranceLevel::TwoFactorPhishingResistant
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_offer_reads_as_the_previous_versions_wrote_it() {
        let read = |json: &str| serde_json::from_str::<StoredOffer>(json).map(Offer::from).ok();
        assert_eq!(read("{}"), Some(Offer::Every));
        assert_eq!(read(r#"{"offered":["fido2"],"step_up":false}"#), Some(Offer::Named(vec![Mie::Fido2])));
        assert_eq!(read(r#"{"offered":["fido2"],"step_up":true}"#), Some(Offer::StepUp(vec![Mie::Fido2])));
        let written = serde_json::to_value(StoredOffer::from(Offer::StepUp(vec![Mie::Cps]))).ok();
        assert_eq!(written, Some(serde_json::json!({"offered": ["cps"], "step_up": true})));
    }
}
