//! The admin JSON API of cards, under `/admin/api/`: what the admin page does, for scripts and
//! the `vigie cards …` CLI. Bearer token with the `cards` role and the scope each call names;
//! errors as RFC 9457 problem+json.
//!
//! - `GET  /admin/api/identities?q=…[&limit=…]`       agents by name, matricule or idNat   `cards:read`
//! - `GET  /admin/api/identities/{id}/cards`          an agent's cards, newest first       `cards:read`
//! - `POST /admin/api/cards`                          `{identity_id, kind, status?, comment?}` → 201  `cards:write`
//! - `GET  /admin/api/cards/{id}`                     a card                               `cards:read`
//! - `POST /admin/api/cards/{id}/status`              `{status, comment?}`                 `cards:write`
//! - `POST /admin/api/cards/{id}/bind`                `{certificate_pem, identity_id?}`    `cards:bind`
//!   (the card is pending until its holder presents it: see `actions::Presence::CertificateOnly`)
//! - `GET  /admin/api/cards/{id}/events`              its history, oldest first            `cards:read`
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::cards::{Card, CardStatus};
use vigie_core::roles::Scope;

use super::actions::{self, ActionError};
use super::auth::{self, Admin, EndingParts, Gate, GateParts};
use crate::account::notices::Added;
use crate::admin::bad_request;
use crate::mail::Mailroom;
use crate::state::{Part, Upstreams};
use crate::web::http::problem;

/// Longest id (agent, card) accepted.
pub const MAX_ID_CHARS: usize = 64;
/// Longest comment accepted, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Longest certificate PEM accepted (a card certificate and its chain are a few KiB).
pub const MAX_PEM_BYTES: usize = 16 * 1024;
/// Most search results returned.
pub const MAX_LIMIT: usize = 100;

/// `POST /admin/api/cards`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCard {
    pub identity_id: String,
    /// `cps` or `cpe`.
    pub kind: String,
    /// `requested` (default), `ordered` or `received`.
    pub status: Option<String>,
    pub comment: Option<String>,
}

/// `POST /admin/api/cards/{id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: String,
    pub comment: Option<String>,
}

/// `POST /admin/api/cards/{id}/bind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindCard {
    /// The card's authentication certificate, PEM (optionally followed by its CA chain).
    pub certificate_pem: String,
    /// The agent the caller means to bind to: checked against the card record's.
    pub identity_id: Option<String>,
    /// Refused when the names differ: an override needs the card in the reader (the admin page).
    pub override_reason: Option<String>,
}

/// A JSON body of type `T`, with a message naming what is wrong.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.is_empty() {
        return Err("the request body is empty: send a JSON object".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("the request body is not the expected JSON: {e}"))
}

/// An id from a path or body: 1 to 64 printable ASCII characters.
pub fn check_id(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > MAX_ID_CHARS || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("the {what} must be 1 to {MAX_ID_CHARS} printable ASCII characters"));
    }
    Ok(())
}

/// A card kind: `cps` or `cpe`.
pub fn check_kind(s: &str) -> Result<(), String> {
    match s {
        "cps" | "cpe" => Ok(()),
        other => {
            Err(format!("`kind` must be \"cps\" or \"cpe\", found {:?}", other.chars().take(20).collect::<String>()))
        }
    }
}

/// A comment or reason: at most `max` characters.
pub fn check_text(what: &str, s: Option<&str>, max: usize) -> Result<(), String> {
    match s {
        Some(s) if s.chars().count() > max => Err(format!("the {what} is longer than {max} characters")),
        _ => Ok(()),
    }
}

/// A status label, or a message listing them.
pub fn parse_status(s: &str) -> Result<CardStatus, String> {
    CardStatus::parse(s).ok_or_else(|| {
        let all: Vec<&str> = CardStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status {:?}: expected one of {}", s.chars().take(30).collect::<String>(), all.join(", "))
    })
}

