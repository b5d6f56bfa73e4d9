//! PATCH (RFC 7644 §3.5.2): `add`, `replace` and `remove` operations applied to a resource's
//! JSON, which is then stored as a replacement would be, so a PATCH can do nothing a PUT cannot.
use serde_json::{Map, Value};

use super::filter::{self, AttrPath, Filter};
use super::resource::ScimError;
use super::schema::PATCH_OP;

/// Most operations in one PATCH.
const MAX_OPERATIONS: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::new(actix_web::http::StatusCode::BAD_REQUEST, Some("noTarget"), detail)
}

fn mutability(name: &str) -> ScimError {
    ScimError::new(
        actix_web::http::StatusCode::BAD_REQUEST,
        Some("mutability"),
        format!("{name} is set by Vigie and cannot be changed (RFC 7643 §3.1: readOnly)"),
    )
}

/// The key of `object` named `name`, whatever its case.
fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn entry<'a>(object: &'a mut Map<String, Value>, name: &str) -> &'a mut Value {
    let key = key_of(object, name).unwrap_or_else(|| name.to_owned());
    object.entry(key).or_insert(Value::Null)
}

/// Applies the operations of a PatchOp message to `resource` (without `meta`); `extensions` are
/// the schema URNs of its extensions, which a path may name whole.
pub fn apply(
    resource: &mut Map<String, Value>,
    body: &Value,
    core: &str,
    extensions: &[&str],
) -> Result<(), ScimError> {
    let schemas = filter::member(body, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|s| s.as_str() == Some(PATCH_OP))) {
        return Err(ScimError::invalid_value(format!("a PATCH body's `schemas` must be [\"{PATCH_OP}\"]")));
    }
    let Some(Value::Array(operations)) = filter::member(body, "Operations") else {
        return Err(ScimError::invalid_value("a PATCH body needs `Operations`, a list"));
    };
    if operations.is_empty() || operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!("`Operations` must hold 1 to {MAX_OPERATIONS} operations")));
    }
    for (i, operation) in operations.iter().enumerate() {
        let op = match filter::member(operation, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}].op must be \"add\", \"replace\" or \"remove\""
                )));
            }
        };
        let value = filter::member(operation, "value").cloned();
        let path = match filter::member(operation, "path") {
            None | Some(Value::Null) => None,
            // A path naming an extension's URN is the extension's whole object (RFC 7644 §3.10).
            Some(Value::String(p)) if extensions.iter().any(|x| x.eq_ignore_ascii_case(p)) => {
                Some((AttrPath { uri: None, name: p.clone(), sub: None }, None, None))
            }
            Some(Value::String(p)) => Some(filter::parse_path(p).map_err(|e| {
                ScimError::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    Some("invalidPath"),
                    format!("Operations[{i}].path {e}"),
                )
            })?),
            Some(_) => return Err(ScimError::invalid_value(format!("Operations[{i}].path must be a string"))),
        };
        match (op, path, value) {
            // RFC 7644 §3.5.2.2: remove without a path fails with `noTarget`.
            (Op::Remove, None, _) => return Err(no_target(format!("Operations[{i}]: remove needs a `path`"))),
            (Op::Remove, Some(path), _) => remove(resource, &path, core)?,
            (_, _, None) => {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}]: {} needs a `value`",
                    if op == Op::Add { "add" } else { "replace" }
                )));
            }
            // RFC 7644 §3.5.2.1 / §3.5.2.3: without a path, the value is an object of attributes.
            (_, None, Some(Value::Object(attributes))) => {
                for (name, v) in attributes {
                    let path = if name.starts_with("urn:") {
                        // An extension's attributes, given as a whole.
                        if let Value::Object(inner) = v {
                            for (sub, sv) in inner {
                                let p = AttrPath { uri: Some(name.clone()), name: sub.clone(), sub: None };
                                set(resource, &(p, None, None), sv.clone(), op, core)?;
                            }
                            continue;
                        }
                        match name.rsplit_once(':') {
                            Some((uri, n)) => AttrPath { uri: Some(uri.to_owned()), name: n.to_owned(), sub: None },
                            None => continue,
                        }
                    } else {
                        let (p, _, _) = filter::parse_path(&name).map_err(|e| {
                            ScimError::new(actix_web::http::StatusCode::BAD_REQUEST, Some("invalidPath"), e.to_string())
                        })?;
                        p
                    };
                    set(resource, &(path, None, None), v.clone(), op, core)?;
                }
            }
            (_, None, Some(_)) => {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}]: without a `path`, the value must be an object of attributes"
                )));
            }
            (_, Some(path), Some(v)) => set(resource, &path, v, op, core)?,
        }
    }
    Ok(())
}

