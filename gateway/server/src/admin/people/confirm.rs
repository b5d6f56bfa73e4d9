//! The confirm step of the people page before ending sessions (issue 17): whose sessions end and
//! what it does, then a second form (the same CSRF token, `confirm=yes`) that ends them. Only the
//! page asks: the API and `vigie people end-sessions` stay one step, their callers have decided.
use vigie_directory_sql::people::PersonRecord;

use super::actions::LiveSession;
use super::page::PATH;
use crate::web::http::esc;
use crate::web::pages::{Lang, tr};

/// What is about to end: one live session, or every session of the person.
pub enum Ending<'a> {
    One(&'a LiveSession),
    All { live: usize },
}

fn hidden(name: &str, value: &str) -> String {
    format!(r#"<input type="hidden" name="{name}" value="{}">"#, esc(value))
}

/// The confirm section: the question naming the person, what ending does, the form that does it
/// and the way back to their page without ending anything.
pub fn section(l: Lang, person: &PersonRecord, ending: &Ending<'_>, csrf: &str, opened: &str) -> String {
    let i = &person.identity;
    let name = esc(&format!("{} {}", i.given_name, i.family_name));
    let (question, what, sid, button) = match ending {
        Ending::One(s) => (
            tr(l, "Mettre fin à une session de", "End one session of"),
            format!(
                "{} {opened} ({} · {}).",
                tr(l, "La session ouverte le (UTC)", "The session opened on (UTC)"),
                esc(s.method),
                esc(s.level),
            ),
            hidden("sid", &s.sid),
            tr(l, "Oui, mettre fin à cette session", "Yes, end this session"),
        ),
        Ending::All { live } => (
            tr(l, "Mettre fin à toutes les sessions de", "End all sessions of"),
            tr(
                l,
                format!(
                    "Ses {live} session(s) ouverte(s), et tout jeton encore valide émis pour cette personne. \
                     Ce qui n'aboutit pas tout de suite est terminé par le balayage périodique."
                ),
                format!(
                    "Their {live} live session(s), and every token still valid issued to them. What does not \
                     succeed at once is finished by the periodic sweep."
                ),
            ),
            String::new(),
            tr(l, "Oui, mettre fin à toutes ses sessions", "Yes, end all their sessions"),
        ),
    };
    let effects = [
        tr(
            l,
            "Les jetons émis pendant la session, jetons de rafraîchissement compris, sont révoqués aussitôt.",
            "The tokens issued in the session, refresh tokens included, are revoked at once.",
        ),
        tr(
            l,
            "Chaque application qui l'a demandé reçoit une déconnexion par canal arrière (OpenID Connect \
             Back-Channel Logout) et ferme sa propre session.",
            "Each application that asked for it receives a back-channel logout (OpenID Connect Back-Channel \
             Logout) and closes its own session.",
        ),
        tr(l, "La personne devra se reconnecter.", "The person will have to sign in again."),
    ]
    .map(|e| format!("<li>{e}</li>"))
    .concat();
    let back = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("person", &i.id)
        .append_pair("lang", l.code())
        .finish();
    format!(
        r#"<section id="confirm" aria-labelledby="confirm-title">
<h2 id="confirm-title">{question} {name}{mark}</h2>
<p>{what}</p>
<ul>{effects}</ul>
<form method="post" action="{PATH}/sessions/end?lang={code}">{csrf}{person}{sid}{confirm}<button type="submit" id="confirm-end">{button}</button></form>
<p><a href="{PATH}?{back}" id="cancel">{cancel}</a></p>
</section>"#,
        mark = tr(l, "\u{a0}?", "?"),
        code = l.code(),
        csrf = hidden("csrf", csrf),
        person = hidden("person", &i.id),
        confirm = hidden("confirm", "yes"),
        back = esc(&back),
        cancel = tr(l, "Annuler : revenir à sa fiche sans rien terminer", "Cancel: back to their page, nothing ends"),
    )
}
