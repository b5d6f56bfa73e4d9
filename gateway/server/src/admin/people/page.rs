//! `/admin/people`: the console page of HR, server-rendered, French first (English with
//! `?lang=en`), no JavaScript. Search people (by pages), open a person's page, end one of their
//! sessions or all of them. Every form carries the session's CSRF token (`Admin::csrf`).
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::roles::Role;
use vigie_directory_sql::people::{PeoplePage, PersonRecord};

use super::actions::{self, LiveSession};
use super::recent::{Recent, RecentEntry};
use super::{LifeEvent, Whole};
use crate::admin::actions::ActionError;
use crate::admin::auth::{Admin, EndingParts, Gate, GateParts};
use crate::admin::shell::{self, Console};
use crate::web::http::{esc, parse_params};
use crate::web::pages::{Lang, lang, lang_switch, tr};

/// Where the page is.
pub const PATH: &str = "/admin/people";

fn title(l: Lang) -> &'static str {
    tr(l, "Personnes", "People")
}

fn page(admin: &Admin, l: Lang, status: StatusCode, main: &str) -> HttpResponse {
    let nav = crate::admin::shell::Nav::new(PATH, &admin.roles);
    crate::admin::shell::page(&nav, l, status, title(l), main, &lang_switch(l, &format!("{PATH}?")))
}

use crate::admin::shell::notice;

