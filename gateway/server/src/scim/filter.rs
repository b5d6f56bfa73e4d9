//! SCIM filters (RFC 7644 §3.4.2.2): the parser of the `filter` query parameter and of PATCH
//! value paths — bytes from outside, hence precise errors saying where — and their evaluation on
//! a resource's JSON. Over 600 lines with its tests: the parser and the property tests that hold
//! it to its canonical text belong together.
use std::fmt;

use serde_json::Value;

/// Longest filter accepted, in bytes (a provisioning client's filters are short).
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of parentheses, `not` and value paths: the parser recurses on them.
const MAX_DEPTH: usize = 32;

/// `attrPath = [URI ":"] ATTRNAME *1subAttr` (RFC 7644 §3.4.2.2, §3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI, when the path names one (an extension's attributes need it).
    pub uri: Option<String>,
    /// The attribute's name.
    pub name: String,
    /// A sub-attribute (`name.familyName`).
    pub sub: Option<String>,
}

/// The comparison operators of RFC 7644 §3.4.2.2, table 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `attrPath op compValue`.
    Compare(AttrPath, CompareOp, Value),
    /// `attrPath pr`.
    Present(AttrPath),
    /// `filter and filter`.
    And(Box<Filter>, Box<Filter>),
    /// `filter or filter`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `attrPath[filter]`: some value of a multi-valued attribute matches.
    ValuePath(AttrPath, Box<Filter>),
}

/// The number a JSON number's text means. serde_json (without its `float_roundtrip` feature)
/// parses a float by a fast path that can land one unit off: `111111111111111119155` became a
/// float whose shortest text parses back to its neighbour, so the canonical text of a filter no
/// longer meant the filter. Integers stay as serde_json read them; floats are read again by the
/// standard library, which rounds correctly (the grammar was already checked by serde_json).
fn exact_number(n: serde_json::Number, text: &str) -> serde_json::Number {
    if n.is_f64()
        && let Some(exact) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return exact;
    }
    n
}

/// Why a filter is refused: the place (a character offset from 0) and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub at: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.at, self.message)
    }
}

const OPS: [(&str, CompareOp); 9] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("co", CompareOp::Co),
    ("sw", CompareOp::Sw),
    ("ew", CompareOp::Ew),
    ("gt", CompareOp::Gt),
    ("ge", CompareOp::Ge),
    ("lt", CompareOp::Lt),
    ("le", CompareOp::Le),
];

impl CompareOp {
    fn as_str(self) -> &'static str {
        OPS.iter().find(|(_, op)| *op == self).map_or("eq", |(s, _)| s)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A filter inside parentheses when `wrap`.
struct Wrapped<'a>(&'a Filter, bool);

impl fmt::Display for Wrapped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 { write!(f, "({})", self.0) } else { write!(f, "{}", self.0) }
    }
}

/// The canonical text of a filter: parentheses only where precedence (`and` over `or`) and
/// left-to-right grouping need them, so that parsing it gives the same filter and its text nests
/// no deeper than the text it was parsed from.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::And(a, b) => {
                let (wa, wb) = (matches!(**a, Filter::Or(..)), matches!(**b, Filter::Or(..) | Filter::And(..)));
                write!(f, "{} and {}", Wrapped(a, wa), Wrapped(b, wb))
            }
            Filter::Or(a, b) => write!(f, "{} or {}", a, Wrapped(b, matches!(**b, Filter::Or(..)))),
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::ValuePath(p, a) => write!(f, "{p}[{a}]"),
        }
    }
}

/// Parses a filter (RFC 7644 §3.4.2.2); `and` binds tighter than `or`, `not` tighter than both.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(FilterError { at: 0, message: format!("the filter is longer than {MAX_FILTER_BYTES} bytes") });
    }
    let mut p = Parser { chars: text.chars().collect(), pos: 0, depth: 0 };
    let filter = p.or()?;
    p.blanks();
    if p.pos < p.chars.len() {
        return Err(p.error(format!("unexpected {:?}: expected `and`, `or` or the end of the filter", p.rest_word())));
    }
    Ok(filter)
}

