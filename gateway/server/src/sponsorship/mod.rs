//! Sponsorship ("parrainage", seeds 000, issue 7): a colleague signed in with their card or key,
//! sharing a functional unit, vouches face to face for a professional without a usable card
//! (`/sponsorship`). The professional answers, on that screen, security questions they enrolled
//! (`/account/questions`). Then: a temporary credential (a code shown once, for
//! `sponsorship.credential_ttl_secs`) usable on the login page, and for a lost or stolen card its
//! suspension with the end of its sessions. Both people get an e-mail; everything is audited
//! (`sponsorship_*`). Nothing here needs anything outside the establishment (degraded mode).
pub mod questions;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::cards::CardStatus;
use vigie_core::directory::Identity;
use vigie_core::store::{Attempt, StoreError, StoreExt};

use crate::account::{new_code, normal_code};
use crate::app::{AppState, State};
use crate::http::{Caller, Params, esc, parse_params};
use crate::login::pages::{self, Lang, html_page, tr};
use crate::secrets::{ct_eq, sha256_b64};
use crate::session::{self, Session};

/// A security question offered to staff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id (answers are stored under it): letters, digits, `-`, `_`.
    pub id: String,
    /// The question in French.
    pub fr: String,
    /// The question in English.
    pub en: String,
}

impl Question {
    /// The question in `l`.
    pub fn text(&self, l: Lang) -> &str {
        match l {
            Lang::Fr => &self.fr,
            Lang::En => &self.en,
        }
    }
}

fn q(id: &str, fr: &str, en: &str) -> Question {
    Question { id: id.into(), fr: fr.into(), en: en.into() }
}

/// The `[sponsorship]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SponsorshipConfig {
    /// Offer sponsorship (`/sponsorship`, the login page's "code temporaire"). Default `true`.
    pub enabled: bool,
    /// The questions staff choose from (seeds 000 lists these six).
    pub questions: Vec<Question>,
    /// Fewest answers a person enrols. Default 3.
    pub min_answers: usize,
    /// Questions asked at a sponsorship, drawn at random among those enrolled. Default 2.
    pub asked: usize,
    /// Wrong answer sets before the colleague is locked out of sponsorship. Default 3.
    pub max_wrong_per_colleague: u64,
    /// Answer sets (each counted before it is checked; a right one does not reset this count)
    /// a sponsor may give within `lock_secs` before they may not sponsor anyone. Default 5.
    pub max_wrong_per_sponsor: u64,
    /// How long a lock (and the wrong-answer count) lasts, seconds. Default 3600.
    pub lock_secs: u64,
    /// Lifetime of the temporary credential, seconds. Default 86400 (24 hours).
    pub credential_ttl_secs: u64,
    /// Oldest sign-in of the sponsor that may open a sponsorship, seconds. Default 3600.
    pub sponsor_max_auth_age_secs: u64,
    /// Oldest sign-in that may enrol security questions, seconds. Default 600.
    pub enrol_max_auth_age_secs: u64,
    /// Time to answer the questions, seconds. Default 600.
    pub ceremony_ttl_secs: u64,
    /// The phone number the e-mails give ("si ce n'est pas vous, appelez le …").
    pub helpdesk_phone: String,
}

impl Default for SponsorshipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            questions: vec![
                q("surnom", "Quel est votre surnom ?", "What is your nickname?"),
                q("mere", "Quel était le nom de jeune fille de votre mère ?", "What was your mother's maiden name?"),
                q("animal", "Quel est le nom de votre animal de compagnie ?", "What is the name of your pet?"),
                q("naissance", "Quel est votre lieu de naissance ?", "Where were you born?"),
                q("telephone", "Quel était votre premier numéro de téléphone ?", "What was your first phone number?"),
                q("star", "Quel est le nom de votre star favorite ?", "Who is your favourite star?"),
            ],
            min_answers: 3,
            asked: 2,
            max_wrong_per_colleague: 3,
            max_wrong_per_sponsor: 5,
            lock_secs: 3600,
            credential_ttl_secs: 86_400,
            sponsor_max_auth_age_secs: 3600,
            enrol_max_auth_age_secs: 600,
            ceremony_ttl_secs: 600,
            helpdesk_phone: String::new(),
        }
    }
}

impl SponsorshipConfig {
    /// Checks the section; one call of `err` per bad key (`sponsorship.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        let mut seen = std::collections::HashSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            if q.id.is_empty()
                || q.id.len() > 40
                || !q.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                err(&format!("sponsorship.questions[{i}].id"), format!("{:?}: expected 1-40 of [A-Za-z0-9_-]", q.id));
            }
            if !seen.insert(q.id.as_str()) {
                err(&format!("sponsorship.questions[{i}].id"), format!("{:?} is used twice", q.id));
            }
            if q.fr.trim().is_empty() || q.en.trim().is_empty() {
                err(&format!("sponsorship.questions[{i}]"), "a question needs its `fr` and `en` text".into());
            }
        }
        if self.asked == 0 {
            err("sponsorship.asked", "expected at least 1".into());
        }
        if self.min_answers < self.asked {
            err("sponsorship.min_answers", format!("must be at least `sponsorship.asked` ({})", self.asked));
        }
        if self.enabled && self.questions.len() < self.min_answers {
            err(
                "sponsorship.questions",
                format!(
                    "{} questions cannot take `sponsorship.min_answers` = {}",
                    self.questions.len(),
                    self.min_answers
                ),
            );
        }
        for (key, v) in [
            ("sponsorship.max_wrong_per_colleague", self.max_wrong_per_colleague),
            ("sponsorship.max_wrong_per_sponsor", self.max_wrong_per_sponsor),
            ("sponsorship.lock_secs", self.lock_secs),
            ("sponsorship.credential_ttl_secs", self.credential_ttl_secs),
            ("sponsorship.sponsor_max_auth_age_secs", self.sponsor_max_auth_age_secs),
            ("sponsorship.enrol_max_auth_age_secs", self.enrol_max_auth_age_secs),
            ("sponsorship.ceremony_ttl_secs", self.ceremony_ttl_secs),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        if self.helpdesk_phone.chars().any(char::is_control) || self.helpdesk_phone.chars().count() > 40 {
            err("sponsorship.helpdesk_phone", "one line of at most 40 characters".into());
        }
    }
}

