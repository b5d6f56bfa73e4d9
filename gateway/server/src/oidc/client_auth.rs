//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1), `private_key_jwt`
//! (RFC 7523 §2.2, §3; OIDC Core §9) and `none` for public clients. Failures are counted per
//! client and per address, and argon2id secrets are verified off the HTTP workers.
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::http::header;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{ClientAuthMethod, Config};
use crate::secrets::SecretHash;
use crate::session::keys::PerAddress;
use crate::state::{Client, OidcState};
use crate::web::http::{Caller, Params, oauth_error};
use vigie_core::store::EphemeralStore;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest lifetime of a `private_key_jwt` assertion (`exp` − `iat`, and `exp` − now): its
/// `jti` is remembered that long, so a longer-lived assertion could not be kept from replay.
/// RFC 7523 §3 lets the server "reject JWTs with an "exp" claim value that is unreasonably far in
/// the future"; OIDC Core §9 wants a short-lived one.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;
/// Clock skew allowed on an assertion's `exp`.
const ASSERTION_LEEWAY_SECS: i64 = 30;

/// Why a client was not authenticated; rendered per RFC 6749 §5.2.
pub struct ClientAuthError {
    pub error: &'static str,
    pub description: String,
    /// The client tried HTTP Basic: the 401 must carry `WWW-Authenticate` (RFC 6749 §5.2).
    pub basic: bool,
    /// Locked out after too many failures: seconds to wait (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ClientAuthError {
    fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self { error: "invalid_client", description: description.into(), basic, retry_after: None }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        super::log_internal("client authentication", detail);
        Self { error: "server_error", description: super::INTERNAL_ERROR.into(), basic: false, retry_after: None }
    }

    /// The store or the directory does not answer now: 503 `temporarily_unavailable`, retried
    /// by the client (see `TokenError::unavailable`).
    fn unavailable(detail: &dyn std::fmt::Display) -> Self {
        super::log_internal("client authentication", detail);
        Self {
            error: "temporarily_unavailable",
            description: super::UNAVAILABLE.into(),
            basic: false,
            retry_after: None,
        }
    }

    fn of_store(e: &vigie_core::store::StoreError) -> Self {
        match e {
            vigie_core::store::StoreError::Unavailable(_) => Self::unavailable(e),
            vigie_core::store::StoreError::Corrupt { .. } => Self::internal(e),
        }
    }

    pub fn response(&self) -> actix_web::HttpResponse {
        match self.error {
            "invalid_client" => {
                let mut r = oauth_error(StatusCode::UNAUTHORIZED, self.error, &self.description);
                if self.basic {
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"vigie\""));
                }
                if let Some(secs) = self.retry_after {
                    r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
                }
                r
            }
            "server_error" => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, self.error, &self.description),
            "temporarily_unavailable" => oauth_error(StatusCode::SERVICE_UNAVAILABLE, self.error, &self.description),
            _ => oauth_error(StatusCode::BAD_REQUEST, self.error, &self.description),
        }
    }
}

fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), ()>> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    parse_basic(v)
}

/// Parses an `Authorization: Basic` value: `None` when the scheme is not Basic, `Err` when
/// the credentials are malformed.
pub fn parse_basic(value: &str) -> Option<Result<(String, String), ()>> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| ());
    Some(decoded.and_then(|d| {
        let s = String::from_utf8(d).map_err(|_| ())?;
        let (id, secret) = s.split_once(':').ok_or(())?;
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let dec = |x: &str| -> Result<String, ()> {
            if x.contains(['&', '=']) {
                return Err(());
            }
            Ok(url::form_urlencoded::parse(x.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default())
        };
        Ok((dec(id)?, dec(secret)?))
    }))
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: Option<String>,
    exp: i64,
    iat: Option<i64>,
}

/// What client authentication reads: the registered clients and their fetched key sets, the
/// settings (lockout, issuer), the store (counters, assertion `jti`s), the outgoing HTTP client
/// (`jwks_uri`).
#[derive(Clone, Copy)]
pub struct Clients<'a> {
    pub config: &'a Config,
    pub oidc: &'a OidcState,
    pub store: &'a dyn EphemeralStore,
    pub http: &'a reqwest::Client,
}

impl<'a> Clients<'a> {
    fn client(&self, id: &str) -> Option<&'a Client> {
        self.oidc.clients.get(id)
    }
}

