//! `/admin/cards`: the card page of HR and medical affairs, server-rendered, French first (English
//! with `?lang=en`), no JavaScript. Search an agent, see their cards and each card's history,
//! record a card, change a status with a comment, and bind the card in the reader after comparing
//! the names on it with the agent's. Every form carries the session's CSRF token. The handlers
//! are here, the HTML in [`render`].
pub(crate) mod render;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::AuditEvent;
use vigie_core::roles::Role;

use super::actions::{self, ActionError};
use super::auth::{self, Admin, EndingParts, Gate, GateParts};
use crate::account::notices::Added;
use crate::admin::shell::{self, Console};
use crate::config::Config;
use crate::login::cps::validate::{self, CardCheck, CardProblem, PresentedCard};
use crate::mail::Mailroom;
use crate::state::{Part, Ports, Upstreams};
use crate::web::http::{esc, parse_params};
use crate::web::pages::{lang, tr};
use render::{agent_header, bind_view, card_section, done_message, nav, new_card_form, page, results, search_form};
pub use render::{message, role_missing, sign_in_needed, strong_login_needed};

/// The built-in public client through which the admin page signs people in (its code is never
/// redeemed: the SSO session the login leaves is what the page uses).
pub const CLIENT_ID: &str = "vigie-admin";
const PATH: &str = "/admin/cards";

/// `GET /admin/login`: signs in through the authorization endpoint as the built-in client, then
/// comes back to the page. Administration needs a phishing-resistant MIE used within 15 minutes
/// (default policy `administer-*`): it asks for exactly that.
/// `?back=` names another console page to come back to (`admin::shell::login`).
pub async fn login(req: HttpRequest, config: Part<Config>) -> HttpResponse {
    super::shell::login(req, config).await
}

/// The client the page signs in through, added to the registered clients unless configured.
pub fn builtin_client(config: &crate::config::Config) -> Option<crate::config::ClientConfig> {
    crate::web::own_pages::builtin_client(
        config,
        CLIENT_ID,
        "Vigie — gestion des cartes / card management",
        &[PATH, super::people::page::PATH, super::audit_page::PATH, super::feeds::page::PATH],
    )
}