/// `GET /admin/people[?q=…&offset=…|?person=…]`
pub async fn get(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let Console { gate, admin, l, params } = match shell::open(&req, &parts, PATH, Role::Cards, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(id) = params.get("person") {
        let done = params.get("done").and_then(|d| done_message(l, d)).map(|m| notice(m, false));
        return person_page(&req, &gate, &admin, id, done.as_deref().unwrap_or_default(), StatusCode::OK).await;
    }
    let (q, offset, limit) = match super::api::search_params(req.query_string()) {
        Ok(p) => p,
        Err(m) => return page(&admin, l, StatusCode::BAD_REQUEST, &notice(&m, true)),
    };
    let mut main = search_form(l, &q);
    if !q.trim().is_empty() {
        match gate.ports.lifecycle.search_people(&q, offset, limit).await {
            Ok(found) => main.push_str(&results(l, &q, limit, &found)),
            Err(e) => return crate::web::pages::unavailable(&req, &e),
        }
    }
    page(&admin, l, StatusCode::OK, &main)
}

async fn person_page(
    req: &HttpRequest,
    gate: &Gate<'_>,
    admin: &Admin,
    id: &str,
    notice_html: &str,
    status: StatusCode,
) -> HttpResponse {
    let l = lang(req, None);
    let whole = match super::whole(gate.ports, id).await {
        Ok(w) => w,
        Err(ActionError::NotFound(_)) => {
            let text = tr(l, "Personne inconnue. Recherchez-la de nouveau.", "Unknown person. Search for them again.");
            return page(admin, l, StatusCode::NOT_FOUND, &format!("{}{}", notice(text, true), back_link(l)));
        }
        Err(e) => return crate::web::pages::unavailable(req, &e),
    };
    let csrf = admin.csrf().unwrap_or_default();
    let recent = super::recent::recent(gate, &admin.actor, &whole.record).await;
    let main = format!(
        "{notice_html}{identity}{mies}{sessions}{recent}{events}{back}",
        recent = recent_section(l, &recent),
        identity = identity_section(l, &whole.record),
        mies = mie_section(l, &whole),
        sessions = sessions_section(l, &whole.record.identity.id, &whole.sessions, &csrf),
        events = events_section(l, &whole.events),
        back = back_link(l),
    );
    page(admin, l, status, &main)
}

/// `POST /admin/people/sessions/end`: `person`, and `sid` for one session (all without it).
pub async fn end_sessions(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    let (gate, admin, l) = match shell::operator(&req, &parts, Role::Cards).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match parse_params(&body) {
        Ok(p) => p,
        Err(m) => return page(&admin, l, StatusCode::BAD_REQUEST, &notice(&format!("bad form: {m}"), true)),
    };
    if !admin.check_csrf(p.get("csrf")) {
        let text = tr(
            l,
            "Ce formulaire a expiré ou ne vient pas de cette page. Rechargez la page et recommencez.",
            "This form has expired or does not come from this page. Reload the page and try again.",
        );
        return page(&admin, l, StatusCode::FORBIDDEN, &format!("{}{}", notice(text, true), back_link(l)));
    }
    let id = p.get("person").unwrap_or_default().to_owned();
    // The person's page asks first; only its confirm form (the same token) ends anything.
    if p.get("confirm") != Some("yes") {
        return confirm_page(&req, &gate, &admin, &id, p.get("sid").filter(|s| !s.is_empty())).await;
    }
    let ending = gate.ending(&end);
    let (done, result) = match p.get("sid").filter(|s| !s.is_empty()) {
        Some(sid) => ("ended", actions::end_session(ending, &admin, &gate.caller, &id, sid).await.map(|()| 1)),
        None => ("ended-all", actions::end_all(ending, &admin, &gate.caller, &id).await),
    };
    match result {
        Ok(_) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("person", &id)
                .append_pair("done", done)
                .append_pair("lang", l.code())
                .finish();
            HttpResponse::SeeOther().insert_header((header::LOCATION, format!("{PATH}?{q}"))).finish()
        }
        Err(e) => {
            let status = match e {
                ActionError::NotFound(_) => StatusCode::NOT_FOUND,
                ActionError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            person_page(&req, &gate, &admin, &id, &notice(&e.to_string(), true), status).await
        }
    }
}

/// Whose sessions are about to end and what it does, with the form that ends them.
async fn confirm_page(req: &HttpRequest, gate: &Gate<'_>, admin: &Admin, id: &str, sid: Option<&str>) -> HttpResponse {
    let l = lang(req, None);
    let found = match actions::person(gate.ports, id).await {
        Ok(record) => actions::live_sessions(gate.ports, id).await.map(|live| (record, live)),
        Err(e) => Err(e),
    };
    let (record, live) = match found {
        Ok(v) => v,
        Err(ActionError::NotFound(m)) => {
            return page(admin, l, StatusCode::NOT_FOUND, &format!("{}{}", notice(&m, true), back_link(l)));
        }
        Err(e) => return crate::web::pages::unavailable(req, &e),
    };
    let csrf = admin.csrf().unwrap_or_default();
    let section = match sid {
        Some(sid) => match live.iter().find(|s| s.sid == sid) {
            Some(s) => super::confirm::section(l, &record, &super::confirm::Ending::One(s), &csrf, &when(s.created_at)),
            None => {
                let text = tr(
                    l,
                    "Cette session n'est plus ouverte : elle a pris fin ou a expiré. Voici ses sessions ouvertes.",
                    "This session is no longer live: it ended or expired. Here are their live sessions.",
                );
                return person_page(req, gate, admin, id, &notice(text, true), StatusCode::NOT_FOUND).await;
            }
        },
        None => super::confirm::section(l, &record, &super::confirm::Ending::All { live: live.len() }, &csrf, ""),
    };
    page(admin, l, StatusCode::OK, &section)
}

fn done_message(l: Lang, done: &str) -> Option<&'static str> {
    Some(match done {
        "ended" => tr(
            l,
            "La session est terminée : la personne doit se reconnecter.",
            "The session has ended: the person must sign in again.",
        ),
        "ended-all" => tr(
            l,
            "Toutes les sessions sont terminées : la personne doit se reconnecter partout.",
            "Every session has ended: the person must sign in again everywhere.",
        ),
        _ => return None,
    })
}

