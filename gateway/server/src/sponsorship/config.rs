//! The `[sponsorship]` section of the configuration: the security questions offered, the counts,
//! locks and lifetimes of a sponsorship, and their validation (one error per bad key).
use serde::{Deserialize, Serialize};

use crate::web::lang::{Lang, tr};

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
        tr(l, &self.fr, &self.en)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
