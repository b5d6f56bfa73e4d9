//! Reading a VIHF (a SAML 2.0 assertion, ../shared/reference/dmp-vihf-cps.md §1) without trusting
//! it: its elements in document order, its attributes, its instants, and the `xmlsec1` check of
//! its signature against the establishment's seal CA.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use quick_xml::events::Event;

/// One element: the local names from the root to it, its attributes (local names), its text.
#[derive(Clone, Debug, Default)]
pub struct El {
    pub path: Vec<String>,
    pub attrs: BTreeMap<String, String>,
    pub text: String,
}

impl El {
    pub fn name(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or_default()
    }
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.get(k).map(String::as_str)
    }
}

/// Every element of `xml` in document order (a DOCTYPE is refused: a VIHF has none).
pub fn elements(xml: &str) -> anyhow::Result<Vec<El>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut out, mut open): (Vec<El>, Vec<usize>) = (Vec::new(), Vec::new());
    loop {
        let ev =
            reader.read_event().with_context(|| format!("the VIHF is not XML (at {})", reader.error_position()))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut path = open.last().map(|&i| out[i].path.clone()).unwrap_or_default();
                path.push(e.local_name().as_ref().to_string());
                let mut attrs = BTreeMap::new();
                for a in e.attributes() {
                    let a = a.context("an attribute of the VIHF is malformed")?;
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .context("an attribute value of the VIHF is malformed")?;
                    attrs.insert(a.key.local_name().as_ref().to_string(), v.into_owned());
                }
                out.push(El { path, attrs, text: String::new() });
                if matches!(ev, Event::Start(_)) {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .context("the VIHF uses an undeclared entity")?
                        .to_owned(),
                };
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&c);
                }
            }
            Event::DocType(_) => bail!("the VIHF carries a DOCTYPE"),
            Event::Eof => break,
            _ => {}
        }
    }
    ensure!(open.is_empty() && !out.is_empty(), "the VIHF is not a complete XML document");
    Ok(out)
}

/// The `saml:Attribute`s of the statement: name → each value's text, or for a structured value
/// (an HL7 `Role`, `PurposeOfUse`) its `code`.
pub fn attributes(els: &[El]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<(String, usize)> = None;
    for e in els {
        if e.name() == "Attribute" && e.path.len() >= 2 && e.path[e.path.len() - 2] == "AttributeStatement" {
            let name = e.attr("Name").unwrap_or_default().to_owned();
            out.entry(name.clone()).or_default();
            current = Some((name, e.path.len()));
            continue;
        }
        let Some((name, depth)) = &current else { continue };
        if e.path.len() <= *depth {
            current = None;
            continue;
        }
        if e.path.len() == depth + 1 && e.name() == "AttributeValue" {
            let text = e.text.trim();
            if !text.is_empty() {
                out.entry(name.clone()).or_default().push(text.to_owned());
            }
        } else if e.path.len() == depth + 2
            && let Some(code) = e.attr("code")
        {
            out.entry(name.clone()).or_default().push(code.to_owned());
        }
    }
    out
}

/// Seconds since the epoch of an `xs:dateTime` in UTC (`2026-12-05T18:55:01Z`, fractions allowed),
/// as SAML 2.0 Core §1.3.3 requires the instants to be written.
pub fn instant(s: &str) -> anyhow::Result<i64> {
    let bad = || format!("{s:?} is not a UTC xs:dateTime (SAML Core §1.3.3)");
    let s = s.trim();
    ensure!(s.ends_with('Z') && s.len() >= 20, "{}", bad());
    let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).with_context(bad);
    let (y, m, d, hh, mm, ss) = (n(0, 4)?, n(5, 7)?, n(8, 10)?, n(11, 13)?, n(14, 16)?, n(17, 19)?);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Whether `xmlsec1 --verify` accepts `xml`'s enveloped signature with `ca_pem` as the only trust
