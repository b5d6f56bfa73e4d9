//! `GET /admin/cards/orders[?status=ordered|received|cancelled][&format=csv]`: the joiners' card
//! orders (docs/identity-lifecycle.md "Card orders"), as JSON or as the CSV HR sends on, for a
//! bearer token with the role `cards` and the scope `cards:read` (`vigie cards orders`).
use actix_web::HttpRequest;
use actix_web::HttpResponse;
use serde_json::json;
use vigie_core::roles::Scope;
use vigie_directory_sql::card_orders::{CardOrder, ORDER_STATUSES};

use super::auth::{self, Gate, GateParts};
use crate::admin::bad_request;

/// The CSV columns, in order: what the ANS order needs (identity, idNat, profession, structure),
/// then the order's own.
const CSV_HEADER: [&str; 13] = [
    "order_id",
    "status",
    "kind",
    "matricule",
    "family_name",
    "given_name",
    "birth_date",
    "idnat",
    "metier",
    "structure",
    "created_at",
    "updated_at",
    "reason",
];

/// `GET /admin/cards/orders`
pub async fn list(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(auth::require_token(&req, &gate, Scope::CardsRead).await);
    let params = try_or!(crate::web::http::parse_params(req.query_string().as_bytes()).map_err(|m| bad_request(&m)));
    let status = params.get("status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && !ORDER_STATUSES.contains(&s)
    {
        return bad_request(&format!("`status` must be one of {}", ORDER_STATUSES.join(", ")));
    }
    let csv = match params.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return bad_request("`format` must be json or csv"),
    };
    let orders = match gate.ports.lifecycle.card_orders(status, None).await {
        Ok(o) => o,
        Err(e) => {
            return crate::web::http::problem(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "Directory unavailable",
                &format!("the card orders could not be read: {e}"),
            );
        }
    };
    if csv {
        return HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(to_csv(&orders));
    }
    HttpResponse::Ok().json(json!({ "orders": orders }))
}

/// The cards page's table of the orders still open (`ordered`), oldest first: what HR awaits.
pub fn open_section(l: crate::web::pages::Lang, orders: &[CardOrder]) -> String {
    use crate::web::http::esc;
    use crate::web::pages::tr;
    let title = tr(l, "Cartes commandées pour les arrivants", "Cards ordered for joiners");
    if orders.is_empty() {
        let none = tr(l, "Aucune commande en cours.", "No order open.");
        return format!(r#"<h2 id="orders">{title}</h2><p>{none}</p>"#);
    }
    let rows: String = orders
        .iter()
        .rev()
        .map(|o| {
            format!(
                "<tr><td>{kind}</td><td>{mat}</td><td>{family} {given}</td><td>{metier}</td><td>{idnat}</td><td>{at}</td></tr>",
                kind = o.kind.to_uppercase(),
                mat = esc(&o.matricule),
                family = esc(&o.family_name),
                given = esc(&o.given_name),
                metier = esc(o.metier.as_deref().unwrap_or("—")),
                idnat = esc(o.idnat.as_deref().unwrap_or("—")),
                at = esc(o.created_at.get(..10).unwrap_or(&o.created_at)),
            )
        })
        .collect();
    format!(
        r#"<h2 id="orders">{title}</h2><table id="card-orders"><caption>{title}</caption><tr><th scope="col">{k}</th><th scope="col">{m}</th><th scope="col">{n}</th><th scope="col">{p}</th><th scope="col">idNat</th><th scope="col">{d}</th></tr>{rows}</table><p>{csv} <code>vigie cards orders --csv</code></p>"#,
        k = tr(l, "Carte", "Card"),
        m = tr(l, "Matricule", "Matricule"),
        n = tr(l, "Nom", "Name"),
        p = tr(l, "Métier", "Métier"),
        d = tr(l, "Commandée le", "Ordered on"),
        csv = tr(l, "Toutes les commandes en CSV :", "Every order as CSV:"),
    )
}

/// The orders as RFC 4180 CSV (CRLF lines, fields quoted when they hold `,`, `"` or a line break).
pub fn to_csv(orders: &[CardOrder]) -> String {
    let mut out = crate::csv::record(CSV_HEADER);
    for o in orders {
        let row = [
            Some(&o.id),
            Some(&o.status),
            Some(&o.kind),
            Some(&o.matricule),
            Some(&o.family_name),
            Some(&o.given_name),
            o.birth_date.as_ref(),
            o.idnat.as_ref(),
            o.metier.as_ref(),
            o.structure.as_ref(),
            Some(&o.created_at),
            Some(&o.updated_at),
            o.reason.as_ref(),
        ];
        out += &crate::csv::record(row.iter().map(|f| f.map_or("", |s| s.as_str())));
    }
    out
}
