//! The admin console for people (issue 17): search, a person's page (identity and its source,
//! status and dates, units, roles, MIEs, live sessions, life-cycle events) and ending their
//! sessions — the page `/admin/people` ([`page`]), its JSON API ([`api`]), its CLI (`vigie people`).
//! Who gets in: `admin::auth` (the `administer` policy), as for the cards.
pub mod actions;
pub mod api;
pub mod confirm;
pub mod page;
pub mod recent;

use actix_web::web;
use serde::Serialize;
use vigie_core::cards::Card;
use vigie_directory_sql::people::PersonRecord;

use crate::admin::actions::ActionError;
use crate::state::Ports;
use actions::LiveSession;

/// The console's routes: the page, its forms, the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(page::PATH, web::get().to(page::get))
        .route("/admin/people/login", crate::admin::shell::login_route(page::PATH))
        .route("/admin/people/sessions/end", web::post().to(page::end_sessions))
        .route("/admin/api/people", web::get().to(api::search))
        .route("/admin/api/people/{id}", web::get().to(api::show))
        .route("/admin/api/people/{id}/sessions/end", web::post().to(api::end_sessions));
}

/// One dated thing that happened to a person, read from the directory's tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LifeEvent {
    /// When (RFC 3339).
    pub at: String,
    /// `identity_created`, `card`, `key_registered`, `sponsorship`, `rpps_confirmed`,
    /// `access_ended`.
    pub what: &'static str,
    /// What it was about, for a person to read.
    pub detail: String,
    /// Who did it, when the table says.
    pub by: Option<String>,
}

/// A person as the console shows them: the record, their cards, live sessions, events.
pub struct Whole {
    pub record: PersonRecord,
    pub cards: Vec<Card>,
    /// Card orders made for the person as a joiner (issue 17), newest first.
    pub orders: Vec<vigie_directory_sql::card_orders::CardOrder>,
    pub sessions: Vec<LiveSession>,
    pub events: Vec<LifeEvent>,
}

/// Everything the console shows of the person `id`.
pub async fn whole(ports: &Ports, id: &str) -> Result<Whole, ActionError> {
    let record = actions::person(ports, id).await?;
    let cards = ports.cards.cards_of(id).await?;
    let mut card_events = Vec::new();
    for card in &cards {
        for e in ports.cards.events(&card.id).await? {
            card_events.push((card.kind.to_uppercase(), e));
        }
    }
    let sessions = actions::live_sessions(ports, id).await?;
    let events = events(&record, &card_events);
    let orders = ports.lifecycle.card_orders(None, Some(id)).await?;
    Ok(Whole { record, cards, orders, sessions, events })
}

/// The person's history from the directory's tables, newest first.
pub fn events(r: &PersonRecord, cards: &[(String, vigie_core::cards::CardEvent)]) -> Vec<LifeEvent> {
    let mut out = vec![LifeEvent {
        at: r.created_at.clone(),
        what: "identity_created",
        detail: format!("source: {}", r.sources.join(", ")),
        by: None,
    }];
    out.extend(cards.iter().map(|(kind, e)| LifeEvent {
        at: e.at.clone(),
        what: "card",
        detail: format!(
            "{kind} {}{}",
            e.status.as_str(),
            e.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
        ),
        by: Some(e.by.clone()),
    }));
    out.extend(r.keys.iter().map(|k| LifeEvent {
        at: k.created_at.clone(),
        what: "key_registered",
        detail: k.name.clone(),
        by: None,
    }));
    out.extend(r.sponsorships.iter().map(|s| LifeEvent {
        at: s.created_at.clone(),
        what: "sponsorship",
        detail: format!("{} ({}): {}", s.direction, s.other, s.reason),
        by: None,
    }));
    if let Some(l) = &r.rpps {
        out.push(LifeEvent {
            at: l.confirmed_at.clone(),
            what: "rpps_confirmed",
            detail: format!("idNat {}", l.idnat),
            by: Some(l.confirmed_by.clone()),
        });
    }
    if let Some(at) = &r.lifecycle_ended {
        out.push(LifeEvent { at: at.clone(), what: "access_ended", detail: r.status.clone(), by: None });
    }
    out.sort_by(|a, b| b.at.cmp(&a.at));
    out
}
