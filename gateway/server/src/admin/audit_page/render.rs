//! The HTML of the audit page: the filter form (every control labelled, its expected form in a
//! help text tied by `aria-describedby`), the results table (column headers), paging and the
//! export links of the same selection. No script (the pages' CSP allows none).
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::PATH;
use crate::audit::search::Page;
use crate::web::http::{Params, esc};
use crate::web::pages::{Lang, lang_switch, tr, wide_page};
use vigie_core::roles::Role;

/// The event kinds offered as suggestions (any kind of docs/audit.md may be typed).
const KINDS: [&str; 12] = [
    "login",
    "refused",
    "logout",
    "token_issued",
    "token_refreshed",
    "policy_decision",
    "access_ended",
    "vihf_issued",
    "dmp_call",
    "admin_api",
    "role_changed",
    "audit_searched",
];

/// The filters as the operator typed them, shown again in the form and carried by the links.
#[derive(Default)]
pub(super) struct Form {
    fields: Vec<(&'static str, String)>,
    /// Whether this is an older page (`before` given): then a link back to the newest.
    paged: bool,
}

impl Form {
    pub(super) fn of(params: &Params) -> Self {
        let fields = ["person", "client", "kind", "result", "from", "to"]
            .into_iter()
            .map(|k| (k, params.get(k).unwrap_or_default().trim().to_owned()))
            .collect();
        Form { fields, paged: params.get("before").is_some() }
    }

