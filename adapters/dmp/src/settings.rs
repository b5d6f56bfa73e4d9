//! What the VIHF says beyond the professional and the patient: the establishment, the software, and
//! the values public sources disagree on (reference §1), all configurable with documented defaults.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where the AIR-simplifié primary-authentication value (`CONF_EXI_PGSSIS`, EX_AIR-050) goes. The
/// public sources do not say which element carries it (reference §1, NOT FOUND); the official AIR
/// example carries a second value in `AuthnContextDecl`, hence the default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryAuthPlacement {
    /// `<saml2:AuthnContextDecl>CONF_EXI_PGSSIS</saml2:AuthnContextDecl>` after the ClassRef.
    AuthnContextDecl,
    /// A string attribute with this name in the AttributeStatement.
    Attribute(String),
    /// Not written.
    Omit,
}

/// Signature and digest algorithm of the VIHF. The DMP's published examples use RSA-SHA1; whether it
/// accepts RSA-SHA256 is not public (reference §1), so SHA-1 stays available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureAlg {
    /// `http://www.w3.org/2001/04/xmldsig-more#rsa-sha256` with a SHA-256 reference digest.
    RsaSha256,
    /// `http://www.w3.org/2000/09/xmldsig#rsa-sha1` with a SHA-1 reference digest.
    RsaSha1,
}

/// A purpose of use (`urn:oasis:names:tc:xspa:1.0:subject:purposeofuse`): its HL7 code and display.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    pub code: String,
    pub display_name: String,
}

/// The VIHF settings (config section `dmp.vihf`). Every field has a default; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VihfSettings {
    /// `VIHF_Version`: `3.0` in the kit, the DRIMbox and PSC's generator; 4.0 in one HL7v2 mapping.
    pub version: String,
    /// Name of the authentication-mode attribute: the kit's C# and the DRIMbox write
    /// `Authentification_Mode`; the example tokens `Authentification_mode`.
    pub auth_mode_attribute: String,
    /// `INDIRECTE_RENFORCEE`: the establishment asserts a two-factor authentication (AIR).
    pub auth_mode: String,
    /// `Identifiant_Structure` (FINESS or the structure id of the seal certificate's OU).
    pub structure_id: String,
    /// `Secteur_Activite` (`SA07^1.2.250.1.71.4.2.4` = établissement public de santé).
    pub secteur_activite: String,
    /// `LPS_ID`, `LPS_Nom`, `LPS_Version`, `LPS_ID_HOMOLOGATION_DMP` (the CNDA homologation number).
    pub lps_id: String,
    pub lps_nom: String,
    pub lps_version: String,
    pub lps_homologation: String,
    /// EX_AIR-050: "Pour AIR Simplifié, une seule valeur "CONF_EXI_PGSSIS" est permise."
    pub primary_auth: String,
    pub primary_auth_placement: PrimaryAuthPlacement,
    /// `AuthnContextClassRef` per MIE label (`vigie_core::Mie::as_str`). A MIE with no entry gets no
    /// VIHF. Defaults: see [`default_authn_context`].
    pub authn_context: BTreeMap<String, String>,
    /// Assigning authority of the INS in the resource-id: `1.2.250.1.213.1.4.8` (INS-NIR);
    /// `1.2.250.1.213.1.4.10` is the INS-NIR of the DMP test platforms.
    pub ins_oid: String,
    /// Purposes of use accepted in a request, by the name the caller gives.
    pub purposes: BTreeMap<String, Purpose>,
    /// `codeSystemName` of the purpose of use (code system `1.2.250.1.213.1.1.4.248`): `mode acces
    /// VIHF 2.0` (PSC's generator), `mode acces VIHF 1.0` in older examples.
    pub purpose_code_system_name: String,
    pub signature_alg: SignatureAlg,
    /// EX_AIR-040: "durée de vie de 30 secondes".
    pub validity_secs: i64,
}

pub const SMARTCARD_PKI: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI";
pub const MOBILE_TWO_FACTOR_UNREGISTERED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered";
pub const MOBILE_TWO_FACTOR_CONTRACT: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract";
pub const TIME_SYNC_TOKEN: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken";

