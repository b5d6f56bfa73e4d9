//! PSC ready to use (`PscRuntime`): the adapter built from `[psc]`, its health probe and what
//! `/readyz` says of it. Takes no gateway state, so the wiring and the health task can hold it.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use vigie_core::psc::ProSanteConnect;

use super::config::{PscClientAuth, PscConfig};

/// The last health probe of PSC.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Probe {
    /// `None` before the first probe.
    pub up: Option<bool>,
    /// When (Unix seconds).
    pub at: Option<i64>,
    /// How long it took, in milliseconds.
    pub millis: Option<u64>,
    /// The adapter's error code and message, when down.
    pub error: Option<String>,
}

/// PSC, ready to use: the adapter and what the gateway decides around it.
pub struct PscRuntime {
    pub client: Arc<dyn ProSanteConnect>,
    pub config: PscConfig,
    pub post_logout_redirect_uri: String,
    probe: Mutex<Probe>,
}

fn read(path: &std::path::Path, key: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}: check `psc.{key}`", path.display()))
}

/// The adapter's settings from the configuration (reads the key, certificate and secret files).
pub fn settings(config: &crate::config::Config) -> anyhow::Result<vigie_psc::PscSettings> {
    use vigie_psc::{ClientAuth, PscSettings, UserinfoFormat};
    let p = &config.psc;
    let secret = || -> anyhow::Result<String> {
        match (&p.client_secret, &p.client_secret_file) {
            (Some(s), _) => Ok(s.0.clone()),
            (None, Some(f)) => Ok(read(f, "client_secret_file")?.trim_end_matches(['\r', '\n']).to_owned()),
            (None, None) => anyhow::bail!("`psc.client_secret_file` (or `psc.client_secret`) is required"),
        }
    };
    let need = |p: &Option<PathBuf>, key: &str| -> anyhow::Result<String> {
        read(p.as_ref().with_context(|| format!("`psc.{key}` is required"))?, key)
    };
    let client_auth = match p.client_auth {
        PscClientAuth::ClientSecretBasic => ClientAuth::SecretBasic(secret()?),
        PscClientAuth::ClientSecretPost => ClientAuth::SecretPost(secret()?),
        PscClientAuth::PrivateKeyJwt => ClientAuth::PrivateKeyJwt {
            key_pem: need(&p.private_key_file, "private_key_file")?,
            kid: p.private_key_kid.clone(),
            alg: p.private_key_alg.clone(),
        },
        PscClientAuth::TlsClientAuth => ClientAuth::Tls {
            cert_pem: need(&p.tls_cert_file, "tls_cert_file")?,
            key_pem: need(&p.tls_key_file, "tls_key_file")?,
        },
    };
    let mut s = PscSettings::new(&p.issuer, &p.client_id, client_auth, &redirect_uri(config));
    s.discovery_url = p.discovery_url.clone();
    s.scopes = p.scopes.clone();
    s.acr_values = p.acr_values.clone().filter(|a| !a.is_empty());
    s.accepted_acr = p.accepted_acr.clone();
    s.id_token_algs = p.id_token_algs.clone();
    s.userinfo = match p.userinfo.as_str() {
        "json" => UserinfoFormat::Json,
        "jwt" => UserinfoFormat::Jwt,
        _ => UserinfoFormat::Any,
    };
    s.extra_ca_pem = p.ca_file.as_deref().map(|f| read(f, "ca_file")).transpose()?;
    s.timeout_ms = p.timeout_ms;
    s.clock_skew_secs = p.clock_skew_secs;
    s.allow_http = p.allow_http;
    Ok(s)
}

/// The redirect URI registered with ANS.
pub fn redirect_uri(config: &crate::config::Config) -> String {
    config.psc.redirect_uri.clone().unwrap_or_else(|| format!("{}/login/psc/callback", config.issuer))
}

/// PSC, when `psc.enabled`; no I/O (metadata is fetched by the first login or probe).
pub fn build(config: &crate::config::Config) -> anyhow::Result<Option<Arc<PscRuntime>>> {
    if !config.psc.enabled {
        return Ok(None);
    }
    let client =
        vigie_psc::Psc::new(settings(config)?).map_err(|e| anyhow::anyhow!("Pro Santé Connect: {e}: check `[psc]`"))?;
    Ok(Some(Arc::new(PscRuntime {
        client: Arc::new(client),
        post_logout_redirect_uri: config
            .psc
            .post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}/logout/psc", config.issuer)),
        config: config.psc.clone(),
        probe: Mutex::new(Probe::default()),
    })))
}

impl PscRuntime {
    /// The last probe.
    pub fn last_probe(&self) -> Probe {
        self.probe.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Probes PSC once (metadata and JWKS), records the result and the gauge
    /// `vigie_upstream_up{upstream="psc"}`.
    pub async fn probe(&self) -> Probe {
        let started = std::time::Instant::now();
        // The adapter's own timeouts bound each request; this bounds the whole probe.
        let limit = Duration::from_millis(self.config.timeout_ms.saturating_mul(3));
        let result = match tokio::time::timeout(limit, self.client.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{}: {e}", e.code())),
            Err(_) => Err(format!("unreachable: no answer within {} ms", limit.as_millis())),
        };
        let probe = Probe {
            up: Some(result.is_ok()),
            at: Some(crate::now()),
            millis: Some(started.elapsed().as_millis() as u64),
            error: result.err(),
        };
        metrics::gauge!("vigie_upstream_up", "upstream" => "psc").set(if probe.up == Some(true) { 1.0 } else { 0.0 });
        if let Ok(mut p) = self.probe.lock() {
            if p.up != probe.up {
                match &probe.error {
                    None => tracing::info!(issuer = %self.config.issuer, "Pro Santé Connect is reachable"),
                    Some(e) => {
                        tracing::warn!(issuer = %self.config.issuer, error = %e, "Pro Santé Connect is unreachable: e-CPS is not offered")
                    }
                }
            }
            *p = probe.clone();
        }
        probe
    }

    /// `/readyz` `checks.psc`: informational (local MIE work without PSC). With `detailed` (the
    /// ops listener), the issuer, the last probe and the adapter's record, whose errors name
    /// URLs; else the status and, when down, a generic reason (the error is logged when the
    /// probe's answer changes).
    pub fn readiness(&self, detailed: bool) -> serde_json::Value {
        let p = self.last_probe();
        let status = match p.up {
            Some(true) => "up",
            Some(false) => "down",
            None => "unknown",
        };
        if !detailed {
            let mut out = json!({ "status": status, "informational": true });
            if p.up == Some(false) {
                out["detail"] = json!("Pro Santé Connect did not answer the last probe: see the gateway's log");
            }
            return out;
        }
        json!({
            "status": status,
            "informational": true,
            "issuer": self.config.issuer,
            "last_probe": p,
            "adapter": serde_json::to_value(self.client.health()).unwrap_or_default(),
        })
    }
}
