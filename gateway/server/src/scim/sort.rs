//! `sortBy` / `sortOrder` of a SCIM list (RFC 7644 §3.4.2.3): the matching resources ordered by
//! one attribute before they are paged, strings ignoring case unless the attribute is case-exact.
use std::cmp::Ordering;

use serde_json::Value;

use super::filter::{self, AttrPath};
use super::resource::ScimError;

/// RFC 7644 §3.4.2.3: "ascending" and "descending"; ascending when `sortBy` comes alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

impl Order {
    pub fn parse(text: Option<&str>) -> Result<Order, ScimError> {
        match text {
            None => Ok(Order::Ascending),
            Some(t) if t.eq_ignore_ascii_case("ascending") => Ok(Order::Ascending),
            Some(t) if t.eq_ignore_ascii_case("descending") => Ok(Order::Descending),
            Some(t) => Err(ScimError::invalid_value(format!(
                "`sortOrder` is \"ascending\" or \"descending\", not {:?}",
                t.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// `sortBy`, parsed: an attribute path, without a value filter.
pub fn parse_by(text: &str) -> Result<AttrPath, ScimError> {
    match filter::parse_path(text) {
        Ok((path, None, None)) => Ok(path),
        Ok(_) => Err(ScimError::invalid_value("`sortBy` names one attribute (`name.familyName`), without a filter")),
        Err(e) => Err(ScimError::invalid_value(format!("`sortBy` is not an attribute path {e}"))),
    }
}

/// What a resource is sorted by.
#[derive(Debug, PartialEq)]
enum Key {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// The value `path` names in `resource`; of a multi-valued attribute, its primary value, else its
/// first (RFC 7644 §3.4.2.3).
fn key(resource: &Value, path: &AttrPath, core_schema: &str) -> Option<Key> {
    let holder = match &path.uri {
        Some(uri) if !uri.eq_ignore_ascii_case(core_schema) => filter::member(resource, uri)?,
        _ => resource,
    };
    let mut v = filter::member(holder, &path.name)?;
    if let Value::Array(items) = v {
        v = items.iter().find(|i| filter::member(i, "primary") == Some(&Value::Bool(true))).or(items.first())?;
    }
    if let Some(sub) = &path.sub {
        v = filter::member(v, sub)?;
    } else if v.is_object() {
        v = filter::member(v, "value")?;
    }
    let exact = filter::case_exact(path.sub.as_deref().unwrap_or(&path.name));
    match v {
        Value::String(s) if exact => Some(Key::Text(s.clone())),
        Value::String(s) => Some(Key::Text(s.to_lowercase())),
        Value::Number(n) => n.as_f64().map(Key::Number),
        Value::Bool(b) => Some(Key::Bool(*b)),
        _ => None,
    }
}

fn compare(a: &Option<Key>, b: &Option<Key>) -> Ordering {
    match (a, b) {
        (Some(Key::Text(a)), Some(Key::Text(b))) => a.cmp(b),
        (Some(Key::Number(a)), Some(Key::Number(b))) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        (Some(Key::Bool(a)), Some(Key::Bool(b))) => a.cmp(b),
        // A resource without the attribute comes after those with it (before, descending): the
        // RFC leaves it open; this keeps the ones the client asked about first.
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Orders `resources` (stable: equal keys keep the directory's order); `core_schema` tells each
/// one's (an attribute path may name it).
pub fn sort(resources: &mut [Value], by: &AttrPath, order: Order, core_schema: &dyn Fn(&Value) -> &'static str) {
    let mut keyed: Vec<(Option<Key>, Value)> =
        resources.iter_mut().map(|r| (key(r, by, core_schema(r)), std::mem::take(r))).collect();
    keyed.sort_by(|(a, _), (b, _)| match order {
        Order::Ascending => compare(a, b),
        Order::Descending => compare(b, a),
    });
    for (slot, (_, v)) in resources.iter_mut().zip(keyed) {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    fn sorted(mut v: Vec<Value>, by: &str, order: Order) -> Vec<String> {
        sort(&mut v, &parse_by(by).unwrap(), order, &|_| USER);
        v.iter().map(|u| u["userName"].as_str().unwrap_or_default().to_owned()).collect()
    }

    #[test]
    fn users_sort_by_family_name_ignoring_case_absent_last_and_reverse_descending() {
        let users = vec![
            json!({"userName": "c", "name": {"familyName": "martin"}}),
            json!({"userName": "a"}),
            json!({"userName": "b", "name": {"familyName": "Durand"}}),
            json!({"userName": "d", "name": {"familyName": "Bernard"}}),
        ];
        assert_eq!(sorted(users.clone(), "name.familyName", Order::Ascending), ["d", "b", "c", "a"]);
        assert_eq!(sorted(users, "name.familyName", Order::Descending), ["a", "c", "b", "d"]);
    }

    #[test]
    fn a_multi_valued_attribute_sorts_by_its_primary_value_else_its_first() {
        let users = vec![
            json!({"userName": "x", "emails": [{"value": "z@h.fr"}, {"value": "a@h.fr", "primary": true}]}),
            json!({"userName": "y", "emails": [{"value": "m@h.fr"}]}),
        ];
        assert_eq!(sorted(users, "emails", Order::Ascending), ["x", "y"]);
    }

    #[test]
    fn an_extension_attribute_is_found_under_its_schema() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let users = vec![
            json!({"userName": "p", ext: {"employeeNumber": "M2"}}),
            json!({"userName": "q", ext: {"employeeNumber": "M1"}}),
        ];
        assert_eq!(sorted(users, &format!("{ext}:employeeNumber"), Order::Ascending), ["q", "p"]);
    }

    #[test]
    fn a_bad_sort_is_refused_saying_what_is_expected() {
        assert!(Order::parse(Some("up")).unwrap_err().detail.contains("\"ascending\" or \"descending\""));
        assert!(parse_by("emails[type eq \"work\"]").is_err());
        assert!(parse_by("(").is_err());
        assert_eq!(Order::parse(Some("Descending")).unwrap(), Order::Descending);
    }
}
