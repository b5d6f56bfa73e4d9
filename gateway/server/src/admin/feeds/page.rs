//! `/admin/feeds`: the console page of HR for the HR feed and the RPPS proposals, server-rendered,
//! French first (English with `?lang=en`), no JavaScript: the last runs, one run's diff and error
//! lines (`?run=ID`), the pending proposals with their evidence and a confirm / reject form each.
//! Every form carries the session's CSRF token (`Admin::csrf`).
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::roles::Role;
use vigie_directory_sql::FeedRun;

use super::ProposalView;
use crate::admin::actions::ActionError;
use crate::admin::auth::{Gate, GateParts};
use crate::admin::shell::{self, Console};
use crate::lifecycle::runs::{self, ErrorLine, Kind};
use crate::web::http::{esc, parse_params};
use crate::web::pages::{Lang, lang, lang_switch, tr};

/// Where the page is.
pub const PATH: &str = "/admin/feeds";

fn page(l: Lang, roles: &[Role], status: StatusCode, main: &str) -> HttpResponse {
    let title = tr(l, "Flux RH et propositions RPPS", "HR feed and RPPS proposals");
    let nav = crate::admin::shell::Nav::new(PATH, roles);
    crate::admin::shell::page(&nav, l, status, title, main, &lang_switch(l, &format!("{PATH}?")))
}

use crate::admin::shell::notice;

fn back_link(l: Lang) -> String {
    format!(r#"<p><a href="{PATH}?lang={}">{}</a></p>"#, l.code(), tr(l, "Retour aux flux", "Back to the feeds"))
}

/// `GET /admin/feeds[?run=ID|?done=…]`
pub async fn get(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let Console { gate, admin, l, params } = match shell::open(&req, &parts, PATH, Role::Cards, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(id) = params.get("run") {
        return match gate.ports.lifecycle.feed_run(id).await {
            Ok(Some(r)) => page(l, &admin.roles, StatusCode::OK, &format!("{}{}", run_section(l, &r), back_link(l))),
            Ok(None) => page(
                l,
                &admin.roles,
                StatusCode::NOT_FOUND,
                &format!("{}{}", notice(tr(l, "Exécution inconnue.", "Unknown run."), true), back_link(l)),
            ),
            Err(e) => crate::web::pages::unavailable(&req, &e),
        };
    }
    let done = params.get("done").and_then(|d| done_message(l, d)).map(|m| notice(m, false)).unwrap_or_default();
    overview(&req, &gate, &admin.roles, &admin.csrf().unwrap_or_default(), &done, StatusCode::OK).await
}

async fn overview(
    req: &HttpRequest,
    gate: &Gate<'_>,
    roles: &[Role],
    csrf: &str,
    notice_html: &str,
    status: StatusCode,
) -> HttpResponse {
    let l = lang(req, None);
    let list = match gate.ports.lifecycle.feed_runs(20).await {
        Ok(list) => list,
        Err(e) => return crate::web::pages::unavailable(req, &e),
    };
    let proposals = match super::proposals(gate).await {
        Ok(p) => p,
        Err(e) => return crate::web::pages::unavailable(req, &e),
    };
    page(
        l,
        roles,
        status,
        &format!("{notice_html}{}{}", runs_section(l, &list), proposals_section(l, &proposals, csrf)),
    )
}

/// `POST /admin/feeds/proposals/decide`: `proposal`, `decision` (`confirm` or `reject`), `csrf`.
pub async fn decide(req: HttpRequest, parts: GateParts, body: web::Bytes) -> HttpResponse {
    let (gate, admin, l) = match shell::operator(&req, &parts, Role::Cards).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match parse_params(&body) {
        Ok(p) => p,
        Err(m) => return page(l, &admin.roles, StatusCode::BAD_REQUEST, &notice(&format!("bad form: {m}"), true)),
    };
    if !admin.check_csrf(p.get("csrf")) {
        let text = tr(
            l,
            "Ce formulaire a expiré ou ne vient pas de cette page. Rechargez la page et recommencez.",
            "This form has expired or does not come from this page. Reload the page and try again.",
        );
        return page(l, &admin.roles, StatusCode::FORBIDDEN, &format!("{}{}", notice(text, true), back_link(l)));
    }
    let confirm = match p.get("decision") {
        Some("confirm") => true,
        Some("reject") => false,
        _ => {
            let text = tr(l, "Choisissez « confirmer » ou « rejeter ».", "Choose \"confirm\" or \"reject\".");
            return page(l, &admin.roles, StatusCode::BAD_REQUEST, &format!("{}{}", notice(text, true), back_link(l)));
        }
    };
    let id = p.get("proposal").unwrap_or_default().to_owned();
    match super::decide(&gate, &admin, &id, confirm).await {
        Ok(_) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("done", if confirm { "confirmed" } else { "rejected" })
                .append_pair("lang", l.code())
                .finish();
            HttpResponse::SeeOther().insert_header((header::LOCATION, format!("{PATH}?{q}#proposals"))).finish()
        }
        Err(e) => {
            let status = match e {
                ActionError::NotFound(_) => StatusCode::NOT_FOUND,
                ActionError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            let text = match &e {
                ActionError::Unavailable(_) => tr(
                    l,
                    "L'annuaire est indisponible : réessayez dans un instant.",
                    "The directory is unavailable: try again shortly.",
                )
                .to_owned(),
                other => other.to_string(),
            };
            overview(&req, &gate, &admin.roles, &admin.csrf().unwrap_or_default(), &notice(&text, true), status).await
        }
    }
}

fn done_message(l: Lang, done: &str) -> Option<&'static str> {
    Some(match done {
        "confirmed" => tr(
            l,
            "Dérivation confirmée : l'identité porte désormais cet idNat.",
            "Derivation confirmed: the identity now carries this idNat.",
        ),
        "rejected" => tr(
            l,
            "Proposition rejetée : elle ne sera plus proposée.",
            "Proposal rejected: it will not be proposed again.",
        ),
        _ => return None,
    })
}

fn result_label(l: Lang, r: &str) -> &'static str {
    match r {
        "applied" => tr(l, "appliqué", "applied"),
        "dry_run" => tr(l, "essai à blanc", "dry run"),
        "unchanged" => tr(l, "rien à changer", "nothing to change"),
        "refused" => tr(l, "arrêté par le seuil de sécurité", "stopped by the safety limit"),
        "failed" => tr(l, "en erreur", "failed"),
        _ => tr(l, "autre", "other"),
    }
}

