//! Invariants of directory data, shared by the adapter and the HR import so that what the
//! import accepts is exactly what the adapter stores.
use std::collections::HashSet;

use vigie_core::directory::Affectation;

/// Longest matricule, UF code or username accepted.
const MAX_CODE_LEN: usize = 64;

/// A matricule: non-empty, at most 64 characters, no surrounding blanks or control characters.
pub(crate) fn check_matricule(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the matricule is empty".into());
    }
    if s.chars().count() > MAX_CODE_LEN {
        return Err(format!("the matricule is longer than {MAX_CODE_LEN} characters"));
    }
    if s.trim() != s || s.chars().any(char::is_control) {
        return Err(format!("the matricule {s:?} has surrounding blanks or control characters"));
    }
    Ok(())
}

/// A name or free text (métier, grade): no control characters; `required` ones non-empty.
pub(crate) fn check_text(what: &str, s: &str, required: bool) -> Result<(), String> {
    if required && s.trim().is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("the {what} {s:?} contains a line break or another control character"));
    }
    Ok(())
}

/// A birth date: `YYYY-MM-DD`, and a real calendar date.
pub(crate) fn check_birth_date(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(format!("the birth date must be YYYY-MM-DD, found {s:?}"));
    }
    if calendar_date(s).is_none() {
        return Err(format!("the birth date {s} is not a calendar date"));
    }
    Ok(())
}

fn calendar_date(s: &str) -> Option<time::Date> {
    let year = s.get(0..4)?.parse::<i32>().ok()?;
    let month = time::Month::try_from(s.get(5..7)?.parse::<u8>().ok()?).ok()?;
    let day = s.get(8..10)?.parse::<u8>().ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
}

/// A UF code: 1 to 64 ASCII letters, digits, `-` or `_`.
pub(crate) fn check_uf(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_CODE_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("the unit code {s:?} must be 1 to {MAX_CODE_LEN} ASCII letters, digits, '-' or '_'"));
    }
    Ok(())
}

/// Affectations: valid codes, each unit once, shares 1..=100 summing to at most 100.
pub(crate) fn check_units(units: &[Affectation]) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut total = 0u32;
    for unit in units {
        check_uf(&unit.uf)?;
        if !(1..=100).contains(&unit.share) {
            return Err(format!("the share of unit {} must be from 1 to 100 (percent), found {}", unit.uf, unit.share));
        }
        if !seen.insert(unit.uf.as_str()) {
            return Err(format!("unit {} is listed twice", unit.uf));
        }
        total += u32::from(unit.share);
    }
    if total > 100 {
        return Err(format!("the shares of the units add up to {total}%, more than 100%"));
    }
    Ok(())
}

/// A login name: 1 to 64 ASCII letters, digits, `.`, `_`, `-` or `@`.
pub(crate) fn check_username(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > MAX_CODE_LEN
        || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
    {
        return Err(format!(
            "the username {s:?} must be 1 to {MAX_CODE_LEN} ASCII letters, digits, '.', '_', '-' or '@'"
        ));
    }
    Ok(())
}
