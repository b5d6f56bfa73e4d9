//! The demo application: a small confidential OIDC client served by the demo at
//! `/demo-app/`. It uses Vigie as any application would — over HTTPS, code + PKCE, ID token
//! checked against the published JWKS — and shows the ID token's claims.
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use vigie_core::store::StoreExt;

use crate::config::Config;
use crate::secrets::random_token;
use crate::session::keys;
use crate::state::{Part, Ports, Upstreams};
use crate::web::http::{esc, host_cookie};

const CLIENT_ID: &str = "demo-app";
const COOKIE: &str = "__Host-demo-app";

/// The demo card CA's CRL, as a CRL distribution point serves it (RFC 5280 §4.2.1.13).
pub(crate) async fn card_crl(req: HttpRequest, config: Part<Config>) -> HttpResponse {
    match config.demo.card_crl.as_ref().map(std::fs::read) {
        Some(Ok(der)) => HttpResponse::Ok().content_type("application/pkix-crl").body(der),
        _ => crate::ops::not_found(req).await,
    }
}

#[derive(Serialize, Deserialize)]
struct PendingLogin {
    nonce: String,
    verifier: String,
}

#[derive(Serialize, Deserialize)]
struct AppSession {
    claims: serde_json::Value,
    id_token: String,
}

fn redirect_uri(config: &Config) -> String {
    config.endpoint("/demo-app/callback")
}

fn page(title: &str, main: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"))
        .body(format!(
            r#"<!doctype html><html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t}</title><link rel="stylesheet" href="/static/vigie.css"></head><body><main class="card wide"><h1>{t}</h1>{main}</main></body></html>"#,
            t = esc(title)
        ))
}

pub(crate) async fn index(req: HttpRequest, config: Part<Config>, ports: Part<Ports>) -> HttpResponse {
    if let Some(c) = crate::web::http::cookie(&req, COOKIE)
        && let Ok(Some(s)) = ports.store.get_json::<AppSession>(&keys::demo_app_session(&c)).await
    {
        return claims_page(&s);
    }
    // Start a login: state, nonce and a PKCE verifier (RFC 7636 §4.1).
    let st = random_token(16);
    let pending = PendingLogin { nonce: random_token(16), verifier: random_token(32) };
    let challenge = B64.encode(digest::digest(&digest::SHA256, pending.verifier.as_bytes()));
    if let Err(e) = ports.store.put_json(&keys::demo_app_login(&st), &pending, Duration::from_secs(900)).await {
        return crate::web::http::problem(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", &e.to_string());
    }
    let mut url = match url::Url::parse(&config.endpoint("/authorize")) {
        Ok(u) => u,
        Err(e) => return crate::web::http::problem(StatusCode::INTERNAL_SERVER_ERROR, "Bad issuer", &e.to_string()),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri(&config))
        .append_pair("scope", "openid profile hospital")
        .append_pair("state", &st)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    HttpResponse::SeeOther().insert_header((header::LOCATION, url.to_string())).finish()
}

fn claims_page(s: &AppSession) -> HttpResponse {
    let mut rows = String::new();
    if let Some(obj) = s.claims.as_object() {
        for (k, v) in obj {
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) if matches!(k.as_str(), "exp" | "iat" | "auth_time") => {
                    let when = n
                        .as_i64()
                        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                        .unwrap_or_default();
                    format!("{n} ({when})")
                }
                other => other.to_string(),
            };
            rows.push_str(&format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(k), esc(&shown)));
        }
    }
    let name = s.claims["name"].as_str().unwrap_or("?");
    page(
        "Application de démonstration",
        &format!(
            r#"<p>Connecté·e : <strong>{}</strong></p><table aria-label="Claims de l'ID token"><caption>Claims de l'ID token</caption>{rows}</table>
<p><a href="/account/keys">Mes clés de sécurité FIDO2</a> (ajouter une clé, en retirer une)</p>
<form method="post" action="/demo-app/logout"><button type="submit">Se déconnecter</button></form>"#,
            esc(name)
        ),
    )
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct Tokens {
    id_token: String,
}