fn run_link(l: Lang, r: &FeedRun) -> String {
    format!(
        r#"<a href="{PATH}?run={}&amp;lang={}">{}</a>"#,
        esc(&r.id),
        l.code(),
        esc(&r.started_at.chars().take(19).collect::<String>().replace('T', " "))
    )
}

fn runs_section(l: Lang, list: &[FeedRun]) -> String {
    let title = tr(l, "Dernières exécutions du flux RH", "Last runs of the HR feed");
    if list.is_empty() {
        let none = tr(l, "Aucune exécution enregistrée.", "No run recorded.");
        return format!(r#"<h2 id="runs">{title}</h2><p role="status">{none}</p>"#);
    }
    let rows: String = list
        .iter()
        .map(|r| {
            format!(
                "<tr><td>{at}</td><td>{result}</td><td>{source}</td><td>{by}</td><td>{j}</td><td>{m}</td><td>{lv}</td><td>{u}</td><td>{e}</td></tr>",
                at = run_link(l, r),
                result = result_label(l, &r.result),
                source = esc(&r.source),
                by = esc(&r.started_by),
                j = r.joiners,
                m = r.movers,
                lv = r.leavers,
                u = r.unchanged,
                e = r.errors,
            )
        })
        .collect();
    format!(
        r#"<h2 id="runs">{title}</h2>
<table id="feed-runs"><caption>{title}</caption>
<tr><th scope="col">{at}</th><th scope="col">{result}</th><th scope="col">{source}</th><th scope="col">{by}</th><th scope="col">{j}</th><th scope="col">{m}</th><th scope="col">{lv}</th><th scope="col">{u}</th><th scope="col">{e}</th></tr>{rows}</table>"#,
        at = tr(l, "Début (UTC)", "Started (UTC)"),
        result = tr(l, "Résultat", "Result"),
        source = tr(l, "Source", "Source"),
        by = tr(l, "Lancé par", "Started by"),
        j = tr(l, "Arrivées", "Joiners"),
        m = tr(l, "Mouvements", "Movers"),
        lv = tr(l, "Départs", "Leavers"),
        u = tr(l, "Inchangés", "Unchanged"),
        e = tr(l, "Erreurs", "Errors"),
    )
}

fn kind_table(l: Lang, id: &str, title: &str, k: &Kind) -> String {
    if k.people.is_empty() {
        return String::new();
    }
    let rows: String = k
        .people
        .iter()
        .map(|p| {
            let changes: Vec<String> = p
                .changes
                .iter()
                .map(|c| {
                    let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
                    format!("{} : {} → {}", c.field, v(&c.before), v(&c.after))
                })
                .collect();
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.matricule),
                esc(p.username.as_deref().unwrap_or("—")),
                esc(&p.why.clone().unwrap_or_else(|| changes.join(" ; ")))
            )
        })
        .collect();
    let more = if k.more > 0 {
        format!("<p>{} {}</p>", k.more, tr(l, "autre(s), non listée(s).", "more, not listed."))
    } else {
        String::new()
    };
    format!(
        r#"<table id="{id}"><caption>{title} ({n})</caption><tr><th scope="col">{m}</th><th scope="col">{u}</th><th scope="col">{c}</th></tr>{rows}</table>{more}"#,
        n = k.people.len() + k.more,
        m = tr(l, "Matricule", "Matricule"),
        u = tr(l, "Identifiant", "Login"),
        c = tr(l, "Changement", "Change"),
    )
}

