//! The run's reports: JUnit XML for CI, JSON, and HTML an auditor reads (one file in French,
//! one in English, linked to each other).
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::{Outcome, Report, Verdict};

/// XML/HTML text escaping (the evidence holds whatever the target answered).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Now as RFC 3339 UTC (seconds), without a date crate.
pub fn now_rfc3339() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub fn write_all(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let w = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {name} in {}", dir.display()))
    };
    w("report.json", serde_json::to_string_pretty(report)?)?;
    w("junit.xml", junit(report))?;
    w("report.en.html", html(report, Lang::En))?;
    w("report.fr.html", html(report, Lang::Fr))?;
    Ok(())
}

/// JUnit XML as CI servers read it: one testsuite per plan; `failure` for a failed check,
/// `skipped` with its reason for one that does not apply.
pub fn junit(r: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"vigie-conformance\" tests=\"{}\" failures=\"{}\">",
        r.outcomes.len(),
        r.failures().len()
    );
    // Each plan once, in the order of its first module (a plan's modules need not be adjacent).
    let mut plans: Vec<&str> = Vec::new();
    for o in &r.outcomes {
        if !plans.contains(&o.plan.as_str()) {
            plans.push(&o.plan);
        }
    }
    for plan in plans {
        let of: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.plan == plan).collect();
        let fails = of.iter().filter(|o| matches!(o.verdict, Verdict::Fail(_))).count();
        let skips = of.iter().filter(|o| matches!(o.verdict, Verdict::NotApplicable(_))).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skips}\">",
            esc(plan),
            of.len()
        );
        for o in of {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                esc(plan),
                esc(&o.id),
                o.millis as f64 / 1000.0
            );
            match &o.verdict {
                Verdict::Pass => {}
                Verdict::Fail(why) => {
                    let _ = write!(
                        out,
                        "<failure message=\"{}\">{}: {}</failure>",
                        esc(why),
                        esc(&o.source),
                        esc(&o.expected_en)
                    );
                }
                Verdict::NotApplicable(why) => {
                    let _ = write!(out, "<skipped message=\"not applicable: {}\"/>", esc(why));
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[derive(Clone, Copy, PartialEq)]
pub enum Lang {
    En,
    Fr,
}

fn t<'a>(lang: Lang, en: &'a str, fr: &'a str) -> &'a str {
    if lang == Lang::En { en } else { fr }
}

/// The auditor's report in one language: a summary, the run's parameters, then each check with
/// its purpose, requirement, evidence and verdict.
pub fn html(r: &Report, lang: Lang) -> String {
    let l = |en: &'static str, fr: &'static str| t(lang, en, fr);
    let (pass, na) = (
        r.outcomes.iter().filter(|o| o.verdict == Verdict::Pass).count(),
        r.outcomes.iter().filter(|o| matches!(o.verdict, Verdict::NotApplicable(_))).count(),
    );
    let verdict = |v: &Verdict| match v {
        Verdict::Pass => (l("PASS", "CONFORME"), "pass", String::new()),
        Verdict::Fail(w) => (l("FAIL", "NON CONFORME"), "fail", w.clone()),
        Verdict::NotApplicable(w) => (l("NOT APPLICABLE", "NON APPLICABLE"), "na", w.clone()),
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\
.pass{{color:#075e00;font-weight:bold}}.fail{{color:#b00000;font-weight:bold}}.na{{color:#7a5c00;font-weight:bold}}\
pre{{background:#f5f5f5;padding:.5em;white-space:pre-wrap;word-break:break-all;font-size:85%}}</style></head><body>",
        l("en", "fr"),
        l("Vigie conformance report", "Rapport de conformité Vigie")
    );
    let _ = write!(
        o,
        "<p><a href=\"{}\">{}</a></p><h1>{}</h1>",
        l("report.fr.html", "report.en.html"),
        l("Version française", "English version"),
        l("Vigie conformance report", "Rapport de conformité Vigie")
    );
    let _ = write!(
        o,
        "<h2>{}</h2><table><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
<tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr></table>",
        l("Run", "Exécution"),
        l("Target", "Cible"),
        esc(&r.target),
        l("Target version", "Version de la cible"),
        esc(r.target_version.as_deref().unwrap_or(l("not published", "non publiée"))),
        l("Started", "Début"),
        esc(&r.started),
        l("Kit version", "Version du kit"),
        esc(&r.kit_version),
        l("Test clients", "Clients de test"),
        esc(&r.profile_clients.join(", ")),
        l("Test users", "Utilisateurs de test"),
        esc(&r.profile_users.join(", "))
    );
    let _ = write!(
        o,
        "<h2>{}</h2><p>{} {pass} · {} {} · {} {na} · {} {}</p><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        l("Summary", "Synthèse"),
        l("Passed", "Conformes"),
        l("Failed", "Non conformes"),
        r.failures().len(),
        l("Not applicable", "Non applicables"),
        l("Total", "Total"),
        r.outcomes.len(),
        l("Test", "Test"),
        l("Requirement", "Exigence"),
        l("Verdict", "Verdict"),
        l("Reason", "Motif")
    );
    for x in &r.outcomes {
        let (word, class, why) = verdict(&x.verdict);
        let _ = write!(
            o,
            "<tr><td><a href=\"#{id}\">{id}</a><br>{}</td><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            esc(t(lang, &x.title_en, &x.title_fr)),
            esc(&x.source),
            esc(&why),
            id = esc(&x.id)
        );
    }
    o.push_str("</table>");
    for x in &r.outcomes {
        let (word, class, why) = verdict(&x.verdict);
        let _ = write!(
            o,
            "<h2 id=\"{id}\">{id}</h2><p>{}</p><table><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
<tr><th>{}</th><td class=\"{class}\">{word}</td></tr><tr><th>{}</th><td>{}</td></tr></table><h3>{}</h3>",
            esc(t(lang, &x.title_en, &x.title_fr)),
            l("Requirement", "Exigence"),
            esc(&x.source),
            l("Expected", "Attendu"),
            esc(t(lang, &x.expected_en, &x.expected_fr)),
            l("Verdict", "Verdict"),
            l("Observed", "Constaté"),
            esc(if why.is_empty() { l("as expected", "conforme à l'attendu") } else { &why }),
            l("Evidence (secrets masked)", "Preuves (secrets masqués)"),
            id = esc(&x.id)
        );
        if x.evidence.is_empty() {
            let _ = write!(o, "<p>{}</p>", l("No exchange.", "Aucun échange."));
        }
        for e in &x.evidence {
            let headers: String = e.headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
            let answer = if e.status == 0 { String::new() } else { format!("→ {}\n{headers}\n", e.status) };
            let _ = write!(o, "<pre>{}\n{}{}</pre>", esc(&e.request), esc(&answer), esc(&e.body));
        }
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Exchange;

    fn report(verdict: Verdict, body: &str) -> Report {
        Report {
            target: "https://t".into(),
            started: now_rfc3339(),
            kit_version: "0".into(),
            target_version: None,
            profile_clients: vec![],
            profile_users: vec![],
            outcomes: vec![Outcome {
                id: "m<1>".into(),
                plan: "oidc".into(),
                source: "RFC 0 §1".into(),
                title_en: "t".into(),
                title_fr: "t".into(),
                expected_en: "e".into(),
                expected_fr: "e".into(),
                verdict,
                millis: 1,
                evidence: vec![Exchange { request: "GET /x".into(), status: 200, headers: vec![], body: body.into() }],
            }],
        }
    }

    /// The evidence is whatever the target answered: a hostile target must not script the
    /// auditor's report nor break the CI's XML.
    #[test]
    fn what_the_target_answered_is_escaped_in_the_html_and_the_junit() {
        let r = report(Verdict::Fail("<b>\"x\" & y</b>".into()), "<script>alert(1)</script>");
        for lang in [Lang::En, Lang::Fr] {
            let h = html(&r, lang);
            assert!(!h.contains("<script>") && h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{h}");
            assert!(!h.contains("<b>\"x\""));
        }
        let j = junit(&r);
        assert!(j.contains("<failure message=\"&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;\">"), "{j}");
        assert!(j.contains("failures=\"1\"") && j.contains("name=\"m&lt;1&gt;\""), "{j}");
    }

    #[test]
    fn a_module_that_does_not_apply_is_skipped_with_its_reason_in_junit() {
        let j = junit(&report(Verdict::NotApplicable("no card in the profile".into()), ""));
        assert!(j.contains("<skipped message=\"not applicable: no card in the profile\"/>"), "{j}");
        assert!(j.contains("skipped=\"1\"") && j.contains("failures=\"0\""), "{j}");
    }

    #[test]
    fn a_plan_whose_modules_are_not_adjacent_is_one_testsuite() {
        let mut r = report(Verdict::Pass, "");
        let mut other = r.outcomes[0].clone();
        other.plan = "security".into();
        r.outcomes.push(other);
        r.outcomes.push(r.outcomes[0].clone());
        let j = junit(&r);
        assert_eq!(j.matches("<testcase ").count(), 3, "{j}");
        assert_eq!(j.matches("<testsuite name=\"oidc\"").count(), 1, "{j}");
    }

    #[test]
    fn the_date_is_rfc_3339_utc() {
        let d = now_rfc3339();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z') && &d[10..11] == "T", "{d}");
    }
}
