//! The life cycle of a person, without I/O: the instants of an HR feed's dates, the kinds of
//! person, and the diff of a feed against the directory (joiners, movers field by field, leavers,
//! people HR brings back). Stored by `lifecycle_store` (migration `0011_lifecycle.sql`).
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use vigie_core::directory::{Affectation, Identity};

use crate::HrRow;

/// Which end of a period a bare date names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateEdge {
    /// `start_date`: the day's first instant.
    Start,
    /// `end_date`: the last day worked, so access ends when the day does.
    End,
}

/// An instant as the directory stores it: RFC 3339 UTC to the second, so that two compare as text.
pub fn stamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `YYYY-MM-DD` (a day in UTC: the start of the day, or the end of it for an end date) or an
/// RFC 3339 instant with its offset (`2027-01-31T18:00:00+01:00`), into [`stamp`]'s form.
pub fn parse_instant(s: &str, edge: DateEdge) -> Result<String, String> {
    let expected = "expected YYYY-MM-DD or an RFC 3339 time such as 2027-01-31T18:00:00+01:00";
    if s.len() == 10 {
        let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|_| format!("{s:?} is not a calendar date: {expected}"))?;
        let day = date.midnight().assume_utc();
        return match edge {
            DateEdge::Start => Ok(stamp(day)),
            DateEdge::End => day
                .checked_add(time::Duration::DAY)
                .map(stamp)
                .ok_or_else(|| format!("{s:?} is past the last date there is: leave the end date blank")),
        };
    }
    OffsetDateTime::parse(s, &Rfc3339).map(stamp).map_err(|_| format!("{s:?} is not a date: {expected}"))
}

/// The kinds of person of the feed's `kind` column.
pub const PERSON_KINDS: [&str; 5] = ["staff", "intern", "contractor", "agency", "mission"];

/// A `kind` of the feed: one of [`PERSON_KINDS`].
pub fn check_person_kind(kind: &str) -> Result<(), String> {
    if PERSON_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(format!("unknown kind {kind:?}: one of {}", PERSON_KINDS.join(", ")))
    }
}

/// A person of the directory as the life cycle sees them (`vigie users list`, the feed's diff).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Person {
    /// The identity, affectations main unit first.
    #[serde(flatten)]
    pub identity: Identity,
    /// First instant of activity.
    pub start_at: Option<String>,
    /// Instant access ends.
    pub end_at: Option<String>,
    /// Matricule of the responsible manager.
    pub sponsor: Option<String>,
    /// Kind of person (`staff`, `intern`, …).
    pub kind: Option<String>,
    /// `hr` (kept by the HR feed), `cli` (added by hand for a time), none (SCIM, LDAP, …).
    pub source: Option<String>,
    /// Employment status as stored (`active`, `suspended`, `left`).
    pub status: String,
    /// Why the life cycle ended the person's access, while it is ended.
    pub lifecycle_ended: Option<String>,
    /// Login name, when the person has an account.
    pub username: Option<String>,
    /// Whether that account is disabled.
    pub disabled: Option<bool>,
    /// `personal` or `generic`, when the person has an account.
    pub account_kind: Option<String>,
    /// Every role the person holds, whoever granted it, sorted.
    pub roles: Vec<String>,
    /// The roles of [`Person::roles`] the HR feed granted ([`FEED_GRANTOR`]): the only ones a feed
    /// takes back; those of LDAP groups, SCIM or an admin are left alone.
    pub feed_roles: Vec<String>,
}

/// `identity_roles.granted_by` of the roles the HR feed grants.
pub const FEED_GRANTOR: &str = "hr-feed";

/// The roles the feed's `listed` roles leave the feed holding for `p`: those listed that no other
/// source already grants (a role an admin gave stays the admin's, so it outlives the feed's word).
pub fn feed_roles_after(p: &Person, listed: &[String]) -> Vec<String> {
    listed.iter().filter(|r| !p.roles.contains(r) || p.feed_roles.contains(r)).cloned().collect()
}

/// Affectations in the feed's notation.
pub fn units_text(units: &[Affectation]) -> String {
    units.iter().map(|a| format!("{}:{}", a.uf, a.share)).collect::<Vec<_>>().join(";")
}

/// One field of a mover that changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The feed's column.
    pub field: &'static str,
    /// What the directory holds.
    pub before: Option<String>,
    /// What the feed says.
    pub after: Option<String>,
}