fn errors_table(l: Lang, errors: &[ErrorLine]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let rows: String = errors
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.line,
                esc(e.column.as_deref().unwrap_or("—")),
                esc(&e.reason)
            )
        })
        .collect();
    format!(
        r#"<table id="feed-errors"><caption>{t}</caption><tr><th scope="col">{li}</th><th scope="col">{co}</th><th scope="col">{wh}</th></tr>{rows}</table>"#,
        t = tr(l, "Erreurs : rien n'a été appliqué", "Errors: nothing was applied"),
        li = tr(l, "Ligne", "Line"),
        co = tr(l, "Colonne", "Column"),
        wh = tr(l, "Problème", "Problem"),
    )
}

fn run_section(l: Lang, r: &FeedRun) -> String {
    let (diff, errors) = runs::details(r);
    let dry =
        if r.dry_run { tr(l, " (essai à blanc : rien n'a été écrit)", " (dry run: nothing written)") } else { "" };
    let stop = r
        .safety_stop
        .as_deref()
        .map(|s| {
            format!(r#"<p class="error" role="alert">{} {}</p>"#, tr(l, "Seuil de sécurité :", "Safety limit:"), esc(s))
        })
        .unwrap_or_default();
    format!(
        r#"<h2 id="run">{title} {at}</h2><p>{result}{dry} — {source} — {by}</p>{stop}{j}{m}{lv}{rt}{errs}"#,
        title = tr(l, "Exécution du", "Run of"),
        at = esc(&r.started_at),
        result = result_label(l, &r.result),
        source = esc(&r.source),
        by = esc(&r.started_by),
        j = kind_table(l, "joiners", tr(l, "Arrivées", "Joiners"), &diff.joiners),
        m = kind_table(l, "movers", tr(l, "Mouvements", "Movers"), &diff.movers),
        lv = kind_table(l, "leavers", tr(l, "Départs", "Leavers"), &diff.leavers),
        rt = kind_table(l, "returning", tr(l, "Retours", "Returning"), &diff.returning),
        errs = errors_table(l, &errors),
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(r#"<input type="hidden" name="{name}" value="{}">"#, esc(value))
}

fn proposals_section(l: Lang, list: &[ProposalView], csrf: &str) -> String {
    let title = tr(l, "Propositions de dérivation RPPS à confirmer", "RPPS derivation proposals to confirm");
    if list.is_empty() {
        let none = tr(l, "Aucune proposition en attente.", "No proposal waiting.");
        return format!(r#"<h2 id="proposals">{title}</h2><p role="status">{none}</p>"#);
    }
    let dash = "—";
    let rows: String = list
        .iter()
        .map(|p| {
            let who = format!("{} {}", p.family_name, p.given_name);
            let rpps = format!(
                "{} {}",
                p.rpps_family_name.as_deref().unwrap_or(dash),
                p.rpps_given_name.as_deref().unwrap_or("")
            );
            let strength = if p.strength == "weak" {
                format!(
                    "<strong>{}</strong><br>{}",
                    tr(l, "faible", "weak"),
                    esc(p.weak_because.as_deref().unwrap_or_default())
                )
            } else {
                tr(l, "forte", "strong").to_owned()
            };
            let form = |decision: &str, text: &str| {
                format!(
                    r#"<form method="post" action="{PATH}/proposals/decide?lang={code}">{csrf}{id}{d}<button type="submit" aria-label="{text} : {who}, idNat {idnat}">{text}</button></form>"#,
                    code = l.code(),
                    csrf = hidden("csrf", csrf),
                    id = hidden("proposal", &p.id),
                    d = hidden("decision", decision),
                    who = esc(&who),
                    idnat = esc(&p.idnat),
                )
            };
            format!(
                "<tr><td>{m}<br>{who}</td><td>{birth}</td><td>{metier}</td><td>{idnat}<br>{rpps}</td><td>{rbirth}</td><td>{prof}</td><td>{strength}<br>{why}</td><td>{source}</td><td>{c}{r}</td></tr>",
                m = esc(&p.matricule),
                who = esc(&who),
                birth = esc(p.birth_date.as_deref().unwrap_or(dash)),
                metier = esc(p.metier.as_deref().unwrap_or(dash)),
                idnat = esc(&p.idnat),
                rpps = esc(&rpps),
                rbirth = esc(p.rpps_birth_date.as_deref().unwrap_or(dash)),
                prof = esc(p.rpps_profession.as_deref().unwrap_or(dash)),
                why = esc(&p.why),
                source = esc(p.source.as_deref().unwrap_or(dash)),
                c = form("confirm", tr(l, "Confirmer", "Confirm")),
                r = form("reject", tr(l, "Rejeter", "Reject")),
            )
        })
        .collect();
    format!(
        r#"<h2 id="proposals">{title}</h2>
<p class="help">{help}</p>
<table id="rpps-proposals"><caption>{title}</caption>
<tr><th scope="col">{person}</th><th scope="col">{birth}</th><th scope="col">{metier}</th><th scope="col">{rpps}</th><th scope="col">{rbirth}</th><th scope="col">{prof}</th><th scope="col">{match_}</th><th scope="col">{source}</th><th scope="col">{action}</th></tr>{rows}</table>"#,
        help = tr(
            l,
            "Aucune proposition n'est appliquée sans vous : vérifiez les éléments (noms, date de naissance, profession) avant de confirmer. Une correspondance faible n'est jamais confirmée automatiquement.",
            "No proposal is applied without you: check the evidence (names, birth date, profession) before confirming. A weak match is never confirmed automatically."
        ),
        person = tr(l, "Personne (RH)", "Person (HR)"),
        birth = tr(l, "Naissance (RH)", "Born (HR)"),
        metier = tr(l, "Métier (RH)", "Métier (HR)"),
        rpps = tr(l, "idNat et noms (RPPS)", "idNat and names (RPPS)"),
        rbirth = tr(l, "Naissance (RPPS)", "Born (RPPS)"),
        prof = tr(l, "Profession (RPPS)", "Profession (RPPS)"),
        match_ = tr(l, "Correspondance", "Match"),
        source = tr(l, "Source", "Source"),
        action = tr(l, "Décision", "Decision"),
    )
}