/// Authenticates the client of a request. Exactly one method may be used (RFC 6749 §2.3).
///
/// Failed attempts that presented a credential are counted per address and per (registered)
/// client at that address, and the counters reset when the client authenticates. Past
/// `tokens.client_auth_max_failures` failures without a success within
/// `tokens.client_auth_lockout_secs`, either refuses at once, without checking anything:
/// `invalid_client`, 401 (RFC 6749 §5.2 asks 401 of a client that tried Basic; one answer for
/// all) with `Retry-After` (RFC 9110 §10.2.3).
///
/// Against parallel guesses (NIST SP 800-63B §5.2.2: the limit must hold whatever the
/// concurrency), at most [`IN_FLIGHT_PER_KEY`] checks per counter run at once on a replica, the
/// others wait their turn, and each reads the failures counted so far before it checks: a burst
/// gets at most `client_auth_max_failures` + `IN_FLIGHT_PER_KEY` − 1 checks per replica and
/// window. Only failures count, so no number of concurrent requests with the right credential
/// is refused (an earlier version counted every attempt before checking: a 21st concurrent
/// request of a busy client got 401 with the right secret).
pub async fn authenticate<'a>(
    req: &HttpRequest,
    params: &Params,
    clients: Clients<'a>,
    caller: &Caller,
) -> Result<&'a Client, ClientAuthError> {
    let basic = basic_credentials(req);
    let claimed = match &basic {
        Some(Ok((id, _))) => Some(id.as_str()),
        _ => params.get("client_id"),
    };
    // A request that presents no credential (a public client) has no secret to guess: it is
    // not counted, which keeps the store out of the public clients' token requests.
    let presents_credential =
        basic.is_some() || params.get("client_secret").is_some() || params.get("client_assertion").is_some();
    let mut keys = Vec::new();
    if presents_credential {
        keys.push(caller.rate_limit_key(PerAddress::ClientAuth));
        // Only registered ids get a counter: made-up ones would only fill the store. It is the
        // client's *at this address*: a client-wide counter would let anyone lock a
        // confidential client (PSC…) out with junk requests from elsewhere.
        if let Some(id) = claimed.filter(|id| clients.client(id).is_some()) {
            keys.push(caller.rate_limit_key(PerAddress::ClientAuthOf(id)));
        }
    }
    let cfg = &clients.config.tokens;
    let window = Duration::from_secs(cfg.client_auth_lockout_secs);
    // Always taken in the order of `keys`: two requests never wait on each other's turn.
    let mut turns = Vec::with_capacity(keys.len());
    for key in &keys {
        turns.push(InFlight::wait(key).await);
    }
    for key in &keys {
        let failures = clients.store.get(key).await.map_err(|e| ClientAuthError::of_store(&e))?;
        let failures = failures.and_then(|v| String::from_utf8(v).ok()).and_then(|v| v.parse::<u64>().ok());
        if failures.unwrap_or(0) >= cfg.client_auth_max_failures {
            return Err(ClientAuthError {
                retry_after: Some(cfg.client_auth_lockout_secs),
                ..ClientAuthError::invalid_client(
                    "too many failed client authentications: wait before retrying, and check the client's credentials",
                    basic.is_some(),
                )
            });
        }
    }
    let result = authenticate_once(params, clients, basic).await;
    match &result {
        Ok(_) => {
            for key in &keys {
                if let Err(e) = clients.store.delete(key).await {
                    tracing::warn!(error = %e, "a client authentication counter could not be reset");
                }
            }
        }
        // The store or the gateway failed, not the credential: nothing to count.
        Err(e) if matches!(e.error, "server_error" | "temporarily_unavailable") => {}
        Err(_) => {
            for key in &keys {
                clients.store.incr(key, window).await.map_err(|e| ClientAuthError::of_store(&e))?;
            }
        }
    }
    drop(turns);
    result
}

/// How many checks of one counter (an address, a client at an address) run at once on a
/// replica; the others wait. Small: it is what a burst of parallel guesses gets past the limit.
const IN_FLIGHT_PER_KEY: usize = 4;

/// The turns of each counter being checked on this replica; an entry lives while a request
/// holds or waits for a turn. Process-wide like the blocking pool it guards: the bound is per
/// replica whatever the state a request was given.
static TURNS: LazyLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>> =
    LazyLock::new(Default::default);

/// A turn to check a credential against one counter; given back when dropped.
struct InFlight {
    key: String,
    turns: std::sync::Arc<tokio::sync::Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl InFlight {
    async fn wait(key: &str) -> InFlight {
        let turns = {
            let mut all = TURNS.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(key.to_owned())
                .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_KEY)))
                .clone()
        };
        // The semaphore is never closed: the error arm cannot happen, and would only mean no wait.
        let permit = turns.clone().acquire_owned().await.ok();
        InFlight { key: key.to_owned(), turns, permit }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.permit.take();
        let mut all = TURNS.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are made under this lock: two holders (the map and this one) means no one
        // else holds or waits for a turn of this counter.
        if std::sync::Arc::strong_count(&self.turns) == 2 {
            all.remove(&self.key);
        }
    }
}

