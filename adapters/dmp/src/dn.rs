//! A certificate's subject as an RFC 2253 / RFC 4514 string, the form the VIHF `Issuer` must take
//! (CI-SIS transport synchrone §4.3.1.5.1.1, quoted in the DMP kit: `ST=` not `S=`, `GN=` not `G=`).

use x509_parser::der_parser::asn1_rs::{Tag, ToDer};
use x509_parser::oid_registry::Oid;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Short names: RFC 4514 §3 (CN, L, ST, O, OU, C, STREET, DC, UID), plus the ones IGC-Santé
/// subjects use and the DMP kit writes (GN, SN, title, serialNumber, pseudonym, emailAddress).
/// Any other type is written as its dotted OID (RFC 4514 §2.3).
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("2.5.4.42", "GN"),
    ("2.5.4.4", "SN"),
    ("2.5.4.12", "title"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.65", "pseudonym"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

fn type_name(oid: &Oid) -> String {
    let dotted = oid.to_id_string();
    SHORT_NAMES.iter().find(|(o, _)| *o == dotted).map(|(_, n)| (*n).to_string()).unwrap_or(dotted)
}

/// RFC 4514 §2.4: escape `"` `+` `,` `;` `<` `>` `\` anywhere, a leading space or `#`, a trailing
/// space, and NUL as `\00`.
pub(crate) fn escape_value(v: &str, out: &mut String) {
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
}

fn value_string(atv: &AttributeTypeAndValue) -> Option<String> {
    let any = atv.attr_value();
    let data = any.data;
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            std::str::from_utf8(data).ok().map(str::to_string)
        }
        // T.61 in practice carries Latin-1 in certificates.
        Tag::TeletexString => Some(data.iter().map(|&b| b as char).collect()),
        Tag::BmpString if data.len() % 2 == 0 => {
            let units: Vec<u16> = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString if data.len() % 4 == 0 => data
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect::<Option<String>>(),
        _ => None,
    }
}

/// The DN in RFC 2253 form: RDNs in reverse order of the certificate (RFC 2253 §2.1), `,` between
/// RDNs, `+` between the attributes of a multi-valued RDN (§2.2), values escaped (RFC 4514 §2.4);
/// a value that is not a string is written `#` + hex of its DER encoding (§2.4).
pub fn rfc2253(name: &X509Name) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(&type_name(atv.attr_type()));
            out.push('=');
            match value_string(atv) {
                Some(s) => escape_value(&s, &mut out),
                None => {
                    out.push('#');
                    let der = atv.attr_value().to_der_vec().unwrap_or_default();
                    for b in der {
                        out.push_str(&format!("{b:02X}"));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_escapes() {
        let mut s = String::new();
        escape_value(" #a,b+c\"d\\e<f>g;h ", &mut s);
        assert_eq!(s, "\\ #a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\ ");
        let mut s = String::new();
        escape_value("#x", &mut s);
        assert_eq!(s, "\\#x");
        let mut s = String::new();
        escape_value("Rhône (69)", &mut s);
        assert_eq!(s, "Rhône (69)");
    }
}
