//! The embedded demo's PSC: the `[psc]` section pointing at the local stand-in
//! (conformance/psc-sandbox) and the `psc` object of `demo.json`.
use serde_json::json;

use super::config::{PscClientAuth, PscConfig};
use super::runtime::redirect_uri;

/// The demo's `[psc]`: the stand-in started with `--demo` (conformance/psc-sandbox), plain HTTP
/// on loopback, its built-in client `vigie-demo`.
pub fn demo_config(listen_port: u16) -> PscConfig {
    PscConfig {
        enabled: true,
        issuer: DEMO_ISSUER.into(),
        client_id: "vigie-demo".into(),
        client_auth: PscClientAuth::ClientSecretBasic,
        // The stand-in's published demo secret: not a secret of anything real.
        client_secret: Some(crate::secrets::Secret("vigie-demo-psc-secret".into())),
        // What the stand-in's demo client registers (C1): the listener's address, by IP; the
        // callback then hops to the issuer's host, where the browser-binding cookie lives.
        redirect_uri: Some(format!("https://127.0.0.1:{listen_port}/login/psc/callback")),
        post_logout_redirect_uri: Some(format!("https://127.0.0.1:{listen_port}/logout/psc")),
        allow_http: true,
        ..Default::default()
    }
}

/// The issuer of the demo stand-in (`node conformance/psc-sandbox/server.mjs --demo`).
pub const DEMO_ISSUER: &str = "http://127.0.0.1:8900/auth/realms/esante-wallet";

/// `demo.json`'s `psc` object.
pub fn demo_json(config: &crate::config::Config) -> serde_json::Value {
    json!({
        "enabled": config.psc.enabled,
        "issuer": config.psc.issuer,
        "client_id": config.psc.client_id,
        "redirect_uri": redirect_uri(config),
        "start_stand_in": "cd conformance/psc-sandbox && npm ci && node server.mjs --demo",
        "professionals": [
            { "idnat": "810001234567", "name": "Dr Marie Durand", "username": "demo.durand" },
            { "idnat": "0751234567", "name": "Luc Petit", "username": "demo.petit" },
        ],
        "note": "without the stand-in running, the login page says e-CPS is unavailable",
    })
}