async fn authenticate_once<'a>(
    params: &Params,
    clients: Clients<'a>,
    basic: Option<Result<(String, String), ()>>,
) -> Result<&'a Client, ClientAuthError> {
    let post_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let methods = [basic.is_some(), post_secret.is_some(), assertion.is_some()].iter().filter(|b| **b).count();
    if methods > 1 {
        return Err(ClientAuthError {
            error: "invalid_request",
            description: "more than one client authentication method used (RFC 6749 §2.3)".into(),
            basic: basic.is_some(),
            retry_after: None,
        });
    }
    if let Some(b) = basic {
        let (id, secret) = b.map_err(|_| ClientAuthError::invalid_client("malformed HTTP Basic credentials", true))?;
        if params.get("client_id").is_some_and(|p| p != id) {
            return Err(ClientAuthError::invalid_client("client_id differs from the Basic credentials", true));
        }
        return by_secret(clients, &id, &secret, ClientAuthMethod::ClientSecretBasic, true).await;
    }
    if let Some(secret) = post_secret {
        let id =
            params.get("client_id").ok_or_else(|| ClientAuthError::invalid_client("client_id is missing", false))?;
        return by_secret(clients, id, secret, ClientAuthMethod::ClientSecretPost, false).await;
    }
    if let Some(assertion) = assertion {
        if params.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(ClientAuthError::invalid_client(format!("client_assertion_type must be {JWT_BEARER}"), false));
        }
        return by_assertion(clients, params.get("client_id"), assertion).await;
    }
    let id =
        params.get("client_id").ok_or_else(|| ClientAuthError::invalid_client("no client authentication", false))?;
    let client = clients.client(id).ok_or_else(|| ClientAuthError::invalid_client("unknown client", false))?;
    if client.config.auth_method != ClientAuthMethod::None {
        return Err(ClientAuthError::invalid_client(
            format!("this client must authenticate with {}", client.config.auth_method.as_str()),
            false,
        ));
    }
    Ok(client)
}

async fn by_secret<'a>(
    clients: Clients<'a>,
    id: &str,
    secret: &str,
    method: ClientAuthMethod,
    basic: bool,
) -> Result<&'a Client, ClientAuthError> {
    let client =
        clients.client(id).ok_or_else(|| ClientAuthError::invalid_client("unknown client or bad secret", basic))?;
    if client.config.auth_method != method {
        return Err(ClientAuthError::invalid_client(
            format!("this client must authenticate with {}", client.config.auth_method.as_str()),
            basic,
        ));
    }
    // Constant-time comparison of the secret's hash (RFC 9700 §2.4 / secrets::ct_eq).
    match &client.secret {
        Some(h) if verify_secret(h, secret).await => Ok(client),
        _ => Err(ClientAuthError::invalid_client("unknown client or bad secret", basic)),
    }
}

/// Verifies a client secret. An argon2id one costs tens of milliseconds of CPU and memory: it
/// runs on the blocking pool, at most one per core at once, so that bad guesses queue there
/// instead of stalling the HTTP workers (and every other request with them).
async fn verify_secret(hash: &SecretHash, secret: &str) -> bool {
    static SLOTS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    });
    if let SecretHash::Sha256(_) = hash {
        return hash.verify(secret);
    }
    let Ok(_slot) = SLOTS.acquire().await else { return false };
    let (hash, secret) = (hash.clone(), secret.to_owned());
    tokio::task::spawn_blocking(move || hash.verify(&secret)).await.unwrap_or(false)
}

async fn client_keys(clients: Clients<'_>, client: &Client) -> Result<JwkSet, String> {
    if let Some(j) = &client.jwks {
        return Ok(j.clone());
    }
    let uri = client.config.jwks_uri.as_deref().ok_or("client has no keys")?;
    let cached = clients.oidc.client_jwks.get(uri, Duration::from_secs(300));
    let text = match cached {
        Some(t) => t,
        None => {
            let t = clients
                .http
                .get(uri)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("cannot fetch jwks_uri: {e}"))?
                .text()
                .await
                .map_err(|e| format!("cannot read jwks_uri: {e}"))?;
            clients.oidc.client_jwks.put(uri, t.clone());
            t
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("jwks_uri document: {e}"))
}

