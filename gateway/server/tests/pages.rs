//! Every page a person can reach without a browser's script, crawled in French and in English:
//! each speaks the language asked for (or both), offers the other one, and has a way back to
//! where the person can act (the login page of the same flow, the home page, the form again).
//! The gateway runs on a Redis store of the test's own, stopped at the end for the 503 page.
use crate::common;

use common::redis::RedisServer;
use common::*;

const ACR_PHR: &str = "urn:vigie:loa:2fa-phr";

/// Words that only French sentences use (none is an English word).
const FRENCH: &[&str] = &[
    "le",
    "la",
    "les",
    "des",
    "une",
    "est",
    "vous",
    "votre",
    "vos",
    "cette",
    "ce",
    "depuis",
    "pas",
    "du",
    "au",
    "et",
    "pour",
    "dans",
    "ou",
    "à",
    "de",
    "en",
    "n'est",
    "plus",
    "avec",
    "revenir",
    "réessayez",
    "l'application",
];
/// Words that only English sentences use (none is a French word).
const ENGLISH: &[&str] = &[
    "the", "is", "this", "your", "you", "from", "not", "again", "to", "of", "and", "an", "it", "with", "back", "try",
    "has", "was", "needs", "there", "no",
];

/// `html` without the element that starts with `open` and ends with the first `close` after it.
fn without(html: &str, open: &str, close: &str) -> String {
    match html.find(open) {
        Some(i) => format!("{}{}", &html[..i], html[i..].split_once(close).map_or("", |(_, rest)| rest)),
        None => html.to_owned(),
    }
}