fn back_link(l: Lang) -> String {
    format!(
        r#"<p><a href="{PATH}?lang={code}">{text}</a></p>"#,
        code = l.code(),
        text = tr(l, "Rechercher une autre personne", "Find another person")
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(r#"<input type="hidden" name="{name}" value="{}">"#, esc(value))
}

fn search_form(l: Lang, q: &str) -> String {
    let help = tr(
        l,
        "Début du nom, du prénom, de l'identifiant de connexion, du matricule ou de l'idNat (RPPS) ; accents et majuscules indifférents.",
        "Start of the name, given name, login, matricule or idNat (RPPS); accents and case do not matter.",
    );
    crate::admin::page::render::search_form_at(l, PATH, q, tr(l, "Rechercher une personne", "Find a person"), help)
}

fn person_link(l: Lang, id: &str, text: &str) -> String {
    format!(r#"<a href="{PATH}?person={}&amp;lang={}">{}</a>"#, esc(id), l.code(), esc(text))
}

fn results(l: Lang, q: &str, limit: usize, found: &PeoplePage) -> String {
    if found.people.is_empty() {
        return format!(r#"<p role="status">{}</p>"#, tr(l, "Personne trouvée : aucune.", "No one found."));
    }
    let rows: String = found
        .people
        .iter()
        .map(|p| {
            format!(
                "<tr><td>{name}</td><td>{user}</td><td>{mat}</td><td>{idnat}</td><td>{status}</td></tr>",
                name = person_link(l, &p.id, &format!("{} {}", p.family_name, p.given_name)),
                user = esc(p.username.as_deref().unwrap_or("—")),
                mat = esc(&p.matricule),
                idnat = esc(p.idnat.as_deref().unwrap_or("—")),
                status = esc(&p.status),
            )
        })
        .collect();
    let page_link = |offset: usize, text: &str, rel: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", q)
            .append_pair("offset", &offset.to_string())
            .append_pair("limit", &limit.to_string())
            .append_pair("lang", l.code())
            .finish();
        format!(r#"<a href="{PATH}?{}" rel="{rel}">{text}</a> "#, esc(&query))
    };
    let mut nav = String::new();
    if found.offset > 0 {
        nav.push_str(&page_link(found.offset.saturating_sub(limit), tr(l, "Page précédente", "Previous page"), "prev"));
    }
    if found.offset + found.people.len() < found.total {
        nav.push_str(&page_link(found.offset + limit, tr(l, "Page suivante", "Next page"), "next"));
    }
    let first = found.offset + 1;
    let last = found.offset + found.people.len();
    format!(
        r#"<table id="results"><caption>{cap} ({first}–{last} / {total})</caption>
<tr><th scope="col">{n}</th><th scope="col">{u}</th><th scope="col">{m}</th><th scope="col">idNat</th><th scope="col">{s}</th></tr>{rows}</table>
<nav aria-label="{pages}">{nav}</nav>"#,
        cap = tr(l, "Personnes trouvées", "People found"),
        total = found.total,
        n = tr(l, "Nom", "Name"),
        u = tr(l, "Identifiant", "Login"),
        m = tr(l, "Matricule", "Matricule"),
        s = tr(l, "Statut", "Status"),
        pages = tr(l, "Pages de résultats", "Result pages"),
    )
}

fn row(label: &str, value: &str) -> String {
    format!("<tr><th scope=\"row\">{label}</th><td>{}</td></tr>", esc(value))
}

fn source_label(l: Lang, s: &str) -> &'static str {
    match s {
        "hr" => tr(l, "flux RH (SIRH)", "HR feed"),
        "cli" => tr(l, "saisie RH (vigie users)", "HR entry (vigie users)"),
        "ldap" => tr(l, "annuaire LDAP / AD", "LDAP / AD directory"),
        "scim" => "SCIM",
        _ => tr(l, "import CSV RH", "HR CSV import"),
    }
}

fn identity_section(l: Lang, r: &PersonRecord) -> String {
    let i = &r.identity;
    let dash = "—";
    let mut sources: Vec<String> = r.sources.iter().map(|s| source_label(l, s).to_owned()).collect();
    if let Some(link) = &r.rpps {
        sources.push(format!(
            "{} ({} {})",
            tr(l, "idNat dérivé du RPPS", "idNat derived from the RPPS"),
            tr(l, "confirmé par", "confirmed by"),
            link.confirmed_by
        ));
    }
    let units: Vec<String> = i.units.iter().map(|u| format!("{} ({} %)", u.uf, u.share)).collect();
    let mut roles = r.admin_roles.clone();
    roles.extend(r.group_roles.iter().cloned());
    let rows = [
        row(tr(l, "Matricule", "Matricule"), &i.matricule),
        row("idNat", i.idnat.as_ref().map(|n| n.as_str()).unwrap_or(dash)),
        row(tr(l, "Identifiant de connexion", "Login"), r.username.as_deref().unwrap_or(dash)),
        row(tr(l, "Source de l'identité", "Source of the identity"), &sources.join(" · ")),
        row(tr(l, "Statut", "Status"), &r.status),
        row(tr(l, "Début d'activité", "Start of activity"), r.start_at.as_deref().unwrap_or(dash)),
        row(tr(l, "Fin d'activité", "End of activity"), r.end_at.as_deref().unwrap_or(dash)),
        row(tr(l, "Responsable (parrain)", "Sponsor (responsible manager)"), r.sponsor.as_deref().unwrap_or(dash)),
        row(tr(l, "Type de personne", "Kind of person"), r.person_kind.as_deref().unwrap_or(dash)),
        row(tr(l, "Type de compte", "Account kind"), r.account_kind.as_deref().unwrap_or(dash)),
        row(tr(l, "Métier", "Profession"), i.metier.as_deref().unwrap_or(dash)),
        row(
            tr(l, "Unités fonctionnelles", "Functional units"),
            &if units.is_empty() { dash.into() } else { units.join(", ") },
        ),
        row(tr(l, "Rôles", "Roles"), &if roles.is_empty() { dash.into() } else { roles.join(", ") }),
    ]
    .concat();
    format!(
        r#"<h2 id="person">{family} {given}</h2>
<table id="identity"><caption>{cap}</caption>{rows}</table>"#,
        family = esc(&i.family_name),
        given = esc(&i.given_name),
        cap = tr(l, "Identité", "Identity"),
    )
}

fn mie_section(l: Lang, w: &Whole) -> String {
    let r = &w.record;
    let yes_no = |b: bool| tr(l, if b { "oui" } else { "non" }, if b { "yes" } else { "no" });
    let cards: Vec<String> =
        w.cards.iter().map(|c| format!("{} ({})", c.kind.to_uppercase(), c.status.as_str())).collect();
    let keys: Vec<String> = r.keys.iter().map(|k| k.name.clone()).collect();
    let orders: Vec<String> = w
        .orders
        .iter()
        .map(|o| {
            format!("{} ({}, {})", o.kind.to_uppercase(), o.status, o.created_at.get(..10).unwrap_or(&o.created_at))
        })
        .collect();
    let sponsorships: Vec<String> = r
        .sponsorships
        .iter()
        .map(|s| {
            let dir = if s.direction == "given" {
                tr(l, "donné à", "given to")
            } else {
                tr(l, "reçu de", "received from")
            };
            format!("{dir} {} ({})", s.other, s.created_at.get(..10).unwrap_or(&s.created_at))
        })
        .collect();
    let list = |v: &[String]| if v.is_empty() { "—".to_owned() } else { v.join(", ") };
    let rows = [
        row(tr(l, "Cartes CPS / CPE", "CPS / CPE cards"), &list(&cards)),
        row(tr(l, "Commandes de carte", "Card orders"), &list(&orders)),
        row(tr(l, "Clés FIDO2", "FIDO2 keys"), &list(&keys)),
        row(tr(l, "TOTP enrôlé", "TOTP enrolled"), yes_no(r.totp_enrolled)),
        row(tr(l, "Parrainages", "Sponsorships"), &list(&sponsorships)),
    ]
    .concat();
    format!(
        r#"<h2 id="mies">{title}</h2><table id="mie"><caption>{title}</caption>{rows}</table>"#,
        title = tr(l, "Moyens d'identification électronique", "Means of electronic identification"),
    )
}

fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| vigie_directory_sql::lifecycle::stamp(t).chars().take(16).collect::<String>().replace('T', " "))
        .unwrap_or_default()
}

fn sessions_section(l: Lang, id: &str, sessions: &[LiveSession], csrf: &str) -> String {
    let title = tr(l, "Sessions ouvertes", "Live sessions");
    if sessions.is_empty() {
        return format!(
            r#"<h2 id="sessions">{title}</h2><p>{}</p>"#,
            tr(l, "Aucune session ouverte.", "No live session.")
        );
    }
    let rows: String = sessions
        .iter()
        .enumerate()
        .map(|(n, s)| {
            format!(
                r#"<tr><td>{at}</td><td>{method}</td><td>{level}</td><td><form method="post" action="{PATH}/sessions/end?lang={code}">{csrf}{person}{sid}<button type="submit" aria-label="{label} {n1} ({at})">{button}</button></form></td></tr>"#,
                at = when(s.created_at),
                method = esc(s.method),
                level = esc(s.level),
                code = l.code(),
                csrf = hidden("csrf", csrf),
                person = hidden("person", id),
                sid = hidden("sid", &s.sid),
                n1 = n + 1,
                label = tr(l, "Mettre fin à la session", "End session"),
                button = tr(l, "Mettre fin à cette session", "End this session"),
            )
        })
        .collect();
    format!(
        r#"<h2 id="sessions">{title}</h2>
<table id="live-sessions"><caption>{title}</caption>
<tr><th scope="col">{opened}</th><th scope="col">{method}</th><th scope="col">{level}</th><th scope="col">{action}</th></tr>{rows}</table>
<form method="post" action="{PATH}/sessions/end?lang={code}">{csrf}{person}<button type="submit">{all}</button></form>
<p class="help">{help}</p>"#,
        opened = tr(l, "Ouverte le (UTC)", "Opened (UTC)"),
        method = tr(l, "Moyen", "Method"),
        level = tr(l, "Niveau (acr)", "Level (acr)"),
        action = tr(l, "Action", "Action"),
        code = l.code(),
        csrf = hidden("csrf", csrf),
        person = hidden("person", id),
        all = tr(l, "Mettre fin à toutes les sessions", "End all sessions"),
        help = tr(
            l,
            "Les jetons émis pendant la session, jetons de rafraîchissement compris, sont révoqués et les applications prévenues.",
            "The tokens issued in the session, refresh tokens included, are revoked and the applications told."
        ),
    )
}

fn events_section(l: Lang, events: &[LifeEvent]) -> String {
    let rows: String = events
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{at}</td><td>{what}</td><td>{detail}</td><td>{by}</td></tr>",
                at = esc(&e.at.chars().take(16).collect::<String>().replace('T', " ")),
                what = esc(e.what),
                detail = esc(&e.detail),
                by = esc(e.by.as_deref().unwrap_or("—")),
            )
        })
        .collect();
    format!(
        r#"<h2 id="events">{title}</h2>
<table id="life-events"><caption>{title}</caption>
<tr><th scope="col">{at}</th><th scope="col">{what}</th><th scope="col">{detail}</th><th scope="col">{by}</th></tr>{rows}</table>"#,
        title = tr(l, "Événements du cycle de vie", "Life-cycle events"),
        at = tr(l, "Date (UTC)", "When (UTC)"),
        what = tr(l, "Événement", "Event"),
        detail = tr(l, "Détail", "Detail"),
        by = tr(l, "Par", "By"),
    )
}

