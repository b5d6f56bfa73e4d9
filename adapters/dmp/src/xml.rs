//! Writing XML that is already in its canonical form (W3C C14N 1.0 §2.3, inherited by
//! exclusive C14N): the escaping rules for text and attribute values, and the check that a value
//! can be carried by XML 1.0 at all.

use std::fmt;

/// A value that XML 1.0 cannot carry: a character outside the `Char` production (XML 1.0 §2.2),
/// e.g. a C0 control character other than tab, line feed and carriage return, or U+FFFE/U+FFFF.
/// No escaping helps (`&#x1;` is not well-formed either), so the value is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadChar {
    /// Which field carried it (e.g. `subject_name`).
    pub field: &'static str,
    /// The character.
    pub ch: char,
    /// Its index in characters (not bytes) within the value.
    pub at: usize,
}

impl std::error::Error for BadChar {}

impl fmt::Display for BadChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} contains U+{:04X} at character {}, which XML 1.0 cannot carry (XML 1.0 §2.2 Char): remove it",
            self.field, self.ch as u32, self.at
        )
    }
}

/// XML 1.0 §2.2: `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`.
/// (Surrogates cannot occur in a Rust `str`.)
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Refuses a value that XML 1.0 cannot carry.
pub(crate) fn check(field: &'static str, v: &str) -> Result<(), BadChar> {
    match v.chars().enumerate().find(|(_, c)| !is_xml_char(*c)) {
        Some((at, ch)) => Err(BadChar { field, ch, at }),
        None => Ok(()),
    }
}

/// Appends `v` as character data, escaped as C14N 1.0 §2.3 "Text Nodes" says: `&` `<` `>` as
/// entities and `#xD` as a character reference. Everything else is written as itself (UTF-8).
pub(crate) fn text(out: &mut String, field: &'static str, v: &str) -> Result<(), BadChar> {
    escape(out, field, v, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    })
}

/// Appends `v` as an attribute value (without the quotes), escaped as C14N 1.0 §2.3 "Attribute
/// Nodes" says: `&` `<` `"` as entities, `#x9` `#xA` `#xD` as character references (so that
/// attribute-value normalisation, XML 1.0 §3.3.3, gives back the value unchanged).
pub(crate) fn attr(out: &mut String, field: &'static str, v: &str) -> Result<(), BadChar> {
    escape(out, field, v, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'"' => Some("&quot;"),
        b'\t' => Some("&#x9;"),
        b'\n' => Some("&#xA;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    })
}

/// Checks `v`, then appends it with each ASCII byte that `rep` names replaced by its escape.
fn escape(
    out: &mut String,
    field: &'static str,
    v: &str,
    rep: impl Fn(u8) -> Option<&'static str>,
) -> Result<(), BadChar> {
    check(field, v)?;
    let mut last = 0;
    for (i, b) in v.bytes().enumerate() {
        if let Some(r) = rep(b) {
            out.push_str(&v[last..i]);
            out.push_str(r);
            last = i + 1;
        }
    }
    out.push_str(&v[last..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attribute_escaping_follow_c14n() {
        let mut t = String::new();
        text(&mut t, "t", "a&b<c>d\"e'\r\n\tf]]>").unwrap();
        assert_eq!(t, "a&amp;b&lt;c&gt;d\"e'&#xD;\n\tf]]&gt;");
        let mut a = String::new();
        attr(&mut a, "a", "a&b<c>d\"e'\r\n\tf").unwrap();
        assert_eq!(a, "a&amp;b&lt;c>d&quot;e'&#xD;&#xA;&#x9;f");
    }

    #[test]
    fn control_characters_are_refused_with_their_position() {
        let mut t = String::new();
        let e = text(&mut t, "subject_name", "Dr\u{1}X").unwrap_err();
        assert_eq!(e, BadChar { field: "subject_name", ch: '\u{1}', at: 2 });
        assert!(e.to_string().contains("U+0001"));
        assert!(check("x", "\u{FFFE}").is_err());
        assert!(check("x", "\u{0}").is_err());
        assert!(check("x", "é\u{10FFFF}\t").is_ok());
    }
}