/// Parses a PATCH `path` (RFC 7644 §3.5.2): `attrPath`, `attrPath[filter]` or
/// `attrPath[filter].subAttr`; the sub-attribute after a filter is returned apart.
pub fn parse_path(text: &str) -> Result<(AttrPath, Option<Filter>, Option<String>), FilterError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(FilterError { at: 0, message: format!("the path is longer than {MAX_FILTER_BYTES} bytes") });
    }
    let mut p = Parser { chars: text.chars().collect(), pos: 0, depth: 0 };
    p.blanks();
    let path = p.attr_path()?;
    let mut filter = None;
    let mut sub = None;
    if p.peek() == Some('[') {
        p.pos += 1;
        p.depth += 1;
        filter = Some(p.or()?);
        p.blanks();
        p.expect(']')?;
        if p.peek() == Some('.') {
            p.pos += 1;
            sub = Some(p.name("a sub-attribute name")?);
        }
    }
    p.blanks();
    if p.pos < p.chars.len() {
        return Err(p.error(format!("unexpected {:?} after the path", p.rest_word())));
    }
    Ok((path, filter, sub))
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn error(&self, message: String) -> FilterError {
        FilterError { at: self.pos, message }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn blanks(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    /// The next word, cut short, for error messages.
    fn rest_word(&self) -> String {
        let word: String = self.chars[self.pos..].iter().take_while(|c| **c != ' ').take(20).collect();
        if word.is_empty() { self.chars[self.pos..].iter().take(1).collect() } else { word }
    }

    fn expect(&mut self, c: char) -> Result<(), FilterError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.peek().map_or_else(|| "the end of the filter".to_owned(), |f| format!("{f:?}"));
            Err(self.error(format!("expected {c:?}, found {found}")))
        }
    }

    /// Whether a keyword (case-insensitive, RFC 7644 §3.4.2.2) followed by a blank or `(` comes next.
    fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let matches = end <= self.chars.len()
            && self.chars[self.pos..end].iter().collect::<String>().eq_ignore_ascii_case(word)
            && matches!(self.chars.get(end), Some(' ') | Some('('));
        if matches {
            self.pos = end;
        }
        matches
    }

    fn deeper(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("the filter nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        loop {
            let save = self.pos;
            self.blanks();
            if self.pos > save && self.keyword("or") {
                self.blanks();
                let right = self.and()?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        loop {
            let save = self.pos;
            self.blanks();
            if self.pos > save && self.keyword("and") {
                self.blanks();
                let right = self.unary()?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        self.blanks();
        if self.keyword("not") {
            self.blanks();
            self.expect('(')?;
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.blanks();
            self.expect(')')?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some('(') {
            self.pos += 1;
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.blanks();
            self.expect(')')?;
            return Ok(inner);
        }
        let path = self.attr_path()?;
        if self.peek() == Some('[') {
            self.pos += 1;
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.blanks();
            self.expect(']')?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        if self.peek() != Some(' ') {
            let found = self.peek().map_or_else(|| "the end of the filter".to_owned(), |f| format!("{f:?}"));
            return Err(self.error(format!("expected a blank then an operator after {path}, found {found}")));
        }
        self.blanks();
        let at = self.pos;
        let word: String = self.chars[self.pos..].iter().take_while(|c| c.is_ascii_alphabetic()).collect();
        let lower = word.to_ascii_lowercase();
        if lower == "pr" {
            self.pos += 2;
            return Ok(Filter::Present(path));
        }
        let Some((_, op)) = OPS.iter().find(|(s, _)| *s == lower) else {
            return Err(FilterError {
                at,
                message: format!(
                    "unknown operator {:?}: expected one of eq, ne, co, sw, ew, gt, ge, lt, le, pr",
                    self.rest_word()
                ),
            });
        };
        self.pos += 2;
        if self.peek() != Some(' ') {
            return Err(self.error(format!("expected a blank then a value after `{lower}`")));
        }
        self.blanks();
        let value = self.value()?;
        Ok(Filter::Compare(path, *op, value))
    }

    /// `compValue = false / null / true / number / string` (JSON, RFC 7159).
    fn value(&mut self) -> Result<Value, FilterError> {
        let start = self.pos;
        match self.peek() {
            Some('"') => {
                self.pos += 1;
                let mut escaped = false;
                loop {
                    match self.peek() {
                        None => {
                            return Err(FilterError {
                                at: start,
                                message: "the string starting here has no closing quote".into(),
                            });
                        }
                        Some('\\') if !escaped => escaped = true,
                        Some('"') if !escaped => break,
                        Some(_) => escaped = false,
                    }
                    self.pos += 1;
                }
                self.pos += 1;
                let text: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str::<Value>(&text)
                    .map_err(|_| FilterError { at: start, message: "the string is not a valid JSON string".into() })
            }
            Some(_) => {
                let text: String =
                    self.chars[self.pos..].iter().take_while(|c| !matches!(c, ' ' | ')' | ']')).collect();
                let value = match text.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => match serde_json::from_str::<Value>(&text) {
                        Ok(Value::Number(n)) => Value::Number(exact_number(n, &text)),
                        _ => {
                            return Err(self.error(format!(
                                "expected a value (a \"quoted string\", a number, true, false or null), found {:?}",
                                text.chars().take(20).collect::<String>()
                            )));
                        }
                    },
                };
                self.pos += text.chars().count();
                Ok(value)
            }
            None => Err(self.error("expected a value, found the end of the filter".into())),
        }
    }

    /// `ATTRNAME = ALPHA *(nameChar)`.
    fn name(&mut self, what: &str) -> Result<String, FilterError> {
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return Err(self.error(format!("expected {what}, starting with a letter"))),
        }
        let name: String =
            self.chars[self.pos..].iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
        self.pos += name.len();
        Ok(name)
    }

    fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let token: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_' | '$'))
            .collect();
        if token.is_empty() {
            return Err(self.error(format!("expected an attribute name, found {:?}", self.rest_word())));
        }
        // A URI ends at the last colon (`urn:…:2.0:User:employeeNumber`): what follows is the name.
        let (uri, rest, rest_at) = match token.rfind(':') {
            Some(i) => (Some(token[..i].to_owned()), &token[i + 1..], start + i + 1),
            None => (None, token.as_str(), start),
        };
        let mut sub_parser = Parser { chars: rest.chars().collect(), pos: 0, depth: 0 };
        let at = |p: &Parser, m: String| FilterError { at: rest_at + p.pos, message: m };
        let name = sub_parser.name("an attribute name").map_err(|e| at(&sub_parser, e.message))?;
        let mut sub = None;
        if sub_parser.peek() == Some('.') {
            sub_parser.pos += 1;
            sub = Some(sub_parser.name("a sub-attribute name").map_err(|e| at(&sub_parser, e.message))?);
        }
        if sub_parser.pos < sub_parser.chars.len() {
            return Err(at(&sub_parser, format!("unexpected {:?} in the attribute path", sub_parser.rest_word())));
        }
        if uri.as_deref().is_some_and(|u| u.is_empty() || !u.chars().next().is_some_and(|c| c.is_ascii_alphabetic())) {
            return Err(FilterError {
                at: start,
                message: "the schema URI before the attribute name is malformed".into(),
            });
        }
        self.pos = start + token.chars().count();
        Ok(AttrPath { uri, name, sub })
    }
}

/// Attributes compared exactly (RFC 7643 §3.1 `id`, `externalId`: caseExact); every other
/// string compares ignoring case.
pub(super) fn case_exact(name: &str) -> bool {
    name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("externalId")
}

/// The member of an object named `name`, whatever its case (RFC 7643 §2.1: names are
/// case-insensitive).
pub fn member<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The values a path names in `resource`: an extension's attributes are under its URI; a
/// multi-valued attribute gives each of its values.
fn values<'a>(resource: &'a Value, path: &AttrPath, core_schema: &str) -> Vec<&'a Value> {
    let holder = match &path.uri {
        Some(uri) if !uri.eq_ignore_ascii_case(core_schema) => match member(resource, uri) {
            Some(h) => h,
            None => return Vec::new(),
        },
        _ => resource,
    };
    let Some(top) = member(holder, &path.name) else { return Vec::new() };
    let items: Vec<&Value> = match top {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    match &path.sub {
        Some(sub) => items.into_iter().filter_map(|v| member(v, sub)).collect(),
        // A filter on a multi-valued complex attribute compares its `value` (RFC 7644 §3.4.2.2).
        None => items.into_iter().map(|v| if v.is_object() { member(v, "value").unwrap_or(v) } else { v }).collect(),
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(v: &Value, op: CompareOp, want: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering = match (v, want) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if exact { (a.clone(), b.clone()) } else { (a.to_lowercase(), b.to_lowercase()) };
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ => Some(a.cmp(&b)),
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ordering) {
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        _ => false,
    }
}

/// Whether `resource` (its JSON, core schema `core_schema`) matches the filter.
pub fn matches(filter: &Filter, resource: &Value, core_schema: &str) -> bool {
    match filter {
        Filter::Compare(path, CompareOp::Ne, want) => {
            !matches(&Filter::Compare(path.clone(), CompareOp::Eq, want.clone()), resource, core_schema)
        }
        Filter::Compare(path, op, want) => {
            let exact = case_exact(path.sub.as_deref().unwrap_or(&path.name));
            values(resource, path, core_schema).into_iter().any(|v| compare(v, *op, want, exact))
        }
        Filter::Present(path) => values(resource, path, core_schema).into_iter().any(present),
        Filter::And(a, b) => matches(a, resource, core_schema) && matches(b, resource, core_schema),
        Filter::Or(a, b) => matches(a, resource, core_schema) || matches(b, resource, core_schema),
        Filter::Not(a) => !matches(a, resource, core_schema),
        Filter::ValuePath(path, inner) => {
            let flat = AttrPath { sub: None, ..path.clone() };
            let holder = match &flat.uri {
                Some(uri) if !uri.eq_ignore_ascii_case(core_schema) => member(resource, uri),
                _ => Some(resource),
            };
            match holder.and_then(|h| member(h, &flat.name)) {
                Some(Value::Array(items)) => items.iter().any(|item| matches(inner, item, core_schema)),
                Some(item @ Value::Object(_)) => matches(inner, item, core_schema),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_large_number_prints_as_text_that_parses_back_to_the_same_filter() {
        // Found by the `scim_filter` fuzz target: serde_json's fast float path was one unit off.
        for text in ["rType eq 111111111111111119155", "a gt 1.7976931348623157e308", "a lt 0.30000000000000004"] {
            let f = super::parse(text).unwrap();
            assert_eq!(super::parse(&f.to_string()), Ok(f.clone()), "{text} printed as {f}");
        }
    }

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 7644 §3.4.2.2, the example filters.
        for text in [
            r#"userName Eq "john""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            let f = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parse(&f.to_string()).as_ref(), Ok(&f), "{text}");
        }
    }

    #[test]
    fn a_long_flat_filter_prints_back_flat_within_the_nesting_limit() {
        // Printed with a pair of parentheses per `and`, 40 terms nested 39 deep and the printed
        // text was refused ("nests deeper than 32 levels").
        let text = vec!["title pr"; 40].join(" and ") + " or " + &vec!["userName pr"; 40].join(" and ");
        let f = parse(&text).unwrap();
        assert_eq!(f.to_string(), text);
        assert_eq!(parse(&f.to_string()), Ok(f));
        let nested = parse(r#"a pr and (b pr or c pr) and not (d pr or e pr)"#).unwrap();
        assert_eq!(nested.to_string(), "a pr and (b pr or c pr) and not (d pr or e pr)");
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse(r#"a eq 1 or b eq 2 and c eq 3"#).unwrap();
        let Filter::Or(_, right) = f else { panic!("{f:?}") };
        assert!(matches!(*right, Filter::And(..)));
    }

    #[test]
    fn an_extension_attribute_splits_at_the_last_colon() {
        let f = parse(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "M1""#).unwrap();
        let Filter::Compare(p, CompareOp::Eq, v) = f else { panic!() };
        assert_eq!(p.uri.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!((p.name.as_str(), v), ("employeeNumber", json!("M1")));
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases = [
            ("userName", 8, "expected a blank then an operator after userName"),
            ("userName xx \"a\"", 9, "unknown operator \"xx\""),
            ("userName eq", 11, "expected a blank then a value"),
            ("userName eq \"abc", 12, "no closing quote"),
            ("userName eq abc", 12, "expected a value"),
            ("(userName pr", 12, "expected ')'"),
            ("userName pr junk", 12, "unexpected \"junk\""),
            ("9abc pr", 0, "expected an attribute name, starting with a letter"),
            ("", 0, "expected an attribute name"),
            ("name.9 pr", 5, "expected a sub-attribute name"),
        ];
        for (text, at, says) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.at, at, "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {e}");
        }
        let deep = format!("{}a pr{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().message.contains("nests deeper"));
        assert!(parse(&"a".repeat(MAX_FILTER_BYTES + 1)).unwrap_err().message.contains("longer than"));
    }

    #[test]
    fn evaluation_follows_the_rfc_semantics() {
        let user = json!({
            "schemas": [USER], "id": "Ab1", "userName": "JDupont", "active": true,
            "name": {"familyName": "Dupont"},
            "emails": [{"value": "j.dupont@chu.example", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "M042"},
        });
        let yes = [
            r#"userName eq "jdupont""#,
            r#"userName sw "JD""#,
            r#"name.familyName eq "DUPONT""#,
            r#"emails.value ew "chu.example""#,
            r#"emails co "dupont""#,
            r#"emails[type eq "work" and value sw "j."]"#,
            "active eq true",
            "name pr",
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "M042""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "JDupont""#,
            r#"userName eq "x" or active eq true"#,
            r#"not (userName eq "x")"#,
            r#"id eq "Ab1""#,
        ];
        for text in yes {
            assert!(matches(&parse(text).unwrap(), &user, USER), "{text}");
        }
        let no = [
            r#"userName eq "jdupon""#,
            "active eq false",
            "title pr",
            r#"id eq "ab1""#,
            r#"emails[type eq "home"]"#,
            r#"userName eq "JDupont" and active eq false"#,
            r#"userName ne "jdupont""#,
            r#"name.familyName gt "E""#,
        ];
        for text in no {
            assert!(!matches(&parse(text).unwrap(), &user, USER), "{text}");
        }
    }

    fn arb_path() -> impl Strategy<Value = AttrPath> {
        let name = "[a-zA-Z][a-zA-Z0-9_-]{0,8}";
        let uri = prop::option::of(prop::sample::select(vec![
            "urn:ietf:params:scim:schemas:core:2.0:User".to_owned(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned(),
        ]));
        // `not` followed by a blank is the operator (RFC 7644 §3.4.2.2), never an attribute.
        (uri, name, prop::option::of(name))
            .prop_filter("not an attribute", |(_, name, _)| !name.eq_ignore_ascii_case("not"))
            .prop_map(|(uri, name, sub)| AttrPath { uri, name, sub })
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<i32>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let op = prop::sample::select(OPS.iter().map(|(_, op)| *op).collect::<Vec<_>>());
        let leaf = prop_oneof![
            (arb_path(), op, arb_value()).prop_map(|(p, op, v)| Filter::Compare(p, op, v)),
            arb_path().prop_map(Filter::Present),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.clone().prop_map(|a| Filter::Not(Box::new(a))),
                (arb_path(), inner).prop_map(|(p, a)| Filter::ValuePath(AttrPath { sub: None, ..p }, Box::new(a))),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_printed_filter_parses_back_to_itself(f in arb_filter()) {
            let text = f.to_string();
            prop_assert_eq!(parse(&text), Ok(f), "{}", text);
        }

        #[test]
        fn any_input_is_parsed_or_refused_without_panicking(s in any::<String>()) {
            if let Err(e) = parse(&s) {
                prop_assert!(e.at <= s.chars().count());
            }
            let _ = parse_path(&s);
        }

        #[test]
        fn filter_like_input_is_parsed_or_refused_with_a_place(s in r#"[a-zA-Z:.\[\]() "0-9]{0,40}"#) {
            match parse(&s) {
                Ok(f) => prop_assert_eq!(parse(&f.to_string()), Ok(f)),
                Err(e) => prop_assert!(e.at <= s.chars().count(), "{}", e),
            }
        }
    }
}
