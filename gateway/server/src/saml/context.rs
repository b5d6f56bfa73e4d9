//! `RequestedAuthnContext` (saml-core §3.3.2.2.1) read as Vigie's assurance levels: a class's
//! strength is the level of the MIE that Vigie answers with that class (response::class_ref and
//! the core's MIE → level), so there is no second table to keep in step with the OIDC one.
use samael::schema::{AuthnContextComparison, RequestedAuthnContext};
use serde::{Deserialize, Serialize};
use vigie_core::auth::{AssuranceLevel, Authentication, Mie};
use vigie_core::policy::{ALL_MIE, factors_of};

use super::response::class_ref;

/// What an SP asked for, kept with the started login and checked again at the callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requested {
    pub comparison: Comparison,
    pub classes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Exact,
    Minimum,
    Better,
    Maximum,
}

/// The level a login with this MIE reaches: the core's rule, asked through a hypothetical login.
fn level_of(mie: Mie) -> AssuranceLevel {
    Authentication::hypothetical(String::new(), mie, factors_of(mie), 0).level
}

/// The strength of a class: the level of the MIE Vigie names with it; `None` for a class Vigie
/// never answers (Kerberos, PasswordProtectedTransport…), which cannot be compared.
fn strength(class: &str) -> Option<AssuranceLevel> {
    ALL_MIE.into_iter().filter(|m| class_ref(*m) == class).map(level_of).min()
}

impl Requested {
    /// The request's `RequestedAuthnContext`, `None` when it has none or names no class
    /// (a `AuthnContextDeclRef` alone is not supported and read as no requirement).
    pub fn of(r: Option<&RequestedAuthnContext>) -> Option<Requested> {
        let r = r?;
        let classes: Vec<String> = r
            .authn_context_class_refs
            .iter()
            .flatten()
            .filter_map(|c| c.value.as_deref().map(|v| v.trim().to_owned()))
            .filter(|v| !v.is_empty())
            .collect();
        if classes.is_empty() {
            return None;
        }
        // §3.3.2.2.1: "If Comparison is not specified, the default is "exact"."
        let comparison = match r.comparison {
            None | Some(AuthnContextComparison::Exact) => Comparison::Exact,
            Some(AuthnContextComparison::Minimum) => Comparison::Minimum,
            Some(AuthnContextComparison::Better) => Comparison::Better,
            Some(AuthnContextComparison::Maximum) => Comparison::Maximum,
        };
        Some(Requested { comparison, classes })
    }

    /// Whether a login with this MIE answers the request (§3.3.2.2.1).
    pub fn satisfied_by(&self, mie: Mie) -> bool {
        let mine = class_ref(mie);
        let level = level_of(mie);
        let known: Vec<AssuranceLevel> = self.classes.iter().filter_map(|c| strength(c)).collect();
        match self.comparison {
            // "at least one of the specified authentication contexts"
            Comparison::Exact => self.classes.iter().any(|c| c == mine),
            // "at least as strong as one of the specified"
            Comparison::Minimum => self.classes.iter().any(|c| c == mine) || known.iter().any(|k| level >= *k),
            // "stronger than any one of the specified": every one, so a class Vigie cannot
            // compare (unknown) is never beaten.
            Comparison::Better => known.len() == self.classes.len() && known.iter().all(|k| level > *k),
            // "as strong as possible … MUST NOT exceed the strength of at least one"
            Comparison::Maximum => self.classes.iter().any(|c| c == mine) || known.iter().any(|k| level <= *k),
        }
    }

    /// The MIE whose login answers the request (those [`Requested::satisfied_by`] accepts): the
    /// only ones its login page offers, so that the class answered is one the SP accepts —
    /// for `exact`, one of the classes named. Empty when none does.
    pub fn mie(&self) -> Vec<Mie> {
        ALL_MIE.into_iter().filter(|m| self.satisfied_by(*m)).collect()
    }

