//! `/admin/cards`: the card page of HR and medical affairs, server-rendered, French first (English
//! with `?lang=en`), no JavaScript. Search an agent, see their cards and each card's history,
//! record a card, change a status with a comment, and bind the card in the reader after comparing
//! the names on it with the agent's. Every form carries the session's CSRF token.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::cards::{Card, CardEvent, CardStatus};
use vigie_core::directory::Identity;
use vigie_core::roles::Role;

use super::actions::{self, ActionError, Coherence};
use super::auth::{self, Admin, EndingParts, Gate, GateParts};
use crate::account::notices::Added;
use crate::config::Config;
use crate::sponsorship::mail::Mailroom;
use crate::state::{Part, Ports, Upstreams};
use crate::web::http::{esc, parse_params};
use crate::web::pages::{Lang, lang, lang_switch, tr, wide_page};

/// The built-in public client through which the admin page signs people in (its code is never
/// redeemed: the SSO session the login leaves is what the page uses).
pub const CLIENT_ID: &str = "vigie-admin";
const PATH: &str = "/admin/cards";

fn status_label(l: Lang, s: CardStatus) -> &'static str {
    use CardStatus::*;
    match s {
        Requested => tr(l, "demandée", "requested"),
        Ordered => tr(l, "commandée", "ordered"),
        Received => tr(l, "reçue", "received"),
        HandedOver => tr(l, "remise à l'agent", "handed over"),
        Returned => tr(l, "restituée", "returned"),
        Lost => tr(l, "perdue", "lost"),
        Stolen => tr(l, "volée", "stolen"),
        Expired => tr(l, "expirée", "expired"),
    }
}

fn page(l: Lang, status: StatusCode, title: &str, main: &str) -> HttpResponse {
    wide_page(l, status, title, &format!("{main}\n{}", lang_switch(l, &format!("{PATH}?"))))
}

