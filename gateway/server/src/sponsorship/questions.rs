//! Security questions, self-service (`/account/questions`): while strongly authenticated (card,
//! FIDO2 key, e-CPS; recent), staff enrol answers that a sponsorship later asks (seeds 000:
//! "accès privé au jeu de questions/réponses via la fiche personnelle"). Answers are normalised
//! (case, accents, spaces, punctuation), stored hashed with argon2id, never shown back.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreError;
use vigie_core::{Authentication, Factor, Mie};

use super::config::SponsorshipConfig;
use crate::config::Config;
use crate::secrets::{ct_eq, sha256_b64};
use crate::session;
use crate::state::{Audit, Part, PolicyGate, Ports};
use crate::web::http::{Caller, esc, parse_params};
use crate::web::pages::{self, Lang, html_page, tr};

/// Longest answer accepted, in characters (before normalisation).
pub const MAX_ANSWER_CHARS: usize = 200;
/// Fewest letters or digits an answer keeps once normalised.
pub const MIN_ANSWER_CHARS: usize = 2;

/// Why an answer cannot be enrolled or compared.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Over [`MAX_ANSWER_CHARS`].
    #[error("an answer has at most {MAX_ANSWER_CHARS} characters")]
    TooLong,
    /// A line break, a tab or another control character.
    #[error("an answer is one line of text, without control characters")]
    Control,
    /// Fewer than [`MIN_ANSWER_CHARS`] letters or digits once spaces and punctuation are set aside.
    #[error("an answer needs at least {MIN_ANSWER_CHARS} letters or digits")]
    TooShort,
}

/// The comparable form of an answer: letters without accents, lower case, digits; spaces and
/// punctuation dropped. "Jean-Pierre", "jean pierre" and "JÉAN PIERRE !" are the same answer.
pub fn normalise_answer(answer: &str) -> Result<String, AnswerError> {
    if answer.chars().count() > MAX_ANSWER_CHARS {
        return Err(AnswerError::TooLong);
    }
    if answer.chars().any(char::is_control) {
        return Err(AnswerError::Control);
    }
    // `fold` takes accents off (and upper-cases); what is not a letter or a digit then goes.
    let normal: String =
        vigie_core::names::fold(answer).chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    if normal.chars().count() < MIN_ANSWER_CHARS {
        return Err(AnswerError::TooShort);
    }
    Ok(normal)
}

/// What is hashed: the question's id with the normalised answer, so a hash answers one question.
fn hashed_input(question_id: &str, normal: &str) -> String {
    format!("{question_id}\0{normal}")
}

/// The argon2id PHC string of an answer (its own random salt).
pub fn hash_answer(question_id: &str, normal: &str) -> String {
    crate::secrets::hash_password(&hashed_input(question_id, normal))
}

/// Whether `answer` is the one enrolled as `phc` for `question_id`. argon2id verification is
/// constant-time in the answer; a malformed or too short answer never verifies.
pub fn verify_answer(phc: &str, question_id: &str, answer: &str) -> bool {
    normalise_answer(answer).is_ok_and(|n| crate::secrets::verify_password(phc, &hashed_input(question_id, &n)))
}

/// The MIE with which staff may enrol security questions: those of the RIE, not password + TOTP
/// (a stolen password must not let its thief set the answers that unlock a sponsorship).
pub fn strong(auth: &Authentication) -> bool {
    match auth.mie {
        Mie::Cps | Mie::Cpe | Mie::Ecps | Mie::CpsViaPsc => true,
        // A FIDO key is a MIE of the RIE only as a hardware key whose model its verified
        // attestation proves (`hwk`, RFC 8176 §2; WebAuthn §6.5): seeds 004, the ANS's list of keys.
        Mie::Fido2 => auth.factors.contains(&Factor::Hwk),
        Mie::PasswordTotp | Mie::Sponsorship => false,
    }
}

struct Owner {
    auth: Authentication,
    csrf: String,
    allowed: bool,
}