/// The DER certificates of a PEM text, leaf first.
pub fn pem_chain(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if pem.len() > MAX_PEM_BYTES {
        return Err(format!("the certificate PEM is longer than {MAX_PEM_BYTES} bytes"));
    }
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate PEM is malformed: {e}"))?;
    if chain.is_empty() {
        return Err("no `-----BEGIN CERTIFICATE-----` block in certificate_pem".into());
    }
    Ok(chain)
}

/// A card as the API shows it: the record, its fingerprint, and what may happen next.
#[derive(Serialize)]
pub struct CardView<'a> {
    #[serde(flatten)]
    pub card: &'a Card,
    pub fingerprint: Option<String>,
    pub allows_login: bool,
    /// Bound without being read: logs in once its holder presents it.
    pub pending_presentation: bool,
    /// Statuses it may be moved to (`handed_over` comes by binding).
    pub next: Vec<&'static str>,
}

impl<'a> CardView<'a> {
    pub fn of(card: &'a Card) -> Self {
        CardView {
            card,
            fingerprint: card.fingerprint(),
            allows_login: card.status.allows_login(),
            pending_presentation: card.pending_presentation(),
            next: card.status.next().iter().map(|s| s.as_str()).collect(),
        }
    }
}

fn error(e: ActionError) -> HttpResponse {
    match &e {
        ActionError::NotFound(m) => problem(StatusCode::NOT_FOUND, "Not found", m),
        ActionError::Refused(m) => problem(StatusCode::CONFLICT, "Refused", m),
        ActionError::Unavailable(m) => {
            // The cause names hosts and SQL: the log has it, the caller gets what to do.
            tracing::error!(error = %m, "admin API: the directory failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Directory unavailable",
                "the directory database cannot be reached or is too slow: retry after the delay of `Retry-After`",
            )
        }
        ActionError::NamesDiffer(d) => {
            HttpResponse::build(StatusCode::CONFLICT).content_type("application/problem+json").json(
                // RFC 9457 §3.2: extension members carry what a client needs to act.
                json!({
                    "type": "about:blank", "title": "Names differ", "status": 409,
                    "detail": format!(
                        "the names on the card ({} {}) are not the agent's ({} {}): check that this is the agent's \
                         card; to bind it anyway (e.g. a married name), bind it with the card in the reader",
                        d.card.1, d.card.0, d.agent.1, d.agent.0
                    ),
                    "card_names": { "surname": d.card.0, "given_name": d.card.1 },
                    "agent_names": { "family_name": d.agent.0, "given_name": d.agent.1 },
                    "override": "with the card in the reader only: bind it on the admin page (/admin/cards), giving the reason there",
                }),
            )
        }
    }
}

async fn admin(req: &HttpRequest, gate: &Gate<'_>, scope: Scope) -> Result<Admin, HttpResponse> {
    auth::require_token(req, gate, scope).await
}

fn path_id(req: &HttpRequest, what: &str) -> Result<String, String> {
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    check_id(what, &id)?;
    Ok(id)
}

/// `GET /admin/api/identities?q=…&limit=…`
pub async fn search(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(admin(&req, &gate, Scope::CardsRead).await);
    let params = try_or!(crate::web::http::parse_params(req.query_string().as_bytes()).map_err(|m| bad_request(&m)));
    let q = params.get("q").unwrap_or_default();
    if q.chars().count() > 100 {
        return bad_request("the search `q` is longer than 100 characters");
    }
    let limit = match params.get("limit").map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad_request(&format!("`limit` must be an integer from 1 to {MAX_LIMIT}")),
    };
    match gate.ports.search.search_identities(q, limit).await {
        Ok(found) => HttpResponse::Ok().json(json!({ "identities": found })),
        Err(e) => error(e.into()),
    }
}

/// `GET /admin/api/identities/{id}/cards`
pub async fn cards_of(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(admin(&req, &gate, Scope::CardsRead).await);
    let id = try_or!(path_id(&req, "agent id").map_err(|m| bad_request(&m)));
    match gate.ports.directory.identity(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(ActionError::NotFound(format!("there is no agent with id {id:?}"))),
        Err(e) => return error(e.into()),
    }
    match gate.ports.cards.cards_of(&id).await {
        Ok(cards) => HttpResponse::Ok().json(json!({ "cards": cards.iter().map(CardView::of).collect::<Vec<_>>() })),
        Err(e) => error(e.into()),
    }
}

