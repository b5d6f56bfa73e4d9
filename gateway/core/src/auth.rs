//! What a login proves: the means of identification (MIE) used, the factors verified, when,
//! and the assurance level they reach. `acr`, `amr` and `auth_time` are read from here.
use serde::{Deserialize, Serialize};

/// A means of electronic identification (MIE) of the référentiel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mie {
    /// CPS smart card with its PIN (TLS client certificate).
    Cps,
    /// CPE (Carte de Personnel d'Établissement) with its PIN (TLS client certificate).
    Cpe,
    /// FIDO2 security key with user verification.
    Fido2,
    /// e-CPS through Pro Santé Connect.
    Ecps,
    /// A CPS card used at Pro Santé Connect (PSC said so in its `amr`, mapped by config).
    CpsViaPsc,
    /// Password and a TOTP code: for staff without a card yet.
    PasswordTotp,
    /// Time-bounded access granted by a colleague of the same unit.
    Sponsorship,
}

impl Mie {
    /// Stable label for logs, metrics and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Mie::Cps => "cps",
            Mie::Cpe => "cpe",
            Mie::Fido2 => "fido2",
            Mie::Ecps => "ecps",
            Mie::CpsViaPsc => "cps_via_psc",
            Mie::PasswordTotp => "password_totp",
            Mie::Sponsorship => "sponsorship",
        }
    }
}

/// A verified authentication factor, named by its RFC 8176 `amr` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    /// RFC 8176 §2 `pwd`: password.
    Pwd,
    /// RFC 8176 §2 `otp`: one-time password.
    Otp,
    /// RFC 8176 §2 `sc`: smart card.
    Sc,
    /// RFC 8176 §2 `pin`: PIN.
    Pin,
    /// RFC 8176 §2 `hwk`: proof of possession of a hardware-secured key.
    Hwk,
    /// RFC 8176 §2 `swk`: proof of possession of a software-secured key — or of a key whose
    /// hardware was never proven (a FIDO2 key registered without verified attestation).
    Swk,
    /// RFC 8176 §2 `user`: user presence / verification test.
    User,
}

impl Factor {
    /// The RFC 8176 `amr` value.
    pub fn amr(self) -> &'static str {
        match self {
            Factor::Pwd => "pwd",
            Factor::Otp => "otp",
            Factor::Sc => "sc",
            Factor::Pin => "pin",
            Factor::Hwk => "hwk",
            Factor::Swk => "swk",
            Factor::User => "user",
        }
    }
}

/// Assurance levels, ordered: a higher level satisfies a request for a lower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceLevel {
    /// Two factors of different kinds, not phishing-resistant (password + TOTP).
    TwoFactor,
    /// Two factors, phishing-resistant (CPS + PIN, FIDO2 with user verification).
    TwoFactorPhishingResistant,
}

impl AssuranceLevel {
    /// Every level, weakest first.
    pub const ALL: [AssuranceLevel; 2] = [AssuranceLevel::TwoFactor, AssuranceLevel::TwoFactorPhishingResistant];

    /// The `acr` value Vigie publishes for this level (OIDC Core §2).
    pub fn acr(self) -> &'static str {
        match self {
            AssuranceLevel::TwoFactor => "urn:vigie:loa:2fa",
            AssuranceLevel::TwoFactorPhishingResistant => "urn:vigie:loa:2fa-phr",
        }
    }

    /// The level named by an `acr` value, if Vigie knows it.
    pub fn from_acr(acr: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.acr() == acr)
    }
}

/// A completed authentication. Only login verifiers build one ([`Authentication::new`], feature
/// `verifiers`); sessions are made from it. `#[non_exhaustive]`: no other crate can write one
/// field by field, so holding one proves a verifier checked its factors — except one made by
/// [`Authentication::hypothetical`], which policy code uses to ask "what if".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Authentication {
    /// The directory id of the authenticated identity.
    pub identity_id: String,
    /// The MIE used.
    pub mie: Mie,
    /// The factors verified, sorted, without duplicates.
    pub factors: Vec<Factor>,
    /// When the authentication happened (Unix seconds): the `auth_time` claim.
    pub at: i64,
    /// The assurance level reached.
    pub level: AssuranceLevel,
    /// Which instance of the MIE was used, when the MIE has instances that can be withdrawn: a
    /// card's fingerprint, a FIDO2 credential id. Sessions are indexed by it, so that declaring a
    /// card lost or revoking a key ends the sessions it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// What a national identity provider (Pro Santé Connect) said of the professional at this
    /// login: profession, role, structure. Kept with the authentication for the policy engine
    /// and the VIHF; `None` for local MIE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub professional: Option<ProfessionalClaims>,
}

