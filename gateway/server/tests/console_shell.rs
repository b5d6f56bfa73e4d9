//! The console as one place (issue 17): the same navigation on every console page (only what the
//! operator's roles open, the current page marked), refusals whose sign-in and language link come
//! back to the page that refused — never elsewhere (`/admin/login?back=` takes console pages only)
//! — and the home page's links to the console.
use crate::common;

use crate::cards_admin::vigie;
use common::*;

/// The query parameter `name` of the URL `url` (absolute or a path).
fn param(url: &str, name: &str) -> Option<String> {
    let full = if url.starts_with('/') { format!("https://x{url}") } else { url.to_owned() };
    url::Url::parse(&full).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The console navigation of a page, or "" when it has none.
fn nav(body: &str) -> &str {
    body.split(r#"<nav class="console""#).nth(1).and_then(|s| s.split("</nav>").next()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_has_the_same_navigation_and_refusals_come_back_to_their_page() {
    let gw = Gateway::start(&[]).await;

    // Not signed in on the people page: the sign-in comes back here, so does the language link.
    let mut visitor = gw.browser();
    let r = visitor.get("/admin/people?q=bern").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains(r#"href="/admin/login?back=%2Fadmin%2Fpeople""#), "{}", r.body);
    assert!(r.body.contains(r#"href="/admin/people?q=bern&amp;lang=en""#), "the same search in English: {}", r.body);
    assert_eq!(nav(&r.body), "", "no navigation before signing in: {}", r.body);
    let r = visitor.get("/admin/login?back=%2Fadmin%2Fpeople").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(param(&r.location(), "redirect_uri"), Some(gw.url("/admin/people")), "{}", r.location());

    // A return anywhere but a console page is refused, and says what to do.
    for bad in [
        "https%3A%2F%2Fevil.example%2Fadmin%2Fcards",
        "%2F%2Fevil.example%2Fadmin%2Fcards",
        "%2F%5Cevil.example",
        "%2Fadmin%2Fcards%2F..%2F..%2Fauthorize",
        "%2Faccount%2Fkeys",
    ] {
        let r = visitor.get(&format!("/admin/login?back={bad}&lang=en")).await;
        assert_eq!(r.status, 400, "back={bad}: {} {:?}", r.body, r.header("location"));
        assert!(r.body.contains("does not lead to a page of the console"), "{}", r.body);
    }

    // A nurse holds no role: refused on the audit page, her language link stays on it; no links.
    let (mut nurse, ..) = logged_in(&gw, "demo-cli", &["demo.infirmiere"]).await;
    let r = nurse.get("/admin/audit-trail?lang=en").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains(r#"href="/admin/audit-trail?lang=fr""#), "{}", r.body);
    assert!(!r.body.contains("/admin/cards"), "nothing sends her to the cards: {}", r.body);
    assert_eq!(nav(&r.body), "", "{}", r.body);

    // HR on a password + TOTP session: a stronger sign-in, back to the page that asked.
    let (mut weak, ..) = logged_in(&gw, "demo-cli", &["demo.rh"]).await;
    let r = weak.get("/admin/people").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains(r#"href="/admin/login?back=%2Fadmin%2Fpeople""#), "{}", r.body);
    assert!(r.body.contains("<title>Personnes · Vigie</title>"), "the refusal is titled by its page: {}", r.body);

    // HR with their CPE, through the sign-in of the people page: back on it.
    let mut hr = gw.browser_with_demo_card("demo.rh");
    hr.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let r = hr.get("/admin/login?back=%2Fadmin%2Fpeople").await;
    let r = hr.get(&r.location()).await;
    assert!(r.location().starts_with(&gw.url("/admin/people?code=")), "{}", r.location());
    let r = hr.get(&r.location()).await;
    assert_eq!((r.status, r.location()), (303, "/admin/people".to_owned()));

    // Role `cards` only: cards, people and feeds, the current one marked; no audit trail.
    let people = hr.get("/admin/people").await;
    assert_eq!(people.status, 200, "{}", people.body);
    let links = nav(&people.body);
    assert!(links.contains(r#"<a href="/admin/people?lang=fr" aria-current="page">Personnes</a>"#), "{links}");
    assert!(links.contains(r#"<a href="/admin/cards?lang=fr">Cartes CPS / CPE</a>"#), "{links}");
    assert!(links.contains(r#"<a href="/admin/feeds?lang=fr">Flux et propositions</a>"#), "{links}");
    assert!(!links.contains("audit-trail"), "{links}");
    let r = hr.get("/admin/audit-trail?lang=en").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains(r#"href="/admin/audit-trail?lang=fr""#), "{}", r.body);
    let links = nav(&r.body);
    assert!(links.contains("/admin/people?lang=en") && !links.contains("aria-current"), "{links}");

    // Given `audit`: the fourth link, on every page; each page marks itself.
    let dir = gw.data_dir.to_str().unwrap();
    let (ok, _, err) = vigie(&["users", "grant-role", "demo.rh", "audit", "--data-dir", dir], &[]);
    assert!(ok, "{err}");
    let mut seen = Vec::new();
    for (path, name) in [
        ("/admin/cards", "CPS / CPE cards"),
        ("/admin/people", "People"),
        ("/admin/feeds", "Feeds and proposals"),
        ("/admin/audit-trail", "Audit trail"),
    ] {
        let r = hr.get(&format!("{path}?lang=en")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let links = nav(&r.body);
        assert_eq!(links.matches("<li>").count(), 4, "{path}: {links}");
        assert_eq!(links.matches("aria-current").count(), 1, "{path}: {links}");
        assert!(links.contains(&format!(r#"<a href="{path}?lang=en" aria-current="page">{name}</a>"#)), "{links}");
        seen.push(links.replace(r#" aria-current="page""#, ""));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "the same navigation everywhere: {seen:#?}");

    // The home page leads operators to the console.
    let home = gw.browser().get("/").await;
    for href in ["/admin/cards", "/admin/people", "/admin/feeds", "/admin/audit-trail"] {
        assert!(home.body.contains(&format!(r#"href="{href}""#)), "{href} in {}", home.body);
    }
}
