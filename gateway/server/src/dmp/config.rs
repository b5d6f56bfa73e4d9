//! `[dmp]`: the section as written (serde shape of the configuration file) and its validation,
//! which builds the DMP side ([`Dmp`]) or names each bad key.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigie_dmp::{Sealer, VihfSettings};

use super::runtime::Dmp;
use crate::secrets::Secret;

/// `[dmp]`: VIHF issuance and the relay. Off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmpConfig {
    /// Issue VIHFs (token exchange) and relay DMP calls.
    pub enabled: bool,
    /// The establishment's seal (ORG_SIGN certificate and key) that signs VIHFs.
    pub seal: SealConfig,
    /// What the VIHF says and how it is signed (`vigie_dmp::VihfSettings`: defaults from the
    /// reference; configurable because the public sources disagree).
    pub vihf: VihfSection,
    /// The DMP web services and the establishment's TLS client certificate (ORG_AUTH_CLI).
    pub relay: RelayConfig,
}

/// `[dmp.vihf]` as written, read into [`VihfSettings`] (unknown keys refused) when the DMP side
/// is built: kept as a configuration value so that the demo's base configuration goes through
/// the same environment overrides as the rest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VihfSection(pub figment::value::Value);

impl Default for VihfSection {
    fn default() -> Self {
        Self(figment::value::Value::from(figment::value::Dict::new()))
    }
}

impl VihfSection {
    /// A section setting these keys.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        let dict: figment::value::Dict =
            pairs.iter().map(|(k, v)| (k.to_string(), figment::value::Value::from(v.to_string()))).collect();
        Self(figment::value::Value::from(dict))
    }

    /// The settings, or what is wrong with them (named by key).
    pub fn settings(&self) -> Result<VihfSettings, (String, String)> {
        let mut value = self.0.clone();
        // An environment override reads `1760000018` as a number: where a string is expected, a
        // number is taken as written (a structure id, an LPS id).
        let settings: VihfSettings = loop {
            match value.deserialize::<VihfSettings>() {
                Ok(s) => break s,
                Err(e) => {
                    if let figment::error::Kind::InvalidType(actual, expected) = &e.kind
                        && expected.contains("string")
                        && let Some(text) = match actual {
                            figment::error::Actual::Unsigned(n) => Some(n.to_string()),
                            figment::error::Actual::Signed(n) => Some(n.to_string()),
                            _ => None,
                        }
                        && let Some(slot) = value_at(&mut value, &e.path)
                    {
                        *slot = figment::value::Value::from(text);
                        continue;
                    }
                    let key = if e.path.is_empty() {
                        "dmp.vihf".to_owned()
                    } else {
                        format!("dmp.vihf.{}", e.path.join("."))
                    };
                    return Err((key, e.kind.to_string()));
                }
            }
        };
        settings.validate().map_err(|e| (format!("dmp.vihf.{}", e.key), e.problem))?;
        Ok(settings)
    }
}

/// The value at `path` (dictionary keys) in a configuration value.
fn value_at<'v>(value: &'v mut figment::value::Value, path: &[String]) -> Option<&'v mut figment::value::Value> {
    match path.split_first() {
        None => Some(value),
        Some((first, rest)) => match value {
            figment::value::Value::Dict(_, d) => value_at(d.get_mut(first)?, rest),
            _ => None,
        },
    }
}

/// The seal: a PEM certificate and key, or a PKCS#12 file and its password.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealConfig {
    /// PEM certificate (the ORG_SIGN "cachet" of the establishment), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8 or PKCS#1, RSA).
    pub key_file: Option<PathBuf>,
    /// PKCS#12 file holding both, instead of `cert_file` and `key_file`.
    pub pkcs12_file: Option<PathBuf>,
    /// Its password, best from the environment (`VIGIE_DMP__SEAL__PKCS12_PASSWORD`).
    pub pkcs12_password: Option<Secret>,
    /// A file holding the password (a mounted secret); one trailing newline is ignored.
    pub pkcs12_password_file: Option<PathBuf>,
}

