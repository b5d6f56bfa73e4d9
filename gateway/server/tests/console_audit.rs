//! The console's audit page against the real binary (issues 17/18: "a page to search and
//! export"): the sign-in that comes back to it, the role `audit` (a cards-only operator gets a 403
//! page naming it), logins listed, each filter narrowing, older pages, and the export of the same
//! selection as CSV (a formula planted by an outsider defused) and JSON lines — each search and
//! export in the trail with the operator.
use crate::common;

use std::time::{Duration, Instant};

use crate::audit_trail::card_login;
use crate::cards_admin::vigie;
use common::*;
use serde_json::Value;

/// A client id an outsider sends to the token endpoint: the refusal records it as given, and a
/// spreadsheet would run it as a formula (CSV injection).
const PLANTED: &str = "=cmd|'/C calc'!A0";

/// The body rows of the page's results table.
fn rows(html: &str) -> Vec<String> {
    let Some(body) = html.split("<tbody>").nth(1).and_then(|b| b.split("</tbody>").next()) else {
        return Vec::new();
    };
    body.split("<tr>").skip(1).map(str::to_owned).collect()
}

/// The page for `query`, polling (up to 20 s) until `enough` holds of its rows: the trail's
/// writer appends from its own thread.
async fn page_until(hr: &mut Browser<'_>, query: &str, enough: impl Fn(&[String]) -> bool) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = hr.get(&format!("/admin/audit-trail?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        if enough(&rows(&r.body)) {
            return r;
        }
        assert!(Instant::now() < deadline, "{query}: not listed within 20 s: {}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_lists_logins_narrows_them_pages_and_exports_the_selection_with_formulas_defused() {
    let gw = Gateway::start(&[]).await;

    // Not signed in: a sign-in that comes back to this page.
    let r = gw.browser().get("/admin/audit-trail").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("href=\"/admin/audit-trail/login\""), "{}", r.body);
    let mut hr = gw.browser_with_demo_card("demo.rh");
    hr.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let r = hr.get("/admin/audit-trail/login").await;
    let r = hr.get(&r.location()).await;
    assert!(r.location().starts_with(&gw.url("/admin/audit-trail?code=")), "{}", r.location());

    // HR with the role `cards` only: refused, told which role and how to get it.
    let r = hr.get("/admin/audit-trail?lang=en").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("does not have the role &quot;audit&quot;") && r.body.contains("grant-role"), "{}", r.body);
    let refusal = gw.audit_line(|l| l["kind"] == "refused" && l["object"] == "role:audit /admin/audit-trail").await;
    assert!(refusal["actor"].as_str().unwrap_or_default().starts_with("staff:"), "{refusal}");
    let r = hr.get("/admin/audit-trail/export?format=csv").await;
    assert_eq!(r.status, 403, "the export is behind the same role: {}", r.body);

    let dir = gw.data_dir.to_str().unwrap();
    let (ok, out, err) = vigie(&["users", "grant-role", "demo.rh", "audit", "--data-dir", dir], &[]);
    assert!(ok && out.contains("granted"), "{out}{err}");

    // Two card logins of the médecin; an outsider plants a formula as a client id; 55 refused
    // authorization requests make more than one page.
    for _ in 0..2 {
        assert_eq!(card_login(&gw).await.status, 303);
    }
    let r = gw
        .http()
        .post(gw.url("/token"))
        .form(&[("grant_type", "authorization_code"), ("code", "x"), ("client_id", PLANTED)])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(r.status(), 401);
    for _ in 0..55 {
        assert_eq!(gw.http().get(gw.url("/authorize")).send().await.expect("authorize").status(), 400);
    }
    let login = gw.audit_line(|l| l["kind"] == "login" && l["method"] == "cps" && l["outcome"] == "success").await;
    let medecin = login["subject"].as_str().expect("the login's subject").to_owned();

    // The logins are listed, with who, client, IP, MIE and level, outcome and request id.
    let r = page_until(&mut hr, "kind=login", |rows| rows.len() >= 2).await;
    let listed = rows(&r.body);
    assert!(listed.iter().all(|row| row.contains("<td>login</td>")), "{listed:#?}");
    let request_id = login["request_id"].as_str().expect("the login's request id");
    let row = listed.iter().find(|row| row.contains(request_id)).expect("the médecin's first login");
    for cell in [medecin.as_str(), "demo-dpi", "127.0.0.1", "cps · urn:vigie:loa:2fa-phr", "<td>success</td>"] {
        assert!(row.contains(cell), "{cell:?} in {row}");
    }
    for header in ["Date (UTC)", "Qui", "Application", "Moyen · niveau", "Résultat", "Identifiant de requête"] {
        assert!(r.body.contains(&format!("<th scope=\"col\">{header}</th>")), "{header}: {}", r.body);
    }

    // Each filter narrows: the person, the client, the result, the period.
    let r = page_until(&mut hr, &format!("person={medecin}&kind=login&result=success&client=demo-dpi"), |rows| {
        rows.len() >= 2
    })
    .await;
    assert!(rows(&r.body).iter().all(|row| row.contains(&medecin) && row.contains("success")), "{}", r.body);
    let r = hr.get(&format!("/admin/audit-trail?person={medecin}&kind=login&result=failure&lang=en")).await;
    assert!(rows(&r.body).is_empty() && r.body.contains("No record matches."), "{}", r.body);
    let r = hr.get("/admin/audit-trail?kind=login&to=2020-01-01").await;
    assert!(rows(&r.body).is_empty(), "{}", r.body);
    let r = hr.get("/admin/audit-trail?kind=logn&lang=en").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("unknown event kind") && r.body.contains("value=\"logn\""), "{}", r.body);
    let planted = format!("client={}&kind=refused", enc(PLANTED));
    let r = page_until(&mut hr, &planted, |rows| rows.len() == 1).await;
    assert!(r.body.contains("=cmd|&#39;/C calc&#39;!A0"), "the value escaped in the page: {}", r.body);

    // More than a page: 50 rows, then the older ones behind the `next` link.
    let r = page_until(&mut hr, "kind=refused&lang=en", |rows| rows.len() == 50).await;
    let next = r.body.split("rel=\"next\"").next().and_then(|s| s.rsplit("href=\"").next()).expect("next link");
    let older = hr.get(&next.replace("&amp;", "&")).await;
    assert_eq!(older.status, 200, "{}", older.body);
    assert!(!rows(&older.body).is_empty() && older.body.contains("Newest records"), "{}", older.body);
    assert!(
        rows(&older.body).iter().all(|row| !rows(&r.body).contains(row)),
        "the older page repeats no record of the first"
    );

    // The export: the whole selection (not only the page), the formula defused in the CSV.
    let csv = hr.get(&format!("/admin/audit-trail/export?format=csv&{planted}")).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").unwrap_or_default().starts_with("attachment; filename=\"vigie-audit-"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "position,at,kind,outcome,subject,idnat,client_id,method,ip,request_id", "{}", csv.body);
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains(",'=cmd|'/C calc'!A0,"), "{}", csv.body);
    assert!(lines[1].split(',').all(|cell| !cell.starts_with(['=', '+', '-', '@'])), "{}", csv.body);
    let all = hr.get("/admin/audit-trail/export?format=jsonl&kind=refused").await;
    let records: Vec<Value> = all.body.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(records.len() >= 56 && records.iter().all(|r| r["kind"] == "refused"), "{}", records.len());
    assert!(records.iter().any(|r| r["client_id"] == PLANTED), "JSON lines keep the record as written");
    let r = hr.get("/admin/audit-trail/export?format=pdf").await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Each search and export is in the trail with the operator.
    let searched = gw
        .audit_line(|l| {
            l["kind"] == "audit_searched" && l["object"].as_str().is_some_and(|o| o.ends_with("exported as csv"))
        })
        .await;
    assert!(searched["actor"].as_str().unwrap_or_default().starts_with("staff:"), "{searched}");
    assert!(searched["reason"].as_str().unwrap_or_default().contains("kind=refused"), "{searched}");
    assert_eq!(searched["object"], "1 record(s) exported as csv", "{searched}");
    let page_search = gw.audit_line(|l| l["kind"] == "audit_searched" && l["reason"] == "kind=login").await;
    assert!(page_search["request_id"].is_string() && page_search["ip"].is_string(), "{page_search}");
}