/// The visible text of a page's `<main>` that says something to the person: without the title
/// and the way back (the shell's own words, translated whatever the message) and the link to
/// the other language (which names it on purpose); entities decoded, lower case.
fn main_text(html: &str) -> String {
    let main = html.split("<main").nth(1).and_then(|m| m.split("</main>").next()).unwrap_or(html);
    let main = without(main, "<h1>", "</h1>");
    let main = without(&main, r#"<p><a class="button back""#, "</p>");
    let main = without(&main, r#"<p class="lang">"#, "</p>");
    let mut text = String::new();
    let mut in_tag = false;
    for c in main.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&#39;", "'").replace("&quot;", "\"").replace("&amp;", "&").to_lowercase()
}

/// How many distinct words of `list` the text uses.
fn words_of(text: &str, list: &[&str]) -> usize {
    let words: std::collections::BTreeSet<&str> =
        text.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).collect();
    list.iter().filter(|w| words.contains(*w)).count()
}

/// The `href` of the page's way back (`<a class="button back" href=…>`), unescaped.
fn back_link(html: &str) -> Option<String> {
    let start = html.find(r#"class="button back" href=""#)? + r#"class="button back" href=""#.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// What a page must offer the person to act.
#[derive(Clone, Copy)]
enum Way<'a> {
    /// A link back to this address.
    Back(&'a str),
    /// The page is a form to act on, here and now.
    Form,
    /// A link to this address (the home page's links).
    Link(&'a str),
}

/// The page named `what`, asked in French (`fr`) and in English (`en`): see [`assert_page`].
fn assert_actionable(what: &str, fr: &Resp, en: &Resp, way: Way<'_>) {
    assert_page(what, "fr", fr, way);
    assert_page(what, "en", en, way);
}

/// The page named `what`, asked in `lang`: its text is in that language (a page written in both
/// passes in both), it links to the other language, and it offers `way`.
fn assert_page(what: &str, lang: &str, r: &Resp, way: Way<'_>) {
    let (own, own_words) = if lang == "fr" { (FRENCH, "French") } else { (ENGLISH, "English") };
    assert!(
        r.header("content-type").is_some_and(|c| c.starts_with("text/html")),
        "{what} ({lang}): a page for a person, not {:?}: {}",
        r.header("content-type"),
        r.body
    );
    assert!(r.body.contains(&format!(r#"<html lang="{lang}">"#)), "{what} ({lang}): <html lang={lang}>: {}", r.body);
    let text = main_text(&r.body);
    assert!(
        words_of(&text, own) >= 2,
        "{what} asked in {own_words} does not speak it (a message in one language only?): {text:?}"
    );
    assert!(
        r.body.contains(r#"<p class="lang"><a href=""#),
        "{what} ({lang}): no link to the page in the other language: {}",
        r.body
    );
    match way {
        Way::Back(expected) => {
            let back = back_link(&r.body);
            assert_eq!(back.as_deref(), Some(expected), "{what} ({lang}): the way back: {}", r.body);
        }
        Way::Form => assert!(r.body.contains("<form"), "{what} ({lang}): a form to act on: {}", r.body),
        Way::Link(href) => {
            assert!(r.body.contains(&format!(r#"href="{href}""#)), "{what} ({lang}): a link to {href}: {}", r.body)
        }
    }
}

/// `GET path` in language `lang` (`Accept-Language`), with the browser's cookies.
async fn get(b: &mut Browser<'_>, path: &str, lang: &str) -> Resp {
    let req = b.http.get(b.gw.url(path)).header("accept-language", lang).header("accept", "text/html");
    b.send(req).await
}

async fn post(b: &mut Browser<'_>, path: &str, form: &[(&str, &str)], lang: &str) -> Resp {
    let req = b.http.post(b.gw.url(path)).header("accept-language", lang).form(form);
    b.send(req).await
}

/// A password + TOTP login posted on a flow whose application asks for a phishing-resistant MIE
/// (the page does not offer the form; the post is made anyway): the refusal, and the flow.
async fn weaker_login_refused(gw: &Gateway, username: &str, lang: &str) -> (Resp, String) {
    let mut b = gw.browser();
    let r = b.authorize(&Authz::new(gw, "demo-app").with("acr_values", ACR_PHR)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&r.location()).await;
    let flow = page.hidden("flow").expect("flow");
    let csrf = page.hidden("csrf").expect("a csrf token on the login page");
    let user = gw.user(username).clone();
    let totp = gw.totp(username).await;
    let form = [
        ("flow", flow.as_str()),
        ("csrf", csrf.as_str()),
        ("username", &user.username),
        ("password", &user.password),
        ("totp", &totp),
    ];
    (post(&mut b, "/login/password", &form, lang).await, flow)
}

#[tokio::test]
async fn every_page_speaks_french_and_english_and_has_a_way_back() {
    let mut redis = RedisServer::start();
    let gw = Gateway::start(&[("VIGIE_STORE__KIND", "redis"), ("VIGIE_STORE__URL", &redis.url())]).await;

    // The known gap of issue 17: a weaker login posted to an application that needs more.
    let (fr, flow_fr) = weaker_login_refused(&gw, "demo.medecin", "fr-FR,fr;q=0.9").await;
    let (en, flow_en) = weaker_login_refused(&gw, "demo.infirmiere", "en-GB,en;q=0.9").await;
    assert_eq!((fr.status, en.status), (403, 403), "{}\n{}", fr.body, en.body);
    let (back_fr, back_en) = (format!("/login?flow={flow_fr}"), format!("/login?flow={flow_en}"));
    assert_page("a weaker login refused", "fr", &fr, Way::Back(&back_fr));
    assert_page("a weaker login refused", "en", &en, Way::Back(&back_en));
    // The way back leads to a login page that offers what the application needs.
    let mut b = gw.browser();
    let back = get(&mut b, &back_fr, "fr").await;
    assert_eq!(back.status, 200, "{}", back.body);

    let mut b = gw.browser();
    let pages: &[(&str, &str, u16, Way<'_>)] = &[
        ("an unknown or expired flow", "/login?flow=no-such-flow", 400, Way::Back("/")),
        ("the login page without a flow", "/login", 400, Way::Back("/")),
        ("a card login on an unknown flow", "/login/cps?flow=no-such-flow", 400, Way::Back("/")),
        ("an address that leads nowhere", "/no/such/page", 404, Way::Back("/")),
        (
            "an authorization request of an unknown client",
            "/authorize?client_id=nobody&response_type=code",
            400,
            Way::Back("/"),
        ),
        ("the enrolment code form", "/account/enrol", 200, Way::Form),
        ("the security keys page, signed in nowhere", "/account/keys", 200, Way::Back("/")),
        ("the logout confirmation", "/logout", 200, Way::Back("/")),
        ("the home page", "/", 200, Way::Link("/account/keys")),
    ];
    for (what, path, status, way) in pages {
        let fr = get(&mut b, path, "fr").await;
        let en = get(&mut b, path, "en").await;
        assert_eq!((fr.status, en.status), (*status, *status), "{what}: {}\n{}", fr.body, en.body);
        assert_actionable(what, &fr, &en, *way);
    }

    // A wrong enrolment code: the form again, with why, in the language asked for.
    let code_page = get(&mut b, "/account/enrol", "fr").await;
    let csrf = code_page.hidden("csrf").expect("the code form's csrf");
    let fr = post(&mut b, "/account/enrol", &[("csrf", &csrf), ("code", "WRONG-CODE")], "fr").await;
    let en = post(&mut b, "/account/enrol", &[("csrf", &csrf), ("code", "WRONG-CODE")], "en").await;
    assert_eq!((fr.status, en.status), (400, 400), "{}\n{}", fr.body, en.body);
    assert_actionable("a wrong enrolment code", &fr, &en, Way::Form);
    // A malformed form posted to the login: no flow to go back to.
    let fr = post(&mut b, "/login/password", &[("username", "x")], "fr").await;
    let en = post(&mut b, "/login/password", &[("username", "x")], "en").await;
    assert_eq!((fr.status, en.status), (400, 400), "{}\n{}", fr.body, en.body);
    assert_actionable("a login form without its flow", &fr, &en, Way::Back("/"));

    // The store gone: the 503 page says to try again, and the way back is this same address.
    redis.stop();
    let path = "/login?flow=any-flow";
    let fr = get(&mut b, path, "fr").await;
    let en = get(&mut b, path, "en").await;
    assert_eq!((fr.status, en.status), (503, 503), "{}\n{}", fr.body, en.body);
    assert_actionable("a backend down", &fr, &en, Way::Back(path));
}
