//! The one writer of CSV fields for every export (card orders, the audit search and the console's
//! audit export): RFC 4180 quoting, and the defusing of a value a spreadsheet would run as a formula.

/// One CSV field. RFC 4180 §2: "Fields containing line breaks (CRLF), double quotes, and commas
/// should be enclosed in double-quotes", and "a double-quote appearing inside a field must be
/// escaped by preceding it with another double quote". A value starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return is a formula to a spreadsheet (OWASP, "CSV Injection": names and
/// audit reasons come from HR and from callers): it is prefixed with `'`, shown as text.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\r', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// One record: its fields joined by commas, ended by CRLF (RFC 4180 §2).
pub fn record<S: AsRef<str>>(fields: impl IntoIterator<Item = S>) -> String {
    fields.into_iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(",") + "\r\n"
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Reads one field back as a spreadsheet would (RFC 4180 §2); the rest of the line after it.
    fn read_back(f: &str) -> (String, &str) {
        match f.strip_prefix('"') {
            None => {
                let end = f.find([',', '\r', '\n']).unwrap_or(f.len());
                (f[..end].to_owned(), &f[end..])
            }
            Some(mut rest) => {
                let mut value = String::new();
                loop {
                    let quote = rest.find('"').expect("a quoted field is closed");
                    value.push_str(&rest[..quote]);
                    rest = &rest[quote + 1..];
                    match rest.strip_prefix('"') {
                        Some(after) => {
                            value.push('"');
                            rest = after;
                        }
                        None => return (value, rest),
                    }
                }
            }
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("Lefèvre"), "Lefèvre");
        assert_eq!(field("Da Silva, Inès"), "\"Da Silva, Inès\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("\t=1+1"), "'\t=1+1");
        assert_eq!(field("\r=1+1"), "\"'\r=1+1\"");
        assert_eq!(field(""), "");
        assert_eq!(record(["a", "b,c", "@x"]), "a,\"b,c\",'@x\r\n");
    }

    proptest! {
        /// Any value, read back, is itself or itself behind a `'`; never a formula; and it takes
        /// exactly one field of the record.
        #[test]
        fn any_value_reads_back_whole_and_never_as_a_formula(s in "\\PC*|[=+\\-@\t\r\n,\"a ]{0,8}") {
            let written = field(&s);
            let (value, rest) = read_back(&written);
            prop_assert_eq!(rest, "", "one field: {:?}", written);
            let defused = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
            prop_assert_eq!(value.clone(), if defused { format!("'{s}") } else { s.clone() });
            prop_assert!(!value.starts_with(['=', '+', '-', '@', '\t', '\r']), "{:?}", value);
        }
    }
}
