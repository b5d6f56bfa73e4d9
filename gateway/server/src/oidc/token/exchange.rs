//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693) for the DMP in AIR
//! simplifié: the DPI, a confidential client allowed to (`dmp = true`), presents the access token
//! Vigie issued it for a professional and gets a VIHF for one patient (reference
//! `dmp-vihf-cps.md` §1), base64url-encoded as a SAML 2.0 token (RFC 8693 §3).
use serde::Serialize;

use super::{Grant, TokenError};
use crate::config::ClientAuthMethod;
use crate::dmp::{self, Dmp, InsNir, Refusal, Seal, Via};
use crate::oidc::grant::verify_access_token;
use crate::web::http::Params;

/// RFC 8693 §2.1 `grant_type`.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: "Indicates that the token is an OAuth 2.0 access token issued by the given
/// authorization server."
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: "Indicates that the token is a base64url-encoded SAML 2.0 [OASIS.saml-core-2.0-os]
/// assertion."
pub const SAML2_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:saml2";

/// RFC 8693 §2.2.1: the successful response.
#[derive(Serialize)]
pub struct ExchangeResponse {
    /// The VIHF, base64url without padding.
    pub access_token: String,
    pub issued_token_type: &'static str,
    /// RFC 8693 §2.2.1: "If the issued token is not an access token or usable as an access token,
    /// then the token_type value N_A is used to indicate that an OAuth 2.0 token_type identifier
    /// is not applicable in that context."
    pub token_type: &'static str,
    pub expires_in: i64,
}

fn invalid_request(description: impl Into<String>) -> TokenError {
    TokenError::new("invalid_request", description)
}

/// `dmp`: the DMP side, when `dmp.enabled`.
pub async fn exchange(grant: &Grant<'_>, dmp: Option<&Dmp>, params: &Params) -> Result<ExchangeResponse, TokenError> {
    let (client, caller) = (grant.client, grant.caller);
    // RFC 6749 §5.2 unauthorized_client: "The authenticated client is not authorized to use this
    // authorization grant type." Reference EX_AIR-030: callers of the token server authenticate.
    if client.config.auth_method == ClientAuthMethod::None {
        return Err(TokenError::new("unauthorized_client", "a public client cannot exchange tokens for a VIHF"));
    }
    if !client.config.dmp {
        return Err(TokenError::new(
            "unauthorized_client",
            "this client is not allowed to obtain VIHFs for the DMP (`dmp = true` in its registration)",
        ));
    }
    let Some(dmp_side) = dmp else {
        return Err(TokenError::new(
            "temporarily_unavailable",
            "the DMP is not enabled on this gateway (`dmp.enabled`)",
        ));
    };
    // RFC 8693 §2.1: subject_token and subject_token_type are REQUIRED.
    let subject_token = params.get("subject_token").ok_or_else(|| invalid_request("subject_token is missing"))?;
    match params.get("subject_token_type") {
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(other) => {
            return Err(invalid_request(format!(
                "subject_token_type {other:?} is not supported: only {ACCESS_TOKEN_TYPE} (an access token Vigie issued)"
            )));
        }
        None => return Err(invalid_request("subject_token_type is missing")),
    }
    // RFC 8693 §2.1 requested_token_type is OPTIONAL; the VIHF is the one type issued here.
    if let Some(other) = params.get("requested_token_type").filter(|t| *t != SAML2_TOKEN_TYPE) {
        return Err(invalid_request(format!(
            "requested_token_type {other:?} is not supported: only {SAML2_TOKEN_TYPE} (the VIHF)"
        )));
    }
    // Delegation (RFC 8693 §1.1) is not offered: the VIHF names the professional alone.
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Err(invalid_request("actor_token is not supported: the VIHF is issued for the subject alone"));
    }
    // RFC 8693 §2.2.2: "If the authorization server is unwilling or unable to issue a token for all
    // the target services indicated by the resource or audience parameters, the invalid_target
    // error code SHOULD be used".
    for key in ["audience", "resource"] {
        if let Some(t) = params.get(key).filter(|t| *t != "urn:dmp") {
            return Err(TokenError::new(
                "invalid_target",
                format!("{key} {t:?}: a VIHF is only for the DMP (urn:dmp)"),
            ));
        }
    }
    let patient = params.get("patient_ins").ok_or_else(|| {
        invalid_request("patient_ins is missing: the VIHF names the patient (INS-NIR, 15 digits with its key)")
    })?;
    let patient = InsNir::parse(patient).map_err(|e| invalid_request(format!("patient_ins: {e}")))?;
    let purpose = dmp::parse_purpose(&dmp_side.settings, params.get("purpose_of_use")).map_err(invalid_request)?;

    // RFC 8693 §2.2.2: "If the request itself is not valid or if either the subject_token or
    // actor_token are invalid for any reason, or are unacceptable based on policy, the
    // invalid_request error code MUST be used".
    let claims = verify_access_token(grant.issuer, subject_token)
        .await
        .map_err(|e| invalid_request(format!("subject_token is not a valid access token of Vigie: {e}")))?;
    if claims.client_id != client.config.client_id {
        return Err(invalid_request("subject_token was issued to another client"));
    }
    // The professional is asked about as they are now (account, card or key, login policy): a
    // refusal ends the grant of the subject token. RFC 8693 §2.2.2 names the error: a subject
    // token "unacceptable based on policy" is invalid_request.
    let session =
        crate::session::by_sid(grant.issuer.ports.store.as_ref(), &claims.sid).await.map_err(TokenError::internal)?;
    if let Some(session) = session.filter(|s| s.authentication.identity_id == claims.sub) {
        super::recheck::still_allowed(grant, &session.authentication, &claims.gid)
            .await
            .map_err(|e| if e.error == "invalid_grant" { invalid_request(e.description) } else { e })?;
    }
    let seal = Seal { dmp: dmp_side, ports: grant.issuer.ports, policy: grant.policy, audit: grant.audit, caller };
    let vihf = match dmp::vihf_for(seal, &claims, &patient, purpose, Via::TokenExchange).await {
        Ok(v) => v,
        Err(Refusal::Token(m)) => return Err(invalid_request(format!("subject_token: {m}"))),
        // Audited by the token endpoint, beside the policy decision line.
        Err(Refusal::Policy(m)) => return Err(invalid_request(m)),
        Err(Refusal::Unavailable(m)) => {
            crate::oidc::log_internal("token exchange", &m);
            return Err(TokenError::new("temporarily_unavailable", crate::oidc::INTERNAL_ERROR));
        }
        Err(Refusal::Server(m)) => return Err(TokenError::internal(m)),
    };
    use base64::Engine;
    Ok(ExchangeResponse {
        access_token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vihf.xml.as_bytes()),
        issued_token_type: SAML2_TOKEN_TYPE,
        token_type: "N_A",
        expires_in: (vihf.not_on_or_after - crate::now()).max(0),
    })
}
