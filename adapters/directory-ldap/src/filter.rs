//! Values put into LDAP search filters, escaped per RFC 4515 §3 so that a login name typed on
//! the login page can never change the filter it is searched with.

/// RFC 4515 §3: in an assertion value, "the characters '*', '(', ')', '\\' and NUL MUST be
/// escaped" as `\XX` (the octet in hex). Other non-printable ASCII is escaped too, so the filter
/// stays readable in logs; UTF-8 above ASCII is kept as is (§3 allows it).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '(' | ')' | '\\' | '\0') || (c.is_ascii_control()) {
            out.push_str(&format!("\\{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `(&(attr=value)extra)`: equality on one attribute, the value escaped, with an extra filter.
pub fn equality(attr: &str, value: &str, extra: &str) -> String {
    format!("(&({attr}={}){extra})", escape_value(value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The inverse of [`escape_value`], written from RFC 4515 §3's grammar (`\` HEX HEX).
    fn unescape(s: &str) -> String {
        let mut bytes = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                bytes.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("two hex digits"));
                i += 3;
            } else {
                bytes.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn the_rfc_4515_examples_escape_as_the_rfc_writes_them() {
        // RFC 4515 §4: (o=Parens R Us \28for all your parenthetical needs\29), (cn=*\2A*), (filename=C:\5cMyFile)
        assert_eq!(
            escape_value("Parens R Us (for all your parenthetical needs)"),
            "Parens R Us \\28for all your parenthetical needs\\29"
        );
        assert_eq!(escape_value("*"), "\\2a");
        assert_eq!(escape_value("C:\\MyFile"), "C:\\5cMyFile");
        assert_eq!(escape_value("Lu\u{10d}i\u{107}"), "Lu\u{10d}i\u{107}");
    }

    proptest! {
        #[test]
        fn an_escaped_value_is_one_equality_that_means_the_value(s in "\\PC{0,40}|[*()\\\\\0a-z=&|!]{0,20}") {
            let escaped = escape_value(&s);
            prop_assert!(!escaped.contains(['*', '(', ')', '\0']));
            prop_assert_eq!(unescape(&escaped), s.clone());
            // ldap3's own RFC 4515 parser reads one equality filter out of it, however hostile s is.
            let filter = format!("(uid={escaped})");
            prop_assert!(ldap3::parse_filter(&filter).is_ok(), "{}", filter);
            let with_extra = equality("uid", &s, "(objectClass=person)");
            prop_assert!(ldap3::parse_filter(&with_extra).is_ok(), "{}", with_extra);
        }
    }
}