/// A person of the diff, with what happens to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// HR matricule.
    pub matricule: String,
    /// Login name, when known.
    pub username: Option<String>,
    /// Movers: the fields that change; joiners: the roles the feed grants them, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Leavers and returners: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What a feed would change, computed before anything is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FeedDiff {
    /// In the feed, not in the directory: created.
    pub joiners: Vec<Entry>,
    /// In both, some field differs (field by field).
    pub movers: Vec<Entry>,
    /// Kept by HR and no longer in the feed, or with an end date passed: disabled, access ended.
    pub leavers: Vec<Entry>,
    /// Ended by the life cycle and back in the feed with no end date passed: reinstated.
    pub returning: Vec<Entry>,
    /// In both, nothing to change.
    pub unchanged: usize,
    /// People kept by HR with access, before this feed: what the safety stop measures against.
    pub population: usize,
}

impl FeedDiff {
    /// Whether applying it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.joiners.is_empty() && self.movers.is_empty() && self.leavers.is_empty() && self.returning.is_empty()
    }

    /// Leavers because the feed no longer lists them, in percent of the HR-fed population (0 when
    /// nobody is HR-fed yet): what a truncated export makes. Those whose end date the feed
    /// gives are HR's explicit word, not counted.
    pub fn leavers_percent(&self) -> f64 {
        let missing = self.missing();
        if self.population == 0 { 0.0 } else { missing as f64 * 100.0 / self.population as f64 }
    }

    /// Leavers because the feed no longer lists them.
    pub fn missing(&self) -> usize {
        self.leavers.iter().filter(|e| e.why.as_deref() == Some(NOT_IN_FEED)).count()
    }
}