/// Default `AuthnContextClassRef` per MIE, chosen among the SAML 2.0 authentication context classes
/// (saml-authn-context-2.0-os §3.4) for the one whose definition the MIE meets:
/// - `cps`, `cpe`, `cps_via_psc` → `SmartcardPKI` (two factors: a smartcard holding the private
///   key, and its PIN), the value of the official AIR example and of the kit for a CPS;
/// - `ecps` → `MobileTwoFactorUnregistered`, the value PSC's own VIHF generator writes for e-CPS
///   (an app on a phone, activated by a code or biometrics);
/// - `fido2` → `MobileTwoFactorContract`: a registered, tamper-resistant signing device used with a
///   second factor (PIN/biometrics), which a FIDO2 key with user verification is; claiming
///   `SmartcardPKI` would tell the DMP a CPS was used when it was not;
/// - `password_totp` → `TimeSyncToken` (a time-synchronised token and a password);
/// - `sponsorship`: none (not an authentication the DMP may rely on; the policy refuses it too).
///
/// The DMP only asks the class to be "cohérente avec le mode d'authentification locale"
/// (reference §1, S4): every entry can be replaced in config.
pub fn default_authn_context() -> BTreeMap<String, String> {
    [
        ("cps", SMARTCARD_PKI),
        ("cpe", SMARTCARD_PKI),
        ("cps_via_psc", SMARTCARD_PKI),
        ("ecps", MOBILE_TWO_FACTOR_UNREGISTERED),
        ("fido2", MOBILE_TWO_FACTOR_CONTRACT),
        ("password_totp", TIME_SYNC_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Purposes of use: `normal` is the value of every public example (`Accès normal`); `bris_de_glace`
/// (emergency access to a patient who cannot consent) and `centre15` (access by the SAMU regulation
/// centre) are the DMP's two other access modes. Their exact HL7 codes are not public: configurable.
pub fn default_purposes() -> BTreeMap<String, Purpose> {
    [
        ("normal", "normal", "Accès normal"),
        ("urgence", "bris_de_glace", "Accès en urgence (bris de glace)"),
        ("bris_de_glace", "bris_de_glace", "Accès en urgence (bris de glace)"),
        ("centre15", "centre15", "Accès par le centre de régulation (centre 15)"),
    ]
    .into_iter()
    .map(|(k, c, d)| (k.to_string(), Purpose { code: c.to_string(), display_name: d.to_string() }))
    .collect()
}

impl Default for VihfSettings {
    fn default() -> Self {
        VihfSettings {
            version: "3.0".into(),
            auth_mode_attribute: "Authentification_Mode".into(),
            auth_mode: "INDIRECTE_RENFORCEE".into(),
            structure_id: String::new(),
            secteur_activite: "SA07^1.2.250.1.71.4.2.4".into(),
            lps_id: String::new(),
            lps_nom: "Vigie".into(),
            lps_version: env!("CARGO_PKG_VERSION").into(),
            lps_homologation: String::new(),
            primary_auth: "CONF_EXI_PGSSIS".into(),
            primary_auth_placement: PrimaryAuthPlacement::AuthnContextDecl,
            authn_context: default_authn_context(),
            ins_oid: "1.2.250.1.213.1.4.8".into(),
            purposes: default_purposes(),
            purpose_code_system_name: "mode acces VIHF 2.0".into(),
            signature_alg: SignatureAlg::RsaSha256,
            validity_secs: 30,
        }
    }
}

/// A setting that cannot work, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dmp.vihf.{key}: {problem}")]
pub struct SettingsError {
    pub key: &'static str,
    pub problem: String,
}

impl VihfSettings {
    /// Checks what a VIHF cannot be issued without; call at start.
    pub fn validate(&self) -> Result<(), SettingsError> {
        // Every text setting goes into the VIHF; those marked are required.
        let texts: [(&'static str, &str, bool); 12] = [
            ("version", &self.version, true),
            ("auth_mode_attribute", &self.auth_mode_attribute, true),
            ("auth_mode", &self.auth_mode, true),
            ("structure_id", &self.structure_id, true),
            ("secteur_activite", &self.secteur_activite, true),
            ("lps_id", &self.lps_id, true),
            ("lps_nom", &self.lps_nom, false),
            ("lps_version", &self.lps_version, false),
            ("lps_homologation", &self.lps_homologation, true),
            ("primary_auth", &self.primary_auth, false),
            ("ins_oid", &self.ins_oid, true),
            ("purpose_code_system_name", &self.purpose_code_system_name, false),
        ];
        if let Some((key, ..)) = texts.iter().find(|(_, v, required)| *required && v.trim().is_empty()) {
            return Err(SettingsError { key, problem: "must be set".into() });
        }
        if !(1..=3600).contains(&self.validity_secs) {
            return Err(SettingsError {
                key: "validity_secs",
                problem: format!("{} is outside 1..=3600 (EX_AIR-040 says 30)", self.validity_secs),
            });
        }
        if let PrimaryAuthPlacement::Attribute(name) = &self.primary_auth_placement
            && name.trim().is_empty()
        {
            return Err(SettingsError { key: "primary_auth_placement", problem: "attribute name is empty".into() });
        }
        // Every value goes into the VIHF: refuse at start what XML 1.0 cannot carry, rather than
        // at the first VIHF.
        let mut values: Vec<(&'static str, &str)> = texts.iter().map(|(key, v, _)| (*key, *v)).collect();
        if let PrimaryAuthPlacement::Attribute(name) = &self.primary_auth_placement {
            values.push(("primary_auth_placement", name));
        }
        values.extend(self.authn_context.values().map(|v| ("authn_context", v.as_str())));
        for p in self.purposes.values() {
            values.push(("purposes", &p.code));
            values.push(("purposes", &p.display_name));
        }
        for (key, v) in values {
            crate::xml::check(key, v).map_err(|e| SettingsError { key, problem: e.to_string() })?;
        }
        Ok(())
    }
}
