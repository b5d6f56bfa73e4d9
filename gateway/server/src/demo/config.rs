//! `[demo]`: the embedded demo application and the demo card CA's CRL.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Serve the embedded demo application at `/demo-app/`.
    pub app: bool,
    /// CA that signed the listener's certificate, trusted by the demo app's HTTP client.
    pub ca_file: Option<PathBuf>,
    /// CRL (DER) of the demo card CA, served at `/demo-pki/card-ca.crl` like IGC-Santé serves
    /// its CRLs over HTTP.
    pub card_crl: Option<PathBuf>,
}
