//! How a sponsor (`/sponsorship`) or a person enrolling questions (`/account/questions`) signs in:
//! through Vigie's own authorization endpoint, as the built-in client [`CLIENT_ID`].
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::config::Config;
use crate::state::Part;

/// The built-in public client through which `/sponsorship` and `/account/questions` sign people
/// in (its code is never redeemed: the SSO session the login leaves is what these pages use),
/// added to the registered clients unless one is configured with this id.
pub const CLIENT_ID: &str = "vigie-sponsorship";

/// The pages a sign-in through [`CLIENT_ID`] comes back to.
const RETURNS: [&str; 2] = ["/sponsorship", "/account/questions"];

/// The built-in client of these pages.
pub fn builtin_client(config: &crate::config::Config) -> Option<crate::config::ClientConfig> {
    crate::web::own_pages::builtin_client(config, CLIENT_ID, "Vigie — parrainage / sponsorship", &RETURNS)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    to: Option<String>,
}

/// `GET /sponsorship/login[?to=questions]`: signs in through the authorization endpoint with a
/// card or a key (a phishing-resistant `acr`, a fresh login past `sponsor_max_auth_age_secs`),
/// then comes back to the page.
pub async fn sign_in(config: Part<Config>, q: web::Query<SignInQuery>) -> HttpResponse {
    let (back, max_age) = match q.to.as_deref() {
        Some("questions") => (RETURNS[1], config.sponsorship.enrol_max_auth_age_secs),
        _ => (RETURNS[0], config.sponsorship.sponsor_max_auth_age_secs),
    };
    crate::web::own_pages::sign_in(&config, CLIENT_ID, back, max_age)
}
