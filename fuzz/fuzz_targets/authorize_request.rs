//! Authorization requests (`vigie_gateway::oidc::authorize::validate`) as query string or
//! form body: errors go back only to a redirect URI registered for the client
//! (RFC 6749 §4.1.2.1), and what is accepted meets every rule of the endpoint.
#![no_main]

use std::sync::LazyLock;

use figment::Figment;
use figment::providers::{Format, Toml};
use libfuzzer_sys::fuzz_target;
use vigie_gateway::app::{AppState, build_state};
use vigie_gateway::config::Config;
use vigie_gateway::web::http::parse_params;
use vigie_gateway::keys::KeyFile;
use vigie_gateway::oidc::Prompt;
use vigie_gateway::oidc::authorize::{Invalid, is_pkce_value, validate};

const CONFIG: &str = r#"
issuer = "https://vigie.test"
directory = { url = "sqlite::memory:" }
audit = { file = "-" }

[[clients]]
client_id = "dpi"
auth_method = "client_secret_basic"
redirect_uris = ["https://dpi.chu.example/cb", "http://127.0.0.1:8765/cb"]
scopes = ["openid", "profile"]
require_pkce = false

[[clients]]
client_id = "mobile"
auth_method = "none"
redirect_uris = ["fr.chu.mobile:/cb"]
"#;

/// The gateway's state as `vigie serve` builds it (an in-memory directory, the embedded store), so
/// the target follows every field the state gains; validation reads only the configuration and
/// the clients.
static STATE: LazyLock<AppState> = LazyLock::new(|| {
    let keys = std::env::temp_dir().join(format!("vigie-fuzz-keys-{}.json", std::process::id()));
    KeyFile::generate(0).write(&keys).expect("writing the key file");
    let config: Config = Figment::from(Toml::string(CONFIG))
        .merge(Toml::string(&format!("keys = {{ file = {:?} }}", keys.display().to_string())))
        .extract()
        .expect("the fuzzing configuration");
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let state = runtime.block_on(build_state(config, metrics)).expect("the gateway's state");
    let _ = std::fs::remove_file(&keys);
    state
});

fn registered(client_id: &str, redirect_uri: &str) -> bool {
    STATE.client(client_id).is_some_and(|c| c.config.redirect_uris.iter().any(|r| r == redirect_uri))
}

fuzz_target!(|raw: &[u8]| {
    let params = parse_params(raw);
    let parsed = params.clone().ok();
    let get = |k: &str| parsed.as_ref().and_then(|p| p.get(k));
    match validate(params, &STATE.config, &STATE.oidc) {
        Ok(r) => {
            let client = STATE.client(&r.client_id).expect("accepted for a registered client");
            assert_eq!(get("client_id"), Some(r.client_id.as_str()));
            // RFC 9700 §2.1: exact string matching against the registered URIs.
            assert_eq!(get("redirect_uri"), Some(r.redirect_uri.as_str()));
            assert!(registered(&r.client_id, &r.redirect_uri));
            assert_eq!(get("response_type"), Some("code"));
            assert!(r.scopes.iter().any(|s| s == "openid"));
            assert!(r.scopes.iter().all(|s| client.config.scopes.contains(s)));
            // RFC 7636, RFC 9700 §2.1.1: S256 challenges only, required unless turned off.
            match &r.code_challenge {
                Some(c) => assert!(is_pkce_value(c) && c.len() == 43 && get("code_challenge_method") == Some("S256")),
                None => assert!(!client.config.require_pkce),
            }
            // OIDC Core §3.1.2.1: `none` stands alone; `max_age=0` is `prompt=login`.
            let prompts: Vec<&str> = get("prompt").unwrap_or_default().split(' ').filter(|p| !p.is_empty()).collect();
            match r.prompt {
                Prompt::None => assert_eq!(prompts, ["none"]),
                Prompt::Login => assert!(prompts.contains(&"login") || r.max_age == Some(0)),
                Prompt::Default => assert!(!prompts.contains(&"none") && !prompts.contains(&"login") && r.max_age != Some(0)),
            }
            assert!(r.max_age.is_none_or(|m| m >= 0));
            assert_eq!(r.state.as_deref(), get("state"));
            assert!(r.state.as_ref().is_none_or(|s| s.len() <= 2048));
            assert!(r.nonce.as_ref().is_none_or(|s| s.len() <= 512));
            assert!(r.login_hint.as_ref().is_none_or(|s| s.len() <= 256));
            assert!(r.ui_locales.as_ref().is_none_or(|s| s.len() <= 64));
            for unsupported in ["request", "request_uri", "registration"] {
                assert_eq!(get(unsupported), None);
            }
        }
        Err(Invalid::Redirect(r)) => {
            // RFC 6749 §4.1.2.1: never redirect to a URI not registered for the client.
            let client_id = get("client_id").expect("a redirected error names its client");
            assert!(registered(client_id, &r.redirect_uri), "error sent to {:?}", r.redirect_uri);
            assert_eq!(get("redirect_uri"), Some(r.redirect_uri.as_str()));
            assert_eq!(r.state.as_deref(), get("state"));
        }
        Err(Invalid::Page(_)) => {}
    }
});