impl std::fmt::Display for FeedDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} joiner(s), {} mover(s), {} leaver(s), {} returning, {} unchanged (HR-fed population {})",
            self.joiners.len(),
            self.movers.len(),
            self.leavers.len(),
            self.returning.len(),
            self.unchanged,
            self.population
        )?;
        let who = |e: &Entry| match &e.username {
            Some(u) => format!("{} ({u})", e.matricule),
            None => e.matricule.clone(),
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        for e in &self.joiners {
            writeln!(f, "joiner    {}", who(e))?;
            for c in &e.changes {
                writeln!(f, "joiner    {}  {}: {} -> {}", who(e), c.field, show(&c.before), show(&c.after))?;
            }
        }
        for e in &self.movers {
            for c in &e.changes {
                writeln!(f, "mover     {}  {}: {} -> {}", who(e), c.field, show(&c.before), show(&c.after))?;
            }
        }
        for e in &self.leavers {
            writeln!(f, "leaver    {}  {}", who(e), e.why.as_deref().unwrap_or_default())?;
        }
        for e in &self.returning {
            writeln!(f, "returning {}  {}", who(e), e.why.as_deref().unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Why a person leaves when the feed no longer lists them.
pub const NOT_IN_FEED: &str = "no longer in the HR feed";

/// Whether the person's access is open by the life cycle's own marks (not ended by it).
fn fed_and_open(p: &Person) -> bool {
    p.source.as_deref() == Some("hr") && p.lifecycle_ended.is_none()
}

/// The diff of a feed (`rows`) against the directory (`people`) at `now` ([`stamp`] form).
pub fn diff(people: &[Person], rows: &[HrRow], now: &str) -> FeedDiff {
    let by_matricule: HashMap<&str, &Person> = people.iter().map(|p| (p.identity.matricule.as_str(), p)).collect();
    let listed: HashSet<&str> = rows.iter().map(|r| r.matricule.as_str()).collect();
    let mut d = FeedDiff { population: people.iter().filter(|p| fed_and_open(p)).count(), ..Default::default() };
    for row in rows {
        let ended_by_date = row.end_at.as_deref().is_some_and(|end| end <= now);
        let Some(p) = by_matricule.get(row.matricule.as_str()) else {
            let roles = row.roles.as_deref().filter(|r| !r.is_empty());
            d.joiners.push(Entry {
                matricule: row.matricule.clone(),
                username: row.username.clone(),
                changes: roles
                    .map(|r| vec![Change { field: "roles", before: None, after: Some(r.join(";")) }])
                    .unwrap_or_default(),
                why: None,
            });
            continue;
        };
        let changes = changes(p, row);
        let username = p.username.clone().or_else(|| row.username.clone());
        let entry = |changes: Vec<Change>, why: Option<String>| Entry {
            matricule: row.matricule.clone(),
            username: username.clone(),
            changes,
            why,
        };
        if ended_by_date && p.lifecycle_ended.is_none() {
            let end = row.end_at.clone().unwrap_or_default();
            d.leavers.push(entry(changes, Some(format!("end date {end} passed"))));
        } else if !ended_by_date && p.lifecycle_ended.is_some() {
            d.returning.push(entry(changes, Some("back in the HR feed".into())));
        } else if !changes.is_empty() {
            d.movers.push(entry(changes, None));
        } else {
            d.unchanged += 1;
        }
    }
    for p in people {
        if fed_and_open(p) && !listed.contains(p.identity.matricule.as_str()) {
            d.leavers.push(Entry {
                matricule: p.identity.matricule.clone(),
                username: p.username.clone(),
                changes: vec![],
                why: Some(NOT_IN_FEED.into()),
            });
        }
    }
    d
}

/// The fields the feed changes, in the feed's column names.
fn changes(p: &Person, row: &HrRow) -> Vec<Change> {
    let mut out = Vec::new();
    let mut field = |field: &'static str, before: Option<String>, after: Option<String>| {
        if before != after {
            out.push(Change { field, before, after });
        }
    };
    let (i, r) = (&p.identity, row.identity());
    field("family_name", Some(i.family_name.clone()), Some(r.family_name));
    field("given_name", Some(i.given_name.clone()), Some(r.given_name));
    field("birth_date", i.birth_date.clone(), r.birth_date);
    field("metier", i.metier.clone(), r.metier);
    field("grade", i.grade.clone(), r.grade);
    let idnat = |v: Option<&vigie_core::IdNat>| v.map(|i| i.as_str().to_owned());
    field("idnat", idnat(i.idnat.as_ref()), idnat(r.idnat.as_ref()));
    let units = |s: String| Some(s).filter(|s| !s.is_empty());
    field("units", units(units_text(&i.units)), units(sorted_units(&r.units)));
    field("start_date", p.start_at.clone(), row.start_at.clone());
    field("end_date", p.end_at.clone(), row.end_at.clone());
    field("sponsor", p.sponsor.clone(), row.sponsor.clone());
    field("kind", p.kind.clone(), row.kind.clone());
    if let Some(listed) = &row.roles {
        let roles = |r: &[String]| Some(r.join(";")).filter(|s| !s.is_empty());
        field("roles", roles(&p.feed_roles), roles(&feed_roles_after(p, listed)));
    }
    // Someone the feed takes over (an older import, SCIM) becomes HR's to end.
    field("source", p.source.clone(), Some("hr".into()));
    out
}

/// Affectations in the order the directory returns them: by decreasing share, then by unit.
pub(crate) fn sorted_units(units: &[Affectation]) -> String {
    let mut units = units.to_vec();
    units.sort_by(|a, b| b.share.cmp(&a.share).then_with(|| a.uf.cmp(&b.uf)));
    units_text(&units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_end_date_ends_with_its_day_and_an_offset_is_taken_into_account() {
        assert_eq!(parse_instant("2027-01-31", DateEdge::Start).unwrap(), "2027-01-31T00:00:00Z");
        assert_eq!(parse_instant("2027-01-31", DateEdge::End).unwrap(), "2027-02-01T00:00:00Z");
        assert_eq!(parse_instant("2027-01-31T18:00:00+01:00", DateEdge::End).unwrap(), "2027-01-31T17:00:00Z");
        assert_eq!(parse_instant("2027-01-31T18:00:00.9Z", DateEdge::End).unwrap(), "2027-01-31T18:00:00Z");
        let e = parse_instant("31/01/2027", DateEdge::End).unwrap_err();
        assert!(e.contains("expected YYYY-MM-DD"), "{e}");
        assert!(parse_instant("2027-02-30", DateEdge::End).unwrap_err().contains("not a calendar date"));
        assert!(parse_instant("9999-12-31", DateEdge::End).unwrap_err().contains("leave the end date blank"));
    }

    #[test]
    fn stamps_compare_as_the_instants_they_name() {
        let a = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let b = a + time::Duration::seconds(1);
        assert!(stamp(a) < stamp(b));
        assert!(stamp(b + time::Duration::days(400)) > stamp(b));
    }
}
