//! Pro Santé Connect as an OpenID provider of Vigie (reference/psc.md §1): discovery at PSC's
//! path, code + PKCE, client authentication, ID token and userinfo validation, PSC's professional
//! claims, and PSC's health as seen from here (metrics, [`PscHealth`]).
//!
//! Built on `openidconnect` (metadata, authorization request, code exchange, ID-token checks).
//! Where it cannot express what PSC needs, this crate goes around it, each place saying why:
//! the non-standard discovery path, JWKS refetch on an unknown `kid`, the signed-JWT userinfo,
//! `private_key_jwt` (signed with `jsonwebtoken`/aws-lc, never with `openidconnect`'s RSA keys) and
//! mutual TLS to the token endpoint.
pub mod claims;
mod error;
mod health;
mod http;
mod jose;

pub use claims::{ClaimsError, PscUserinfo, parse_userinfo, userinfo_from_value};
pub use error::{Op, PscError};
pub use health::{OpHealth, PscHealth};
pub use vigie_core::psc::{Pending, PscLogin};

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use health::{HealthRecorder, unix_now};
use http::{OidcHttp, TransportError};
use jose::{AssertionSigner, JoseKeys, UserinfoCheck};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How Vigie authenticates to PSC's token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    SecretBasic(String),
    /// `client_secret_post` (RFC 6749 §2.3.1, body parameters).
    SecretPost(String),
    /// `private_key_jwt` (OIDC Core §9, RFC 7523): a JWT signed with this key (PEM, PKCS#8 or
    /// PKCS#1/SEC1), `alg` one of RS256…PS512, ES256, ES384, EdDSA.
    PrivateKeyJwt { key_pem: String, kid: Option<String>, alg: String },
    /// `tls_client_auth` (RFC 8705 §2.1): this certificate (PEM, chain allowed) and key.
    Tls { cert_pem: String, key_pem: String },
}

impl fmt::Debug for ClientAuth {
    // Secrets and keys never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientAuth::Tls { .. } => "tls_client_auth",
        })
    }
}

/// Which userinfo answers are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserinfoFormat {
    /// `application/json` or a signed `application/jwt` (PSC's Keycloak can do both).
    #[default]
    Any,
    /// Only `application/json`.
    Json,
    /// Only a signed `application/jwt` (`userinfo_signed_response_alg` registered at PSC).
    Jwt,
}

/// How to reach PSC and who Vigie is there. [`PscSettings::new`] fills PSC's defaults.
#[derive(Clone, Debug)]
pub struct PscSettings {
    /// PSC's issuer, e.g. `https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet`.
    pub issuer: String,
    /// Where the discovery document is; default issuer + `/.well-known/wallet-openid-configuration`.
    pub discovery_url: Option<String>,
    pub client_id: String,
    pub client_auth: ClientAuth,
    /// Vigie's callback, as registered at PSC.
    pub redirect_uri: String,
    /// Default `["openid", "scope_all"]`.
    pub scopes: Vec<String>,
    /// Default `eidas1`; space-separated values.
    pub acr_values: Option<String>,
    /// `acr` values accepted in the ID token (absent is accepted too, like ANS's Keycloak
    /// extension does); default `["eidas1"]`.
    pub accepted_acr: Vec<String>,
    /// Signature algorithms accepted for the ID token and a signed userinfo; default `["RS256"]`.
    pub id_token_algs: Vec<String>,
    pub userinfo: UserinfoFormat,
    /// CA certificates (PEM) trusted for PSC besides the system's.
    pub extra_ca_pem: Option<String>,
    /// Timeout of each request to PSC; default 5000.
    pub timeout_ms: u64,
    /// Allowed clock difference with PSC for `exp`/`iat`; default 60.
    pub clock_skew_secs: i64,
    /// At most one JWKS refetch for an unknown `kid` per this many seconds; default 30.
    pub jwks_refetch_min_interval_secs: u64,
    /// Accept `http://` URLs: loopback tests and the demo only.
    pub allow_http: bool,
}