async fn owner(
    ports: &Ports,
    config: &Config,
    policy: &PolicyGate,
    req: &HttpRequest,
) -> Result<Option<Owner>, StoreError> {
    let Some(s) = session::current(ports, config, req).await? else { return Ok(None) };
    let cookie = crate::web::http::cookie(req, session::COOKIE).unwrap_or_default();
    let csrf = sha256_b64(format!("vigie-questions-csrf\0{cookie}").as_bytes());
    let recent = crate::now() - s.authentication.at <= config.sponsorship.enrol_max_auth_age_secs as i64;
    let allowed = strong(&s.authentication)
        && recent
        && crate::policy::decide_system(
            policy,
            ports,
            &Caller::of(req, &config.server),
            vigie_core::policy::Action::EnrolMie,
            &s.authentication,
            "system:security_questions",
        )
        .await
        .allowed;
    Ok(Some(Owner { auth: s.authentication, csrf, allowed }))
}

fn render(
    cfg: &SponsorshipConfig,
    l: Lang,
    status: StatusCode,
    o: &Owner,
    enrolled: &[String],
    note: &str,
) -> HttpResponse {
    let title = tr(l, "Mes questions de sécurité", "My security questions");
    if !o.allowed {
        let text = tr(
            l,
            "Pour enregistrer vos questions de sécurité, reconnectez-vous avec votre carte CPS / CPE, votre clé FIDO2 ou votre e-CPS : votre connexion actuelle est trop ancienne ou ne le permet pas.",
            "To enrol your security questions, sign in again with your CPS / CPE card, your FIDO2 key or your e-CPS: your current sign-in is too old or does not allow it.",
        );
        return html_page(l, StatusCode::FORBIDDEN, title, &format!(r#"<p role="alert">{text}</p>"#), None);
    }
    let mut fields = String::new();
    for q in &cfg.questions {
        let done = enrolled.contains(&q.id);
        fields.push_str(&format!(
            r#"<label for="a-{id}">{text}{mark}</label>
<input id="a-{id}" name="answer.{id}" type="text" autocomplete="off" maxlength="{MAX_ANSWER_CHARS}">
"#,
            id = esc(&q.id),
            text = esc(q.text(l)),
            mark = if done { tr(l, " (déjà enregistrée)", " (already enrolled)") } else { "" },
        ));
    }
    let main = format!(
        r#"{note}<p>{intro}</p>
<form method="post" action="/account/questions">
<input type="hidden" name="csrf" value="{csrf}">
{fields}<button type="submit">{save}</button>
</form>
<p class="lang"><a href="/account/questions?lang={other}">{other_label}</a></p>"#,
        intro = esc(&match l {
            Lang::Fr => format!(
                "Répondez à au moins {} questions. Elles vous seront posées si un collègue de votre unité vous parraine (carte oubliée, perdue…). Les réponses sont enregistrées sous forme chiffrée et ne sont jamais réaffichées ; les majuscules, accents, espaces et la ponctuation ne comptent pas. Enregistrer remplace toutes vos réponses précédentes.",
                cfg.min_answers
            ),
            Lang::En => format!(
                "Answer at least {} questions. They will be asked if a colleague of your unit sponsors you (forgotten or lost card…). Answers are stored hashed and never shown again; case, accents, spaces and punctuation do not matter. Saving replaces all your previous answers.",
                cfg.min_answers
            ),
        }),
        csrf = esc(&o.csrf),
        save = tr(l, "Enregistrer mes réponses", "Save my answers"),
        other = l.other().code(),
        other_label = l.other().name(),
    );
    html_page(l, status, title, &main, None)
}

fn nobody(l: Lang) -> HttpResponse {
    let text = tr(
        l,
        "Connectez-vous d'abord avec votre carte ou votre clé FIDO2.",
        "Sign in with your card or FIDO2 key first.",
    );
    let button = tr(l, "Se connecter avec ma carte ou ma clé", "Sign in with my card or key");
    html_page(
        l,
        StatusCode::UNAUTHORIZED,
        tr(l, "Mes questions de sécurité", "My security questions"),
        &format!(
            r#"<p role="alert">{text}</p><p><a class="button" id="sign-in" href="/sponsorship/login?to=questions">{button}</a></p>"#
        ),
        None,
    )
}

async fn enrolled_ids(ports: &Ports, identity_id: &str) -> Result<Vec<String>, String> {
    let answers = ports.sponsorships.security_answers(identity_id).await.map_err(|e| e.to_string())?;
    Ok(answers.into_iter().map(|(q, _)| q).collect())
}

/// `GET /account/questions`.
pub async fn page(
    req: HttpRequest,
    (config, ports, policy): (Part<Config>, Part<Ports>, Part<PolicyGate>),
) -> HttpResponse {
    let query = crate::web::http::parse_params(req.query_string().as_bytes()).unwrap_or_default();
    if let Some(back) = crate::web::own_pages::back_from_sign_in(&query, "/account/questions") {
        return back;
    }
    let l = pages::lang(&req, None);
    let o = match owner(&ports, &config, &policy, &req).await {
        Ok(Some(o)) => o,
        Ok(None) => return nobody(l),
        Err(e) => return pages::unavailable(&req, &e),
    };
    match enrolled_ids(&ports, &o.auth.identity_id).await {
        Ok(ids) => render(&config.sponsorship, l, StatusCode::OK, &o, &ids, ""),
        Err(e) => pages::unavailable(&req, &e),
    }
}

/// `POST /account/questions`: replaces the owner's answers (at least `sponsorship.min_answers`).
pub async fn save(
    req: HttpRequest,
    (config, ports, policy, audit_trail): (Part<Config>, Part<Ports>, Part<PolicyGate>, Part<Audit>),
    body: web::Bytes,
) -> HttpResponse {
    let l = pages::lang(&req, None);
    let caller = Caller::of(&req, &config.server);
    let o = match owner(&ports, &config, &policy, &req).await {
        Ok(Some(o)) => o,
        Ok(None) => return nobody(l),
        Err(e) => return pages::unavailable(&req, &e),
    };
    let Ok(params) = parse_params(&body) else {
        return pages::error_page(
            &req,
            StatusCode::BAD_REQUEST,
            pages::FORM_UNREADABLE,
            pages::Back::To("/account/questions", pages::Say::new("Revenir à mes questions", "Back to my questions")),
        );
    };
    if !params.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), o.csrf.as_bytes())) {
        return pages::error_page(
            &req,
            StatusCode::FORBIDDEN,
            pages::FORM_NOT_ISSUED,
            pages::Back::To("/account/questions", pages::Say::new("Revenir à mes questions", "Back to my questions")),
        );
    }
    if !o.allowed {
        audit(
            &audit_trail,
            &caller,
            &o.auth.identity_id,
            Outcome::Failure,
            "the session may not enrol security questions",
        );
        return render(&config.sponsorship, l, StatusCode::FORBIDDEN, &o, &[], "");
    }
    let cfg = &config.sponsorship;
    let mut answers = Vec::new();
    let mut problems = Vec::new();
    for q in &cfg.questions {
        let given = params.get(&format!("answer.{}", q.id)).unwrap_or_default();
        if given.trim().is_empty() {
            continue;
        }
        match normalise_answer(given) {
            Ok(n) => answers.push((q.id.clone(), n)),
            Err(e) => problems.push(format!("« {} » : {e}", q.text(l))),
        }
    }
    if answers.len() < cfg.min_answers && problems.is_empty() {
        problems.push(match l {
            Lang::Fr => format!("répondez à au moins {} questions", cfg.min_answers),
            Lang::En => format!("answer at least {} questions", cfg.min_answers),
        });
    }
    if !problems.is_empty() {
        let enrolled = enrolled_ids(&ports, &o.auth.identity_id).await.unwrap_or_default();
        let note = format!(r#"<p class="error" role="alert">{}</p>"#, esc(&problems.join(" ; ")));
        return render(&config.sponsorship, l, StatusCode::UNPROCESSABLE_ENTITY, &o, &enrolled, &note);
    }
    // argon2id is CPU-bound: keep it off the async workers.
    let hashed = web::block(move || {
        answers.into_iter().map(|(q, n)| (q.clone(), hash_answer(&q, &n))).collect::<Vec<(String, String)>>()
    })
    .await;
    let Ok(hashed) = hashed else {
        return pages::unavailable(&req, &"hashing the answers failed");
    };
    let ids: Vec<String> = hashed.iter().map(|(q, _)| q.clone()).collect();
    if let Err(e) = ports.sponsorships.set_security_answers(&o.auth.identity_id, &hashed).await {
        return pages::unavailable(&req, &e);
    }
    audit(
        &audit_trail,
        &caller,
        &o.auth.identity_id,
        Outcome::Success,
        &format!("answers enrolled: {}", ids.join(", ")),
    );
    let note = format!(
        r#"<p role="status" id="saved">{}</p>"#,
        tr(l, "Vos réponses sont enregistrées.", "Your answers are saved.")
    );
    render(&config.sponsorship, l, StatusCode::OK, &o, &ids, &note)
}

