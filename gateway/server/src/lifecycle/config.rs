//! `[lifecycle]`: the HR feed run by `serve` (`[lifecycle.hr_feed]`) and the longest a
//! time-bounded person added by hand may stay (docs/identity-lifecycle.md).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The life cycle of people.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// The HR feed `serve` runs every `interval_secs` (absent: only `vigie users feed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hr_feed: Option<HrFeedConfig>,
    /// Longest stay of a person added by `vigie users add-temporary`, in days.
    #[serde(default = "default_max_temporary_days")]
    pub max_temporary_days: u32,
    /// E-mails before someone's end date (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<RemindersConfig>,
    /// What a joiner gets besides their identity and account (absent: nothing more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joiners: Option<JoinersConfig>,
}

/// `[lifecycle.joiners]`: what the HR feed prepares for a joiner (docs/identity-lifecycle.md,
/// "Card orders").
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinersConfig {
    /// Which joiners get a card order, by métier (absent: no orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_card: Option<OrderCardConfig>,
}

/// `[lifecycle.joiners.order_card]`: who is eligible for which card. A CPS is for the health
/// professionals the RPPS registers (médecins, pharmaciens, sages-femmes, infirmiers, …); a CPE is
/// the establishment's card for its other staff (secretaries, administrative staff). Métiers are
/// compared as names (case, accents and separators do not matter); `"*"` in `cpe` means every
/// other métier. The CPS list is read first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCardConfig {
    /// Métiers that get a CPS order.
    #[serde(default)]
    pub cps: Vec<String>,
    /// Métiers that get a CPE order (`"*"`: every métier not in `cps`).
    #[serde(default)]
    pub cpe: Vec<String>,
    /// The structure the cards are ordered for (e.g. the establishment's FINESS), copied on each order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure: Option<String>,
}

impl OrderCardConfig {
    /// The card a joiner of this métier gets: `cps`, `cpe`, or none. A person without a métier
    /// gets a CPE only under `"*"`.
    pub fn kind_of(&self, metier: Option<&str>) -> Option<&'static str> {
        let folded = metier.map(vigie_core::names::fold).unwrap_or_default();
        let listed = |list: &[String]| !folded.is_empty() && list.iter().any(|m| vigie_core::names::fold(m) == folded);
        if listed(&self.cps) {
            Some("cps")
        } else if listed(&self.cpe) || self.cpe.iter().any(|m| m == "*") {
            Some("cpe")
        } else {
            None
        }
    }
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self { hr_feed: None, max_temporary_days: default_max_temporary_days(), reminders: None, joiners: None }
    }
}

/// `[lifecycle.reminders]`: e-mails to a person (and their responsible manager) some days before
/// their access ends (docs/identity-lifecycle.md, "Reminders before expiry").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersConfig {
    /// Send them (`false`: the section kept, nothing sent).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Days before the end date at which a reminder goes, e.g. `[14, 3, 1]`: one e-mail per
    /// threshold reached, the tightest only when several are (a person added 2 days before their
    /// end gets the 3-day one, not the 14-day one too).
    #[serde(default = "default_reminder_days")]
    pub days: Vec<u32>,
    /// The sender, `Name <address>`; absent: `mail.from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Also write to the responsible manager (the person's `sponsor`) when the directory has their address.
    #[serde(default = "yes")]
    pub to_sponsor: bool,
    /// Seconds between two looks for reminders due (a failed e-mail is tried again at the next).
    #[serde(default = "default_reminder_every_secs")]
    pub every_secs: u64,
}

fn yes() -> bool {
    true
}

fn default_reminder_days() -> Vec<u32> {
    vec![14, 3, 1]
}

fn default_reminder_every_secs() -> u64 {
    300
}

