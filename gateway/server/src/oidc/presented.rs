//! What the introspection (RFC 7662) and revocation (RFC 7009) endpoints share: the client
//! authenticated before anything else, and what the presented token is.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::store::{EphemeralStore, StoreError};

use super::client_auth::{self, Clients};
use super::grant::{self, RefreshRecord, RefreshToken};
use crate::state::Client;
use crate::web::http::{Caller, Params, oauth_error, parse_params};

/// The form body and the client that authenticated with it (RFC 7662 §2.1: "the protected
/// resource MUST also authenticate"; RFC 7009 §2.1: "The authorization server first validates
/// the client credentials").
pub async fn authenticated<'a>(
    req: &HttpRequest,
    body: &[u8],
    clients: Clients<'a>,
    caller: &Caller,
) -> Result<(&'a Client, Params), HttpResponse> {
    let params = parse_params(body).map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e))?;
    match client_auth::authenticate(req, &params, clients, caller).await {
        Ok(client) => Ok((client, params)),
        Err(e) => Err(e.response()),
    }
}

/// A presented token, told apart without a `token_type_hint` (both RFCs make the hint optional).
pub enum Presented<'t> {
    /// Shaped as a JWT, not as a refresh token: an access token if its signature says so.
    AccessToken(&'t str),
    /// A refresh token and its family record, when the family lives.
    Refresh(Option<Box<(RefreshToken<'t>, RefreshRecord)>>),
}

pub async fn lookup<'t>(store: &dyn EphemeralStore, token: &'t str) -> Result<Presented<'t>, StoreError> {
    if RefreshToken::parse(token).is_none() && token.matches('.').count() == 2 {
        return Ok(Presented::AccessToken(token));
    }
    Ok(Presented::Refresh(grant::refresh_family(store, token).await?.map(Box::new)))
}