async fn by_assertion<'a>(
    clients: Clients<'a>,
    client_id: Option<&str>,
    assertion: &str,
) -> Result<&'a Client, ClientAuthError> {
    let bad = |m: String| ClientAuthError::invalid_client(m, false);
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|e| bad(format!("client_assertion is not a JWT: {e}")))?;
    // Only asymmetric algorithms: no `none`, no HMAC keyed with anything public (RFC 8725 §3.1).
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256) {
        return Err(bad(format!("client_assertion algorithm {:?} is not accepted", header.alg)));
    }
    let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|e| bad(format!("client_assertion claims: {e}")))?;
    // RFC 7523 §3: iss and sub MUST be the client_id.
    if unverified.iss != unverified.sub || client_id.is_some_and(|c| c != unverified.iss) {
        return Err(bad("client_assertion iss and sub must both be the client_id".into()));
    }
    let client = clients.client(&unverified.iss).ok_or_else(|| bad("unknown client".into()))?;
    if client.config.auth_method != ClientAuthMethod::PrivateKeyJwt {
        return Err(bad(format!("this client must authenticate with {}", client.config.auth_method.as_str())));
    }
    let jwks = client_keys(clients, client).await.map_err(bad)?;
    let candidates: Vec<_> = jwks
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.common.key_id == header.kid)
        .filter_map(|k| DecodingKey::from_jwk(k).ok())
        .filter(|k| {
            let family = k.family();
            family == header.alg.family()
        })
        .collect();
    let mut validation = Validation::new(header.alg);
    // RFC 7523 §3: "The JWT MUST contain an "aud" (audience) claim containing a value that
    // identifies the authorization server": the token endpoint URL or the issuer.
    validation.set_audience(&[clients.config.endpoint("/token"), clients.config.issuer.clone()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = ASSERTION_LEEWAY_SECS as u64;
    let verified = candidates
        .iter()
        .find_map(|k| jsonwebtoken::decode::<AssertionClaims>(assertion, k, &validation).ok())
        .ok_or_else(|| bad("client_assertion signature, audience or expiry is not valid".into()))?;
    let claims = verified.claims;
    // RFC 7523 §3: the server "MAY reject JWTs with an "exp" claim value that is unreasonably far
    // in the future": its jti could not be remembered until then.
    let now = crate::now();
    let lifetime = claims.exp - claims.iat.unwrap_or(now).min(now);
    if lifetime > MAX_ASSERTION_LIFETIME_SECS + ASSERTION_LEEWAY_SECS {
        return Err(bad(format!(
            "client_assertion lives too long: exp must be at most {MAX_ASSERTION_LIFETIME_SECS} seconds after iat and now"
        )));
    }
    // RFC 7523 §3: "The authorization server MAY ensure that JWTs are not replayed by
    // maintaining the set of used "jti" values for the length of time for which the JWT would
    // be considered valid". We require it, and remember it past `exp` and its leeway.
    let jti = claims.jti.ok_or_else(|| bad("client_assertion must carry a jti".into()))?;
    let ttl = (claims.exp - now).max(0) as u64 + ASSERTION_LEEWAY_SECS as u64 + 60;
    let first = clients
        .store
        .put_if_absent(
            &crate::session::keys::client_assertion_jti(&client.config.client_id, &jti),
            b"1",
            Duration::from_secs(ttl),
        )
        .await
        .map_err(|e| ClientAuthError::of_store(&e))?;
    if !first {
        return Err(bad("client_assertion jti was already used (replay)".into()));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(parse_basic(&basic("demo-app", "s%3Ac+x")), Some(Ok(("demo-app".into(), "s:c x".into()))));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), Some(Err(())));
        assert_eq!(parse_basic(&basic("nocolon", "")).map(|r| r.is_ok()), Some(true));
    }

    /// A bad guess at an argon2id secret costs the blocking pool, not the thread serving requests:
    /// on a one-thread runtime, other tasks keep running while secrets are verified.
    #[test]
    fn argon2id_secrets_are_verified_off_the_request_thread() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let hash = SecretHash::parse(&crate::secrets::hash_password("the right secret")).unwrap();
        let (verified, ticks) = rt.block_on(async {
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
            let guesses = futures_util::future::join_all([
                verify_secret(&hash, "wrong"),
                verify_secret(&hash, "also wrong"),
                verify_secret(&hash, "the right secret"),
            ])
            .await;
            ticker.abort();
            (guesses, ticks.load(std::sync::atomic::Ordering::SeqCst))
        });
        assert_eq!(verified, [false, false, true]);
        assert!(ticks >= 3, "the request thread was blocked during the verifications ({ticks} ticks)");
    }

    proptest! {
        #[test]
        fn basic_parser_never_panics(v in "\\PC{0,200}") {
            let _ = parse_basic(&v);
        }

        #[test]
        fn basic_round_trips_unreserved_credentials(id in "[A-Za-z0-9._~-]{1,40}", secret in "[A-Za-z0-9._~-]{0,60}") {
            prop_assert_eq!(parse_basic(&basic(&id, &secret)), Some(Ok((id, secret))));
        }
    }
}
