//! What can go wrong talking to Pro Santé Connect, with a stable `code()` per case for pages,
//! audit lines, metrics and the health monitor.
use crate::claims::ClaimsError;
use std::fmt;

/// One kind of exchange with PSC, as named in metrics and in [`crate::PscHealth`].
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
    Unreachable { op: Op, detail: String },
    /// The discovery document or the JWKS is not what OIDC Discovery requires.
    #[error("Pro Santé Connect's metadata are unusable: {0}")]
    BadMetadata(String),
    /// The token endpoint refused the code or answered something unreadable.
    #[error("Pro Santé Connect's token endpoint refused the exchange: {detail}")]
    Token { status: Option<u16>, detail: String },
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

impl From<ClaimsError> for PscError {
    fn from(e: ClaimsError) -> Self {
        match e {
            ClaimsError::NoIdnat => PscError::NoIdnat,
            other => PscError::Userinfo(other.to_string()),
        }
    }
}