/// Where the DMP is and how Vigie reaches it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Base URL of the DMP services, e.g. `https://lps.dev1.dmp.gouv.fr/si-dmp-server/v2/services/`.
    /// Unset: the relay answers 503 (token exchange still works).
    pub base_url: Option<String>,
    /// PEM certificate chain of the ORG_AUTH_CLI certificate presented to the DMP.
    pub client_cert_file: Option<PathBuf>,
    /// Its PEM private key.
    pub client_key_file: Option<PathBuf>,
    /// PEM CA certificates to trust for the DMP's server certificate, besides the system ones.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect to the DMP, TCP and TLS (milliseconds).
    pub timeout_ms: u64,
    /// Time allowed for one relayed call, from connecting to the answer's last byte
    /// (milliseconds): a DMP that stops answering gets 504, not a held connection.
    pub deadline_ms: u64,
    /// Largest SOAP request relayed (bytes; document submissions are MTOM and large).
    pub max_body_bytes: usize,
    /// Largest answer taken from the DMP (bytes): a fault over it is a 502, a streamed answer
    /// is cut there.
    pub max_answer_bytes: usize,
    /// The service paths under `base_url` the relay may reach.
    pub services: Vec<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            client_cert_file: None,
            client_key_file: None,
            ca_file: None,
            timeout_ms: 15_000,
            deadline_ms: 120_000,
            max_body_bytes: 32 * 1024 * 1024,
            max_answer_bytes: 64 * 1024 * 1024,
            // Reference §2: the kit's paths and DRIMbox's.
            services: [
                "patients",
                "PatientSpecific",
                "patient",
                "registry",
                "DocumentRegistry_Service",
                "repository",
                "DocumentRepository_Service",
                "habilitations",
                "Habilitation",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

fn read(key: &str, path: &Path, errors: &mut Vec<(String, String)>) -> Option<Vec<u8>> {
    std::fs::read(path).map_err(|e| errors.push((key.into(), format!("cannot read {}: {e}", path.display())))).ok()
}

fn read_text(key: &str, path: &Path, errors: &mut Vec<(String, String)>) -> Option<String> {
    let bytes = read(key, path, errors)?;
    String::from_utf8(bytes).map_err(|_| errors.push((key.into(), format!("{} is not PEM text", path.display())))).ok()
}

impl SealConfig {
    fn load(&self, errors: &mut Vec<(String, String)>) -> Option<Sealer> {
        match (&self.cert_file, &self.key_file, &self.pkcs12_file) {
            (None, None, None) => {
                errors.push((
                    "dmp.seal".into(),
                    "the seal is required: `cert_file` and `key_file` (PEM), or `pkcs12_file`".into(),
                ));
                None
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                errors.push(("dmp.seal".into(), "give `cert_file` and `key_file`, or `pkcs12_file`, not both".into()));
                None
            }
            (None, None, Some(p12)) => {
                let der = read("dmp.seal.pkcs12_file", p12, errors)?;
                let password = match (&self.pkcs12_password, &self.pkcs12_password_file) {
                    (Some(_), Some(_)) => {
                        errors.push((
                            "dmp.seal.pkcs12_password".into(),
                            "give the password or `pkcs12_password_file`, not both".into(),
                        ));
                        return None;
                    }
                    (Some(p), None) => p.0.clone(),
                    (None, Some(f)) => {
                        let text = read_text("dmp.seal.pkcs12_password_file", f, errors)?;
                        text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned()
                    }
                    (None, None) => String::new(),
                };
                Sealer::from_pkcs12(&der, &password)
                    .map_err(|e| {
                        errors.push((
                            "dmp.seal.pkcs12_file".into(),
                            format!("{}: {e} (check the file and its password)", p12.display()),
                        ))
                    })
                    .ok()
            }
            (cert, key, None) => {
                let (Some(cert), Some(key)) = (cert, key) else {
                    let missing = if cert.is_none() { "dmp.seal.cert_file" } else { "dmp.seal.key_file" };
                    errors.push((missing.into(), "required with the other PEM file of the seal".into()));
                    return None;
                };
                let cert_pem = read_text("dmp.seal.cert_file", cert, errors);
                let key_pem = read_text("dmp.seal.key_file", key, errors);
                Sealer::from_pem(&cert_pem?, &key_pem?)
                    .map_err(|e| errors.push(("dmp.seal.cert_file".into(), format!("{}: {e}", cert.display()))))
                    .ok()
            }
        }
    }
}

impl RelayConfig {
    fn load(&self, errors: &mut Vec<(String, String)>) -> Option<vigie_dmp::DmpRelay> {
        for (i, s) in self.services.iter().enumerate() {
            if !vigie_dmp::is_service_name(s) {
                errors.push((format!("dmp.relay.services[{i}]"), format!("{s:?} is not a service path segment")));
            }
        }
        for (key, ms) in [("dmp.relay.timeout_ms", self.timeout_ms), ("dmp.relay.deadline_ms", self.deadline_ms)] {
            if ms == 0 {
                errors.push((key.into(), "expected a positive integer".into()));
            }
        }
        for (key, bytes) in
            [("dmp.relay.max_body_bytes", self.max_body_bytes), ("dmp.relay.max_answer_bytes", self.max_answer_bytes)]
        {
            if bytes < 1024 {
                errors.push((key.into(), "expected at least 1024".into()));
            }
        }
        let base = self.base_url.as_deref()?;
        match url::Url::parse(base) {
            Ok(u) if u.scheme() == "https" && u.query().is_none() && u.fragment().is_none() => {}
            _ => errors.push((
                "dmp.relay.base_url".into(),
                format!("expected an https URL (the DMP requires mutual TLS), found {base:?}"),
            )),
        }
        let cert = match &self.client_cert_file {
            Some(p) => read_text("dmp.relay.client_cert_file", p, errors),
            None => {
                errors.push(("dmp.relay.client_cert_file".into(), "required: the ORG_AUTH_CLI certificate".into()));
                None
            }
        };
        let key = match &self.client_key_file {
            Some(p) => read_text("dmp.relay.client_key_file", p, errors),
            None => {
                errors.push(("dmp.relay.client_key_file".into(), "required: the ORG_AUTH_CLI key".into()));
                None
            }
        };
        let ca = self.ca_file.as_ref().map(|p| read_text("dmp.relay.ca_file", p, errors));
        let (cert, key) = (cert?, key?);
        let ca = match ca {
            Some(None) => return None,
            Some(Some(ca)) => Some(ca),
            None => None,
        };
        vigie_dmp::DmpRelay::new(base, &cert, &key, ca.as_deref(), self.timeout_ms, self.deadline_ms)
            .map_err(|e| errors.push(("dmp.relay".into(), e.to_string())))
            .ok()
    }
}

impl DmpConfig {
    /// Builds the DMP side (`None` when disabled), or says what is wrong, one `(key, message)`
    /// per bad key.
    pub fn load(&self) -> Result<Option<Dmp>, Vec<(String, String)>> {
        if !self.enabled {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let sealer = self.seal.load(&mut errors);
        let settings = self.vihf.settings().map_err(|e| errors.push(e)).ok();
        let relay = self.relay.load(&mut errors);
        match (sealer, settings) {
            (Some(sealer), Some(settings)) if errors.is_empty() => {
                let mut patient_oids: Vec<String> = vigie_dmp::INS_OIDS.iter().map(|o| o.to_string()).collect();
                if !patient_oids.contains(&settings.ins_oid) {
                    patient_oids.push(settings.ins_oid.clone());
                }
                Ok(Some(Dmp {
                    sealer: std::sync::Arc::new(vigie_dmp::SealedVihfs::new(settings.clone(), sealer)),
                    settings,
                    relay: relay.map(|r| std::sync::Arc::new(r) as std::sync::Arc<dyn vigie_core::dmp::SoapRelay>),
                    services: self.relay.services.clone(),
                    max_body_bytes: self.relay.max_body_bytes,
                    max_answer_bytes: self.relay.max_answer_bytes,
                    patient_oids,
                }))
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vihf_settings_take_numbers_where_strings_are_expected_and_name_bad_keys() {
        let mut d = figment::value::Dict::new();
        d.insert("structure_id".into(), figment::value::Value::from(1_760_000_018u64));
        d.insert("lps_id".into(), figment::value::Value::from(42u64));
        d.insert("lps_homologation".into(), figment::value::Value::from("H".to_owned()));
        d.insert("validity_secs".into(), figment::value::Value::from(30u64));
        let s = VihfSection(figment::value::Value::from(d.clone())).settings().expect("settings");
        assert_eq!((s.structure_id.as_str(), s.lps_id.as_str(), s.validity_secs), ("1760000018", "42", 30));
        d.insert("validity_secs".into(), figment::value::Value::from("soon".to_owned()));
        let (key, _) = VihfSection(figment::value::Value::from(d.clone())).settings().unwrap_err();
        assert_eq!(key, "dmp.vihf.validity_secs");
        d.remove("validity_secs");
        d.insert("flavour".into(), figment::value::Value::from("x".to_owned()));
        assert_eq!(VihfSection(figment::value::Value::from(d)).settings().unwrap_err().0, "dmp.vihf.flavour");
        let (key, m) = VihfSection::of(&[("lps_id", "L"), ("lps_homologation", "H")]).settings().unwrap_err();
        assert_eq!(key, "dmp.vihf.structure_id", "{m}");
    }

    #[test]
    fn service_names_cannot_leave_the_base_url() {
        assert!(vigie_dmp::is_service_name("DocumentRegistry_Service"));
        for bad in ["", "..", "a/b", "a?b", "%2e%2e", "a b"] {
            assert!(!vigie_dmp::is_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_not_shown() {
        let s = SealConfig { pkcs12_password: Some(Secret("hunter2".into())), ..Default::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