impl PscSettings {
    /// Settings with PSC's defaults for everything but who and where.
    pub fn new(issuer: &str, client_id: &str, client_auth: ClientAuth, redirect_uri: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            discovery_url: None,
            client_id: client_id.to_owned(),
            client_auth,
            redirect_uri: redirect_uri.to_owned(),
            scopes: vec!["openid".into(), "scope_all".into()],
            acr_values: Some("eidas1".into()),
            accepted_acr: vec!["eidas1".into()],
            id_token_algs: vec!["RS256".into()],
            userinfo: UserinfoFormat::Any,
            extra_ca_pem: None,
            timeout_ms: 5000,
            clock_skew_secs: 60,
            jwks_refetch_min_interval_secs: 30,
            allow_http: false,
        }
    }
}

#[async_trait::async_trait]
impl vigie_core::psc::ProSanteConnect for Psc {
    async fn begin(&self) -> Result<(String, Pending), PscError> {
        Psc::begin(self).await
    }

    async fn finish(&self, code: &str, pending: &Pending) -> Result<PscLogin, PscError> {
        Psc::finish(self, code, pending).await
    }

    fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Option<String> {
        Psc::end_session_url(self, id_token_hint, post_logout_redirect_uri, state)
    }

    async fn probe(&self) -> Result<(), PscError> {
        Psc::probe(self).await
    }

    fn health(&self) -> PscHealth {
        Psc::health(self)
    }
}

type Metadata = ProviderMetadataWithLogout;
/// openidconnect's client as built from metadata: authorization endpoint set, token and userinfo
/// endpoints as the metadata say.
type OidcClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// PSC's keys, read once by each library that verifies with them.
struct Keys {
    oidc: CoreJsonWebKeySet,
    jose: JoseKeys,
}

/// The RP of Pro Santé Connect. Cheap to share (`Arc`); metadata and keys are cached inside.
pub struct Psc {
    settings: PscSettings,
    discovery_url: String,
    algs: Vec<CoreJwsSigningAlgorithm>,
    http: reqwest::Client,
    token_http: reqwest::Client,
    signer: Option<AssertionSigner>,
    metadata: ArcSwapOption<Metadata>,
    keys: ArcSwapOption<Keys>,
    /// When the last unknown-`kid` refetch happened; held while refetching, so concurrent logins
    /// with a rotated key make one request.
    kid_refetch: tokio::sync::Mutex<Option<Instant>>,
    health: HealthRecorder,
}