/// anchor (the assertion's `ID` attribute as the reference's target), and what it said.
pub fn xmlsec1_verifies(xml: &str, ca_pem: &str) -> anyhow::Result<(bool, String)> {
    let found = std::process::Command::new("xmlsec1").arg("--version").output().is_ok_and(|o| o.status.success());
    ensure!(found, "the xmlsec1 binary is missing: install it (Debian: apt-get install xmlsec1) and run again");
    let dir =
        std::env::temp_dir().join(format!("vigie-conformance-vihf-{}-{}", std::process::id(), crate::agent::random(6)));
    std::fs::create_dir_all(&dir).context("a temporary directory for xmlsec1")?;
    let (doc, ca): (PathBuf, PathBuf) = (dir.join("vihf.xml"), dir.join("seal-ca.pem"));
    std::fs::write(&doc, xml)?;
    std::fs::write(&ca, ca_pem)?;
    let out = std::process::Command::new("xmlsec1")
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(&ca)
        .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
        .arg(&doc)
        .output()
        .context("running xmlsec1");
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let said = String::from_utf8_lossy(&out.stderr).trim().chars().take(400).collect::<String>();
    Ok((out.status.success() && said.contains("OK"), said))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?><saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-12-05T18:55:01Z"><saml2:Issuer>CN=x</saml2:Issuer><saml2:Subject><saml2:NameID>810100000011</saml2:NameID></saml2:Subject><saml2:AttributeStatement><saml2:Attribute Name="Ressource_URN"><saml2:AttributeValue>urn:dmp</saml2:AttributeValue></saml2:Attribute><saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml2:AttributeValue><Role xmlns="urn:hl7-org:v3" code="10"/></saml2:AttributeValue><saml2:AttributeValue><Role xmlns="urn:hl7-org:v3" code="SM26"/></saml2:AttributeValue></saml2:Attribute><saml2:Attribute Name="Secteur_Activite"><saml2:AttributeValue>SA07^1.2&amp;3</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement></saml2:Assertion>"#;

    #[test]
    fn attributes_read_text_and_structured_values() {
        let els = elements(XML).unwrap();
        assert_eq!(els[0].name(), "Assertion");
        assert_eq!(els[0].attr("ID"), Some("_a"));
        let a = attributes(&els);
        assert_eq!(a["Ressource_URN"], ["urn:dmp"]);
        assert_eq!(a["urn:oasis:names:tc:xacml:2.0:subject:role"], ["10", "SM26"]);
        assert_eq!(a["Secteur_Activite"], ["SA07^1.2&3"]);
    }

    #[test]
    fn instants_are_utc_seconds() {
        assert_eq!(instant("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(instant("2026-12-05T18:55:01.250Z").unwrap(), 1_796_496_901);
        assert!(instant("2026-12-05T18:55:01+01:00").is_err());
        assert!(instant("yesterday").is_err());
    }

    #[test]
    fn a_doctype_or_a_truncated_document_is_refused() {
        assert!(elements("<!DOCTYPE a><a/>").is_err());
        assert!(elements("<a><b></b>").is_err());
    }

    proptest::proptest! {
        /// Garbage from a target: read or refused with a message naming the VIHF, never a panic.
        #[test]
        fn any_text_is_read_or_refused_naming_the_vihf(text in "\\PC{0,300}") {
            if let Err(e) = elements(&text) {
                proptest::prop_assert!(e.to_string().contains("VIHF"), "{}", e);
            }
        }

        /// The real assertion cut anywhere (a truncated token) is refused, never half-read.
        #[test]
        fn a_vihf_cut_short_is_refused(cut in 1usize..XML.len()) {
            let head = XML.get(..cut);
            if let Some(head) = head.filter(|h| !h.ends_with('>')) {
                proptest::prop_assert!(elements(head).is_err());
            }
        }

        /// Any text is a UTC instant or refused with the SAML Core section, never a panic.
        #[test]
        fn any_text_is_an_instant_or_refused(text in "\\PC{0,40}") {
            if let Err(e) = instant(&text) {
                proptest::prop_assert!(e.to_string().contains("SAML Core §1.3.3"), "{}", e);
            }
        }
    }
}