pub(crate) async fn callback(
    config: Part<Config>,
    ports: Part<Ports>,
    upstreams: Part<Upstreams>,
    q: web::Query<Callback>,
) -> HttpResponse {
    let fail = |m: String| {
        page(
            "Échec de connexion",
            &format!(r#"<p role="alert">{}</p><p><a href="/demo-app/">Réessayer</a></p>"#, esc(&m)),
        )
    };
    if let Some(e) = &q.error {
        return fail(format!("{e}: {}", q.error_description.clone().unwrap_or_default()));
    }
    // RFC 9207 §2.4: the client checks `iss` against the issuer it sent the user to.
    if q.iss.as_deref() != Some(config.issuer.as_str()) {
        return fail("the response's iss is not this issuer".into());
    }
    let (Some(code), Some(st)) = (&q.code, &q.state) else { return fail("code or state missing".into()) };
    let pending = match ports.store.take_json::<PendingLogin>(&keys::demo_app_login(st)).await {
        Ok(Some(p)) => p,
        _ => return fail("unknown or expired state".into()),
    };
    let secret = demo_secret(&config);
    let resp = upstreams
        .http
        .post(config.endpoint("/token"))
        .basic_auth(CLIENT_ID, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri(&config)),
            ("code_verifier", &pending.verifier),
        ])
        .send()
        .await;
    let tokens: Tokens = match resp {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(t) => t,
            Err(e) => return fail(format!("token response: {e}")),
        },
        Ok(r) => {
            return fail(format!("token endpoint answered {}: {}", r.status(), r.text().await.unwrap_or_default()));
        }
        Err(e) => return fail(format!("token endpoint unreachable: {e}")),
    };
    // OIDC Core §3.1.3.7: signature (keys from the JWKS), iss, aud, exp, nonce.
    let claims = match verify_id_token(&config, &upstreams.http, &tokens.id_token, "JWT", Some(&pending.nonce)).await {
        Ok(c) => c,
        Err(e) => return fail(format!("ID token refused: {e}")),
    };
    let cookie = random_token(32);
    let sid = claims["sid"].as_str().unwrap_or_default().to_owned();
    let s = AppSession { claims, id_token: tokens.id_token };
    let ttl = Duration::from_secs(config.session.absolute_timeout_secs);
    let key = keys::demo_app_session(&cookie);
    if ports.store.put_json(&key, &s, ttl).await.is_err()
        || ports.store.add_to_set(&keys::demo_app_sid(&sid), &key, ttl).await.is_err()
    {
        return fail("store unavailable".into());
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/demo-app/"))
        .cookie(host_cookie(COOKIE, cookie, None))
        .finish()
}

fn demo_secret(config: &Config) -> String {
    // The demo app is a client like any other; its secret is in the demo data directory.
    let path = config.keys.file.with_file_name("demo-secrets.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["clients"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c[0] == CLIENT_ID).and_then(|c| c[1].as_str().map(String::from)))
        })
        .unwrap_or_default()
}

/// Fetches the JWKS from the issuer and verifies a token as a relying party would.
async fn verify_id_token(
    config: &Config,
    http: &reqwest::Client,
    token: &str,
    typ: &str,
    nonce: Option<&str>,
) -> Result<serde_json::Value, String> {
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(config.endpoint("/jwks"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256
    ) {
        return Err("unexpected algorithm".into());
    }
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
        return Err(format!("the token's typ must be {typ}"));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not in the JWKS")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&config.issuer]);
    v.set_audience(&[CLIENT_ID]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map_err(|e| e.to_string())?;
    if let Some(n) = nonce
        && data.claims["nonce"].as_str() != Some(n)
    {
        return Err("nonce mismatch".into());
    }
    Ok(data.claims)
}

pub(crate) async fn logout(req: HttpRequest, config: Part<Config>, ports: Part<Ports>) -> HttpResponse {
    let Some(c) = crate::web::http::cookie(&req, COOKIE) else {
        return HttpResponse::SeeOther().insert_header((header::LOCATION, "/demo-app/")).finish();
    };
    let key = keys::demo_app_session(&c);
    let session = ports.store.take_json::<AppSession>(&key).await.ok().flatten();
    let mut url = match url::Url::parse(&config.endpoint("/logout")) {
        Ok(u) => u,
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = &session {
            q.append_pair("id_token_hint", &s.id_token);
        }
        q.append_pair("client_id", CLIENT_ID);
        q.append_pair("post_logout_redirect_uri", &config.endpoint("/demo-app/logged-out"));
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .cookie(host_cookie(COOKIE, String::new(), Some(0)))
        .finish()
}

pub(crate) async fn logged_out() -> HttpResponse {
    page(
        "Déconnecté",
        r#"<p>Vous êtes déconnecté·e de l'application de démonstration.</p><p><a href="/demo-app/">Se reconnecter</a></p>"#,
    )
}

/// Back-Channel Logout §2.6: validate the logout token, end the sessions of its `sid`.
pub(crate) async fn backchannel_logout(
    config: Part<Config>,
    ports: Part<Ports>,
    upstreams: Part<Upstreams>,
    body: web::Bytes,
) -> HttpResponse {
    let token = url::form_urlencoded::parse(&body).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_request"}));
    };
    let claims = match verify_id_token(&config, &upstreams.http, &token, "logout+jwt", None).await {
        Ok(c) => c,
        Err(e) => {
            return HttpResponse::BadRequest()
                .json(serde_json::json!({"error": "invalid_request", "error_description": e}));
        }
    };
    if claims.get("nonce").is_some() || claims["events"].get(crate::oidc::logout::BACKCHANNEL_EVENT).is_none() {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"error": "invalid_request", "error_description": "not a logout token"}));
    }
    let sid = claims["sid"].as_str().unwrap_or_default();
    if let Ok(keys) = ports.store.members(&keys::demo_app_sid(sid)).await {
        for k in keys {
            let _ = ports.store.delete(&k).await;
        }
    }
    metrics::counter!("vigie_demo_app_backchannel_logouts_total").increment(1);
    HttpResponse::Ok().finish()
}