impl Psc {
    /// Checks the settings and builds the HTTP clients; no I/O.
    pub fn new(s: PscSettings) -> Result<Psc, PscError> {
        let url = |what: &str, u: &str| -> Result<(), PscError> {
            let parsed = url::Url::parse(u).map_err(|e| PscError::Config(format!("{what} `{u}` is not a URL: {e}")))?;
            check_scheme(what, &parsed, s.allow_http)
        };
        url("issuer", &s.issuer)?;
        url("redirect_uri", &s.redirect_uri)?;
        let discovery_url = s
            .discovery_url
            .clone()
            .unwrap_or_else(|| format!("{}/.well-known/wallet-openid-configuration", s.issuer.trim_end_matches('/')));
        url("discovery_url", &discovery_url)?;
        if s.client_id.is_empty() {
            return Err(PscError::Config("client_id is empty".into()));
        }
        if s.id_token_algs.is_empty() {
            return Err(PscError::Config("id_token_algs is empty: list the algorithms PSC signs with".into()));
        }
        let algs = s
            .id_token_algs
            .iter()
            .map(|a| match a.as_str() {
                // RFC 8725 §3.1: never accept unsigned tokens.
                "none" => Err(PscError::Config("id_token_algs must not contain `none`".into())),
                _ => serde_json::from_value::<CoreJwsSigningAlgorithm>(Value::String(a.clone()))
                    .map_err(|_| PscError::Config(format!("id_token_algs: unknown algorithm `{a}`"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (signer, identity) = match &s.client_auth {
            ClientAuth::SecretBasic(secret) | ClientAuth::SecretPost(secret) if secret.is_empty() => {
                return Err(PscError::Config("the client secret is empty".into()));
            }
            ClientAuth::SecretBasic(_) | ClientAuth::SecretPost(_) => (None, None),
            ClientAuth::PrivateKeyJwt { key_pem, kid, alg } => {
                (Some(AssertionSigner::new(key_pem, kid.clone(), alg)?), None)
            }
            ClientAuth::Tls { cert_pem, key_pem } => {
                let id = reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes()).map_err(|e| {
                    PscError::Config(format!("tls_client_auth: the certificate and key are not usable PEM: {e}"))
                })?;
                (None, Some(id))
            }
        };
        let http = http::client(s.timeout_ms, s.extra_ca_pem.as_deref(), s.allow_http, None)?;
        let token_http = match identity {
            Some(id) => http::client(s.timeout_ms, s.extra_ca_pem.as_deref(), s.allow_http, Some(id))?,
            None => http.clone(),
        };
        Ok(Psc {
            settings: s,
            discovery_url,
            algs,
            http,
            token_http,
            signer,
            metadata: ArcSwapOption::empty(),
            keys: ArcSwapOption::empty(),
            kid_refetch: tokio::sync::Mutex::new(None),
            health: HealthRecorder::default(),
        })
    }

    /// Starts a login: the URL to send the browser to, and what to keep until the callback.
    /// Fetches PSC's metadata and keys if they are not cached.
    pub async fn begin(&self) -> Result<(String, Pending), PscError> {
        let meta = self.metadata().await?;
        self.keys().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = URL_SAFE_NO_PAD.encode(random::<32>());
        // ANS's Keycloak extension sends 64 hexadecimal characters; PSC may expect that shape.
        let nonce: String = random::<32>().iter().map(|b| format!("{b:02x}")).collect();
        let client = self.client(&meta)?;
        let (st, no) = (state.clone(), nonce.clone());
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(st),
                move || Nonce::new(no),
            )
            .set_pkce_challenge(challenge);
        // openidconnect adds `openid` itself.
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        for acr in self.settings.acr_values.iter().flat_map(|a| a.split_whitespace()) {
            req = req.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
        }
        let (url, _, _) = req.url();
        Ok((url.to_string(), Pending { state, nonce, pkce_verifier: verifier.secret().clone() }))
    }

    /// Ends a login: exchanges the code, checks the ID token and the userinfo, reads the claims.
    /// The caller has checked the callback's `state` ([`Pending::check_state`]).
    pub async fn finish(&self, code: &str, pending: &Pending) -> Result<PscLogin, PscError> {
        let meta = self.metadata().await?;
        let tokens = self.exchange(&meta, code, pending).await?;
        let id_token = tokens.id_token().ok_or_else(|| PscError::Token {
            status: Some(200),
            detail: "the token response has no id_token (was the `openid` scope granted?)".into(),
        })?;
        let claims = self.verify_id_token(id_token, &Nonce::new(pending.nonce.clone())).await?;
        // OIDC Core §3.1.3.8: an `at_hash` (PSC's Keycloak puts one in every ID token) must be the
        // access token's: the two were issued together, none was swapped in on the way.
        if let Some(claimed) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(|e| PscError::BadIdToken(e.to_string()))?;
            let actual = at_hash(tokens.access_token().secret(), alg);
            if !bool::from(actual.as_bytes().ct_eq(claimed.as_bytes())) {
                return Err(PscError::WrongAtHash);
            }
        }
        // Like ANS's Keycloak extension: `acr` must be an accepted level, or absent.
        let acr = claims.auth_context_ref().map(|a| a.to_string());
        if let Some(acr) = &acr
            && !self.settings.accepted_acr.iter().any(|a| a == acr)
        {
            return Err(PscError::AcrNotAccepted(acr.clone()));
        }
        let sub = claims.subject().to_string();
        let userinfo = self.userinfo(&meta, tokens.access_token().secret()).await?;
        // OIDC Core §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
        // match the sub Claim in the ID Token; if they do not match, the UserInfo Response values
        // MUST NOT be used."
        if userinfo.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
            return Err(PscError::UserinfoSubMismatch);
        }
        let parsed = userinfo_from_value(&userinfo, &self.settings.issuer)?;
        Ok(PscLogin {
            id_token: id_token.to_string(),
            sub,
            idnat: parsed.idnat,
            given_name: parsed.given_name,
            family_name: parsed.family_name,
            acr,
            amr: claims.auth_method_refs().into_iter().flatten().map(|a| a.to_string()).collect(),
            auth_time: claims.auth_time().map(|t| t.timestamp()),
            professional: parsed.professional,
            userinfo,
        })
    }

    /// PSC's logout URL (OIDC RP-Initiated Logout §2), when its metadata (cached) name one.
    pub fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Option<String> {
        let meta = self.metadata.load_full()?;
        let mut url = meta.additional_metadata().end_session_endpoint.as_ref()?.url().clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("id_token_hint", id_token_hint);
            q.append_pair("client_id", &self.settings.client_id);
            if let Some(uri) = post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", uri);
            }
            if let Some(state) = state {
                q.append_pair("state", state);
            }
        }
        Some(url.to_string())
    }

    /// Refetches the metadata and the keys (for a background health task).
    pub async fn probe(&self) -> Result<(), PscError> {
        let meta = self.fetch_metadata().await?;
        self.fetch_keys(&meta).await.map(|_| ())
    }

    /// PSC's health as last seen; no I/O.
    pub fn health(&self) -> PscHealth {
        self.health.snapshot()
    }

    fn client(&self, meta: &Metadata) -> Result<OidcClient, PscError> {
        let secret = match &self.settings.client_auth {
            ClientAuth::SecretBasic(s) | ClientAuth::SecretPost(s) => Some(ClientSecret::new(s.clone())),
            // Without a secret openidconnect puts client_id in the body, as RFC 7523 §2.2 and
            // RFC 8705 §2 want.
            ClientAuth::PrivateKeyJwt { .. } | ClientAuth::Tls { .. } => None,
        };
        let auth_type = match self.settings.client_auth {
            ClientAuth::SecretBasic(_) => AuthType::BasicAuth,
            _ => AuthType::RequestBody,
        };
        let redirect = RedirectUrl::new(self.settings.redirect_uri.clone())
            .map_err(|e| PscError::Config(format!("redirect_uri: {e}")))?;
        Ok(CoreClient::from_provider_metadata(meta.clone(), ClientId::new(self.settings.client_id.clone()), secret)
            .set_redirect_uri(redirect)
            .set_auth_type(auth_type))
    }

    async fn exchange(&self, meta: &Metadata, code: &str, pending: &Pending) -> Result<CoreTokenResponse, PscError> {
        let client = self.client(meta)?;
        let token_endpoint = meta
            .token_endpoint()
            .ok_or_else(|| PscError::BadMetadata("the metadata name no token_endpoint".into()))?
            .to_string();
        let assertion = match &self.signer {
            Some(signer) => Some(signer.assertion(&self.settings.client_id, &token_endpoint, unix_now())?),
            None => None,
        };
        let mut req = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| PscError::BadMetadata(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        // openidconnect has no private_key_jwt (oauth2's "FIXME: add support for auth
        // extensions"): the assertion goes in as extra parameters (RFC 7523 §2.2).
        if let Some(assertion) = assertion {
            req = req
                .add_extra_param("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                .add_extra_param("client_assertion", assertion);
        }
        let http = OidcHttp::new(&self.token_http, Op::Token);
        self.observe(Op::Token, async { req.request_async(&http).await.map_err(|e| token_error(e, http.status())) })
            .await
    }

    /// OIDC Core §3.1.3.7 through openidconnect's verifier (alg allow-list, iss, aud, exp, nonce),
    /// refetching the JWKS once when the `kid` is unknown (OIDC Core §10.1.1: PSC rotates keys).
    async fn verify_id_token(&self, id_token: &CoreIdToken, nonce: &Nonce) -> Result<CoreIdTokenClaims, PscError> {
        let keys = self.keys().await?;
        match self.verify_with(&keys, id_token, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let kid = id_token_kid(id_token);
                let Some(fresh) = self.refetch_for_unknown_kid(&keys).await? else {
                    return Err(PscError::UnknownKid(format!("kid {kid}; the JWKS was refetched recently")));
                };
                self.verify_with(&fresh, id_token, nonce).map_err(|e| match e {
                    ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
                        PscError::UnknownKid(format!("kid {kid} is not in PSC's JWKS, even refetched"))
                    }
                    other => id_token_error(other),
                })
            }
            other => other.map_err(id_token_error),
        }
    }

    fn verify_with(
        &self,
        keys: &Keys,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        let skew = chrono::Duration::seconds(self.settings.clock_skew_secs);
        let client_id = ClientId::new(self.settings.client_id.clone());
        let issuer = openidconnect::IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| ClaimsVerificationError::Other(e.to_string()))?;
        let verifier = match &self.settings.client_auth {
            // OIDC Core §10.1: an HS* ID token is keyed with the client secret.
            ClientAuth::SecretBasic(s) | ClientAuth::SecretPost(s) => CoreIdTokenVerifier::new_confidential_client(
                client_id,
                ClientSecret::new(s.clone()),
                issuer,
                keys.oidc.clone(),
            ),
            _ => CoreIdTokenVerifier::new_public_client(client_id, issuer, keys.oidc.clone()),
        }
        .set_allowed_algs(self.algs.clone())
        // exp is checked against "now - skew" (openidconnect has no leeway of its own).
        .set_time_fn(move || chrono::Utc::now() - skew)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > chrono::Utc::now() + skew { Err(format!("issued in the future ({iat})")) } else { Ok(()) }
        });
        id_token.claims(&verifier, nonce).cloned()
    }

    /// GET the userinfo (OIDC Core §5.3) as JSON or as a signed JWT. openidconnect's own userinfo
    /// call cannot be used: its verifier for a signed answer has no algorithm allow-list (fixed to
    /// RS256), no refetch on an unknown `kid`, and its typed claims would reject PSC's own fields.
    async fn userinfo(&self, meta: &Metadata, access_token: &str) -> Result<Value, PscError> {
        let endpoint = meta
            .userinfo_endpoint()
            .ok_or_else(|| PscError::BadMetadata("the metadata name no userinfo_endpoint".into()))?;
        let accept = match self.settings.userinfo {
            UserinfoFormat::Any => "application/json, application/jwt",
            UserinfoFormat::Json => "application/json",
            UserinfoFormat::Jwt => "application/jwt",
        };
        // RFC 8705 §3: with mutual TLS PSC may bind the access token to Vigie's certificate, so the
        // userinfo call presents it too.
        let client = &self.token_http;
        let req = client
            .get(endpoint.url().clone())
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, accept)
            .build()
            .map_err(|e| PscError::Config(e.to_string()))?;
        let (jwt, body) = self
            .observe(Op::Userinfo, async {
                let resp = http::send(client, Op::Userinfo, req).await?;
                if resp.status() != 200 {
                    return Err(PscError::Userinfo(format!("PSC answered HTTP {}", resp.status())));
                }
                let ctype = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .map(|v| v.trim().to_ascii_lowercase())
                    .unwrap_or_default();
                let jwt = match (ctype.as_str(), self.settings.userinfo) {
                    ("application/json", UserinfoFormat::Any | UserinfoFormat::Json) => false,
                    ("application/jwt", UserinfoFormat::Any | UserinfoFormat::Jwt) => true,
                    (other, wanted) => {
                        return Err(PscError::Userinfo(format!(
                            "unexpected content type `{other}` (accepted: {wanted:?})"
                        )));
                    }
                };
                Ok((jwt, resp.into_body()))
            })
            .await?;
        if !jwt {
            return serde_json::from_slice(&body)
                .map_err(|e| PscError::Userinfo(format!("the userinfo is not JSON: {e}")));
        }
        let jwt =
            std::str::from_utf8(&body).map_err(|_| PscError::Userinfo("the signed userinfo is not text".into()))?;
        let keys = self.keys().await?;
        let check = UserinfoCheck {
            algs: &self.settings.id_token_algs,
            issuer: &self.settings.issuer,
            client_id: &self.settings.client_id,
            skew_secs: self.settings.clock_skew_secs.unsigned_abs(),
        };
        match jose::verify_userinfo_jwt(jwt, &keys.jose, &check) {
            Err(PscError::UnknownKid(kid)) => match self.refetch_for_unknown_kid(&keys).await? {
                Some(fresh) => jose::verify_userinfo_jwt(jwt, &fresh.jose, &check),
                None => Err(PscError::UnknownKid(format!("{kid}; the JWKS was refetched recently"))),
            },
            other => other,
        }
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, PscError> {
        match self.metadata.load_full() {
            Some(m) => Ok(m),
            None => self.fetch_metadata().await,
        }
    }

    async fn keys(&self) -> Result<Arc<Keys>, PscError> {
        match self.keys.load_full() {
            Some(k) => Ok(k),
            None => self.fetch_keys(&*self.metadata().await?).await,
        }
    }

    /// The discovery document, fetched at the configured URL (PSC's is not the standard
    /// `/.well-known/openid-configuration`, which openidconnect's `discover_async` insists on).
    async fn fetch_metadata(&self) -> Result<Arc<Metadata>, PscError> {
        let meta = self
            .observe(Op::Discovery, async {
                let body = self.get_json_bytes(Op::Discovery, &self.discovery_url).await?;
                let meta: Metadata = serde_json::from_slice(&body)
                    .map_err(|e| PscError::BadMetadata(format!("the discovery document is unreadable: {e}")))?;
                // OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer
                // URL that was used as the prefix to /.well-known/openid-configuration".
                if meta.issuer().as_str() != self.settings.issuer {
                    return Err(PscError::BadMetadata(format!(
                        "the discovery document is for issuer `{}`, not `{}`",
                        meta.issuer().as_str(),
                        self.settings.issuer
                    )));
                }
                let mut endpoints = vec![("authorization_endpoint", meta.authorization_endpoint().url())];
                endpoints.push(("jwks_uri", meta.jwks_uri().url()));
                if let Some(t) = meta.token_endpoint() {
                    endpoints.push(("token_endpoint", t.url()));
                }
                if let Some(u) = meta.userinfo_endpoint() {
                    endpoints.push(("userinfo_endpoint", u.url()));
                }
                for (what, url) in endpoints {
                    check_scheme(what, url, self.settings.allow_http)
                        .map_err(|e| PscError::BadMetadata(e.to_string()))?;
                }
                Ok(Arc::new(meta))
            })
            .await?;
        self.metadata.store(Some(meta.clone()));
        self.health.fetched(Op::Discovery);
        Ok(meta)
    }

    async fn fetch_keys(&self, meta: &Metadata) -> Result<Arc<Keys>, PscError> {
        let keys = self
            .observe(Op::Jwks, async {
                let body = self.get_json_bytes(Op::Jwks, meta.jwks_uri().url().as_str()).await?;
                let raw: Value = serde_json::from_slice(&body)
                    .map_err(|e| PscError::BadMetadata(format!("the JWKS is not JSON: {e}")))?;
                let oidc = CoreJsonWebKeySet::deserialize(&raw)
                    .map_err(|e| PscError::BadMetadata(format!("the JWKS is unreadable: {e}")))?;
                if oidc.keys().is_empty() {
                    return Err(PscError::BadMetadata("the JWKS holds no usable key".into()));
                }
                Ok(Arc::new(Keys { oidc, jose: JoseKeys::from_jwks(&raw) }))
            })
            .await?;
        self.keys.store(Some(keys.clone()));
        self.health.fetched(Op::Jwks);
        Ok(keys)
    }

    /// An unknown `kid`: refetch the JWKS once, unless another login just did (then use its
    /// result) or one was refetched for this reason less than `jwks_refetch_min_interval_secs` ago.
    async fn refetch_for_unknown_kid(&self, seen: &Arc<Keys>) -> Result<Option<Arc<Keys>>, PscError> {
        let mut last = self.kid_refetch.lock().await;
        if let Some(current) = self.keys.load_full()
            && !Arc::ptr_eq(&current, seen)
        {
            return Ok(Some(current));
        }
        let min = Duration::from_secs(self.settings.jwks_refetch_min_interval_secs);
        if last.is_some_and(|t| t.elapsed() < min) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        let meta = self.metadata().await?;
        tracing::info!(upstream = "psc", "unknown key id: refetching PSC's JWKS");
        self.fetch_keys(&meta).await.map(Some)
    }

    async fn get_json_bytes(&self, op: Op, url: &str) -> Result<Vec<u8>, PscError> {
        let req = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| PscError::Config(format!("{op} URL `{url}`: {e}")))?;
        let resp = http::send(&self.http, op, req).await?;
        if resp.status().is_server_error() {
            return Err(PscError::Unreachable { op, detail: format!("HTTP {}", resp.status()) });
        }
        if resp.status() != 200 {
            return Err(PscError::BadMetadata(format!("{op} at `{url}` answered HTTP {}", resp.status())));
        }
        Ok(resp.into_body())
    }

    /// Times one exchange and records it in the metrics and the health record.
    async fn observe<T>(&self, op: Op, f: impl Future<Output = Result<T, PscError>>) -> Result<T, PscError> {
        let start = Instant::now();
        let out = f.await;
        self.health.record(op, start.elapsed(), out.as_ref().map(|_| ()));
        out
    }
}

