//! Vigie as Pro Santé Connect's *FI tiers* (delegated identity provider, reference/psc.md §3;
//! docs/fi-tiers.md): the claims PSC expects of it, and what a request from PSC may not reuse.
use vigie_core::directory::Directory;
use vigie_core::{Authentication, Factor, IdNat, Mie};

use crate::config::{FiTiersConfig, LoginConfig};

/// The `amr` the published FI-tiers guides send to PSC for a CPx card and its PIN (level
/// "Élevé", reference/psc.md §3): RFC 8176 §2 `sc` (smart card), `pin`, `mfa`, and `hwk`
/// (proof of possession of a hardware-secured key: the card's private key never leaves it).
pub const CARD_AMR: [&str; 4] = ["sc", "pin", "mfa", "hwk"];

/// The `amr` claim of an authentication for a client. For a FI-tiers client, in order:
/// `fi_tiers.amr` for the MIE; else `login.amr` for the MIE (the establishment's own choice);
/// else [`CARD_AMR`] for a CPS or CPE; else the values derived from the verified factors
/// (FIDO2 key `hwk pin|user mfa`, password + TOTP `pwd otp mfa`). Other clients: `login.amr`,
/// else the derived values. Whatever the configuration says, a login that proved only a
/// software-secured key (`swk`: a FIDO2 key without verified attestation) never claims `hwk`.
pub fn amr(login: &LoginConfig, fi: Option<&FiTiersConfig>, auth: &Authentication) -> Vec<String> {
    let mut values = configured_amr(login, fi, auth);
    if auth.factors.contains(&Factor::Swk) {
        // RFC 8176 §2: `hwk` is proof of possession of a hardware-secured key; nothing proved it.
        values.retain(|v| v != "hwk");
    }
    values
}

fn configured_amr(login: &LoginConfig, fi: Option<&FiTiersConfig>, auth: &Authentication) -> Vec<String> {
    let Some(fi) = fi else { return login.amr_for(auth) };
    if let Some(values) = fi.amr.get(auth.mie.as_str()) {
        return values.clone();
    }
    if login.amr.contains_key(auth.mie.as_str()) {
        return login.amr_for(auth);
    }
    match auth.mie {
        Mie::Cps | Mie::Cpe => CARD_AMR.map(String::from).to_vec(),
        _ => login.amr_for(auth),
    }
}

/// MIE that go through PSC itself (e-CPS, a card used at PSC). PSC asking its FI tiers and
/// being answered with an authentication PSC made would vouch for itself, and a login page
/// offering "Pro Santé Connect" to PSC sends the user round in a loop: for a FI-tiers client
/// they are neither offered nor reused.
pub fn excluded(mie: Mie) -> bool {
    matches!(mie, Mie::Ecps | Mie::CpsViaPsc)
}