/// `[lifecycle.hr_feed]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrFeedConfig {
    /// One file, or a drop directory: the newest file in it is the feed (or `url`).
    #[serde(default, skip_serializing_if = "is_empty_path")]
    pub path: PathBuf,
    /// The HR export pulled over HTTPS instead of a file (docs/identity-lifecycle.md, "Pulled
    /// over HTTPS"): `ca_file`, `token_file` or `basic_auth_file`, `timeout_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The CA certificates (PEM) the HR server's certificate must chain to; absent: the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A file holding the bearer token sent to `url` (a secret: never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// A file holding `user:password` for HTTP basic authentication to `url` (a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_file: Option<PathBuf>,
    /// Seconds a pull may take, connection and transfer.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Seconds between two runs.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// A feed that would make leavers of more than this percentage of the HR-fed population is
    /// refused whole (a truncated export must not disable the hospital).
    #[serde(default = "default_max_leavers_percent")]
    pub max_leavers_percent: f64,
    /// The file's format: `csv` (the columns of docs/identity-lifecycle.md).
    #[serde(default = "default_format")]
    pub format: String,
}

fn is_empty_path(p: &std::path::Path) -> bool {
    p.as_os_str().is_empty()
}

fn default_timeout_secs() -> u64 {
    60
}

fn default_max_temporary_days() -> u32 {
    183
}

fn default_interval_secs() -> u64 {
    3600
}

fn default_max_leavers_percent() -> f64 {
    5.0
}

fn default_format() -> String {
    "csv".into()
}