fn check_scheme(what: &str, url: &url::Url, allow_http: bool) -> Result<(), PscError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        other => Err(PscError::Config(format!("{what} `{url}` uses `{other}`: PSC is reached over https only"))),
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // aws-lc's system RNG fails only if the OS has no entropy source, which nothing here survives.
    aws_lc_rs::rand::fill(&mut b).expect("system random generator");
    b
}

fn id_token_kid(id_token: &CoreIdToken) -> String {
    // The kid is read from the token's header only to name it in the error.
    id_token
        .to_string()
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok()?.get("kid").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "(none)".into())
}

fn id_token_error(e: ClaimsVerificationError) -> PscError {
    use ClaimsVerificationError as C;
    use SignatureVerificationError as S;
    match e {
        C::Expired(m) => PscError::Expired(m),
        C::InvalidAudience(m) => PscError::WrongAudience(m),
        C::InvalidIssuer(m) => PscError::WrongIssuer(m),
        C::InvalidNonce(m) => PscError::WrongNonce(m),
        C::SignatureVerification(S::NoSignature) => {
            PscError::AlgNotAllowed("the ID token is not signed (alg none)".into())
        }
        C::SignatureVerification(S::DisallowedAlg(m) | S::UnsupportedAlg(m)) => PscError::AlgNotAllowed(m),
        C::SignatureVerification(S::NoMatchingKey) => PscError::UnknownKid("no key of PSC's JWKS matches".into()),
        C::SignatureVerification(other) => PscError::BadSignature(other.to_string()),
        other => PscError::BadIdToken(other.to_string()),
    }
}

