//! The embedded demo: a test PKI, signing keys, demo identities and clients in a data
//! directory, SQLite + in-process store, and `demo.json` telling a person or a script how to
//! try it. Running it again reuses what the data directory holds.
use std::path::Path;

use crate::config::Config;

pub mod app;
pub mod config;
mod pki;
mod prepare;
mod secrets;
mod seed;
mod users;

pub use config::DemoConfig;
pub use prepare::prepare;
pub(crate) use secrets::write_secret;
pub use seed::{Description, bind_demo_cpe, describe, grant_roles, seed};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_DATA_DIR: &str = "vigie-demo";

/// What the demo prints at start.
pub fn banner(config: &Config, demo_json: &Path) -> String {
    let text = std::fs::read_to_string(demo_json).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut out = String::new();
    out.push_str("\nVigie — embedded demo (SQLite + in-process store, generated test PKI; not for production)\n\n");
    out.push_str(&format!("  Demo app:   {}/demo-app/   (open it in a browser)\n", config.issuer));
    out.push_str(&format!("  Discovery:  {}/.well-known/openid-configuration\n", config.issuer));
    out.push_str(&format!(
        "  Demo CA:    {}   (trust it, or accept the browser warning)\n",
        doc["data_dir"].as_str().map(|d| format!("{d}/ca.pem")).unwrap_or_default()
    ));
    out.push_str(&format!(
        "  Everything: {}\n\n  Users (password + TOTP; current code: `vigie totp <secret>`):\n",
        demo_json.display()
    ));
    for u in doc["users"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    {:<16} password {:<18} totp secret {}\n",
            u["username"].as_str().unwrap_or_default(),
            u["password"].as_str().unwrap_or_default(),
            u["totp_secret"].as_str().unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "\n  Cards (HR): {}   (sign in as demo.rh)\n  Admin API token (vigie cards --token): {}\n",
        doc["admin_page_url"].as_str().unwrap_or_default(),
        doc["admin_api"]["token"].as_str().unwrap_or_default()
    ));
    out.push_str("\n  Clients:\n");
    for c in doc["clients"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    {:<9} {:<20} {}\n",
            c["client_id"].as_str().unwrap_or_default(),
            c["auth_method"].as_str().unwrap_or_default(),
            c["redirect_uris"][0].as_str().unwrap_or_default()
        ));
    }
    out
}