impl LifecycleConfig {
    /// Checks the section; one call of `err` per bad key (`lifecycle.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if self.max_temporary_days == 0 {
            err("lifecycle.max_temporary_days", "expected at least 1 (days)".into());
        }
        if let Some(o) = self.joiners.as_ref().and_then(|j| j.order_card.as_ref()) {
            let key = "lifecycle.joiners.order_card";
            if o.cps.is_empty() && o.cpe.is_empty() {
                err(key, "list the métiers that get a card in `cps` and/or `cpe` (e.g. cps = [\"Médecin\"])".into());
            }
            let folded: Vec<String> = o.cpe.iter().map(|m| vigie_core::names::fold(m)).collect();
            for m in o.cps.iter().filter(|m| folded.contains(&vigie_core::names::fold(m))) {
                err(
                    key,
                    format!(
                        "the métier {m:?} is in both `cps` and `cpe`: keep it in one (a CPS for those the RPPS registers)"
                    ),
                );
            }
            if o.cps.iter().any(|m| m == "*") {
                err(key, "\"*\" (every other métier) is for `cpe` only: a CPS goes to RPPS professions by name".into());
            }
        }
        if let Some(r) = &self.reminders {
            if r.days.is_empty() || r.days.iter().any(|d| *d == 0 || *d > 366) {
                err(
                    "lifecycle.reminders.days",
                    format!("expected days before the end date, 1 to 366 (e.g. [14, 3, 1]), found {:?}", r.days),
                );
            }
            if r.every_secs == 0 {
                err("lifecycle.reminders.every_secs", "expected a positive number of seconds (e.g. 300)".into());
            }
            if let Some(from) = &r.from
                && let Err(e) = vigie_mail::parse_mailbox(from)
            {
                err("lifecycle.reminders.from", format!("{e}: `Name <address>` or `address`"));
            }
        }
        let Some(feed) = &self.hr_feed else { return };
        if feed.interval_secs == 0 {
            err("lifecycle.hr_feed.interval_secs", "expected a positive number of seconds (e.g. 3600)".into());
        }
        if !(0.0..=100.0).contains(&feed.max_leavers_percent) {
            err(
                "lifecycle.hr_feed.max_leavers_percent",
                format!("expected a percentage from 0 to 100, found {}", feed.max_leavers_percent),
            );
        }
        if feed.format != "csv" {
            err(
                "lifecycle.hr_feed.format",
                format!("unknown format {:?}: `csv` (docs/identity-lifecycle.md)", feed.format),
            );
        }
        match (&feed.url, feed.path.as_os_str().is_empty()) {
            (None, true) => err(
                "lifecycle.hr_feed.path",
                "expected the feed file, or the directory HR drops it in (or `lifecycle.hr_feed.url`)".into(),
            ),
            (Some(_), false) => err(
                "lifecycle.hr_feed.url",
                "set either `path` (a file drop) or `url` (an HTTPS pull), not both".into(),
            ),
            (Some(url), true) => super::pull::check_url(url, &mut |m| err("lifecycle.hr_feed.url", m)),
            (None, false) => {}
        }
        if feed.url.is_none() {
            for (key, set) in [
                ("lifecycle.hr_feed.ca_file", feed.ca_file.is_some()),
                ("lifecycle.hr_feed.token_file", feed.token_file.is_some()),
                ("lifecycle.hr_feed.basic_auth_file", feed.basic_auth_file.is_some()),
            ] {
                if set {
                    err(key, "only read with `lifecycle.hr_feed.url` (an HTTPS pull)".into());
                }
            }
        }
        if feed.token_file.is_some() && feed.basic_auth_file.is_some() {
            err("lifecycle.hr_feed.token_file", "set `token_file` or `basic_auth_file`, not both".into());
        }
        if feed.timeout_secs == 0 {
            err("lifecycle.hr_feed.timeout_secs", "expected a positive number of seconds (e.g. 60)".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(feed: &str) -> Vec<String> {
        let config: LifecycleConfig = toml::from_str(&format!("[hr_feed]\n{feed}")).expect("TOML");
        let mut found = Vec::new();
        config.validate(&mut |key, m| found.push(format!("{key}: {m}")));
        found
    }

    #[test]
    fn card_orders_go_by_metier_cps_first_and_star_catches_the_rest() {
        let config: LifecycleConfig = toml::from_str(
            "[joiners.order_card]\ncps = [\"Médecin\", \"Infirmière\"]\ncpe = [\"Secrétaire médicale\"]",
        )
        .expect("TOML");
        let orders = config.joiners.and_then(|j| j.order_card).expect("order_card");
        assert_eq!(orders.kind_of(Some("MEDECIN")), Some("cps"));
        assert_eq!(orders.kind_of(Some("infirmiere")), Some("cps"));
        assert_eq!(orders.kind_of(Some("Secrétaire Médicale")), Some("cpe"));
        assert_eq!(orders.kind_of(Some("Brancardier")), None);
        assert_eq!(orders.kind_of(None), None);
        let star = OrderCardConfig { cps: vec!["Médecin".into()], cpe: vec!["*".into()], structure: None };
        assert_eq!(star.kind_of(Some("Brancardier")), Some("cpe"));
        assert_eq!(star.kind_of(None), Some("cpe"));
        assert_eq!(star.kind_of(Some("médecin")), Some("cps"));
    }

    #[test]
    fn an_order_rule_without_metiers_or_with_one_in_both_lists_is_refused() {
        let problems = |rule: &str| {
            let config: LifecycleConfig = toml::from_str(&format!("[joiners.order_card]\n{rule}")).expect("TOML");
            let mut found = Vec::new();
            config.validate(&mut |key, m| found.push(format!("{key}: {m}")));
            found
        };
        assert!(problems("cps = [\"Médecin\"]\ncpe = [\"*\"]").is_empty());
        assert!(problems("")[0].contains("list the métiers"));
        assert!(problems("cps = [\"Médecin\"]\ncpe = [\"MEDECIN\"]")[0].contains("\"Médecin\" is in both"));
        assert!(problems("cps = [\"*\"]")[0].contains("for `cpe` only"));
    }

    #[test]
    fn the_feed_has_one_source_and_pull_settings_only_with_a_url() {
        assert!(problems("path = \"/var/lib/vigie/hr-drop\"").is_empty());
        assert!(problems("url = \"https://sirh.example/p.csv\"\ntoken_file = \"/run/t\"").is_empty());
        assert!(problems("interval_secs = 60")[0].starts_with("lifecycle.hr_feed.path: expected the feed file"));
        let both = problems("path = \"/x\"\nurl = \"https://sirh.example/p.csv\"");
        assert!(both[0].contains("not both"), "{both:?}");
        let stray = problems("path = \"/x\"\ntoken_file = \"/run/t\"");
        assert_eq!(stray, ["lifecycle.hr_feed.token_file: only read with `lifecycle.hr_feed.url` (an HTTPS pull)"]);
        let two = problems("url = \"https://s.example/p\"\ntoken_file = \"/t\"\nbasic_auth_file = \"/b\"");
        assert!(two[0].contains("not both"), "{two:?}");
    }
}