fn token_error(
    e: RequestTokenError<
        TransportError,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
    status: Option<u16>,
) -> PscError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let mut detail = r.error().to_string();
            if let Some(d) = r.error_description() {
                detail.push_str(": ");
                detail.extend(d.chars().take(200).filter(|c| !c.is_control()));
            }
            PscError::Token { status, detail }
        }
        RequestTokenError::Request(t) => PscError::Unreachable { op: Op::Token, detail: t.0 },
        // The body is not echoed: it could hold a token.
        RequestTokenError::Parse(p, _) => {
            PscError::Token { status, detail: format!("unreadable answer ({})", p.path()) }
        }
        RequestTokenError::Other(m) => PscError::Token { status, detail: m },
    }
}

/// OIDC Core §3.1.3.6: the base64url left half of the access token's hash, the hash being the
/// one of the ID token's `alg` (SHA-256 for RS256, ES256, PS256, HS256; SHA-512 for EdDSA as
/// with Ed25519).
fn at_hash(access_token: &str, alg: &CoreJwsSigningAlgorithm) -> String {
    use CoreJwsSigningAlgorithm as A;
    use aws_lc_rs::digest;
    let hash = match alg {
        A::HmacSha384 | A::RsaSsaPkcs1V15Sha384 | A::EcdsaP384Sha384 | A::RsaSsaPssSha384 => &digest::SHA384,
        A::HmacSha512 | A::RsaSsaPkcs1V15Sha512 | A::EcdsaP521Sha512 | A::RsaSsaPssSha512 | A::EdDsa => &digest::SHA512,
        _ => &digest::SHA256,
    };
    let d = digest::digest(hash, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..d.as_ref().len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_hash_the_alg_names() {
        use CoreJwsSigningAlgorithm as A;
        let half = |alg, hash: &'static aws_lc_rs::digest::Algorithm| {
            let d = aws_lc_rs::digest::digest(hash, b"token");
            (at_hash("token", &alg), URL_SAFE_NO_PAD.encode(&d.as_ref()[..hash.output_len() / 2]))
        };
        for (alg, hash) in [
            (A::RsaSsaPkcs1V15Sha256, &aws_lc_rs::digest::SHA256),
            (A::EcdsaP256Sha256, &aws_lc_rs::digest::SHA256),
            (A::RsaSsaPssSha384, &aws_lc_rs::digest::SHA384),
            (A::RsaSsaPkcs1V15Sha512, &aws_lc_rs::digest::SHA512),
            (A::EdDsa, &aws_lc_rs::digest::SHA512),
        ] {
            let (got, want) = half(alg.clone(), hash);
            assert_eq!(got, want, "{alg:?}");
        }
        assert_eq!(at_hash("token", &A::RsaSsaPkcs1V15Sha256).len(), 22, "16 bytes in base64url");
        assert_ne!(at_hash("token", &A::RsaSsaPkcs1V15Sha256), at_hash("tokeN", &A::RsaSsaPkcs1V15Sha256));
    }

    fn settings(auth: ClientAuth) -> PscSettings {
        PscSettings::new("https://psc.example/auth/realms/esante-wallet", "vigie", auth, "https://vigie/cb")
    }

    fn refused(s: PscSettings) -> String {
        match Psc::new(s) {
            Err(e) => {
                assert_eq!(e.code(), "config");
                e.to_string()
            }
            Ok(_) => panic!("settings accepted"),
        }
    }

    #[test]
    fn plain_http_is_for_loopback_tests_only() {
        let mut s = settings(ClientAuth::SecretBasic("s3cret".into()));
        s.issuer = "http://psc.example/auth/realms/esante-wallet".into();
        assert!(refused(s.clone()).contains("https only"));
        s.allow_http = true;
        assert!(Psc::new(s).is_ok());
    }

    #[test]
    fn unsigned_tokens_cannot_be_allowed() {
        let mut s = settings(ClientAuth::SecretBasic("s3cret".into()));
        s.id_token_algs = vec!["RS256".into(), "none".into()];
        assert!(refused(s).contains("none"));
    }

    #[test]
    fn unusable_keys_are_refused_at_start() {
        let jwt = |alg: &str| ClientAuth::PrivateKeyJwt { key_pem: "garbage".into(), kid: None, alg: alg.into() };
        assert!(refused(settings(jwt("ES256"))).contains("private key"));
        assert!(refused(settings(jwt("HS256"))).contains("asymmetric"));
        assert!(refused(settings(jwt("XX1"))).contains("unknown"));
        let tls = ClientAuth::Tls { cert_pem: "garbage".into(), key_pem: "garbage".into() };
        assert!(refused(settings(tls)).contains("tls_client_auth"));
        assert!(refused(settings(ClientAuth::SecretPost(String::new()))).contains("empty"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = settings(ClientAuth::SecretBasic("s3cret-value".into()));
        assert!(!format!("{s:?}").contains("s3cret-value"));
        let p = Pending { state: "st".into(), nonce: "no".into(), pkce_verifier: "verifier-value".into() };
        assert!(!format!("{p:?}").contains("verifier-value"));
    }

    /// The gateway shares one `Psc` between workers and probes it from a spawned task.
    #[test]
    fn psc_and_its_futures_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let psc = Psc::new(settings(ClientAuth::SecretBasic("s3cret".into()))).expect("settings");
        send_sync(&psc);
        let pending = Pending { state: String::new(), nonce: String::new(), pkce_verifier: String::new() };
        send(psc.begin());
        send(psc.finish("code", &pending));
        send(psc.probe());
    }

    #[test]
    fn no_logout_url_before_the_metadata_are_known() {
        let psc = Psc::new(settings(ClientAuth::SecretBasic("s3cret".into()))).expect("settings");
        assert_eq!(psc.end_session_url("id.token.hint", None, None), None);
        assert_eq!(psc.health(), PscHealth::default());
    }
}