/// A page with one message (and a way back to the search when `back`).
pub fn message(req: &HttpRequest, status: StatusCode, text: &str, back: bool) -> HttpResponse {
    let l = lang(req, None);
    let back = if back {
        format!(r#"<p><a href="{PATH}">{}</a></p>"#, tr(l, "Retour à la recherche", "Back to the search"))
    } else {
        String::new()
    };
    page(
        l,
        status,
        tr(l, "Cartes CPS / CPE", "CPS / CPE cards"),
        &format!(r#"<p role="alert">{}</p>{back}"#, esc(text)),
    )
}

/// Not signed in: a link that signs in and comes back.
pub fn sign_in_needed(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let main = format!(
        r#"<p>{}</p><a class="button" id="sign-in" href="/admin/login">{}</a>"#,
        tr(
            l,
            "Cette page est réservée aux équipes des ressources humaines et des affaires médicales.",
            "This page is for human resources and medical affairs staff."
        ),
        tr(l, "Se connecter", "Sign in")
    );
    page(l, StatusCode::UNAUTHORIZED, tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &main)
}

/// Signed in, with the role, but not strongly or recently enough for the policy on
/// administration: sign in again with a card or a key.
pub fn strong_login_needed(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let main = format!(
        r#"<p role="alert">{}</p><a class="button" id="sign-in" href="/admin/login">{}</a>"#,
        tr(
            l,
            "La gestion des cartes demande une connexion par carte CPS/CPE ou clé FIDO2 datant de moins de 15 minutes.",
            "Card management needs a sign-in with a CPS/CPE card or a FIDO2 key within the last 15 minutes."
        ),
        tr(l, "Se reconnecter avec ma carte ou ma clé", "Sign in again with my card or key")
    );
    page(l, StatusCode::FORBIDDEN, tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &main)
}

/// Signed in without the role.
pub fn role_missing(req: &HttpRequest, role: Role) -> HttpResponse {
    let l = lang(req, None);
    let text = tr(
        l,
        format!(
            "Votre compte n'a pas le rôle « {role} ». Demandez-le à l'équipe informatique \
             (commande : vigie users grant-role VOTRE_IDENTIFIANT {role})."
        ),
        format!(
            "Your account does not have the role \"{role}\". Ask the IT team for it \
             (command: vigie users grant-role YOUR_USERNAME {role})."
        ),
    );
    page(
        l,
        StatusCode::FORBIDDEN,
        tr(l, "Accès refusé", "Access denied"),
        &format!(r#"<p role="alert">{}</p>"#, esc(&text)),
    )
}

/// `GET /admin/login`: signs in through the authorization endpoint as the built-in client, then
/// comes back to the page. Administration needs a phishing-resistant MIE used within 15 minutes
/// (default policy `administer-*`): it asks for exactly that.
pub async fn login(config: Part<Config>) -> HttpResponse {
    crate::web::own_pages::sign_in(&config, CLIENT_ID, PATH, 900)
}

/// The client the page signs in through, added to the registered clients unless configured.
pub fn builtin_client(config: &crate::config::Config) -> Option<crate::config::ClientConfig> {
    crate::web::own_pages::builtin_client(config, CLIENT_ID, "Vigie — gestion des cartes / card management", &[PATH])
}

async fn staff(req: &HttpRequest, gate: &Gate<'_>) -> Result<Admin, HttpResponse> {
    auth::require_staff(req, gate, Role::Cards).await
}

fn hidden(name: &str, value: &str) -> String {
    format!(r#"<input type="hidden" name="{name}" value="{}">"#, esc(value))
}

fn search_form(l: Lang, q: &str) -> String {
    format!(
        r#"<form method="get" action="{PATH}" role="search">
<input type="hidden" name="lang" value="{code}">
<label for="q">{label}</label>
<input id="q" name="q" type="search" value="{q}" maxlength="100" required aria-describedby="q-help">
<p id="q-help" class="help">{help}</p>
<button type="submit">{button}</button>
</form>"#,
        code = l.code(),
        label = tr(l, "Rechercher un agent", "Find an agent"),
        q = esc(q),
        help = tr(l, "Nom, prénom, matricule ou idNat (RPPS).", "Name, given name, matricule or idNat (RPPS)."),
        button = tr(l, "Rechercher", "Search"),
    )
}

fn results(l: Lang, found: &[Identity]) -> String {
    if found.is_empty() {
        return format!("<p>{}</p>", tr(l, "Aucun agent trouvé.", "No agent found."));
    }
    let rows: String = found
        .iter()
        .map(|i| {
            format!(
                r#"<tr><td><a href="{PATH}?agent={id}">{family} {given}</a></td><td>{mat}</td><td>{idnat}</td><td>{metier}</td></tr>"#,
                id = esc(&i.id),
                family = esc(&i.family_name),
                given = esc(&i.given_name),
                mat = esc(&i.matricule),
                idnat = esc(i.idnat.as_ref().map(|n| n.as_str()).unwrap_or("—")),
                metier = esc(i.metier.as_deref().unwrap_or("")),
            )
        })
        .collect();
    format!(
        r#"<table id="results"><caption>{cap}</caption><tr><th>{n}</th><th>{m}</th><th>idNat</th><th>{j}</th></tr>{rows}</table>"#,
        cap = tr(l, "Agents trouvés", "Agents found"),
        n = tr(l, "Nom", "Name"),
        m = tr(l, "Matricule", "Matricule"),
        j = tr(l, "Métier", "Profession"),
    )
}

fn history(l: Lang, events: &[CardEvent]) -> String {
    let items: String = events
        .iter()
        .map(|e| {
            format!(
                "<li><time>{at}</time> — <strong>{status}</strong> ({by}){comment}</li>",
                at = esc(e.at.get(..16).unwrap_or(&e.at)).replace('T', " "),
                status = status_label(l, e.status),
                by = esc(&e.by),
                comment = e.comment.as_deref().map(|c| format!(" : {}", esc(c))).unwrap_or_default(),
            )
        })
        .collect();
    format!(r#"<details><summary>{}</summary><ol>{items}</ol></details>"#, tr(l, "Historique", "History"))
}

fn card_section(l: Lang, agent: &Identity, card: &Card, events: &[CardEvent], csrf: &str) -> String {
    let options: String = std::iter::once(card.status)
        .chain(card.status.next().iter().copied())
        .map(|s| {
            let label = if s == card.status {
                format!("{} ({})", status_label(l, s), tr(l, "inchangé, note seule", "unchanged, note only"))
            } else {
                status_label(l, s).to_owned()
            };
            format!(r#"<option value="{}">{}</option>"#, s.as_str(), esc(&label))
        })
        .collect();
    let bind = if card.status.may_bind() {
        format!(
            r#"<a class="button" href="/admin/cards/bind?card={id}">{}</a>"#,
            tr(l, "Associer la carte présente dans le lecteur", "Bind the card in the reader"),
            id = esc(&card.id),
        )
    } else {
        String::new()
    };
    let bound = match (&card.cn, &card.bound_at) {
        (Some(cn), Some(at)) => format!(
            "<p>{} <code>{}</code>, {} {}{}</p>",
            tr(l, "Certificat", "Certificate"),
            esc(cn),
            tr(l, "associé le", "bound on"),
            esc(at.get(..10).unwrap_or(at)),
            card.override_reason
                .as_deref()
                .map(|r| format!(" — {} : {}", tr(l, "noms différents, motif", "names differ, reason"), esc(r)))
                .unwrap_or_default()
        ),
        _ => String::new(),
    };
    let id = esc(&card.id);
    format!(
        r#"<section class="method" id="card-{id}" aria-labelledby="card-title-{id}">
<h2 id="card-title-{id}">{kind} — <span class="status">{status}</span></h2>
{bound}{history}
<form method="post" action="/admin/cards/status">
{csrf}{card_id}{agent_id}
<label for="status-{id}">{change}</label>
<select id="status-{id}" name="status">{options}</select>
<label for="comment-{id}">{comment}</label>
<textarea id="comment-{id}" name="comment" maxlength="1000" rows="2"></textarea>
<p class="help">{lost_help}</p>
<button type="submit">{save}</button>
</form>
{bind}
</section>"#,
        kind = esc(&card.kind.to_uppercase()),
        status = status_label(l, card.status),
        history = history(l, events),
        csrf = hidden("csrf", csrf),
        card_id = hidden("card", &card.id),
        agent_id = hidden("agent", &agent.id),
        change = tr(l, "Nouveau statut", "New status"),
        comment = tr(l, "Commentaire (daté dans l'historique)", "Comment (dated in the history)"),
        lost_help = tr(
            l,
            "Perdue, volée, restituée ou expirée : la carte ne permet plus de se connecter et ses sessions sont fermées immédiatement.",
            "Lost, stolen, returned or expired: the card can no longer sign in and its sessions end at once."
        ),
        save = tr(l, "Enregistrer", "Save"),
    )
}

fn new_card_form(l: Lang, agent: &Identity, csrf: &str) -> String {
    let statuses: String = [CardStatus::Requested, CardStatus::Ordered, CardStatus::Received]
        .iter()
        .map(|s| format!(r#"<option value="{}">{}</option>"#, s.as_str(), status_label(l, *s)))
        .collect();
    format!(
        r#"<form method="post" action="/admin/cards/create" id="new-card">
<h2>{title}</h2>
{csrf}{agent_id}
<label for="kind">{kind}</label>
<select id="kind" name="kind"><option value="cps">CPS</option><option value="cpe">CPE</option></select>
<label for="new-status">{status}</label>
<select id="new-status" name="status">{statuses}</select>
<label for="new-comment">{comment}</label>
<textarea id="new-comment" name="comment" maxlength="1000" rows="2"></textarea>
<button type="submit">{save}</button>
</form>"#,
        title = tr(l, "Suivre une nouvelle carte", "Track a new card"),
        csrf = hidden("csrf", csrf),
        agent_id = hidden("agent", &agent.id),
        kind = tr(l, "Type de carte", "Card type"),
        status = tr(l, "Étape", "Stage"),
        comment = tr(l, "Commentaire", "Comment"),
        save = tr(l, "Enregistrer la carte", "Record the card"),
    )
}

fn agent_header(l: Lang, agent: &Identity) -> String {
    format!(
        r#"<h2 id="agent">{family} {given}</h2><p>{m} {mat} · idNat {idnat} · {metier}</p>"#,
        family = esc(&agent.family_name),
        given = esc(&agent.given_name),
        m = tr(l, "Matricule", "Matricule"),
        mat = esc(&agent.matricule),
        idnat = esc(agent.idnat.as_ref().map(|n| n.as_str()).unwrap_or("—")),
        metier = esc(agent.metier.as_deref().unwrap_or("")),
    )
}

fn done_message(l: Lang, done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => tr(l, "La carte est enregistrée.", "The card is recorded."),
        "status" => tr(l, "Le statut est enregistré.", "The status is saved."),
        "ended" => tr(
            l,
            "Le statut est enregistré ; la carte ne permet plus de se connecter et ses sessions sont fermées.",
            "The status is saved; the card can no longer sign in and its sessions have ended.",
        ),
        "bound" => tr(l, "La carte est associée et remise à l'agent.", "The card is bound and handed over."),
        _ => return None,
    })
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
    page(l, status, tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &main)
}

/// `GET /admin/cards[?q=…|?agent=…]`
pub async fn get(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    if let Some(back) = crate::web::own_pages::back_from_sign_in(&params, PATH) {
        return back;
    }
    let gate = Gate::of(&req, &parts);
    let admin = match staff(&req, &gate).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let l = lang(&req, None);
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
    }
    page(l, StatusCode::OK, tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &main)
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
    let admin = match staff(&req, &gate).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match form(&admin, &req, &body) {
        Ok(p) => p,
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
    let admin = match staff(&req, &gate).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match form(&admin, &req, &body) {
        Ok(p) => p,
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

/// `GET /admin/cards/bind?card=…`: the card in the reader next to the agent, and the form.
pub async fn bind_get(req: HttpRequest, parts: GateParts, upstreams: Part<Upstreams>) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = match staff(&req, &gate).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let l = lang(&req, None);
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
    let presented = match crate::login::cps::validate::presented(
        crate::login::cps::validate::CardCheck::new(&upstreams, &gate.config.cards, gate.audit),
        &crate::web::tls::ClientCertChain::of(&req, &gate.config.cards),
        &gate.caller,
    )
    .await
    {
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
            return page(l, StatusCode::OK, title, &main);
        }
        Err(p) => {
            let main =
                format!(r#"{}<p class="error" role="alert">{}</p>{retry}"#, agent_header(l, &agent), esc(&p.message));
            return page(l, StatusCode::UNPROCESSABLE_ENTITY, title, &main);
        }
    };
    let s = &presented.identity.subject;
    let compare = format!(
        r#"<table id="compare"><caption>{cap}</caption><tr><th></th><th>{on_card}</th><th>{in_dir}</th></tr>
<tr><th>{family}</th><td>{sn}</td><td>{fam}</td></tr><tr><th>{given}</th><td>{gn}</td><td>{giv}</td></tr>
<tr><th>idNat / CN</th><td>{cn}</td><td>{idnat}</td></tr></table>"#,
        cap = tr(l, "Contrôle de cohérence", "Coherence check"),
        on_card = tr(l, "Sur la carte", "On the card"),
        in_dir = tr(l, "Dans l'annuaire", "In the directory"),
        family = tr(l, "Nom", "Family name"),
        given = tr(l, "Prénom", "Given name"),
        sn = esc(s.surname.as_deref().unwrap_or("—")),
        gn = esc(s.given_name.as_deref().unwrap_or("—")),
        cn = esc(&s.cn),
        fam = esc(&agent.family_name),
        giv = esc(&agent.given_name),
        idnat = esc(agent.idnat.as_ref().map(|n| n.as_str()).unwrap_or("—")),
    );
    let csrf = admin.csrf().unwrap_or_default();
    let form_body = match actions::coherence(&record.kind, s, &agent) {
        Err(refusal) => format!(r#"<p class="error" role="alert">{}</p>"#, esc(&refusal)),
        Ok(Coherence::Match) => format!(
            r#"<p role="status">{ok}</p><form method="post" action="/admin/cards/bind">{csrf}{card}<button type="submit">{b}</button></form>"#,
            ok = tr(l, "Les noms concordent.", "The names match."),
            csrf = hidden("csrf", &csrf),
            card = hidden("card", &record.id),
            b = tr(l, "Associer et remettre la carte", "Bind and hand over the card"),
        ),
        Ok(Coherence::NamesDiffer(_)) => format!(
            r#"<p class="error" role="alert" id="names-differ">{warn}</p>
<form method="post" action="/admin/cards/bind">{csrf}{card}
<label for="override">{label}</label>
<textarea id="override" name="override_reason" maxlength="500" rows="2" required aria-describedby="names-differ"></textarea>
<button type="submit">{b}</button></form>"#,
            warn = tr(
                l,
                "Les noms de la carte ne sont pas ceux de l'agent. Vérifiez qu'il s'agit bien de sa carte. Pour l'associer malgré tout (nom d'usage, erreur de saisie RH), indiquez le motif : il sera tracé.",
                "The names on the card are not the agent's. Check that this is their card. To bind it anyway (married name, HR typo), give the reason: it will be audited."
            ),
            csrf = hidden("csrf", &csrf),
            card = hidden("card", &record.id),
            label = tr(l, "Motif de l'association malgré la différence", "Reason to bind despite the difference"),
            b = tr(l, "Associer malgré la différence", "Bind despite the difference"),
        ),
    };
    let main = format!("{}{compare}{form_body}{retry}", agent_header(l, &agent));
    page(l, StatusCode::OK, title, &main)
}

/// `POST /admin/cards/bind`: binds the card presented on this connection.
pub async fn bind_post(
    req: HttpRequest,
    parts: GateParts,
    upstreams: Part<Upstreams>,
    body: web::Bytes,
) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = match staff(&req, &gate).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match form(&admin, &req, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let l = lang(&req, None);
    let card_id = p.get("card").unwrap_or_default();
    let presented = match crate::login::cps::validate::presented(
        crate::login::cps::validate::CardCheck::new(&upstreams, &gate.config.cards, gate.audit),
        &crate::web::tls::ClientCertChain::of(&req, &gate.config.cards),
        &gate.caller,
    )
    .await
    {
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
    match actions::bind(&office, card_id, &presented, p.get("override_reason"), actions::Presence::InReader).await {
        Ok(card) => {
            let mail = Mailroom::new(&parts.config, &parts.ports, &upstreams, &parts.audit);
            crate::account::notices::credential_added(mail, &gate.caller, &card.identity_id, Added::card(&card));
            back_to(&card.identity_id, "bound")
        }
        Err(e) => message(&req, action_status(&e), &e.to_string(), true),
    }
}
