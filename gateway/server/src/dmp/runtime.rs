//! The DMP side at run time ([`Dmp`]: the VIHF settings, the seal, the relay client), built from
//! a valid `[dmp]`; what the token exchange and the relay share without the gateway's state.
use std::sync::Arc;

use vigie_core::dmp::{SoapRelay, VihfSealer};
use vigie_dmp::VihfSettings;

/// The DMP side of the gateway, built from a valid `[dmp]`.
pub struct Dmp {
    /// `[dmp.vihf]`: the purposes of use a call may name.
    pub settings: VihfSettings,
    pub sealer: Arc<dyn VihfSealer>,
    pub relay: Option<Arc<dyn SoapRelay>>,
    pub services: Vec<String>,
    pub max_body_bytes: usize,
    pub max_answer_bytes: usize,
    /// The assigning authorities under which a relayed call names its patient: the INS ones and
    /// `dmp.vihf.ins_oid`.
    pub patient_oids: Vec<String>,
}

/// The DMP side of a validated configuration (`None` when `dmp.enabled` is false).
pub fn build(config: &crate::config::Config) -> anyhow::Result<Option<std::sync::Arc<Dmp>>> {
    match config.dmp.load() {
        Ok(d) => Ok(d.map(std::sync::Arc::new)),
        Err(errors) => {
            let lines: Vec<String> = errors.into_iter().map(|(k, m)| format!("`{k}`: {m}")).collect();
            anyhow::bail!("the DMP configuration: {}", lines.join("; "))
        }
    }
}

/// A purpose of use: a key of `dmp.vihf.purposes`, `normal` when not given.
pub fn parse_purpose<'a>(settings: &VihfSettings, p: Option<&'a str>) -> Result<&'a str, String> {
    let p = p.unwrap_or("normal");
    if settings.purposes.contains_key(p) {
        Ok(p)
    } else {
        let known: Vec<&str> = settings.purposes.keys().map(String::as_str).collect();
        Err(format!("purpose_of_use {p:?} is not one of {} (`dmp.vihf.purposes`)", known.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_default_to_normal_and_refuse_others() {
        let settings = VihfSettings::default();
        assert_eq!(parse_purpose(&settings, None), Ok("normal"));
        assert_eq!(parse_purpose(&settings, Some("bris_de_glace")), Ok("bris_de_glace"));
        assert!(parse_purpose(&settings, Some("curiosity")).unwrap_err().contains("dmp.vihf.purposes"));
    }
}