fn recent_section(l: Lang, recent: &Recent) -> String {
    let title = tr(l, "Connexions et refus récents", "Recent logins and refusals");
    let entries = match recent {
        Recent::Available { entries } => entries,
        Recent::Unavailable => {
            let text = tr(
                l,
                "L'historique des connexions est indisponible : le journal d'audit ne peut pas être lu pour \
                 l'instant. Le reste de la fiche est à jour ; réessayez plus tard.",
                "The login history is unavailable: the audit trail cannot be read now. The rest of this page is \
                 up to date; try again later.",
            );
            return format!(
                r#"<h2 id="recent">{title}</h2>{}"#,
                notice(text, true).replace(r#"id="notice""#, r#"id="recent-unavailable""#)
            );
        }
    };
    if entries.is_empty() {
        let none =
            tr(l, "Aucune connexion ni refus dans le journal d'audit.", "No login or refusal in the audit trail.");
        return format!(r#"<h2 id="recent">{title}</h2><p id="recent-none">{none}</p>"#);
    }
    let what = |e: &RecentEntry| match (e.what, e.outcome) {
        ("login", "success") => tr(l, "Connexion", "Login"),
        ("login", _) => tr(l, "Connexion échouée", "Failed login"),
        ("policy_refused", _) => tr(l, "Refus de la politique", "Policy refusal"),
        _ => tr(l, "Refus", "Refusal"),
    };
    let rows: String = entries
        .iter()
        .map(|e| {
            let dash = |v: &Option<String>| esc(v.as_deref().unwrap_or("—"));
            format!(
                "<tr><td>{at}</td><td>{what}</td><td>{client}</td><td>{mie} / {level}</td><td>{reason}</td><td><code>{rid}</code></td></tr>",
                at = esc(&e.at.chars().take(19).collect::<String>().replace('T', " ")),
                what = what(e),
                client = dash(&e.client),
                mie = dash(&e.mie),
                level = dash(&e.level),
                reason = dash(&e.reason),
                rid = dash(&e.request_id),
            )
        })
        .collect();
    format!(
        r#"<h2 id="recent">{title}</h2>
<table id="recent-logins"><caption>{title}</caption>
<tr><th scope="col">{at}</th><th scope="col">{what}</th><th scope="col">{client}</th><th scope="col">{mie}</th><th scope="col">{reason}</th><th scope="col">{rid}</th></tr>{rows}</table>"#,
        at = tr(l, "Date (UTC)", "When (UTC)"),
        what = tr(l, "Événement", "Event"),
        client = tr(l, "Application", "Application"),
        mie = tr(l, "MIE / niveau", "MIE / level"),
        reason = tr(l, "Motif", "Reason"),
        rid = tr(l, "Identifiant de requête", "Request id"),
    )
}
