//! The sponsorship ceremony: the sponsor starts it for a colleague (`POST /sponsorship/start`,
//! the policy and the locks decide), the colleague answers drawn questions (`POST
//! /sponsorship/answer`, counted against both), and right answers grant the sponsorship.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::Identity;
use vigie_core::store::{Attempt, StoreError, StoreExt};

use super::config::SponsorshipConfig;
use super::grant::{Reason, grant};
use super::mail::spawn_notices;
use super::name;
use super::pages::{granted_page, locked_text, message, nobody, title};
use crate::config::Config;
use crate::mail::Mailroom;
use crate::secrets::{ct_eq, sha256_b64};
use crate::session::{self, Ending, Session, keys};
use crate::state::{Audit, OidcState, Part, PolicyGate, Ports, Upstreams};
use crate::web::http::{Caller, Params, esc, parse_params};
use crate::web::pages::{self, Lang, html_page, tr};

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

/// The signed-in sponsor, and the CSRF token of their forms (bound to their session cookie).
pub(super) struct Sponsor {
    pub(super) session: Session,
    pub(super) csrf: String,
}

pub(super) async fn sponsor_of(
    ports: &Ports,
    config: &Config,
    req: &HttpRequest,
) -> Result<Option<Sponsor>, StoreError> {
    let Some(s) = session::current(ports, config, req).await? else { return Ok(None) };
    let cookie = crate::web::http::cookie(req, session::COOKIE).unwrap_or_default();
    Ok(Some(Sponsor { session: s, csrf: sha256_b64(format!("vigie-sponsorship-csrf\0{cookie}").as_bytes()) }))
}

/// What the ceremony works with: its configuration, the store and the directory, the policy
/// gate, the audit trail.
struct Desk<'a> {
    cfg: &'a SponsorshipConfig,
    ports: &'a Ports,
    policy: &'a PolicyGate,
    audit: &'a Audit,
}

impl<'a> Desk<'a> {
    fn new(config: &'a Config, ports: &'a Ports, policy: &'a PolicyGate, audit: &'a Audit) -> Self {
        Desk { cfg: &config.sponsorship, ports, policy, audit }
    }
}

/// One sponsorship being asked for: who asks, for whom, why, and in which language they read.
struct Sponsoring<'a> {
    caller: &'a Caller,
    sponsor: &'a Sponsor,
    sponsor_id: &'a str,
    colleague: &'a Identity,
    reason: Reason,
    l: Lang,
}