/// `POST /admin/api/cards`
pub async fn create(req: HttpRequest, parts: GateParts, body: web::Bytes) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = try_or!(admin(&req, &gate, Scope::CardsWrite).await);
    let new: NewCard = try_or!(parse_body(&body).map_err(|m| bad_request(&m)));
    let checked = check_id("identity_id", &new.identity_id)
        .and_then(|()| check_kind(&new.kind))
        .and_then(|()| check_text("comment", new.comment.as_deref(), MAX_COMMENT_CHARS))
        .and_then(|()| new.status.as_deref().map(parse_status).transpose());
    let status = try_or!(checked.map_err(|m| bad_request(&m))).unwrap_or(CardStatus::Requested);
    let office = actions::Office::of(&gate, &admin);
    match actions::create(&office, &new.identity_id, &new.kind, status, new.comment.as_deref()).await {
        Ok(card) => HttpResponse::Created().json(CardView::of(&card)),
        Err(e) => error(e),
    }
}

/// `GET /admin/api/cards/{id}`
pub async fn card(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(admin(&req, &gate, Scope::CardsRead).await);
    let id = try_or!(path_id(&req, "card id").map_err(|m| bad_request(&m)));
    match actions::card(gate.ports, &id).await {
        Ok(card) => HttpResponse::Ok().json(CardView::of(&card)),
        Err(e) => error(e),
    }
}

/// `POST /admin/api/cards/{id}/status`
pub async fn status(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = try_or!(admin(&req, &gate, Scope::CardsWrite).await);
    let id = try_or!(path_id(&req, "card id").map_err(|m| bad_request(&m)));
    let change: StatusChange = try_or!(parse_body(&body).map_err(|m| bad_request(&m)));
    try_or!(check_text("comment", change.comment.as_deref(), MAX_COMMENT_CHARS).map_err(|m| bad_request(&m)));
    let to = try_or!(parse_status(&change.status).map_err(|m| bad_request(&m)));
    match actions::change_status(gate.ending(&end), &admin, &gate.caller, &id, to, change.comment.as_deref()).await {
        Ok((card, ended)) => {
            let mut v = serde_json::to_value(CardView::of(&card)).unwrap_or_default();
            v["sessions_ended"] = json!(ended);
            HttpResponse::Ok().json(v)
        }
        Err(e) => error(e),
    }
}

/// `POST /admin/api/cards/{id}/bind`
pub async fn bind(req: HttpRequest, parts: GateParts, upstreams: Part<Upstreams>, body: web::Bytes) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = try_or!(admin(&req, &gate, Scope::CardsBind).await);
    let id = try_or!(path_id(&req, "card id").map_err(|m| bad_request(&m)));
    let b: BindCard = try_or!(parse_body(&body).map_err(|m| bad_request(&m)));
    let checked = check_text("override_reason", b.override_reason.as_deref(), actions::MAX_REASON_CHARS)
        .and_then(|()| b.identity_id.as_deref().map_or(Ok(()), |i| check_id("identity_id", i)))
        .and_then(|()| pem_chain(&b.certificate_pem));
    let chain = try_or!(checked.map_err(|m| bad_request(&m)));
    let record = match actions::card(gate.ports, &id).await {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    if let Some(agent) = &b.identity_id
        && *agent != record.identity_id
    {
        return error(ActionError::Refused(format!(
            "card {id} is recorded for agent {}, not {agent}: pick the agent's own card record",
            record.identity_id
        )));
    }
    let presented = match crate::login::cps::validate::validate_chain(
        crate::login::cps::validate::CardCheck::new(&upstreams, &gate.config.cards, gate.audit),
        &chain,
    )
    .await
    {
        Ok(p) => p,
        Err(p) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Card certificate not accepted",
                &format!("{} ({})", p.message, p.code),
            );
        }
    };
    let reason = b.override_reason.as_deref();
    let office = actions::Office::of(&gate, &admin);
    let unchecked = vigie_core::audit::AuditEvent {
        subject: Some(record.identity_id.clone()),
        actor: Some(admin.actor.clone()),
        ..Default::default()
    };
    presented.audit_unchecked(gate.audit, &gate.caller, unchecked);
    match actions::bind(&office, &id, &presented, reason, actions::Presence::CertificateOnly).await {
        Ok(card) => {
            let mail = Mailroom::new(&parts.config, &parts.ports, &upstreams, &parts.audit);
            crate::account::notices::credential_added(mail, &gate.caller, &card.identity_id, Added::card(&card));
            HttpResponse::Ok().json(CardView::of(&card))
        }
        Err(e) => error(e),
    }
}

