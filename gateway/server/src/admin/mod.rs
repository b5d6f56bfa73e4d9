//! Administration of cards by HR and medical affairs (seeds 000: "the IT department must not
//! hold the cards"): the `/admin/cards` page, the `/admin/api/…` JSON API (its CLI: `cli::cards`);
//! [`fido2`], the API for the security keys of others.
//! [`audit_page`], the page that searches and exports the audit trail.
//! [`auth::require`] decides who gets in, for these and every other admin endpoint.
/// Returns the response an `Err` already is (the JSON APIs' handlers build their refusals first).
macro_rules! try_or {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

pub mod actions;
pub mod api;
pub mod audit_page;
pub mod auth;
pub mod cards_orders;
pub mod config;
pub mod feeds;
pub mod fido2;
pub mod page;
pub mod people;
pub mod shell;

/// The JSON APIs' refusal of a malformed request (RFC 9457 problem details).
pub(crate) fn bad_request(detail: &str) -> actix_web::HttpResponse {
    crate::web::http::problem(actix_web::http::StatusCode::BAD_REQUEST, "Invalid request", detail)
}