/// Why the professional has no usable card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Left at home.
    Forgotten,
    /// Lost: the card is suspended at once.
    Lost,
    /// Stolen: the card is suspended at once.
    Stolen,
    /// Does not work (unreadable chip, reader).
    Unusable,
    /// Not received yet.
    Awaiting,
}

impl Reason {
    /// Every reason, in the order the page lists them.
    pub const ALL: [Reason; 5] = [Reason::Forgotten, Reason::Lost, Reason::Stolen, Reason::Unusable, Reason::Awaiting];

    /// Stable label (form, audit, database).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Forgotten => "forgotten",
            Reason::Lost => "lost",
            Reason::Stolen => "stolen",
            Reason::Unusable => "unusable",
            Reason::Awaiting => "awaiting",
        }
    }

    /// The reason with this label.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn label(self, l: Lang) -> &'static str {
        match (self, l) {
            (Reason::Forgotten, Lang::Fr) => "carte oubliée",
            (Reason::Forgotten, Lang::En) => "card forgotten",
            (Reason::Lost, Lang::Fr) => "carte perdue",
            (Reason::Lost, Lang::En) => "card lost",
            (Reason::Stolen, Lang::Fr) => "carte volée",
            (Reason::Stolen, Lang::En) => "card stolen",
            (Reason::Unusable, Lang::Fr) => "carte inutilisable",
            (Reason::Unusable, Lang::En) => "card unusable",
            (Reason::Awaiting, Lang::Fr) => "carte pas encore reçue",
            (Reason::Awaiting, Lang::En) => "card not received yet",
        }
    }

    /// The card status a sponsorship for this reason declares, suspending the card at once.
    pub fn card_status(self) -> Option<CardStatus> {
        match self {
            Reason::Lost => Some(CardStatus::Lost),
            Reason::Stolen => Some(CardStatus::Stolen),
            _ => None,
        }
    }
}

/// `/sponsorship` (page, sign-in, start, answers).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sponsorship", web::get().to(page))
        .route("/sponsorship/login", web::get().to(sign_in))
        .route("/sponsorship/start", web::post().to(start))
        .route("/sponsorship/answer", web::post().to(answer));
}

/// A sponsorship between its start and the answers: in the store, named by a random token the
/// page holds, bound to the sponsor's session.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    sponsor_id: String,
    sid: String,
    colleague_id: String,
    reason: Reason,
    questions: Vec<String>,
}

fn ceremony_key(token: &str) -> String {
    format!("sponsorship:{}", sha256_b64(token.as_bytes()))
}

fn colleague_lock_key(id: &str) -> String {
    format!("rl:sponsorship-wrong-colleague:{id}")
}

fn sponsor_lock_key(id: &str) -> String {
    format!("rl:sponsorship-wrong-sponsor:{id}")
}

struct Sponsor {
    session: Session,
    csrf: String,
}

async fn sponsor_of(state: &AppState, req: &HttpRequest) -> Result<Option<Sponsor>, StoreError> {
    let Some(s) = session::current(state, req).await? else { return Ok(None) };
    let cookie = crate::http::cookie(req, session::COOKIE).unwrap_or_default();
    Ok(Some(Sponsor { session: s, csrf: sha256_b64(format!("vigie-sponsorship-csrf\0{cookie}").as_bytes()) }))
}

fn title(l: Lang) -> &'static str {
    tr(l, "Parrainage d'un collègue", "Sponsor a colleague")
}

fn message(l: Lang, status: StatusCode, id: &str, text: &str) -> HttpResponse {
    let main = format!(
        r#"<p role="alert" id="{id}">{}</p><p><a class="button" href="/sponsorship?lang={}">{}</a></p>"#,
        esc(text),
        l.code(),
        tr(l, "Revenir au parrainage", "Back to sponsorship"),
    );
    html_page(l, status, title(l), &main, None)
}