type Target = (AttrPath, Option<Filter>, Option<String>);

/// The object holding the path's attribute: the resource, or the extension's object under its URI.
fn holder<'a>(
    resource: &'a mut Map<String, Value>,
    path: &AttrPath,
    core: &str,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    match &path.uri {
        Some(uri) if !uri.eq_ignore_ascii_case(core) => {
            if key_of(resource, uri).is_none() && !create {
                return None;
            }
            let v = entry(resource, uri);
            if !v.is_object() {
                *v = Value::Object(Map::new());
            }
            v.as_object_mut()
        }
        _ => Some(resource),
    }
}

fn check_mutable(path: &AttrPath) -> Result<(), ScimError> {
    for readonly in ["id", "meta"] {
        if path.name.eq_ignore_ascii_case(readonly) && path.uri.is_none() {
            return Err(mutability(readonly));
        }
    }
    Ok(())
}

fn set(resource: &mut Map<String, Value>, target: &Target, value: Value, op: Op, core: &str) -> Result<(), ScimError> {
    let (path, filter, filter_sub) = target;
    check_mutable(path)?;
    let Some(holder) = holder(resource, path, core, true) else { return Ok(()) };
    let current = entry(holder, &path.name);
    if let Some(filter) = filter {
        // `emails[type eq "work"].value`: the matching values, or their sub-attribute.
        let Value::Array(items) = current else {
            return Err(no_target(format!("{} has no values to select from", path.name)));
        };
        let mut hit = false;
        for item in items.iter_mut().filter(|item| filter::matches(filter, item, core)) {
            hit = true;
            match (filter_sub, item.as_object_mut()) {
                (Some(sub), Some(object)) => *entry(object, sub) = value.clone(),
                (None, Some(object)) => match &value {
                    Value::Object(v) if op == Op::Add => object.extend(v.clone()),
                    Value::Object(v) => *object = v.clone(),
                    _ => return Err(ScimError::invalid_value(format!("{} values are objects", path.name))),
                },
                _ => return Err(no_target(format!("{} values are not objects", path.name))),
            }
        }
        // RFC 7644 §3.5.2.3: a filter that matches nothing fails with `noTarget`.
        return if hit { Ok(()) } else { Err(no_target(format!("no value of {} matches the filter", path.name))) };
    }
    if let Some(sub) = &path.sub {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        if let Some(object) = current.as_object_mut() {
            *entry(object, sub) = value;
        }
        return Ok(());
    }
    match (op, &mut *current, value) {
        // RFC 7644 §3.5.2.1: add to a multi-valued attribute appends (a value already there is
        // not added twice).
        (Op::Add, Value::Array(items), Value::Array(new)) => {
            for v in new {
                if !items.contains(&v) {
                    items.push(v);
                }
            }
        }
        (Op::Add, Value::Object(object), Value::Object(new)) => object.extend(new),
        (_, current, value) => *current = value,
    }
    Ok(())
}

