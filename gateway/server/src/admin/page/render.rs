//! The HTML of the admin card page: its messages and the console's refusals (sign in, role,
//! strong login: each back to the page that refused), the search, an agent's
//! cards with their histories and forms, the comparison before a binding.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::cards::{Card, CardEvent, CardStatus};
use vigie_core::directory::Identity;
use vigie_core::roles::Role;
use vigie_igc_sante::CardSubject;

use super::PATH;
use crate::admin::actions::Coherence;
use crate::admin::auth::Admin;
use crate::admin::shell::{self, Nav};
use crate::web::http::esc;
use crate::web::pages::{Lang, lang, lang_switch, tr};

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

pub(super) fn page(nav: &Nav<'_>, l: Lang, status: StatusCode, title: &str, main: &str) -> HttpResponse {
    shell::page(nav, l, status, title, main, &lang_switch(l, &format!("{PATH}?")))
}

/// The navigation of the card page for `admin`.
pub(super) fn nav(admin: &Admin) -> Nav<'_> {
    Nav::new(PATH, &admin.roles)
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
        &Nav::none(PATH),
        l,
        status,
        tr(l, "Cartes CPS / CPE", "CPS / CPE cards"),
        &format!(r#"<p role="alert">{}</p>{back}"#, esc(text)),
    )
}

/// A refusal on the console page the request is on: its title, its language link (the same
/// address) and the navigation of what `roles` open.
fn refusal(req: &HttpRequest, status: StatusCode, title: Option<&str>, roles: &[Role], main: &str) -> HttpResponse {
    let l = lang(req, None);
    let here = shell::here(req);
    let title = title.unwrap_or_else(|| shell::title(l, here));
    shell::page(&Nav::new(here, roles), l, status, title, main, &lang_switch(l, &shell::here_link(req)))
}

/// Not signed in: a link that signs in and comes back to this page.
pub fn sign_in_needed(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let main = format!(
        r#"<p>{}</p><a class="button" id="sign-in" href="{href}">{}</a>"#,
        tr(
            l,
            "Cette page est réservée aux équipes des ressources humaines et des affaires médicales.",
            "This page is for human resources and medical affairs staff."
        ),
        tr(l, "Se connecter", "Sign in"),
        href = shell::sign_in_href(shell::here(req)),
    );
    refusal(req, StatusCode::UNAUTHORIZED, None, &[], &main)
}

/// Signed in, with the role, but not strongly or recently enough for the policy on
/// administration: sign in again with a card or a key, back to this page.
pub fn strong_login_needed(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let main = format!(
        r#"<p role="alert">{}</p><a class="button" id="sign-in" href="{href}">{}</a>"#,
        tr(
            l,
            "La console d'administration demande une connexion par carte CPS/CPE ou clé FIDO2 datant de moins de 15 minutes.",
            "The administration console needs a sign-in with a CPS/CPE card or a FIDO2 key within the last 15 minutes."
        ),
        tr(l, "Se reconnecter avec ma carte ou ma clé", "Sign in again with my card or key"),
        href = shell::sign_in_href(shell::here(req)),
    );
    refusal(req, StatusCode::FORBIDDEN, None, &[], &main)
}

/// Signed in without `role`: which role this page needs and how to get it; the navigation shows
/// the pages the roles the person holds open.
pub fn role_missing(req: &HttpRequest, role: Role, roles: &[Role]) -> HttpResponse {
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
    let main = format!(r#"<p role="alert">{}</p>"#, esc(&text));
    refusal(req, StatusCode::FORBIDDEN, Some(tr(l, "Accès refusé", "Access denied")), roles, &main)
}

fn hidden(name: &str, value: &str) -> String {
    format!(r#"<input type="hidden" name="{name}" value="{}">"#, esc(value))
}

pub(super) fn search_form(l: Lang, q: &str) -> String {
    let label = tr(l, "Rechercher un agent", "Find an agent");
    let help = tr(l, "Nom, prénom, matricule ou idNat (RPPS).", "Name, given name, matricule or idNat (RPPS).");
    search_form_at(l, PATH, q, label, help)
}

/// The search form of an admin page at `path`: one labelled field, its help, a button.
pub(crate) fn search_form_at(l: Lang, path: &str, q: &str, label: &str, help: &str) -> String {
    format!(
        r#"<form method="get" action="{path}" role="search">
<input type="hidden" name="lang" value="{code}">
<label for="q">{label}</label>
<input id="q" name="q" type="search" value="{q}" maxlength="100" required aria-describedby="q-help">
<p id="q-help" class="help">{help}</p>
<button type="submit">{button}</button>
</form>"#,
        code = l.code(),
        q = esc(q),
        button = tr(l, "Rechercher", "Search"),
    )
}

pub(super) fn results(l: Lang, found: &[Identity]) -> String {
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

pub(super) fn card_section(l: Lang, agent: &Identity, card: &Card, events: &[CardEvent], csrf: &str) -> String {
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

pub(super) fn new_card_form(l: Lang, agent: &Identity, csrf: &str) -> String {
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

pub(super) fn agent_header(l: Lang, agent: &Identity) -> String {
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

pub(super) fn done_message(l: Lang, done: &str) -> Option<&'static str> {
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

/// The names on the card in the reader next to the agent's, and the form that binds it: plain
/// when they match, asking for a reason when they differ, none when the card is not theirs.
pub(super) fn bind_view(
    l: Lang,
    agent: &Identity,
    record: &Card,
    s: &CardSubject,
    check: &Result<Coherence, String>,
    csrf: &str,
) -> String {
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
    let form_body = match check {
        Err(refusal) => format!(r#"<p class="error" role="alert">{}</p>"#, esc(refusal)),
        Ok(Coherence::Match) => format!(
            r#"<p role="status">{ok}</p><form method="post" action="/admin/cards/bind">{csrf}{card}<button type="submit">{b}</button></form>"#,
            ok = tr(l, "Les noms concordent.", "The names match."),
            csrf = hidden("csrf", csrf),
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
            csrf = hidden("csrf", csrf),
            card = hidden("card", &record.id),
            label = tr(l, "Motif de l'association malgré la différence", "Reason to bind despite the difference"),
            b = tr(l, "Associer malgré la différence", "Bind despite the difference"),
        ),
    };
    format!("{compare}{form_body}")
}