fn nobody(l: Lang) -> HttpResponse {
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

/// The built-in public client through which `/sponsorship` and `/account/questions` sign people
/// in (its code is never redeemed: the SSO session the login leaves is what these pages use),
/// added to the registered clients unless one is configured with this id.
pub const CLIENT_ID: &str = "vigie-sponsorship";

/// The pages a sign-in through [`CLIENT_ID`] comes back to.
const RETURNS: [&str; 2] = ["/sponsorship", "/account/questions"];

/// The built-in client of these pages.
pub fn builtin_client(config: &crate::config::Config) -> Option<crate::config::ClientConfig> {
    crate::own_pages::builtin_client(config, CLIENT_ID, "Vigie — parrainage / sponsorship", &RETURNS)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    to: Option<String>,
}

/// `GET /sponsorship/login[?to=questions]`: signs in through the authorization endpoint with a
/// card or a key (a phishing-resistant `acr`, a fresh login past `sponsor_max_auth_age_secs`),
/// then comes back to the page.
pub async fn sign_in(state: State, q: web::Query<SignInQuery>) -> HttpResponse {
    let (back, max_age) = match q.to.as_deref() {
        Some("questions") => (RETURNS[1], state.config.sponsorship.enrol_max_auth_age_secs),
        _ => (RETURNS[0], state.config.sponsorship.sponsor_max_auth_age_secs),
    };
    crate::own_pages::sign_in(&state, CLIENT_ID, back, max_age)
}

fn name(i: &Identity) -> String {
    format!("{} {}", i.given_name, i.family_name)
}

#[derive(Deserialize)]
pub struct PageQuery {
    q: Option<String>,
}

/// `GET /sponsorship?q=…`: the sponsor finds the colleague among those sharing a unit, and says why.
pub async fn page(req: HttpRequest, state: State, query: web::Query<PageQuery>) -> HttpResponse {
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    if let Some(back) = crate::own_pages::back_from_sign_in(&params, "/sponsorship") {
        return back;
    }
    let l = pages::lang(&req, None);
    if !state.config.sponsorship.enabled {
        return message(
            l,
            StatusCode::NOT_FOUND,
            "disabled",
            tr(l, "Le parrainage n'est pas activé.", "Sponsorship is not enabled."),
        );
    }
    let sponsor = match sponsor_of(&state, &req).await {
        Ok(Some(s)) => s,
        Ok(None) => return nobody(l),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let q = query.q.as_deref().unwrap_or_default().chars().take(100).collect::<String>();
    let found = if q.trim().is_empty() {
        Vec::new()
    } else {
        match state.sponsorships.colleagues(&sponsor.session.authentication.identity_id, &q, 50).await {
            Ok(f) => f,
            Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
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

#[allow(clippy::too_many_arguments)]
fn audit(
    state: &AppState,
    caller: &Caller,
    kind: AuditKind,
    outcome: Outcome,
    sponsor_id: &str,
    colleague_id: Option<&str>,
    reason: Option<Reason>,
    why: &str,
) {
    state.audit(AuditEvent {
        kind: Some(kind),
        outcome: Some(outcome),
        subject: colleague_id.map(str::to_owned),
        actor: Some(format!("staff:{sponsor_id}")),
        method: reason.map(|r| r.as_str().to_owned()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: Some(why.to_owned()),
        ..Default::default()
    });
}

fn check_csrf(params: &Params, sponsor: &Sponsor) -> bool {
    params.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), sponsor.csrf.as_bytes()))
}

/// The signed-in sponsor and the fields of the form they posted, its CSRF token checked (in
/// constant time); or the page that answers instead: nobody signed in, the store failing, a
/// malformed form, or a form not issued to this browser's session.
async fn posted_form(
    state: &AppState,
    req: &HttpRequest,
    l: Lang,
    body: &[u8],
) -> Result<(Sponsor, Params), HttpResponse> {
    let sponsor = match sponsor_of(state, req).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(nobody(l)),
        Err(e) => return Err(pages::error_page(req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())),
    };
    let Ok(params) = parse_params(body) else {
        return Err(pages::error_page(req, StatusCode::BAD_REQUEST, "the form was malformed"));
    };
    if !check_csrf(&params, &sponsor) {
        return Err(pages::error_page(
            req,
            StatusCode::FORBIDDEN,
            "this form was not issued to this browser, or your session changed: reload the page",
        ));
    }
    Ok((sponsor, params))
}

/// Draws `n` of `ids` at random (Fisher–Yates on the system CSPRNG): the colleague cannot know
/// in advance which questions come.
fn draw(mut ids: Vec<String>, n: usize) -> Vec<String> {
    for i in (1..ids.len()).rev() {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b).expect("system random generator");
        let j = (u32::from_le_bytes(b) as usize) % (i + 1);
        ids.swap(i, j);
    }
    ids.truncate(n);
    ids
}

/// What stops a sponsorship before the questions; `Ok(None)` when nothing does.
/// [`refusal`] answered: a refusal is audited (`sponsorship_refused`) and shown, an outage is a
/// 503; `None` when the sponsorship may go on.
#[allow(clippy::too_many_arguments)]
async fn refused(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    sponsor: &Sponsor,
    sponsor_id: &str,
    colleague: &Identity,
    reason: Reason,
    l: Lang,
) -> Option<HttpResponse> {
    match refusal(state, caller, sponsor, colleague, l).await {
        Ok(None) => None,
        Ok(Some((status, text, why))) => {
            audit(
                state,
                caller,
                AuditKind::SponsorshipRefused,
                Outcome::Failure,
                sponsor_id,
                Some(&colleague.id),
                Some(reason),
                &why,
            );
            Some(message(l, status, "sponsorship-refused", text))
        }
        Err(e) => Some(pages::error_page(req, StatusCode::SERVICE_UNAVAILABLE, &e)),
    }
}

async fn refusal(
    state: &AppState,
    caller: &Caller,
    sponsor: &Sponsor,
    colleague: &Identity,
    l: Lang,
) -> Result<Option<(StatusCode, &'static str, String)>, String> {
    let cfg = &state.config.sponsorship;
    let auth = &sponsor.session.authentication;
    // The policy (`sponsor`): same unit, phishing-resistant MIE, personal account, not oneself,
    // and at most so many colleagues in 24 hours (`sponsor-at-most-3-a-day` by default).
    let since = crate::now() - 86_400;
    let done = state.sponsorships.sponsorships_by_since(&auth.identity_id, since).await.map_err(|e| e.to_string())?;
    let done = u32::try_from(done).unwrap_or(u32::MAX);
    let (decision, over_the_day) = crate::policy::decide_sponsor(state, caller, auth, colleague, done).await;
    let by = if decision.policies.is_empty() { "default-deny".into() } else { decision.policies.join(",") };
    if over_the_day {
        return Ok(Some((
            StatusCode::TOO_MANY_REQUESTS,
            tr(
                l,
                "Vous avez atteint le nombre maximal de parrainages pour 24 heures. Un autre collègue peut parrainer, ou appelez le service informatique.",
                "You have reached the most sponsorships allowed in 24 hours. Another colleague may sponsor, or call the IT department.",
            ),
            format!("daily limit reached: {done} sponsorship(s) in 24 h, refused by policy [{by}]"),
        )));
    }
    if !decision.allowed {
        return Ok(Some((
            StatusCode::FORBIDDEN,
            tr(
                l,
                "Les règles de l'établissement ne vous permettent pas de parrainer ce collègue : le parrain partage une unité fonctionnelle avec lui et s'est connecté avec sa carte CPS / CPE ou sa clé FIDO2.",
                "The establishment's rules do not let you sponsor this colleague: a sponsor shares a functional unit with them and signed in with their CPS / CPE card or FIDO2 key.",
            ),
            format!("refused by policy [{by}]; sponsor mie {}", auth.mie.as_str()),
        )));
    }
    if crate::now() - auth.at > cfg.sponsor_max_auth_age_secs as i64 {
        return Ok(Some((
            StatusCode::FORBIDDEN,
            tr(
                l,
                "Votre connexion est trop ancienne : reconnectez-vous avec votre carte ou votre clé, puis recommencez.",
                "Your sign-in is too old: sign in again with your card or key, then start again.",
            ),
            "the sponsor's sign-in is too old".into(),
        )));
    }
    let (wrong_c, wrong_s) = (
        state.store.count(&colleague_lock_key(&colleague.id)).await.map_err(|e| e.to_string())?,
        state.store.count(&sponsor_lock_key(&auth.identity_id)).await.map_err(|e| e.to_string())?,
    );
    if wrong_c >= cfg.max_wrong_per_colleague || wrong_s >= cfg.max_wrong_per_sponsor {
        return Ok(Some((
            StatusCode::TOO_MANY_REQUESTS,
            tr(
                l,
                "Trop de réponses erronées : le parrainage est bloqué pour le moment. Appelez le service informatique.",
                "Too many wrong answers: sponsorship is locked for now. Call the IT department.",
            ),
            format!("locked after wrong answers (colleague {wrong_c}, sponsor {wrong_s})"),
        )));
    }
    Ok(None)
}

/// The questions the colleague enrolled that the configuration still asks.
async fn enrolled(state: &AppState, colleague_id: &str) -> Result<Vec<(String, String)>, String> {
    let cfg = &state.config.sponsorship;
    let answers = state.sponsorships.security_answers(colleague_id).await.map_err(|e| e.to_string())?;
    Ok(answers.into_iter().filter(|(q, _)| cfg.questions.iter().any(|c| &c.id == q)).collect())
}

/// Opens a ceremony and renders its questions.
#[allow(clippy::too_many_arguments)]
async fn ask(
    state: &AppState,
    l: Lang,
    sponsor: &Sponsor,
    colleague: &Identity,
    reason: Reason,
    questions: Vec<String>,
    note: &str,
    status: StatusCode,
) -> Result<HttpResponse, StoreError> {
    let token = crate::secrets::random_token(32);
    let ceremony = Ceremony {
        sponsor_id: sponsor.session.authentication.identity_id.clone(),
        sid: sponsor.session.sid.clone(),
        colleague_id: colleague.id.clone(),
        reason,
        questions: questions.clone(),
    };
    let ttl = Duration::from_secs(state.config.sponsorship.ceremony_ttl_secs);
    state.store.put_json(&ceremony_key(&token), &ceremony, ttl).await?;
    let mut fields = String::new();
    for (i, id) in questions.iter().enumerate() {
        let text =
            state.config.sponsorship.questions.iter().find(|q| &q.id == id).map(|q| q.text(l)).unwrap_or_default();
        fields.push_str(&format!(
            r#"<label for="a{i}">{text}</label>
<input id="a{i}" name="a{i}" type="password" autocomplete="off" required maxlength="{max}">
"#,
            text = esc(text),
            max = crate::sponsorship::questions::MAX_ANSWER_CHARS,
        ));
    }
    let main = format!(
        r#"{note}<p>{intro} <strong id="colleague">{who}</strong> ({reason}).</p>
<form method="post" action="/sponsorship/answer?lang={code}" autocomplete="off">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="ceremony" value="{token}">
{fields}<button type="submit">{go}</button>
</form>"#,
        intro = tr(l, "Questions de sécurité de", "Security questions of"),
        who = esc(&name(colleague)),
        reason = reason.label(l),
        code = l.code(),
        csrf = esc(&sponsor.csrf),
        token = esc(&token),
        go = tr(l, "Valider", "Confirm"),
    );
    Ok(html_page(l, status, title(l), &main, None))
}

/// `POST /sponsorship/start` (`colleague`, `reason`): the policy decides (audited); the daily
/// limit, the locks and the colleague's enrolled questions are checked; the questions are drawn.
pub async fn start(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let l = pages::lang(&req, None);
    let caller = Caller::of(&req, &state);
    if !state.config.sponsorship.enabled {
        return message(
            l,
            StatusCode::NOT_FOUND,
            "disabled",
            tr(l, "Le parrainage n'est pas activé.", "Sponsorship is not enabled."),
        );
    }
    let (sponsor, params) = match posted_form(&state, &req, l, &body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let sponsor_id = sponsor.session.authentication.identity_id.clone();
    let Some(reason) = params.get("reason").and_then(Reason::parse) else {
        return pages::error_page(
            &req,
            StatusCode::BAD_REQUEST,
            "choose a reason: forgotten, lost, stolen, unusable or awaiting",
        );
    };
    let colleague_id = params.get("colleague").filter(|c| !c.is_empty() && c.len() <= 64).unwrap_or_default();
    let colleague = match state.directory.identity(colleague_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return pages::error_page(&req, StatusCode::BAD_REQUEST, "choose the colleague in the list"),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if let Some(r) = refused(&req, &state, &caller, &sponsor, &sponsor_id, &colleague, reason, l).await {
        return r;
    }
    let answers = match enrolled(&state, &colleague.id).await {
        Ok(a) => a,
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let asked = state.config.sponsorship.asked;
    if answers.len() < asked {
        let why = format!("the colleague enrolled {} security question(s), {asked} are asked", answers.len());
        audit(
            &state,
            &caller,
            AuditKind::SponsorshipRefused,
            Outcome::Failure,
            &sponsor_id,
            Some(&colleague.id),
            Some(reason),
            &why,
        );
        return message(
            l,
            StatusCode::CONFLICT,
            "no-questions",
            tr(
                l,
                "Ce collègue n'a pas enregistré ses questions de sécurité : le parrainage est impossible. Appelez le service informatique (procédure sans carte).",
                "This colleague has not enrolled their security questions: sponsorship is not possible. Call the IT department (procedure without a card).",
            ),
        );
    }
    let questions = draw(answers.into_iter().map(|(q, _)| q).collect(), asked);
    audit(
        &state,
        &caller,
        AuditKind::SponsorshipOpened,
        Outcome::Success,
        &sponsor_id,
        Some(&colleague.id),
        Some(reason),
        &format!("questions asked: {}", questions.join(", ")),
    );
    match ask(&state, l, &sponsor, &colleague, reason, questions, "", StatusCode::OK).await {
        Ok(r) => r,
        Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /sponsorship/answer` (`ceremony`, `a0`, `a1`…): all answers right grants the
/// sponsorship; a wrong set is counted against the colleague and the sponsor, and asks again
/// (other questions drawn) until the lock.
pub async fn answer(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let l = pages::lang(&req, None);
    let caller = Caller::of(&req, &state);
    let (sponsor, params) = match posted_form(&state, &req, l, &body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = params.get("ceremony").filter(|t| t.len() <= 64).unwrap_or_default();
    // Single use: a form posted twice (or replayed) finds nothing the second time.
    let ceremony = match state.store.take_json::<Ceremony>(&ceremony_key(token)).await {
        Ok(Some(c)) if c.sid == sponsor.session.sid => c,
        Ok(_) => {
            return message(
                l,
                StatusCode::BAD_REQUEST,
                "ceremony-expired",
                tr(
                    l,
                    "Ce parrainage a expiré ou a déjà été validé : recommencez.",
                    "This sponsorship expired or was already confirmed: start again.",
                ),
            );
        }
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let colleague = match state.directory.identity(&ceremony.colleague_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return pages::error_page(&req, StatusCode::BAD_REQUEST, "the colleague is no longer in the directory");
        }
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // Checked again: the locks and the limit may have been reached meanwhile (another screen).
    if let Some(r) =
        refused(&req, &state, &caller, &sponsor, &ceremony.sponsor_id, &colleague, ceremony.reason, l).await
    {
        return r;
    }
    // Counted before the answers are checked, against the colleague and the sponsor: answer
    // sets posted at once from several screens cannot all be checked while the counters read
    // low. A right set resets the colleague's count; the sponsor's counts every set.
    let cfg = &state.config.sponsorship;
    let lock = Duration::from_secs(cfg.lock_secs);
    let counted = async {
        let c = state.store.attempt(&colleague_lock_key(&colleague.id), cfg.max_wrong_per_colleague, lock).await?;
        let s = state.store.attempt(&sponsor_lock_key(&ceremony.sponsor_id), cfg.max_wrong_per_sponsor, lock).await?;
        Ok::<_, StoreError>((c, s))
    };
    let (c, s) = match counted.await {
        Ok((Attempt::Allowed(c), Attempt::Allowed(s))) => (c, s),
        Ok((c, s)) => {
            let why = format!("locked after wrong answers (colleague {c:?}, sponsor {s:?}): answers not checked");
            audit(
                &state,
                &caller,
                AuditKind::SponsorshipRefused,
                Outcome::Failure,
                &ceremony.sponsor_id,
                Some(&colleague.id),
                Some(ceremony.reason),
                &why,
            );
            return message(l, StatusCode::TOO_MANY_REQUESTS, "sponsorship-locked", locked_text(l));
        }
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let enrolled = match enrolled(&state, &colleague.id).await {
        Ok(a) => a,
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let mut checks = Vec::new();
    for (i, q) in ceremony.questions.iter().enumerate() {
        let given = params.get(&format!("a{i}")).unwrap_or_default().to_owned();
        let phc = enrolled.iter().find(|(id, _)| id == q).map(|(_, h)| h.clone()).unwrap_or_default();
        checks.push((phc, q.clone(), given));
    }
    // argon2id is CPU-bound: keep it off the async workers. Every answer is checked, right or not.
    let right = web::block(move || {
        checks.iter().fold(true, |ok, (phc, q, given)| crate::sponsorship::questions::verify_answer(phc, q, given) & ok)
    })
    .await
    .unwrap_or(false);
    if !right {
        let locked = c >= cfg.max_wrong_per_colleague || s >= cfg.max_wrong_per_sponsor;
        let why = format!(
            "wrong answers (colleague {c}/{}, sponsor {s}/{}){}",
            cfg.max_wrong_per_colleague,
            cfg.max_wrong_per_sponsor,
            if locked { "; locked" } else { "" }
        );
        audit(
            &state,
            &caller,
            AuditKind::SponsorshipAnswers,
            Outcome::Failure,
            &ceremony.sponsor_id,
            Some(&colleague.id),
            Some(ceremony.reason),
            &why,
        );
        if locked {
            return message(l, StatusCode::TOO_MANY_REQUESTS, "sponsorship-locked", locked_text(l));
        }
        let questions = draw(enrolled.into_iter().map(|(q, _)| q).collect(), cfg.asked);
        let note = format!(
            r#"<p class="error" role="alert" id="wrong-answers">{}</p>"#,
            tr(
                l,
                "Une ou plusieurs réponses sont erronées. Répondez à ces questions.",
                "One or more answers are wrong. Answer these questions."
            )
        );
        return match ask(&state, l, &sponsor, &colleague, ceremony.reason, questions, &note, StatusCode::UNAUTHORIZED)
            .await
        {
            Ok(r) => r,
            Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
    }
    audit(
        &state,
        &caller,
        AuditKind::SponsorshipAnswers,
        Outcome::Success,
        &ceremony.sponsor_id,
        Some(&colleague.id),
        Some(ceremony.reason),
        "answers right",
    );
    let _ = state.store.delete(&colleague_lock_key(&colleague.id)).await;
    let sponsor_identity = match state.directory.identity(&ceremony.sponsor_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return pages::error_page(&req, StatusCode::BAD_REQUEST, "the sponsor is no longer in the directory");
        }
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    match grant(&state, &caller, &sponsor_identity, &colleague, ceremony.reason).await {
        Ok(granted) => {
            spawn_notices(
                state.clone(),
                caller,
                sponsor_identity,
                colleague.clone(),
                ceremony.reason,
                granted.at,
                granted.expires_at,
            );
            granted_page(&state, l, &colleague, ceremony.reason, &granted)
        }
        Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

fn locked_text(l: Lang) -> &'static str {
    tr(
        l,
        "Réponses erronées, trop de tentatives : le parrainage est bloqué pour le moment. Appelez le service informatique.",
        "Wrong answers, too many attempts: sponsorship is locked for now. Call the IT department.",
    )
}

/// What a granted sponsorship gave.
pub struct Granted {
    /// The sponsorship's id.
    pub id: String,
    /// The temporary code, shown once.
    pub code: String,
    /// When it was granted and when the code stops working (Unix seconds).
    pub at: i64,
    pub expires_at: i64,
    /// Cards suspended (lost, stolen) and the sessions that ended with them.
    pub cards_suspended: usize,
    pub sessions_ended: usize,
}

/// The stored form of a temporary code (made by [`new_code`], the enrolment codes' maker): its
/// [`normal_code`], then SHA-256 (80 random bits need no slow hash; attempts are rate-limited
/// at the login).
pub fn code_hash(code: &str) -> String {
    let normal = normal_code(code);
    sha256_b64(format!("vigie-sponsorship-code\0{normal}").as_bytes())
}

/// Grants a sponsorship: records it with its temporary credential, and for a lost or stolen
/// card suspends the colleague's cards at once and ends their sessions (as HR's action does).
/// Audited (`sponsorship_granted`, `card_status_changed`).
pub async fn grant(
    state: &AppState,
    caller: &Caller,
    sponsor: &Identity,
    colleague: &Identity,
    reason: Reason,
) -> Result<Granted, String> {
    let at = crate::now();
    let expires_at = at + state.config.sponsorship.credential_ttl_secs as i64;
    let code = new_code();
    let hash = code_hash(&code);
    let id = state
        .sponsorships
        .record_sponsorship(&vigie_core::sponsorship::NewSponsorship {
            sponsor_id: &sponsor.id,
            sponsored_id: &colleague.id,
            reason: reason.as_str(),
            at,
            code_hash: &hash,
            expires_at,
        })
        .await
        .map_err(|e| e.to_string())?;
    let (mut cards_suspended, mut sessions_ended) = (0, 0);
    if let Some(status) = reason.card_status() {
        let actor = format!("sponsorship:{}", sponsor.id);
        let comment = format!("declared {} at sponsorship {id} by {}", status.as_str(), name(sponsor));
        for card in state.cards.cards_of(&colleague.id).await.map_err(|e| e.to_string())? {
            if !card.status.may_become(status) {
                continue;
            }
            let (_, ended) =
                crate::admin::actions::change_status_by(state, &actor, caller, &card.id, status, Some(&comment))
                    .await
                    .map_err(|e| e.to_string())?;
            cards_suspended += 1;
            sessions_ended += ended;
        }
    }
    state.audit(AuditEvent {
        kind: Some(AuditKind::SponsorshipGranted),
        outcome: Some(Outcome::Success),
        subject: Some(colleague.id.clone()),
        actor: Some(format!("staff:{}", sponsor.id)),
        method: Some(reason.as_str().into()),
        object: Some(format!("sponsorship:{id}")),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: Some(format!(
            "temporary credential until {}; {cards_suspended} card(s) suspended, {sessions_ended} session(s) ended",
            crate::rfc3339(expires_at)
        )),
        ..Default::default()
    });
    metrics::counter!("vigie_sponsorships_total", "reason" => reason.as_str()).increment(1);
    Ok(Granted { id, code, at, expires_at, cards_suspended, sessions_ended })
}

/// `dd/mm/yyyy` and `hh:mm:ss` in the establishment's time (`policy.utc_offset_minutes`).
pub(crate) fn local(state: &AppState, t: i64) -> (String, String) {
    let offset = i64::from(state.config.policy.utc_offset_minutes) * 60;
    match time::OffsetDateTime::from_unix_timestamp(t + offset) {
        Ok(d) => (
            format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()),
            format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second()),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

fn granted_page(state: &AppState, l: Lang, colleague: &Identity, reason: Reason, g: &Granted) -> HttpResponse {
    let (day, hour) = local(state, g.expires_at);
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

/// The two e-mails of a sponsorship, sent in the background (never delaying the sponsorship),
/// each retried by the mailer; the outcome of each is audited (`sponsorship_mail`).
fn spawn_notices(
    state: State,
    caller: Caller,
    sponsor: Identity,
    colleague: Identity,
    reason: Reason,
    at: i64,
    expires_at: i64,
) {
    actix_web::rt::spawn(async move {
        let (day, hour) = local(&state, at);
        let (until_day, until_hour) = local(&state, expires_at);
        let (call_fr, call_en) = helpdesk(&state);
        let to_sponsor = (
            &sponsor,
            "sponsor",
            format!("Parrainage d'une carte CPS / CPE : vous avez parrainé {}", name(&colleague)),
            format!(
                "Parrainage d'une carte CPS / CPE\n\nVous venez de parrainer l'utilisateur {who} le {day} à {hour} (motif : {rfr}).\n\n\
                 Si vous n'avez pas parrainé cet utilisateur, veuillez contacter le plus rapidement possible le service informatique{call_fr}.\n\n\
                 --\nYou sponsored {who} on {day} at {hour} (reason: {ren}). If this was not you, call the IT department{call_en} as soon as possible.\n",
                who = name(&colleague),
                rfr = reason.label(Lang::Fr),
                ren = reason.label(Lang::En),
            ),
        );
        let to_colleague = (
            &colleague,
            "sponsored",
            format!("Parrainage d'une carte CPS / CPE : vous avez été parrainé(e) par {}", name(&sponsor)),
            format!(
                "Parrainage d'une carte CPS / CPE\n\nVous venez d'être parrainé(e) par l'utilisateur {who} le {day} à {hour} (motif : {rfr}). \
                 Votre accès temporaire est valable jusqu'au {until_day} à {until_hour}.\n\n\
                 Si vous n'avez pas été parrainé(e) par cet utilisateur, veuillez contacter le plus rapidement possible le service informatique{call_fr}.\n\n\
                 --\nYou were sponsored by {who} on {day} at {hour} (reason: {ren}); your temporary access is valid until {until_day} at {until_hour}. \
                 If this was not you, call the IT department{call_en} as soon as possible.\n",
                who = name(&sponsor),
                rfr = reason.label(Lang::Fr),
                ren = reason.label(Lang::En),
            ),
        );
        for (person, role, subject, body) in [to_sponsor, to_colleague] {
            let (outcome, why) = match send_notice(&state, &person.id, subject, body).await {
                Ok(attempts) => (Outcome::Success, format!("sent to the {role} ({attempts} attempt(s))")),
                Err(e) => {
                    tracing::warn!(role, error = %e, "sponsorship e-mail not sent");
                    (Outcome::Failure, format!("not sent to the {role}: {e}"))
                }
            };
            metrics::counter!("vigie_sponsorship_mail_total", "result" => if outcome == Outcome::Success { "sent" } else { "failed" })
                .increment(1);
            state.audit(AuditEvent {
                kind: Some(AuditKind::SponsorshipMail),
                outcome: Some(outcome),
                subject: Some(colleague.id.clone()),
                actor: Some(format!("staff:{}", sponsor.id)),
                object: Some(format!("to:{role}")),
                ip: Some(caller.ip.clone()),
                request_id: Some(caller.request_id.clone()),
                reason: Some(why),
                ..Default::default()
            });
        }
    });
}

/// How the e-mails name the helpdesk to call, in French and English: ` au <phone>`, ` on <phone>`
/// (`sponsorship.helpdesk_phone`), or nothing.
pub(crate) fn helpdesk(state: &AppState) -> (String, String) {
    let phone = &state.config.sponsorship.helpdesk_phone;
    if phone.is_empty() { (String::new(), String::new()) } else { (format!(" au {phone}"), format!(" on {phone}")) }
}

/// E-mails a person at the address the directory has for them; the number of attempts made, or
/// why it was not sent (no address, a bad one, the relay after its retries).
pub(crate) async fn send_notice(
    state: &AppState,
    identity_id: &str,
    subject: String,
    body: String,
) -> Result<u32, String> {
    let address = state
        .sponsorships
        .email_of(identity_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the directory has no e-mail address for this person")?;
    let to = vigie_mail::parse_mailbox(&address).map_err(|e| e.to_string())?;
    let (attempts, result) = state.mailer.send(&vigie_mail::Mail { to, subject, body }).await;
    result.map(|()| attempts).map_err(|e| format!("{e} (after {attempts} attempt(s))"))
}

/// The demo users' answers to the security questions (demo only: written in `demo.json`).
pub const DEMO_ANSWERS: [(&str, &str); 3] = [("animal", "Médor"), ("naissance", "Chartres"), ("star", "Édith Piaf")];

/// Where a demo user's sponsorship notices go.
pub fn demo_email(username: &str) -> String {
    format!("{username}@chu-demo.example")
}

/// Gives the demo users an e-mail address and, unless they enrolled their own, the demo answers.
pub async fn seed_demo(state: &AppState, demo: &crate::demo::Description) -> anyhow::Result<()> {
    for username in demo.usernames() {
        let Some(account) = state.directory.account_by_username(&username).await? else { continue };
        state.sponsorships.set_email(&account.identity_id, Some(&demo_email(&username))).await?;
        if state.sponsorships.security_answers(&account.identity_id).await?.is_empty() {
            let answers: Vec<(String, String)> = DEMO_ANSWERS
                .iter()
                .map(|(q, a)| {
                    let normal = crate::sponsorship::questions::normalise_answer(a).unwrap_or_default();
                    (q.to_string(), crate::sponsorship::questions::hash_answer(q, &normal))
                })
                .collect();
            state.sponsorships.set_security_answers(&account.identity_id, &answers).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_80_bits_and_compare_forgivingly() {
        let c = new_code();
        assert_eq!(c.len(), 19);
        assert_eq!(c.chars().filter(|c| *c == '-').count(), 3);
        assert_ne!(c, new_code());
        assert_eq!(code_hash(&c), code_hash(&c.to_lowercase().replace('-', " ")));
        assert_eq!(code_hash("AB0O-1IL1"), code_hash("ab00 1111"));
        assert_ne!(code_hash("ABCD"), code_hash("ABCE"));
    }

    #[test]
    fn draws_are_distinct_questions_of_those_given() {
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = draw(ids.clone(), 2);
            assert_eq!(d.len(), 2);
            assert_ne!(d[0], d[1]);
            assert!(d.iter().all(|q| ids.contains(q)));
            seen.insert(d.join(","));
        }
        assert!(seen.len() > 6, "the draw varies: {seen:?}");
    }

    #[test]
    fn the_default_section_is_valid_and_bad_keys_are_named() {
        let mut errors = Vec::new();
        SponsorshipConfig::default().validate(&mut |k, m| errors.push(format!("{k}: {m}")));
        assert!(errors.is_empty(), "{errors:?}");
        let bad = SponsorshipConfig {
            questions: vec![q("a b", "x", "y"), q("c", "", "y")],
            asked: 3,
            min_answers: 2,
            credential_ttl_secs: 0,
            ..Default::default()
        };
        bad.validate(&mut |k, m| errors.push(format!("{k}: {m}")));
        let keys: Vec<&str> = errors.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "sponsorship.questions[0].id",
                "sponsorship.questions[1]",
                "sponsorship.min_answers",
                "sponsorship.credential_ttl_secs"
            ],
            "{errors:?}"
        );
    }

    #[test]
    fn lost_and_stolen_suspend_the_card_the_others_do_not() {
        assert_eq!(Reason::parse("lost").and_then(Reason::card_status), Some(CardStatus::Lost));
        assert_eq!(Reason::parse("stolen").and_then(Reason::card_status), Some(CardStatus::Stolen));
        for r in ["forgotten", "unusable", "awaiting"] {
            assert_eq!(Reason::parse(r).and_then(Reason::card_status), None);
        }
        assert_eq!(Reason::parse("other"), None);
    }
}
