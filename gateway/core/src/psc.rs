//! The Pro Santé Connect port: Vigie as a relying party of PSC (discovery, authorization URL,
//! code exchange, ID-token and userinfo validation, logout), what a login brings back, and PSC's
//! health as the adapter saw it.
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;

/// Pro Santé Connect, as its relying party sees it.
///
/// Guarantees every adapter must keep:
/// - [`begin`](Self::begin) gives a fresh, unguessable `state`, `nonce` and PKCE verifier for
///   each login (RFC 6749 §10.12, OIDC Core §3.1.2.1, RFC 7636);
/// - [`finish`](Self::finish) returns a [`PscLogin`] only when the code was exchanged and the ID
///   token verified (issuer, audience, time window, nonce, signature with PSC's published key,
///   an accepted `acr`; OIDC Core §3.1.3.7), and the userinfo is about the same `sub` and names
///   an idNat (OIDC Core §5.3.2); any failed check is a [`PscError`] saying which;
/// - each request to PSC is bounded by the configured timeout; an [`PscError::is_upstream_failure`]
///   error means PSC itself is unwell (counted in [`health`](Self::health)), any other a refused
///   login;
/// - [`end_session_url`](Self::end_session_url) and [`health`](Self::health) do no I/O.
///
/// The caller keeps the [`Pending`] server side between `begin` and `finish`, single use, and
/// checks the callback's `state` with [`Pending::check_state`] before calling `finish`.
#[async_trait]
pub trait ProSanteConnect: Send + Sync {
    /// The authorization URL to send the browser to, and what the callback needs.
    async fn begin(&self) -> Result<(String, Pending), PscError>;
    /// Exchanges the callback's `code`, validates the ID token and reads the userinfo.
    async fn finish(&self, code: &str, pending: &Pending) -> Result<PscLogin, PscError>;
    /// PSC's logout URL (OIDC RP-Initiated Logout §2), when its metadata (cached) name one.
    fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Option<String>;
    /// Refetches the metadata and the keys (a background health probe).
    async fn probe(&self) -> Result<(), PscError>;
    /// PSC's health as last seen; no I/O.
    fn health(&self) -> PscHealth;
}

/// One kind of exchange with PSC, as named in metrics and in [`PscHealth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The discovery document.
    Discovery,
    /// The JSON Web Key Set.
    Jwks,
    /// The token endpoint (code exchange).
    Token,
    /// The userinfo endpoint.
    Userinfo,
}

impl Op {
    /// The `op` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Discovery => "discovery",
            Op::Jwks => "jwks",
            Op::Token => "token",
            Op::Userinfo => "userinfo",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a PSC login or fetch failed. Messages never carry a secret, a code or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PscError {
    /// The settings cannot work (bad URL, unreadable key or certificate).
    #[error("the Pro Santé Connect settings are wrong: {0}")]
    Config(String),
    /// No answer (connection refused, timeout, TLS failure) or a server error (HTTP 5xx).
    #[error("Pro Santé Connect could not be reached ({op}): {detail}")]
    Unreachable {
        /// The exchange that failed.
        op: Op,
        /// What happened, in plain words.
        detail: String,
    },
    /// The discovery document or the JWKS is not what OIDC Discovery requires.
    #[error("Pro Santé Connect's metadata are unusable: {0}")]
    BadMetadata(String),
    /// The token endpoint refused the code or answered something unreadable.
    #[error("Pro Santé Connect's token endpoint refused the exchange: {detail}")]
    Token {
        /// The HTTP status, when PSC answered.
        status: Option<u16>,
        /// What PSC said, or why its answer is unreadable.
        detail: String,
    },
    /// A token's `iss` is not PSC's issuer.
    #[error("the token was not issued by the configured Pro Santé Connect issuer: {0}")]
    WrongIssuer(String),
    /// A token's `aud` does not name this client.
    #[error("the token is not meant for this client: {0}")]
    WrongAudience(String),
    /// A token's `exp` (or `iat`) is out of the accepted window.
    #[error("the token has expired or is not yet valid: {0}")]
    Expired(String),
    /// The ID token's `nonce` is not the one sent with the authorization request.
    #[error("the ID token answers another login (nonce mismatch): {0}")]
    WrongNonce(String),
    /// The ID token's `at_hash` is not the access token's (OIDC Core §3.1.3.8).
    #[error("the ID token was not issued with this access token (at_hash mismatch)")]
    WrongAtHash,
    /// The token is unsigned or signed with an algorithm outside the allow-list.
    #[error("the token's signature algorithm is not allowed: {0}")]
    AlgNotAllowed(String),
    /// No key of PSC's JWKS (even refetched) matches the token's `kid`.
    #[error("the token is signed with a key that Pro Santé Connect does not publish: {0}")]
    UnknownKid(String),
    /// The signature does not verify with PSC's key.
    #[error("the token's signature is invalid: {0}")]
    BadSignature(String),
    /// The ID token is malformed or misses a required claim.
    #[error("the ID token is invalid: {0}")]
    BadIdToken(String),
    /// The `acr` is not one of `accepted_acr`.
    #[error("the authentication level `{0}` returned by Pro Santé Connect is not accepted")]
    AcrNotAccepted(String),
    /// The userinfo `sub` differs from the ID token's (OIDC Core §5.3.2).
    #[error("the userinfo response is about another person than the ID token (sub mismatch)")]
    UserinfoSubMismatch,
    /// The userinfo endpoint failed or its answer is unreadable.
    #[error("Pro Santé Connect's userinfo is unusable: {0}")]
    Userinfo(String),
    /// The userinfo has no `SubjectNameID`: nothing to link the professional by.
    #[error("Pro Santé Connect gave no national identifier (SubjectNameID) for this professional")]
    NoIdnat,
    /// The callback's `state` is not the one this login sent (RFC 6749 §10.12).
    #[error("the callback does not belong to this login (state mismatch)")]
    StateMismatch,
}

impl PscError {
    /// A stable short name, for pages, audit lines and tests.
    pub fn code(&self) -> &'static str {
        match self {
            PscError::Config(_) => "config",
            PscError::Unreachable { .. } => "unreachable",
            PscError::BadMetadata(_) => "bad_metadata",
            PscError::Token { .. } => "token_error",
            PscError::WrongIssuer(_) => "wrong_issuer",
            PscError::WrongAudience(_) => "wrong_audience",
            PscError::Expired(_) => "expired",
            PscError::WrongNonce(_) => "wrong_nonce",
            PscError::WrongAtHash => "wrong_at_hash",
            PscError::AlgNotAllowed(_) => "alg_not_allowed",
            PscError::UnknownKid(_) => "unknown_kid",
            PscError::BadSignature(_) => "bad_signature",
            PscError::BadIdToken(_) => "bad_id_token",
            PscError::AcrNotAccepted(_) => "acr_not_accepted",
            PscError::UserinfoSubMismatch => "userinfo_sub_mismatch",
            PscError::Userinfo(_) => "userinfo_error",
            PscError::NoIdnat => "no_idnat",
            PscError::StateMismatch => "state_mismatch",
        }
    }