    /// The weakest level a login must reach for some MIE to answer the request, passed to
    /// `/authorize` as the essential `acr`; `Err(())` when no MIE of Vigie can (the SP gets a
    /// `NoAuthnContext` status, §3.2.2.2). `Ok(None)`: any level may do (`maximum`).
    pub fn level(&self) -> Result<Option<AssuranceLevel>, ()> {
        let reaching: Vec<AssuranceLevel> = self.mie().into_iter().map(level_of).collect();
        match reaching.iter().min() {
            None => Err(()),
            Some(_) if self.comparison == Comparison::Maximum => Ok(None),
            Some(l) => Ok(Some(*l)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI";
    const TOTP: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken";
    const KERBEROS: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos";

    fn ask(comparison: Comparison, classes: &[&str]) -> Requested {
        Requested { comparison, classes: classes.iter().map(|c| (*c).to_owned()).collect() }
    }

    #[test]
    fn the_card_class_asks_for_the_phishing_resistant_level_and_only_a_card_answers_exactly() {
        let card = ask(Comparison::Exact, &[CARD]);
        assert_eq!(card.level(), Ok(Some(AssuranceLevel::TwoFactorPhishingResistant)));
        assert!(card.satisfied_by(Mie::Cps) && card.satisfied_by(Mie::Cpe));
        assert!(!card.satisfied_by(Mie::Fido2) && !card.satisfied_by(Mie::PasswordTotp));
    }

    #[test]
    fn comparisons_follow_saml_core_3_3_2_2_1() {
        let minimum = ask(Comparison::Minimum, &[TOTP]);
        assert_eq!(minimum.level(), Ok(Some(AssuranceLevel::TwoFactor)));
        assert!(minimum.satisfied_by(Mie::Fido2) && minimum.satisfied_by(Mie::PasswordTotp));
        let better = ask(Comparison::Better, &[TOTP]);
        assert_eq!(better.level(), Ok(Some(AssuranceLevel::TwoFactorPhishingResistant)));
        assert!(!better.satisfied_by(Mie::PasswordTotp) && better.satisfied_by(Mie::Cps));
        let maximum = ask(Comparison::Maximum, &[TOTP]);
        assert_eq!(maximum.level(), Ok(None));
        assert!(maximum.satisfied_by(Mie::PasswordTotp) && !maximum.satisfied_by(Mie::Cps));
    }

    #[test]
    fn the_mie_offered_are_those_each_comparison_accepts() {
        use Mie::*;
        // exact: the MIE answered with a class named, and only those.
        assert_eq!(ask(Comparison::Exact, &[CARD]).mie(), vec![Cps, Cpe, CpsViaPsc]);
        assert_eq!(ask(Comparison::Exact, &[TOTP]).mie(), vec![PasswordTotp]);
        assert_eq!(ask(Comparison::Exact, &[KERBEROS, TOTP]).mie(), vec![PasswordTotp]);
        assert_eq!(ask(Comparison::Exact, &[CARD, TOTP]).mie(), vec![Cps, Cpe, CpsViaPsc, PasswordTotp]);
        // minimum: at least the level of the class named.
        assert_eq!(ask(Comparison::Minimum, &[CARD]).mie(), vec![Cps, Cpe, Fido2, CpsViaPsc]);
        let minimum = ask(Comparison::Minimum, &[TOTP]).mie();
        assert!(minimum.contains(&PasswordTotp) && minimum.contains(&Fido2) && minimum.contains(&Cps));
        // better: stronger than every class named.
        let better = ask(Comparison::Better, &[TOTP]).mie();
        assert!(better.contains(&Cps) && better.contains(&Fido2) && !better.contains(&PasswordTotp));
        // maximum: no stronger than the class named.
        let maximum = ask(Comparison::Maximum, &[TOTP]).mie();
        assert!(maximum.contains(&PasswordTotp) && !maximum.iter().any(|m| [Cps, Cpe, Fido2].contains(m)));
        // Every MIE listed answers the request, and nothing is offered for a class nothing reaches.
        for r in [ask(Comparison::Exact, &[CARD]), ask(Comparison::Minimum, &[TOTP]), ask(Comparison::Maximum, &[TOTP])]
        {
            assert!(r.mie().iter().all(|m| r.satisfied_by(*m)));
        }
        assert!(ask(Comparison::Exact, &[KERBEROS]).mie().is_empty());
        assert!(ask(Comparison::Better, &[CARD]).mie().is_empty());
    }

    #[test]
    fn a_class_nothing_reaches_is_an_error() {
        assert_eq!(ask(Comparison::Exact, &[KERBEROS]).level(), Err(()));
        assert_eq!(ask(Comparison::Better, &[CARD]).level(), Err(()));
        assert_eq!(ask(Comparison::Minimum, &[KERBEROS]).level(), Err(()));
        // One class Vigie knows among unknown ones is enough for exact.
        assert_eq!(ask(Comparison::Exact, &[KERBEROS, TOTP]).level(), Ok(Some(AssuranceLevel::TwoFactor)));
    }
}