fn remove(resource: &mut Map<String, Value>, target: &Target, core: &str) -> Result<(), ScimError> {
    let (path, filter, filter_sub) = target;
    check_mutable(path)?;
    let Some(holder) = holder(resource, path, core, false) else { return Ok(()) };
    let Some(key) = key_of(holder, &path.name) else { return Ok(()) };
    match (filter, &path.sub) {
        (Some(filter), _) => {
            if let Some(Value::Array(items)) = holder.get_mut(&key) {
                match filter_sub {
                    Some(sub) => {
                        for item in items.iter_mut().filter(|i| filter::matches(filter, i, core)) {
                            if let Some(o) = item.as_object_mut()
                                && let Some(k) = key_of(o, sub)
                            {
                                o.remove(&k);
                            }
                        }
                    }
                    None => items.retain(|i| !filter::matches(filter, i, core)),
                }
                if items.is_empty() {
                    holder.remove(&key);
                }
            }
        }
        (None, Some(sub)) => {
            if let Some(Value::Object(o)) = holder.get_mut(&key)
                && let Some(k) = key_of(o, sub)
            {
                o.remove(&k);
            }
        }
        (None, None) => {
            holder.remove(&key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn patch(resource: Value, ops: Value) -> Result<Value, ScimError> {
        let mut r = resource.as_object().unwrap().clone();
        apply(&mut r, &json!({"schemas": [PATCH_OP], "Operations": ops}), USER, &[ENT])?;
        Ok(Value::Object(r))
    }

    #[test]
    fn add_replace_remove_follow_rfc_7644_3_5_2() {
        let user = json!({"userName": "a", "emails": [{"value": "a@x", "type": "work"}], "active": true});
        let r = patch(user.clone(), json!([{"op": "replace", "value": {"active": false}}])).unwrap();
        assert_eq!(r["active"], json!(false));
        let r =
            patch(user.clone(), json!([{"op": "Add", "path": "emails", "value": [{"value": "b@x", "type": "home"}]}]))
                .unwrap();
        assert_eq!(r["emails"].as_array().unwrap().len(), 2);
        let r =
            patch(user.clone(), json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "c@x"}]))
                .unwrap();
        assert_eq!(r["emails"][0]["value"], json!("c@x"));
        let r = patch(user.clone(), json!([{"op": "remove", "path": "emails[type eq \"work\"]"}])).unwrap();
        assert!(r.get("emails").is_none());
        let r = patch(user.clone(), json!([{"op": "add", "path": "name.familyName", "value": "Durand"}])).unwrap();
        assert_eq!(r["name"]["familyName"], json!("Durand"));
        let r = patch(user.clone(), json!([{"op": "add", "path": format!("{ENT}:employeeNumber"), "value": "M1"}]))
            .unwrap();
        assert_eq!(r[ENT]["employeeNumber"], json!("M1"));
        let r = patch(user, json!([{"op": "replace", "value": {ENT: {"employeeNumber": "M2"}}}])).unwrap();
        assert_eq!(r[ENT]["employeeNumber"], json!("M2"));
        // A path naming the extension's URN is its whole object, not an attribute `User` of a
        // schema `…:2.0` (the URN's last colon is not a separator there).
        let r = patch(r, json!([{"op": "add", "path": ENT, "value": {"department": "Urgences"}}])).unwrap();
        assert_eq!(r[ENT], json!({"employeeNumber": "M2", "department": "Urgences"}));
        let r = patch(r, json!([{"op": "remove", "path": ENT}])).unwrap();
        assert!(r.get(ENT).is_none(), "{r}");
    }

    #[test]
    fn refusals_carry_the_rfc_scim_type() {
        let user = json!({"userName": "a", "emails": [{"value": "a@x", "type": "work"}]});
        let cases = [
            (json!([{"op": "remove"}]), "noTarget"),
            (json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "x"}]), "noTarget"),
            (json!([{"op": "replace", "path": "id", "value": "x"}]), "mutability"),
            (json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]), "invalidPath"),
            (json!([{"op": "move", "path": "a", "value": "x"}]), "invalidValue"),
            (json!([{"op": "add", "path": "a"}]), "invalidValue"),
        ];
        for (ops, scim_type) in cases {
            let e = patch(user.clone(), ops.clone()).map(|_| ()).expect_err(&ops.to_string());
            assert_eq!(e.scim_type, Some(scim_type), "{ops}: {}", e.detail);
        }
    }
}
