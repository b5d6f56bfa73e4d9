//! The sponsorship's pages: the search for a colleague (`GET /sponsorship`), the messages a
//! refusal or a lock shows, and the page that shows the temporary code once.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use vigie_core::directory::Identity;

use super::ceremony::sponsor_of;
use super::grant::{Granted, Reason};
use super::name;
use crate::config::Config;
use crate::mail::local;
use crate::state::{Part, Ports};
use crate::web::http::{esc, parse_params};
use crate::web::pages::{self, Lang, html_page, tr};

pub(super) fn title(l: Lang) -> &'static str {
    tr(l, "Parrainage d'un collègue", "Sponsor a colleague")
}

pub(super) fn message(l: Lang, status: StatusCode, id: &str, text: &str) -> HttpResponse {
    let main = format!(
        r#"<p role="alert" id="{id}">{}</p><p><a class="button" href="/sponsorship?lang={}">{}</a></p>"#,
        esc(text),
        l.code(),
        tr(l, "Revenir au parrainage", "Back to sponsorship"),
    );
    html_page(l, status, title(l), &main, None)
}

pub(super) fn nobody(l: Lang) -> HttpResponse {
    let main = format!(
        r#"<p role="alert" id="sponsor-signin">{}</p><p><a class="button" id="sign-in" href="/sponsorship/login">{}</a></p>"#,
        tr(
            l,
            "Le parrain se connecte d'abord avec sa carte CPS / CPE ou sa clé FIDO2.",
            "The sponsor first signs in with their CPS / CPE card or FIDO2 key.",
        ),
        tr(l, "Se connecter avec ma carte ou ma clé", "Sign in with my card or key"),
    );
    html_page(l, StatusCode::UNAUTHORIZED, title(l), &main, None)
}

#[derive(Deserialize)]
pub struct PageQuery {
    q: Option<String>,
}