/// `GET /admin/api/cards/{id}/events`
pub async fn events(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(admin(&req, &gate, Scope::CardsRead).await);
    let id = try_or!(path_id(&req, "card id").map_err(|m| bad_request(&m)));
    if let Err(e) = actions::card(gate.ports, &id).await {
        return error(e);
    }
    match gate.ports.cards.events(&id).await {
        Ok(events) => HttpResponse::Ok().json(json!({ "events": events })),
        Err(e) => error(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bodies_are_parsed_strictly_with_precise_messages() {
        let ok: NewCard = parse_body(br#"{"identity_id":"a","kind":"cps"}"#).unwrap();
        assert_eq!((ok.identity_id.as_str(), ok.kind.as_str(), ok.status), ("a", "cps", None));
        let unknown = parse_body::<NewCard>(br#"{"identity_id":"a","kind":"cps","owner":"x"}"#).unwrap_err();
        assert!(unknown.contains("unknown field `owner`"), "{unknown}");
        assert!(parse_body::<StatusChange>(b"").unwrap_err().contains("empty"));
        assert!(parse_body::<StatusChange>(br#"{"comment":"x"}"#).unwrap_err().contains("missing field `status`"));
        assert!(parse_status("perdue").unwrap_err().contains("lost, stolen"));
        assert!(check_kind("cps").is_ok() && check_kind("CPS").unwrap_err().contains("\"cpe\""));
        assert_eq!(parse_status("stolen"), Ok(CardStatus::Stolen));
        assert!(check_id("card id", "").is_err() && check_id("card id", "a b").is_err());
        assert!(check_id("card id", &"x".repeat(65)).is_err() && check_id("card id", "0193-ab").is_ok());
        assert!(check_text("comment", Some(&"é".repeat(1001)), MAX_COMMENT_CHARS).is_err());
        assert!(pem_chain("hello").unwrap_err().contains("BEGIN CERTIFICATE"));
        assert!(pem_chain(&"A".repeat(MAX_PEM_BYTES + 1)).unwrap_err().contains("longer"));
    }

    #[test]
    fn a_pem_chain_reads_leaf_first() {
        let key = rcgen::KeyPair::generate().unwrap();
        let a = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap().self_signed(&key).unwrap();
        let b = rcgen::CertificateParams::new(vec!["b.test".into()]).unwrap().self_signed(&key).unwrap();
        let chain = pem_chain(&format!("{}{}", a.pem(), b.pem())).unwrap();
        assert_eq!(chain, vec![a.der().to_vec(), b.der().to_vec()]);
    }

    proptest! {
        #[test]
        fn body_parsers_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_body::<NewCard>(&raw);
            let _ = parse_body::<StatusChange>(&raw);
            let _ = parse_body::<BindCard>(&raw);
        }

        #[test]
        fn pem_parser_never_panics(s in "(-----BEGIN CERTIFICATE-----\n)?[A-Za-z0-9+/=\n]{0,300}(-----END CERTIFICATE-----\n)?") {
            let _ = pem_chain(&s);
        }

        #[test]
        fn accepted_ids_are_short_printable_ascii(s in "\\PC{0,80}") {
            if check_id("id", &s).is_ok() {
                prop_assert!(!s.is_empty() && s.len() <= MAX_ID_CHARS && s.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