fn audit(audit: &Audit, caller: &Caller, identity_id: &str, outcome: Outcome, reason: &str) {
    audit.record(AuditEvent {
        kind: Some(AuditKind::SecurityQuestions),
        outcome: Some(outcome),
        subject: Some(identity_id.to_owned()),
        actor: Some(format!("staff:{identity_id}")),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: Some(reason.to_owned()),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_mie_of_the_rie_enrols_questions_and_a_key_only_when_attested() {
        use vigie_core::Factor::{Hwk, Otp, Pin, Pwd, Sc, Swk, User};
        let login =
            |mie, factors: &[vigie_core::Factor]| Authentication::hypothetical("id".into(), mie, factors.to_vec(), 0);
        assert!(strong(&login(Mie::Cps, &[Sc, Pin])));
        assert!(strong(&login(Mie::Fido2, &[Hwk, Pin])), "an attested key");
        assert!(!strong(&login(Mie::Fido2, &[Swk, Pin])), "issue 12: a key that may be software");
        assert!(!strong(&login(Mie::PasswordTotp, &[Pwd, Otp])));
        assert!(!strong(&login(Mie::Sponsorship, &[Pwd, User])));
    }

    #[test]
    fn answers_compare_without_case_accents_spaces_or_punctuation() {
        let n = normalise_answer("Jean-Pierre").unwrap();
        assert_eq!(n, "jeanpierre");
        for same in ["jean pierre", "JÉAN PIERRE !", " Jean.Pierre ", "jeanpierre"] {
            assert_eq!(normalise_answer(same).unwrap(), n, "{same}");
        }
        assert_ne!(normalise_answer("Jean Paul").unwrap(), n);
        assert_eq!(normalise_answer("Médor").unwrap(), "medor");
        assert_eq!(normalise_answer("02 37 44 72 36").unwrap(), "0237447236");
        assert_eq!(normalise_answer("a"), Err(AnswerError::TooShort));
        assert_eq!(normalise_answer(" - . !"), Err(AnswerError::TooShort));
        assert_eq!(normalise_answer("ab\ncd"), Err(AnswerError::Control));
        assert_eq!(normalise_answer(&"x".repeat(MAX_ANSWER_CHARS + 1)), Err(AnswerError::TooLong));
    }

    #[test]
    fn a_hash_answers_its_own_question_only() {
        let phc = hash_answer("animal", &normalise_answer("Médor").unwrap());
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_answer(&phc, "animal", "MEDOR"));
        assert!(!verify_answer(&phc, "animal", "Rex"));
        assert!(!verify_answer(&phc, "surnom", "Médor"), "bound to its question");
        assert_ne!(phc, hash_answer("animal", "medor"), "a salt per answer");
    }

    proptest::proptest! {
        #[test]
        fn normalising_never_panics_and_is_idempotent(s in "\\PC{0,120}") {
            if let Ok(n) = normalise_answer(&s) {
                proptest::prop_assert_eq!(normalise_answer(&n).unwrap(), n.clone());
                proptest::prop_assert!(n.chars().all(char::is_alphanumeric));
                proptest::prop_assert_eq!(n.to_lowercase(), n.clone());
            }
        }

        #[test]
        fn case_and_separators_do_not_matter(s in "[a-zA-Z0-9éèàç]{2,30}", sep in "[ .,'!?-]{0,3}") {
            let spaced: String = s.chars().flat_map(|c| std::iter::once(c).chain(sep.chars())).collect();
            proptest::prop_assert_eq!(normalise_answer(&s.to_uppercase()), normalise_answer(&spaced));
        }
    }
}