/// `GET /sponsorship?q=…`: the sponsor finds the colleague among those sharing a unit, and says why.
pub async fn page(
    req: HttpRequest,
    (config, ports): (Part<Config>, Part<Ports>),
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    if let Some(back) = crate::web::own_pages::back_from_sign_in(&params, "/sponsorship") {
        return back;
    }
    let l = pages::lang(&req, None);
    if !config.sponsorship.enabled {
        return message(
            l,
            StatusCode::NOT_FOUND,
            "disabled",
            tr(l, "Le parrainage n'est pas activé.", "Sponsorship is not enabled."),
        );
    }
    let sponsor = match sponsor_of(&ports, &config, &req).await {
        Ok(Some(s)) => s,
        Ok(None) => return nobody(l),
        Err(e) => return pages::unavailable(&req, &e),
    };
    let q = query.q.as_deref().unwrap_or_default().chars().take(100).collect::<String>();
    let found = if q.trim().is_empty() {
        Vec::new()
    } else {
        match ports.sponsorships.colleagues(&sponsor.session.authentication.identity_id, &q, 50).await {
            Ok(f) => f,
            Err(e) => return pages::unavailable(&req, &e),
        }
    };
    let code = l.code();
    let search = format!(
        r#"<form method="get" action="/sponsorship" role="search">
<input type="hidden" name="lang" value="{code}">
<label for="q">{label}</label>
<input id="q" name="q" type="search" value="{q}" maxlength="100" required>
<button type="submit">{button}</button>
</form>"#,
        label = tr(l, "Nom du collègue à parrainer", "Name of the colleague to sponsor"),
        q = esc(&q),
        button = tr(l, "Rechercher", "Search"),
    );
    let results = if q.trim().is_empty() {
        String::new()
    } else if found.is_empty() {
        format!(
            r#"<p id="no-colleague">{}</p>"#,
            tr(
                l,
                "Aucun collègue de vos unités fonctionnelles ne porte ce nom.",
                "No colleague of your functional units has this name."
            )
        )
    } else {
        let mut radios = String::new();
        for (i, c) in found.iter().enumerate() {
            let units: Vec<&str> = c.units.iter().map(|u| u.uf.as_str()).collect();
            radios.push_str(&format!(
                r#"<p><input type="radio" id="c{i}" name="colleague" value="{id}" required{checked} style="width:auto"> <label for="c{i}" style="display:inline">{name} — {metier} ({units})</label></p>
"#,
                id = esc(&c.id),
                checked = if i == 0 { " checked" } else { "" },
                name = esc(&name(c)),
                metier = esc(c.metier.as_deref().unwrap_or_default()),
                units = esc(&units.join(", ")),
            ));
        }
        let reasons: String =
            Reason::ALL.iter().map(|r| format!(r#"<option value="{}">{}</option>"#, r.as_str(), r.label(l))).collect();
        format!(
            r#"<form method="post" action="/sponsorship/start?lang={code}">
<input type="hidden" name="csrf" value="{csrf}">
<fieldset><legend>{who}</legend>
{radios}</fieldset>
<label for="reason">{why}</label>
<select id="reason" name="reason">{reasons}</select>
<p class="help">{help}</p>
<button type="submit">{go}</button>
</form>"#,
            csrf = esc(&sponsor.csrf),
            who = tr(l, "Collègue", "Colleague"),
            why = tr(l, "Motif", "Reason"),
            help = tr(
                l,
                "Carte perdue ou volée : la carte est suspendue immédiatement et ses sessions fermées.",
                "Card lost or stolen: the card is suspended at once and its sessions end."
            ),
            go = tr(l, "Poser les questions de sécurité", "Ask the security questions"),
        )
    };
    let main = format!(
        r#"<p>{intro}</p>{search}{results}"#,
        intro = tr(
            l,
            "Vous vous portez garant, en sa présence, d'un collègue de votre unité qui n'a pas de carte utilisable. Il répondra ensuite sur cet écran à ses questions de sécurité.",
            "You vouch, in their presence, for a colleague of your unit who has no usable card. They will then answer their security questions on this screen."
        ),
    );
    html_page(l, StatusCode::OK, title(l), &main, None)
}

pub(super) fn locked_text(l: Lang) -> &'static str {
    tr(
        l,
        "Réponses erronées, trop de tentatives : le parrainage est bloqué pour le moment. Appelez le service informatique.",
        "Wrong answers, too many attempts: sponsorship is locked for now. Call the IT department.",
    )
}

pub(super) fn granted_page(
    config: &Config,
    l: Lang,
    colleague: &Identity,
    reason: Reason,
    g: &Granted,
) -> HttpResponse {
    let (day, hour) = local(config, g.expires_at);
    let suspended = if reason.card_status().is_some() {
        match l {
            Lang::Fr => format!(
                r#"<p id="cards-suspended">{} carte(s) suspendue(s), {} session(s) fermée(s).</p>"#,
                g.cards_suspended, g.sessions_ended
            ),
            Lang::En => format!(
                r#"<p id="cards-suspended">{} card(s) suspended, {} session(s) ended.</p>"#,
                g.cards_suspended, g.sessions_ended
            ),
        }
    } else {
        String::new()
    };
    let main = format!(
        r#"<p role="status">{done} <strong>{who}</strong>.</p>
{suspended}<p>{show}</p>
<p><strong id="temporary-code" style="font-size:1.5rem;letter-spacing:.1em">{code}</strong></p>
<p>{until} {day} {at} {hour}.</p>
<p class="help">{help}</p>"#,
        done = tr(l, "Parrainage accordé à", "Sponsorship granted to"),
        who = esc(&name(colleague)),
        show = tr(
            l,
            "Code temporaire, affiché une seule fois : à saisir avec son identifiant sur la page de connexion (« Code temporaire de parrainage »).",
            "Temporary code, shown only once: to be typed with the username on the sign-in page (\"Temporary sponsorship code\").",
        ),
        code = esc(&g.code),
        until = tr(l, "Valable jusqu'au", "Valid until"),
        at = tr(l, "à", "at"),
        help = tr(
            l,
            "Un e-mail prévient le parrain et le collègue parrainé. Fermez cette page après usage.",
            "An e-mail tells the sponsor and the sponsored colleague. Close this page once done.",
        ),
    );
    html_page(l, StatusCode::OK, title(l), &main, None)
}