/// The agent's page: their cards, each with its history and forms.
async fn agent_page(
    req: &HttpRequest,
    ports: &Ports,
    admin: &Admin,
    agent_id: &str,
    notice: Option<(&str, bool)>,
    status: StatusCode,
) -> HttpResponse {
    let l = lang(req, None);
    let agent = match ports.directory.identity(agent_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return message(req, StatusCode::NOT_FOUND, tr(l, "Agent inconnu.", "Unknown agent."), true),
        // The directory's error stays in the log (with the request id the page shows).
        Err(e) => return crate::web::pages::unavailable(req, &e),
    };
    let cards = match ports.cards.cards_of(&agent.id).await {
        Ok(c) => c,
        // The directory's error stays in the log (with the request id the page shows).
        Err(e) => return crate::web::pages::unavailable(req, &e),
    };
    let csrf = admin.csrf().unwrap_or_default();
    let mut sections = String::new();
    for card in &cards {
        let events = ports.cards.events(&card.id).await.unwrap_or_default();
        sections.push_str(&card_section(l, &agent, card, &events, &csrf));
    }
    if cards.is_empty() {
        sections =
            format!("<p>{}</p>", tr(l, "Aucune carte suivie pour cet agent.", "No card tracked for this agent."));
    }
    let notice = match notice {
        Some((text, true)) => format!(r#"<p class="error" role="alert" id="notice">{}</p>"#, esc(text)),
        Some((text, false)) => format!(r#"<p role="status" id="notice">{}</p>"#, esc(text)),
        None => String::new(),
    };
    let main = format!(
        "{notice}{header}{sections}{new}<p><a href=\"{PATH}\">{back}</a></p>",
        header = agent_header(l, &agent),
        new = new_card_form(l, &agent, &csrf),
        back = tr(l, "Rechercher un autre agent", "Find another agent"),
    );
    page(&nav(admin), l, status, tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &main)
}

/// `GET /admin/cards[?q=…|?agent=…]`
pub async fn get(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let Console { gate, admin, l, params } = match shell::open(&req, &parts, PATH, Role::Cards, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(agent) = params.get("agent") {
        let notice = params.get("done").and_then(|d| done_message(l, d)).map(|m| (m, false));
        return agent_page(&req, gate.ports, &admin, agent, notice, StatusCode::OK).await;
    }
    let q = params.get("q").unwrap_or_default();
    let mut main = search_form(l, q);
    if !q.is_empty() {
        match gate.ports.search.search_identities(q, 50).await {
            Ok(found) => main.push_str(&results(l, &found)),
            Err(e) => main.push_str(&format!(r#"<p class="error" role="alert">{}</p>"#, esc(&e.to_string()))),
        }
    } else {
        // What HR awaits from the ANS or the card provider (issue 17).
        match gate.ports.lifecycle.card_orders(Some("ordered"), None).await {
            Ok(open) => main.push_str(&super::cards_orders::open_section(l, &open)),
            Err(e) => main.push_str(&format!(r#"<p class="error" role="alert">{}</p>"#, esc(&e.to_string()))),
        }
    }
    page(&nav(&admin), l, StatusCode::OK, tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &main)
}

/// The form's fields after the CSRF check, or the refusal.
fn form(admin: &Admin, req: &HttpRequest, body: &[u8]) -> Result<crate::web::http::Params, Box<HttpResponse>> {
    let params = parse_params(body)
        .map_err(|m| Box::new(message(req, StatusCode::BAD_REQUEST, &format!("bad form: {m}"), true)))?;
    if !admin.check_csrf(params.get("csrf")) {
        let l = lang(req, None);
        return Err(Box::new(message(
            req,
            StatusCode::FORBIDDEN,
            tr(
                l,
                "Ce formulaire a expiré ou ne vient pas de cette page. Rechargez la page et recommencez.",
                "This form has expired or does not come from this page. Reload the page and try again.",
            ),
            true,
        )));
    }
    Ok(params)
}

/// The administrator and the fields of the form they posted, or the page refusing either.
async fn posted(
    req: &HttpRequest,
    gate: &Gate<'_>,
    body: &[u8],
) -> Result<(Admin, crate::web::http::Params), Box<HttpResponse>> {
    let admin = auth::require_staff(req, gate, Role::Cards).await.map_err(Box::new)?;
    let params = form(&admin, req, body)?;
    Ok((admin, params))
}

fn back_to(agent: &str, done: &str) -> HttpResponse {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("agent", agent)
        .append_pair("done", done)
        .finish();
    HttpResponse::SeeOther().insert_header((header::LOCATION, format!("{PATH}?{q}"))).finish()
}

fn action_status(e: &ActionError) -> StatusCode {
    match e {
        ActionError::NotFound(_) => StatusCode::NOT_FOUND,
        ActionError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::CONFLICT,
    }
}

/// `POST /admin/cards/create`
pub async fn create(req: HttpRequest, parts: GateParts, body: web::Bytes) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let (admin, p) = match posted(&req, &gate, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let agent = p.get("agent").unwrap_or_default().to_owned();
    let status = match super::api::parse_status(p.get("status").unwrap_or("requested")) {
        Ok(s) => s,
        Err(m) => return message(&req, StatusCode::BAD_REQUEST, &m, true),
    };
    let kind = p.get("kind").unwrap_or_default();
    let office = actions::Office::of(&gate, &admin);
    match actions::create(&office, &agent, kind, status, p.get("comment")).await {
        Ok(_) => back_to(&agent, "created"),
        Err(e) => {
            let text = e.to_string();
            agent_page(&req, gate.ports, &admin, &agent, Some((&text, true)), action_status(&e)).await
        }
    }
}

/// `POST /admin/cards/status`
pub async fn status(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let (admin, p) = match posted(&req, &gate, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let card_id = p.get("card").unwrap_or_default();
    let to = match super::api::parse_status(p.get("status").unwrap_or_default()) {
        Ok(s) => s,
        Err(m) => return message(&req, StatusCode::BAD_REQUEST, &m, true),
    };
    match actions::change_status(gate.ending(&end), &admin, &gate.caller, card_id, to, p.get("comment")).await {
        Ok((card, _)) => back_to(&card.identity_id, if to.ends_sessions() { "ended" } else { "status" }),
        Err(e) => {
            let agent = p.get("agent").unwrap_or_default();
            let text = e.to_string();
            agent_page(&req, gate.ports, &admin, agent, Some((&text, true)), action_status(&e)).await
        }
    }
}

/// The card in the reader: the one presented on this connection, validated.
async fn card_in_reader(
    req: &HttpRequest,
    gate: &Gate<'_>,
    upstreams: &Upstreams,
) -> Result<Option<PresentedCard>, CardProblem> {
    let check = CardCheck::new(upstreams, &gate.config.cards, gate.audit);
    validate::presented(check, &crate::web::tls::ClientCertChain::of(req, &gate.config.cards), &gate.caller).await
}

/// `GET /admin/cards/bind?card=…`: the card in the reader next to the agent, and the form.
pub async fn bind_get(req: HttpRequest, parts: GateParts, upstreams: Part<Upstreams>) -> HttpResponse {
    let (gate, admin, l) = match shell::operator(&req, &parts, Role::Cards).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    let record = match actions::card(gate.ports, params.get("card").unwrap_or_default()).await {
        Ok(c) => c,
        Err(e) => return message(&req, action_status(&e), &e.to_string(), true),
    };
    let agent = match gate.ports.directory.identity(&record.identity_id).await {
        Ok(Some(a)) => a,
        _ => return message(&req, StatusCode::NOT_FOUND, tr(l, "Agent inconnu.", "Unknown agent."), true),
    };
    let title = tr(l, "Associer une carte", "Bind a card");
    let retry = format!(
        r#"<p><a class="button" href="/admin/cards/bind?card={id}">{again}</a></p><p><a href="{PATH}?agent={agent}">{back}</a></p>"#,
        id = esc(&record.id),
        agent = esc(&agent.id),
        again = tr(l, "Relire la carte", "Read the card again"),
        back = tr(l, "Retour à l'agent", "Back to the agent"),
    );
    let presented = match card_in_reader(&req, &gate, &upstreams).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let main = format!(
                r#"{header}<p role="alert">{text}</p>{retry}"#,
                header = agent_header(l, &agent),
                text = tr(
                    l,
                    "Aucune carte lue. Insérez la carte de l'agent dans le lecteur, puis relisez-la ; le navigateur demande le code PIN de la carte ou le choix du certificat.",
                    "No card was read. Put the agent's card in the reader, then read it again; the browser asks for the card's PIN or which certificate to use."
                ),
            );
            return page(&nav(&admin), l, StatusCode::OK, title, &main);
        }
        Err(p) => {
            let main =
                format!(r#"{}<p class="error" role="alert">{}</p>{retry}"#, agent_header(l, &agent), esc(&p.message));
            return page(&nav(&admin), l, StatusCode::UNPROCESSABLE_ENTITY, title, &main);
        }
    };
    let csrf = admin.csrf().unwrap_or_default();
    let check = actions::coherence(&record.kind, &presented.identity.subject, &agent);
    let main = format!(
        "{}{}{retry}",
        agent_header(l, &agent),
        bind_view(l, &agent, &record, &presented.identity.subject, &check, &csrf)
    );
    page(&nav(&admin), l, StatusCode::OK, title, &main)
}

/// `POST /admin/cards/bind`: binds the card presented on this connection.
pub async fn bind_post(
    req: HttpRequest,
    parts: GateParts,
    upstreams: Part<Upstreams>,
    body: web::Bytes,
) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let (admin, p) = match posted(&req, &gate, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let l = lang(&req, None);
    let card_id = p.get("card").unwrap_or_default();
    let presented = match card_in_reader(&req, &gate, &upstreams).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return message(
                &req,
                StatusCode::CONFLICT,
                tr(
                    l,
                    "La carte n'est plus lue : remettez-la dans le lecteur.",
                    "The card is no longer read: put it back in the reader.",
                ),
                true,
            );
        }
        Err(e) => return message(&req, StatusCode::UNPROCESSABLE_ENTITY, &e.message, true),
    };
    let office = actions::Office::of(&gate, &admin);
    let bound =
        actions::bind(&office, card_id, &presented, p.get("override_reason"), actions::Presence::InReader).await;
    let subject = bound.as_ref().ok().map(|card| card.identity_id.clone());
    let unchecked = AuditEvent { subject, actor: Some(admin.actor.clone()), ..Default::default() };
    presented.audit_unchecked(gate.audit, &gate.caller, unchecked);
    match bound {
        Ok(card) => {
            let mail = Mailroom::new(&parts.config, &parts.ports, &upstreams, &parts.audit);
            crate::account::notices::credential_added(mail, &gate.caller, &card.identity_id, Added::card(&card));
            back_to(&card.identity_id, "bound")
        }
        Err(e) => message(&req, action_status(&e), &e.to_string(), true),
    }
}