/// For a FI-tiers client, a `login_hint` that is an idNat (PSC knows professionals by it) names
/// the identity with that idNat: the login page pre-fills the login name of its account. `None`
/// when the hint is not an idNat or names no one with an account (the hint is then kept as it
/// came); a directory failure is logged and treated the same (a hint is only a hint).
pub async fn username_for_hint(directory: &dyn Directory, hint: &str) -> Option<String> {
    let idnat = IdNat::parse(hint).ok()?;
    let found = async {
        match directory.identity_by_idnat(&idnat).await? {
            Some(identity) => directory.username_of(&identity.id).await,
            None => Ok(None),
        }
    };
    match found.await {
        Ok(username) => username,
        Err(e) => {
            tracing::warn!(error = %e, "login_hint: the directory did not answer; the hint is left as it came");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAuthMethod, is_amr_token};
    use proptest::prelude::*;
    use vigie_core::Factor;

    fn fi(amr: &[(&str, &[&str])]) -> FiTiersConfig {
        FiTiersConfig {
            tid: "VIGIE_1760000018".into(),
            amr: amr.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect(),
            max_auth_age_secs: 14_400,
        }
    }

    fn card() -> Authentication {
        Authentication::hypothetical("id".into(), Mie::Cps, vec![Factor::Sc, Factor::Pin], 0)
    }

    fn key() -> Authentication {
        Authentication::hypothetical("id".into(), Mie::Fido2, vec![Factor::Hwk, Factor::Pin], 0)
    }

    #[test]
    fn a_card_tells_psc_sc_pin_mfa_hwk_and_other_clients_what_was_verified() {
        let login = LoginConfig::default();
        assert_eq!(amr(&login, Some(&fi(&[])), &card()), ["sc", "pin", "mfa", "hwk"]);
        assert_eq!(amr(&login, None, &card()), ["sc", "pin", "mfa"]);
        assert_eq!(amr(&login, Some(&fi(&[])), &key()), ["pin", "hwk", "mfa"]);
    }

    #[test]
    fn fi_tiers_amr_overrides_login_amr_which_overrides_the_card_default() {
        let mut login = LoginConfig::default();
        login.amr.insert("cps".into(), vec!["sc".into(), "pin".into()]);
        assert_eq!(amr(&login, Some(&fi(&[])), &card()), ["sc", "pin"]);
        let custom = fi(&[("cps", &["sc", "pin", "mfa", "hwk", "cps"]), ("fido2", &["hwk", "mfa"])]);
        assert_eq!(amr(&login, Some(&custom), &card()), ["sc", "pin", "mfa", "hwk", "cps"]);
        assert_eq!(amr(&login, Some(&custom), &key()), ["hwk", "mfa"]);
        // Other clients keep `login.amr`.
        assert_eq!(amr(&login, None, &card()), ["sc", "pin"]);
    }

    #[test]
    fn a_key_without_verified_attestation_never_claims_hwk_whatever_the_configuration() {
        let soft = Authentication::hypothetical("id".into(), Mie::Fido2, vec![Factor::Swk, Factor::Pin], 0);
        let mut login = LoginConfig::default();
        assert_eq!(amr(&login, None, &soft), ["pin", "swk", "mfa"]);
        assert_eq!(amr(&login, Some(&fi(&[])), &soft), ["pin", "swk", "mfa"]);
        login.amr.insert("fido2".into(), vec!["hwk".into(), "pin".into(), "mfa".into()]);
        assert_eq!(amr(&login, None, &soft), ["pin", "mfa"]);
        assert_eq!(amr(&login, Some(&fi(&[("fido2", &["hwk", "mfa"])])), &soft), ["mfa"]);
        assert_eq!(amr(&login, None, &key()), ["hwk", "pin", "mfa"], "an attested key keeps the configured values");
    }

    #[test]
    fn only_mie_that_go_through_psc_are_excluded() {
        assert!(excluded(Mie::Ecps) && excluded(Mie::CpsViaPsc));
        for m in [Mie::Cps, Mie::Cpe, Mie::Fido2, Mie::PasswordTotp, Mie::Sponsorship] {
            assert!(!excluded(m), "{m:?}");
        }
    }

    #[test]
    fn configuration_problems_name_their_key() {
        let keys = |c: &FiTiersConfig, m| c.problems(m).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert!(keys(&fi(&[("cps", &["sc", "hwk"])]), ClientAuthMethod::PrivateKeyJwt).is_empty());
        let bad =
            FiTiersConfig { tid: String::new(), max_auth_age_secs: 0, ..fi(&[("card", &["s c"]), ("fido2", &[])]) };
        assert_eq!(
            keys(&bad, ClientAuthMethod::None),
            [
                "fi_tiers.tid",
                "fi_tiers.amr.card",
                "fi_tiers.amr.card",
                "fi_tiers.amr.fido2",
                "fi_tiers.max_auth_age_secs",
                "fi_tiers"
            ]
        );
    }

    /// RFC 8176 §2's registered values, a custom one of PSC's FI-tiers guides (reference/psc.md
    /// §3) and one of the shape an establishment may configure.
    const KNOWN_AMR: [&str; 23] = [
        "face",
        "fpt",
        "geo",
        "hwk",
        "iris",
        "kba",
        "mca",
        "mfa",
        "otp",
        "pin",
        "pop",
        "pwd",
        "rba",
        "retina",
        "sc",
        "sms",
        "swk",
        "tel",
        "user",
        "vbm",
        "wia",
        "okta_verify",
        "x-vigie.cps",
    ];

    #[test]
    fn amr_tokens_follow_rfc_8176_names() {
        for ok in KNOWN_AMR {
            assert!(is_amr_token(ok), "{ok}");
        }
        assert!(is_amr_token(&"a".repeat(64)));
        for bad in ["", "s c", "é", "a\"b", "sc,pin", "sc pin", "urn:x", "a/b", "\u{0}", &"a".repeat(65)] {
            assert!(!is_amr_token(bad), "{bad:?}");
        }
    }

    proptest! {
        /// A known value with one character that is not a letter, digit, `_`, `-` or `.` put in
        /// or in place of one, anywhere: refused. Lengthened to 64 characters it is still one.
        #[test]
        fn a_known_amr_value_one_character_off_is_refused(
            known in prop::sample::select(&KNOWN_AMR[..]),
            at in any::<prop::sample::Index>(),
            replace in any::<bool>(),
            c in prop_oneof!["[ \t\"',;:/\\\\=+*@#()<>\\[\\]{}]", "[éß€\u{a0}\u{0}\u{7f}]"],
        ) {
            let mut off = known.to_owned();
            let at = at.index(off.len());
            if replace {
                off.replace_range(at..at + 1, &c);
            } else {
                off.insert_str(at, &c);
            }
            prop_assert!(!is_amr_token(&off), "{:?}", off);
            let longest = format!("{known}{}", "x".repeat(64 - known.len()));
            prop_assert!(is_amr_token(&longest));
            prop_assert!(!is_amr_token(&format!("{longest}x")), "65 characters");
        }
    }
}