/// A professional's attributes as a national identity provider asserted them (PSC userinfo,
/// reference/psc.md §2). Codes are the ANS nomenclatures' (TRE_G15 professions, TRE_R01
/// specialties, TRE_R02 sectors); values are kept as received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfessionalClaims {
    /// Who asserted them (the issuer).
    pub source: String,
    /// `SubjectNameID`: the idNat_PS.
    pub idnat: String,
    /// `codeProfession` of the first `exercices[]` entry (TRE_G15, e.g. `10` médecin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    /// `codeSavoirFaire` (specialty, e.g. `SM26`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    /// `SubjectRole` values as received (`10^1.2.250.1.213.1.1.5.5`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// `SubjectOrganizationID` (structure id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure_id: Option<String>,
    /// `SubjectOrganization` (structure name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure_name: Option<String>,
    /// `Secteur_Activite` (`SA07^1.2.250.1.71.4.2.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
}

impl Authentication {
    /// The authentication a login verifier has just checked; the level follows from the MIE.
    ///
    /// Behind the `verifiers` feature, which only the gateway (whose `login` module holds the
    /// verifiers) and test code enable; within the gateway, the test
    /// `authentication_is_built_only_by_the_login_verifiers` fails on a call outside `login/`.
    #[cfg(feature = "verifiers")]
    pub fn new(identity_id: String, mie: Mie, factors: Vec<Factor>, at: i64) -> Self {
        Self::built(identity_id, mie, factors, at)
    }

    /// An authentication nobody performed, to ask the policy engine what it would decide for
    /// one (a probe before offering a MIE, the `policy eval` command, rule tests). Never a proof
    /// of login: nothing that opens a session or issues a token may take one built so.
    pub fn hypothetical(identity_id: String, mie: Mie, factors: Vec<Factor>, at: i64) -> Self {
        Self::built(identity_id, mie, factors, at)
    }

    fn built(identity_id: String, mie: Mie, mut factors: Vec<Factor>, at: i64) -> Self {
        factors.sort();
        factors.dedup();
        let level = match mie {
            // A card at PSC: the TLS client authentication binds the card to PSC's origin.
            Mie::Cps | Mie::Cpe | Mie::Fido2 | Mie::CpsViaPsc => AssuranceLevel::TwoFactorPhishingResistant,
            Mie::Ecps | Mie::PasswordTotp | Mie::Sponsorship => AssuranceLevel::TwoFactor,
        };
        Self { identity_id, mie, factors, at, level, credential: None, professional: None }
    }

    /// The same authentication, naming the MIE instance used (see [`Authentication::credential`]).
    pub fn with_credential(mut self, credential: impl Into<String>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// The same authentication, with what a national identity provider said of the professional.
    pub fn with_professional(mut self, professional: ProfessionalClaims) -> Self {
        self.professional = Some(professional);
        self
    }

    /// The `amr` claim (RFC 8176): the factors, plus `mfa` when there are several.
    pub fn amr(&self) -> Vec<&'static str> {
        let mut amr: Vec<&'static str> = self.factors.iter().map(|f| f.amr()).collect();
        if self.factors.len() > 1 {
            amr.push("mfa");
        }
        amr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_and_totp_is_two_factors_not_phishing_resistant() {
        let a = Authentication::hypothetical(
            "1".into(),
            Mie::PasswordTotp,
            vec![Factor::Otp, Factor::Pwd, Factor::Pwd],
            10,
        );
        assert_eq!(a.level, AssuranceLevel::TwoFactor);
        assert_eq!(a.amr(), vec!["pwd", "otp", "mfa"]);
        assert!(AssuranceLevel::TwoFactorPhishingResistant > a.level);
    }

    /// The rule of [`Authentication::new`], checked over the workspace's sources: only the
    /// gateway's login verifiers (`gateway/server/src/login/`) call it; tests and benches may.
    #[test]
    fn authentication_is_built_only_by_the_login_verifiers() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut offenders = Vec::new();
        let mut dirs = vec![root.join("gateway"), root.join("adapters"), root.join("policies")];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if path.is_dir() {
                    if !matches!(name, "tests" | "benches" | "target" | "node_modules") {
                        dirs.push(path);
                    }
                    continue;
                }
                let rel = path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                if !name.ends_with(".rs") || rel.starts_with("gateway/server/src/login/") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains(concat!("Authentication::", "new(")) {
                    offenders.push(rel);
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "Authentication::new outside the login verifiers (use Authentication::hypothetical for policy \
             questions, or go through `login`): {offenders:?}"
        );
    }

    #[test]
    fn acr_values_round_trip() {
        for l in AssuranceLevel::ALL {
            assert_eq!(AssuranceLevel::from_acr(l.acr()), Some(l));
        }
        assert_eq!(AssuranceLevel::from_acr("eidas1"), None);
    }
}