    /// Whether this error says PSC itself is unwell (counts against its health), as opposed to a
    /// refused login or token.
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            PscError::Unreachable { .. } | PscError::BadMetadata(_) => true,
            PscError::Token { status, .. } => status.is_none_or(|s| s >= 500),
            PscError::Userinfo(_) => true,
            _ => false,
        }
    }
}

/// What a login in progress must remember between [`ProSanteConnect::begin`] and
/// [`ProSanteConnect::finish`] (kept in the
/// browser's login state, server side).
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The `state` sent with the authorization request (RFC 6749 §4.1.1).
    pub state: String,
    /// The `nonce` the ID token must carry (OIDC Core §3.1.2.1).
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636 §4.1).
    pub pkce_verifier: String,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pending { .. }")
    }
}

impl Pending {
    /// RFC 6749 §10.12: the callback's `state` must be the one sent; compared in constant time.
    pub fn check_state(&self, state: &str) -> Result<(), PscError> {
        if bool::from(self.state.as_bytes().ct_eq(state.as_bytes())) { Ok(()) } else { Err(PscError::StateMismatch) }
    }
}

/// A professional PSC authenticated, with what PSC says about them.
#[derive(Clone, Debug)]
pub struct PscLogin {
    /// The ID token as received (the `id_token_hint` of PSC's logout).
    pub id_token: String,
    /// PSC's `sub` for this professional.
    pub sub: String,
    /// `SubjectNameID`: the idNat_PS to link the local identity by.
    pub idnat: String,
    /// Given name, as PSC asserts it.
    pub given_name: Option<String>,
    /// Family name, as PSC asserts it.
    pub family_name: Option<String>,
    /// The ID token's `acr`.
    pub acr: Option<String>,
    /// The ID token's `amr` (PSC's values are not public: map them through config).
    pub amr: Vec<String>,
    /// The ID token's `auth_time` (PSC's session, not this login).
    pub auth_time: Option<i64>,
    /// Profession, specialty and idNat as PSC asserts them.
    pub professional: crate::ProfessionalClaims,
    /// The userinfo claims as received (verified when signed).
    pub userinfo: Value,
}

/// One kind of exchange with PSC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpHealth {
    /// Unix time of the last success.
    pub last_success_at: Option<i64>,
    /// Unix time of the last failure.
    pub last_error_at: Option<i64>,
    /// The last failure, in plain words.
    pub last_error: Option<String>,
    /// The last failure's [`PscError::code`].
    pub last_error_code: Option<&'static str>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Duration of the last exchange, success or not.
    pub last_latency_ms: Option<u64>,
    /// Exchanges since start.
    pub requests: u64,
    /// Failed exchanges since start.
    pub failures: u64,
}

/// A snapshot of PSC's health (no I/O to take it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PscHealth {
    /// Fetches of the discovery document.
    pub discovery: OpHealth,
    /// Fetches of the JWKS.
    pub jwks: OpHealth,
    /// Code exchanges at the token endpoint.
    pub token: OpHealth,
    /// Userinfo requests.
    pub userinfo: OpHealth,
    /// Unix time the cached metadata were fetched, if any are cached.
    pub metadata_fetched_at: Option<i64>,
    /// Unix time the cached JWKS was fetched, if one is cached.
    pub jwks_fetched_at: Option<i64>,
}

impl PscHealth {
    /// Whether the last exchange of every kind that was tried succeeded.
    pub fn is_up(&self) -> bool {
        [&self.discovery, &self.jwks, &self.token, &self.userinfo].iter().all(|o| o.consecutive_failures == 0)
    }

    /// The record of one kind of exchange.
    pub fn op(&self, op: Op) -> &OpHealth {
        match op {
            Op::Discovery => &self.discovery,
            Op::Jwks => &self.jwks,
            Op::Token => &self.token,
            Op::Userinfo => &self.userinfo,
        }
    }
}