    fn get(&self, k: &str) -> &str {
        self.fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    /// The non-empty filters, `extra` and the language as a query string, escaped for an attribute.
    fn link(&self, l: Lang, extra: &[(&str, &str)]) -> String {
        let mut extra = extra.to_vec();
        extra.push(("lang", l.code()));
        self.filters(&extra)
    }

    fn filters(&self, extra: &[(&str, &str)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.fields.iter().filter(|(_, v)| !v.is_empty()) {
            q.append_pair(k, v);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        esc(&q.finish())
    }
}

fn title(l: Lang) -> &'static str {
    tr(l, "Journal d'audit", "Audit trail")
}

pub(super) use crate::admin::shell::notice;

/// The page: the form, then `below` (results or a message), then the language switch (the same
/// search in the other language).
pub(super) fn page(roles: &[Role], l: Lang, status: StatusCode, form: &Form, below: &str) -> HttpResponse {
    let filters = form.filters(&[]);
    let here = if filters.is_empty() { format!("{PATH}?") } else { format!("{PATH}?{filters}&amp;") };
    let switch = lang_switch(l, &here);
    let nav = crate::admin::shell::Nav::new(PATH, roles);
    crate::admin::shell::page(&nav, l, status, title(l), &format!("{}{below}", search_form(l, form)), &switch)
}

/// Not signed in: a sign-in that comes back to this page.
pub(super) fn sign_in_needed(l: Lang) -> HttpResponse {
    let main = format!(
        r#"<p>{}</p><a class="button" id="sign-in" href="{PATH}/login">{}</a>"#,
        tr(
            l,
            "Cette page est réservée aux personnes qui ont le rôle « audit ».",
            "This page is for people holding the role \"audit\"."
        ),
        tr(l, "Se connecter", "Sign in")
    );
    wide_page(l, StatusCode::UNAUTHORIZED, title(l), &main)
}

/// A text field's label and help (French, English), and its further attributes.
type Field = ([&'static str; 2], [&'static str; 2], &'static str);

const DAY: [&str; 2] = ["2026-12-05 ou 2026-12-05T08:00:00Z (UTC)", "2026-12-05 or 2026-12-05T08:00:00Z (UTC)"];

/// person, client, kind, from, to.
const FIELDS: [Field; 5] = [
    (
        ["Personne", "Person"],
        [
            "Identifiant dans l'annuaire ou idNat (RPPS) ; plusieurs séparés par des virgules.",
            "Directory id or idNat (RPPS); several separated by commas.",
        ],
        "",
    ),
    (
        ["Application (client)", "Application (client)"],
        ["L'identifiant du client OAuth, par exemple demo-dpi.", "The OAuth client id, e.g. demo-dpi."],
        "",
    ),
    (
        ["Type d'événement", "Event kind"],
        [
            "login, refused, logout, vihf_issued… (docs/audit.md) ; plusieurs séparés par des virgules.",
            "login, refused, logout, vihf_issued… (docs/audit.md); several separated by commas.",
        ],
        r#" list="kinds""#,
    ),
    (["Depuis (inclus)", "From (inclusive)"], DAY, ""),
    (["Jusqu'à (exclu)", "To (exclusive)"], DAY, ""),
];

/// A labelled text field, its help tied to it (`aria-describedby`), the value sent kept.
fn field(id: &str, form: &Form, (label, help, extra): Field, l: Lang) -> String {
    format!(
        r#"<label for="{id}">{label}</label>
<input id="{id}" name="{id}" type="text" value="{v}" maxlength="200" aria-describedby="{id}-help"{extra}>
<p id="{id}-help" class="help">{help}</p>"#,
        label = tr(l, label[0], label[1]),
        help = tr(l, help[0], help[1]),
        v = esc(form.get(id))
    )
}

fn search_form(l: Lang, form: &Form) -> String {
    let options = |chosen: &str| -> String {
        [("", tr(l, "tous", "any")), ("success", tr(l, "succès", "success")), ("failure", tr(l, "échec", "failure"))]
            .iter()
            .map(|(v, text)| {
                let sel = if *v == chosen { " selected" } else { "" };
                format!(r#"<option value="{v}"{sel}>{text}</option>"#)
            })
            .collect()
    };
    let kinds: String = KINDS.iter().map(|k| format!(r#"<option value="{k}">"#)).collect();
    format!(
        r#"<form method="get" action="{PATH}" role="search" aria-label="{aria}">
<input type="hidden" name="lang" value="{code}">
{person}{client}{kind}<datalist id="kinds">{kinds}</datalist>
<label for="result">{result}</label>
<select id="result" name="result">{options}</select>
{from}{to}
<button type="submit">{button}</button>
</form>"#,
        aria = tr(l, "Recherche dans le journal d'audit", "Audit trail search"),
        code = l.code(),
        person = field("person", form, FIELDS[0], l),
        client = field("client", form, FIELDS[1], l),
        kind = field("kind", form, FIELDS[2], l),
        result = tr(l, "Résultat", "Result"),
        options = options(form.get("result")),
        from = field("from", form, FIELDS[3], l),
        to = field("to", form, FIELDS[4], l),
        button = tr(l, "Rechercher", "Search"),
    )
}

/// One cell's text from the record as written.
fn text(raw: &serde_json::Value, name: &str) -> String {
    match raw.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn who(raw: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for (name, prefix) in [("username", ""), ("subject", ""), ("idnat", "idNat "), ("actor", "← ")] {
        let v = text(raw, name);
        if !v.is_empty() && !parts.iter().any(|p: &String| p.ends_with(&v)) {
            parts.push(format!("{prefix}{v}"));
        }
    }
    parts.iter().map(|p| esc(p)).collect::<Vec<_>>().join("<br>")
}

/// The results table's columns (French, English).
const COLUMNS: [[&str; 2]; 8] = [
    ["Date (UTC)", "When (UTC)"],
    ["Événement", "Event"],
    ["Qui", "Who"],
    ["Application", "Application"],
    ["IP", "IP"],
    ["Moyen · niveau", "MIE · level"],
    ["Résultat", "Outcome"],
    ["Identifiant de requête", "Request id"],
];

pub(super) fn results(l: Lang, form: &Form, found: &Page) -> String {
    if found.records.is_empty() {
        return notice(tr(l, "Aucun enregistrement ne correspond.", "No record matches."), false);
    }
    let dash = |s: String| if s.is_empty() { "—".to_owned() } else { esc(&s) };
    let rows: String = found
        .records
        .iter()
        .map(|r| {
            let raw = &r.raw;
            let level = [text(raw, "method"), text(raw, "acr")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>();
            format!(
                "<tr><td>{at}</td><td>{kind}</td><td>{who}</td><td>{client}</td><td>{ip}</td><td>{level}</td><td>{outcome}</td><td><code>{rid}</code></td></tr>",
                at = esc(&text(raw, "at").chars().take(19).collect::<String>().replace('T', " ")),
                kind = dash(text(raw, "kind")),
                who = Some(who(raw)).filter(|w| !w.is_empty()).unwrap_or_else(|| "—".into()),
                client = dash(text(raw, "client_id")),
                ip = dash(text(raw, "ip")),
                level = dash(level.join(" · ")),
                outcome = dash(text(raw, "outcome")),
                rid = dash(text(raw, "request_id")),
            )
        })
        .collect();
    let mut nav = String::new();
    if let Some(next) = found.next {
        nav.push_str(&format!(
            r#"<a href="{PATH}?{}" rel="next">{}</a> "#,
            form.link(l, &[("before", &next.to_string())]),
            tr(l, "Enregistrements plus anciens", "Older records")
        ));
    }
    if form.paged {
        nav.push_str(&format!(
            r#"<a href="{PATH}?{}">{}</a>"#,
            form.link(l, &[]),
            tr(l, "Les plus récents", "Newest records")
        ));
    }
    format!(
        r#"<table id="records"><caption>{cap} ({n})</caption>
<thead><tr>{headers}</tr></thead>
<tbody>{rows}</tbody></table>
<nav aria-label="{pages}">{nav}</nav>
<h2 id="export">{export}</h2>
<p>{export_help}</p>
<ul><li><a href="{PATH}/export?{csv}" download>{csv_text}</a></li><li><a href="{PATH}/export?{jsonl}" download>{jsonl_text}</a></li></ul>"#,
        cap = tr(l, "Enregistrements, du plus récent au plus ancien", "Records, newest first"),
        n = found.records.len(),
        headers =
            COLUMNS.iter().map(|[fr, en]| format!(r#"<th scope="col">{}</th>"#, tr(l, *fr, *en))).collect::<String>(),
        pages = tr(l, "Pages de résultats", "Result pages"),
        export = tr(l, "Exporter cette sélection", "Export this selection"),
        export_help = tr(
            l,
            "Tous les enregistrements qui correspondent aux filtres, pas seulement cette page. L'export est lui-même tracé.",
            "Every record matching the filters, not only this page. The export is itself recorded in the trail."
        ),
        csv = form.link(l, &[("format", "csv")]),
        jsonl = form.link(l, &[("format", "jsonl")]),
        csv_text = tr(l, "CSV (tableur)", "CSV (spreadsheet)"),
        jsonl_text = tr(l, "Lignes JSON (enregistrements tels qu'écrits)", "JSON lines (records as written)"),
    )
}