fn audit(desk: &Desk<'_>, case: &Sponsoring<'_>, kind: AuditKind, outcome: Outcome, why: &str) {
    desk.audit.record(AuditEvent {
        kind: Some(kind),
        outcome: Some(outcome),
        subject: Some(case.colleague.id.clone()),
        actor: Some(format!("staff:{}", case.sponsor_id)),
        method: Some(case.reason.as_str().to_owned()),
        ip: Some(case.caller.ip.clone()),
        user_agent: case.caller.user_agent.clone(),
        request_id: Some(case.caller.request_id.clone()),
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
    ports: &Ports,
    config: &Config,
    req: &HttpRequest,
    l: Lang,
    body: &[u8],
) -> Result<(Sponsor, Params), HttpResponse> {
    let sponsor = match sponsor_of(ports, config, req).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(nobody(l)),
        Err(e) => return Err(pages::unavailable(req, &e)),
    };
    let Ok(params) = parse_params(body) else {
        return Err(pages::error_page(
            req,
            StatusCode::BAD_REQUEST,
            pages::FORM_UNREADABLE,
            pages::Back::To("/sponsorship", pages::Say::new("Revenir au parrainage", "Back to sponsorship")),
        ));
    };
    if !check_csrf(&params, &sponsor) {
        return Err(pages::error_page(
            req,
            StatusCode::FORBIDDEN,
            pages::FORM_NOT_ISSUED,
            pages::Back::To("/sponsorship", pages::Say::new("Revenir au parrainage", "Back to sponsorship")),
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
async fn refused(req: &HttpRequest, desk: &Desk<'_>, case: &Sponsoring<'_>) -> Option<HttpResponse> {
    match refusal(desk, case).await {
        Ok(None) => None,
        Ok(Some((status, text, why))) => {
            audit(desk, case, AuditKind::SponsorshipRefused, Outcome::Failure, &why);
            Some(message(case.l, status, "sponsorship-refused", text))
        }
        Err(e) => Some(pages::unavailable(req, &e)),
    }
}

async fn refusal(desk: &Desk<'_>, case: &Sponsoring<'_>) -> Result<Option<(StatusCode, &'static str, String)>, String> {
    let (cfg, ports, l, colleague) = (desk.cfg, desk.ports, case.l, case.colleague);
    let auth = &case.sponsor.session.authentication;
    // The policy (`sponsor`): same unit, phishing-resistant MIE, personal account, not oneself,
    // and at most so many colleagues in 24 hours (`sponsor-at-most-3-a-day` by default).
    let since = crate::now() - 86_400;
    let done = ports.sponsorships.sponsorships_by_since(&auth.identity_id, since).await.map_err(|e| e.to_string())?;
    let done = u32::try_from(done).unwrap_or(u32::MAX);
    let (decision, over_the_day) =
        crate::policy::decide_sponsor(desk.policy, ports, case.caller, auth, colleague, done).await;
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
        ports.store.count(&keys::sponsorship_wrong_colleague(&colleague.id)).await.map_err(|e| e.to_string())?,
        ports.store.count(&keys::sponsorship_wrong_sponsor(&auth.identity_id)).await.map_err(|e| e.to_string())?,
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
async fn enrolled(desk: &Desk<'_>, colleague_id: &str) -> Result<Vec<(String, String)>, String> {
    let cfg = desk.cfg;
    let answers = desk.ports.sponsorships.security_answers(colleague_id).await.map_err(|e| e.to_string())?;
    Ok(answers.into_iter().filter(|(q, _)| cfg.questions.iter().any(|c| &c.id == q)).collect())
}

/// Opens a ceremony and renders its questions.
async fn ask(
    desk: &Desk<'_>,
    case: &Sponsoring<'_>,
    questions: Vec<String>,
    note: &str,
    status: StatusCode,
) -> Result<HttpResponse, StoreError> {
    let (l, sponsor, colleague, reason) = (case.l, case.sponsor, case.colleague, case.reason);
    let token = crate::secrets::random_token(32);
    let ceremony = Ceremony {
        sponsor_id: sponsor.session.authentication.identity_id.clone(),
        sid: sponsor.session.sid.clone(),
        colleague_id: colleague.id.clone(),
        reason,
        questions: questions.clone(),
    };
    let ttl = Duration::from_secs(desk.cfg.ceremony_ttl_secs);
    desk.ports.store.put_json(&keys::sponsorship_ceremony(&token), &ceremony, ttl).await?;
    let mut fields = String::new();
    for (i, id) in questions.iter().enumerate() {
        let text = desk.cfg.questions.iter().find(|q| &q.id == id).map(|q| q.text(l)).unwrap_or_default();
        fields.push_str(&format!(
            r#"<label for="a{i}">{text}</label>
<input id="a{i}" name="a{i}" type="password" autocomplete="off" required maxlength="{max}">
"#,
            text = esc(text),
            max = super::questions::MAX_ANSWER_CHARS,
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
pub async fn start(
    req: HttpRequest,
    (config, ports, policy, audit_trail): (Part<Config>, Part<Ports>, Part<PolicyGate>, Part<Audit>),
    body: web::Bytes,
) -> HttpResponse {
    let l = pages::lang(&req, None);
    let caller = Caller::of(&req, &config.server);
    if !config.sponsorship.enabled {
        return message(
            l,
            StatusCode::NOT_FOUND,
            "disabled",
            tr(l, "Le parrainage n'est pas activé.", "Sponsorship is not enabled."),
        );
    }
    let (sponsor, params) = match posted_form(&ports, &config, &req, l, &body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let sponsor_id = sponsor.session.authentication.identity_id.clone();
    let Some(reason) = params.get("reason").and_then(Reason::parse) else {
        return pages::error_page(
            &req,
            StatusCode::BAD_REQUEST,
            pages::Say::new(
                "Choisissez un motif : carte oubliée, perdue, volée, inutilisable ou en attente.",
                "Choose a reason: card forgotten, lost, stolen, unusable or awaiting.",
            ),
            pages::Back::To("/sponsorship", pages::Say::new("Revenir au parrainage", "Back to sponsorship")),
        );
    };
    let colleague_id = params.get("colleague").filter(|c| !c.is_empty() && c.len() <= 64).unwrap_or_default();
    let colleague = match ports.directory.identity(colleague_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return pages::error_page(
                &req,
                StatusCode::BAD_REQUEST,
                pages::Say::new("Choisissez le collègue dans la liste.", "Choose the colleague in the list."),
                pages::Back::To("/sponsorship", pages::Say::new("Revenir au parrainage", "Back to sponsorship")),
            );
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let desk = Desk::new(&config, &ports, &policy, &audit_trail);
    let case =
        Sponsoring { caller: &caller, sponsor: &sponsor, sponsor_id: &sponsor_id, colleague: &colleague, reason, l };
    if let Some(r) = refused(&req, &desk, &case).await {
        return r;
    }
    let answers = match enrolled(&desk, &colleague.id).await {
        Ok(a) => a,
        Err(e) => return pages::unavailable(&req, &e),
    };
    let asked = config.sponsorship.asked;
    if answers.len() < asked {
        let why = format!("the colleague enrolled {} security question(s), {asked} are asked", answers.len());
        audit(&desk, &case, AuditKind::SponsorshipRefused, Outcome::Failure, &why);
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
    let opened = format!("questions asked: {}", questions.join(", "));
    audit(&desk, &case, AuditKind::SponsorshipOpened, Outcome::Success, &opened);
    match ask(&desk, &case, questions, "", StatusCode::OK).await {
        Ok(r) => r,
        Err(e) => pages::unavailable(&req, &e),
    }
}

/// `POST /sponsorship/answer` (`ceremony`, `a0`, `a1`…): all answers right grants the
/// sponsorship; a wrong set is counted against the colleague and the sponsor, and asks again
/// (other questions drawn) until the lock.
pub async fn answer(
    req: HttpRequest,
    (config, ports, policy, audit_trail): (Part<Config>, Part<Ports>, Part<PolicyGate>, Part<Audit>),
    (oidc, upstreams): (Part<OidcState>, Part<Upstreams>),
    body: web::Bytes,
) -> HttpResponse {
    let l = pages::lang(&req, None);
    let caller = Caller::of(&req, &config.server);
    let (sponsor, params) = match posted_form(&ports, &config, &req, l, &body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = params.get("ceremony").filter(|t| t.len() <= 64).unwrap_or_default();
    // Single use: a form posted twice (or replayed) finds nothing the second time.
    let ceremony = match ports.store.take_json::<Ceremony>(&keys::sponsorship_ceremony(token)).await {
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
        Err(e) => return pages::unavailable(&req, &e),
    };
    let colleague = match ports.directory.identity(&ceremony.colleague_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return pages::error_page(
                &req,
                StatusCode::BAD_REQUEST,
                pages::Say::new(
                    "Ce collègue n'est plus dans l'annuaire : adressez-vous aux ressources humaines.",
                    "This colleague is no longer in the directory: see human resources.",
                ),
                pages::Back::To("/sponsorship", pages::Say::new("Revenir au parrainage", "Back to sponsorship")),
            );
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    // Checked again: the locks and the limit may have been reached meanwhile (another screen).
    let desk = Desk::new(&config, &ports, &policy, &audit_trail);
    let case = Sponsoring {
        caller: &caller,
        sponsor: &sponsor,
        sponsor_id: &ceremony.sponsor_id,
        colleague: &colleague,
        reason: ceremony.reason,
        l,
    };
    if let Some(r) = refused(&req, &desk, &case).await {
        return r;
    }
    // Counted before the answers are checked, against the colleague and the sponsor: answer
    // sets posted at once from several screens cannot all be checked while the counters read
    // low. A right set resets the colleague's count; the sponsor's counts every set.
    let cfg = &config.sponsorship;
    let lock = Duration::from_secs(cfg.lock_secs);
    let counted = async {
        let c = ports
            .store
            .attempt(&keys::sponsorship_wrong_colleague(&colleague.id), cfg.max_wrong_per_colleague, lock)
            .await?;
        let s = ports
            .store
            .attempt(&keys::sponsorship_wrong_sponsor(&ceremony.sponsor_id), cfg.max_wrong_per_sponsor, lock)
            .await?;
        Ok::<_, StoreError>((c, s))
    };
    let (c, s) = match counted.await {
        Ok((Attempt::Allowed(c), Attempt::Allowed(s))) => (c, s),
        Ok((c, s)) => {
            let why = format!("locked after wrong answers (colleague {c:?}, sponsor {s:?}): answers not checked");
            audit(&desk, &case, AuditKind::SponsorshipRefused, Outcome::Failure, &why);
            return message(l, StatusCode::TOO_MANY_REQUESTS, "sponsorship-locked", locked_text(l));
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let enrolled = match enrolled(&desk, &colleague.id).await {
        Ok(a) => a,
        Err(e) => return pages::unavailable(&req, &e),
    };
    let mut checks = Vec::new();
    for (i, q) in ceremony.questions.iter().enumerate() {
        let given = params.get(&format!("a{i}")).unwrap_or_default().to_owned();
        let phc = enrolled.iter().find(|(id, _)| id == q).map(|(_, h)| h.clone()).unwrap_or_default();
        checks.push((phc, q.clone(), given));
    }
    // argon2id is CPU-bound: keep it off the async workers. Every answer is checked, right or not.
    let right = web::block(move || {
        checks.iter().fold(true, |ok, (phc, q, given)| super::questions::verify_answer(phc, q, given) & ok)
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
        audit(&desk, &case, AuditKind::SponsorshipAnswers, Outcome::Failure, &why);
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
        return match ask(&desk, &case, questions, &note, StatusCode::UNAUTHORIZED).await {
            Ok(r) => r,
            Err(e) => pages::unavailable(&req, &e),
        };
    }
    audit(&desk, &case, AuditKind::SponsorshipAnswers, Outcome::Success, "answers right");
    let _ = ports.store.delete(&keys::sponsorship_wrong_colleague(&colleague.id)).await;
    let sponsor_identity = match ports.directory.identity(&ceremony.sponsor_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return pages::error_page(
                &req,
                StatusCode::BAD_REQUEST,
                pages::Say::new(
                    "Le parrain n'est plus dans l'annuaire : un autre collègue doit parrainer.",
                    "The sponsor is no longer in the directory: another colleague must sponsor.",
                ),
                pages::Back::To("/sponsorship", pages::Say::new("Revenir au parrainage", "Back to sponsorship")),
            );
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let ending = Ending { config: &config, ports: &ports, oidc: &oidc, audit: &audit_trail, http: &upstreams.http };
    match grant(ending, &caller, &sponsor_identity, &colleague, ceremony.reason).await {
        Ok(granted) => {
            spawn_notices(
                Mailroom::new(&config, &ports, &upstreams, &audit_trail),
                caller,
                sponsor_identity,
                colleague.clone(),
                ceremony.reason,
                granted.at,
                granted.expires_at,
            );
            granted_page(&config, l, &colleague, ceremony.reason, &granted)
        }
        Err(e) => pages::unavailable(&req, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
