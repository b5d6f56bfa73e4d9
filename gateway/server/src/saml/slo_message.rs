//! The reader of the Single Logout messages an SP sends (saml-core §3.7.1 `<LogoutRequest>`,
//! §3.7.2 `<LogoutResponse>`): the few fields Vigie acts on, read by quick-xml with their
//! namespaces checked. It reads, it does not verify: a signed message is first reduced to what
//! its signature covers (saml/slo.rs). No samael here, so the fuzz crate, built without the
//! `saml` feature, reaches it (fuzz/fuzz_targets/saml_logout.rs).
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

pub const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// What a `<LogoutRequest>` says (saml-core §3.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogoutRequest {
    pub id: String,
    pub issue_instant: String,
    pub not_on_or_after: Option<String>,
    pub destination: Option<String>,
    pub issuer: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_indexes: Vec<String>,
    /// Whether a `<ds:Signature>` is a child of the root (HTTP-POST binding, §3.5.5.2).
    pub signed: bool,
}

/// What a `<LogoutResponse>` says (saml-core §3.7.2, a StatusResponseType §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogoutResponse {
    pub id: String,
    pub in_response_to: Option<String>,
    pub destination: Option<String>,
    pub issuer: String,
    /// The top-level `StatusCode`.
    pub status: String,
    pub signed: bool,
}

/// Either message, by its root element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(LogoutRequest),
    Response(LogoutResponse),
}

/// The XML Signature namespace (xmldsig-core1 §4).
pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Reads a LogoutRequest or LogoutResponse; the error says what is wrong, for the audit line.
pub fn read(xml: &str) -> Result<Message, String> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    // Open elements, as (namespace, local name): the path tells which text is which field.
    let mut path: Vec<(String, String)> = Vec::new();
    let mut root: Option<(String, Vec<(String, String)>)> = None;
    let mut fields = Fields::default();
    let mut done = false;
    loop {
        let (ns, ev) = reader.read_resolved_event().map_err(|e| format!("not well-formed XML: {e}"))?;
        let ns = match ns {
            ResolveResult::Bound(n) => n.as_ref().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return Err(format!("the prefix {:?} is not declared", p));
            }
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if done {
                    return Err("a second root element".into());
                }
                let local = e.local_name().as_ref().to_owned();
                let empty = matches!(ev, Event::Empty(_));
                if path.is_empty() {
                    if ns != PROTOCOL || !(local == "LogoutRequest" || local == "LogoutResponse") {
                        return Err(format!(
                            "the root element is {local:?}, not a samlp:LogoutRequest or LogoutResponse"
                        ));
                    }
                    root = Some((local.clone(), attributes(e)?));
                } else {
                    fields.start(&path, &ns, &local, e)?;
                }
                if empty {
                    done = path.is_empty();
                } else {
                    path.push((ns, local));
                }
            }
            Event::End(_) => {
                path.pop();
                done = path.is_empty();
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                fields.text(&path, &text);
            }
            Event::CData(c) => {
                let text = c.xml10_content();
                fields.text(&path, &text);
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .map(str::to_owned)
                        .ok_or("an entity other than the five predefined ones (no DTD)")?,
                    Err(e) => return Err(format!("a bad character reference: {e}")),
                };
                fields.text(&path, &c);
            }
            // saml-bindings §3.4.4.1 / §3.5.4: a DTD is never part of a SAML message.
            Event::DocType(_) => return Err("a DOCTYPE (refused: no DTD in SAML messages)".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    let Some((kind, attrs)) = root else { return Err("no root element".into()) };
    if !path.is_empty() {
        return Err("the document ends inside an element".into());
    }
    let attr = |name: &str| attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let id = attr("ID").filter(|v| !v.is_empty()).ok_or("no ID")?;
    if attr("Version").as_deref() != Some("2.0") {
        return Err("Version is not 2.0".into());
    }
    let issue_instant = attr("IssueInstant").ok_or("no IssueInstant")?;
    // saml-profiles §4.4.4.1 and §4.4.4.2: both messages carry the sender's Issuer.
    let issuer = fields.issuer.map(|i| i.trim().to_owned()).filter(|i| !i.is_empty()).ok_or("no Issuer")?;
    if kind == "LogoutRequest" {
        // §3.7.1: exactly one of BaseID, NameID, EncryptedID; Vigie issues NameIDs only.
        if fields.other_id {
            return Err("a BaseID or EncryptedID (Vigie issued a NameID)".into());
        }
        let name_id = fields.name_id.map(|n| n.trim().to_owned()).ok_or("no NameID")?;
        Ok(Message::Request(LogoutRequest {
            id,
            issue_instant,
            not_on_or_after: attr("NotOnOrAfter"),
            destination: attr("Destination"),
            issuer,
            name_id,
            name_id_format: fields.name_id_format,
            session_indexes: fields.session_indexes.into_iter().map(|s| s.trim().to_owned()).collect(),
            signed: fields.signed,
        }))
    } else {
        let status = fields.status.ok_or("no Status/StatusCode")?;
        Ok(Message::Response(LogoutResponse {
            id,
            in_response_to: attr("InResponseTo"),
            destination: attr("Destination"),
            issuer,
            status,
            signed: fields.signed,
        }))
    }
}

#[derive(Default)]
struct Fields {
    issuer: Option<String>,
    name_id: Option<String>,
    name_id_format: Option<String>,
    other_id: bool,
    session_indexes: Vec<String>,
    status: Option<String>,
    signed: bool,
}

impl Fields {
    /// An element below the root: only the root's own children (and the top StatusCode) count,
    /// so an Issuer or NameID nested in an Extensions or a Signature is never read as ours.
    fn start(&mut self, path: &[(String, String)], ns: &str, local: &str, e: &BytesStart) -> Result<(), String> {
        let at = |n: &str, l: &str| (ns, local) == (n, l);
        match path.len() {
            1 if at(ASSERTION, "Issuer") => {
                if self.issuer.is_some() {
                    return Err("two Issuers".into());
                }
                self.issuer = Some(String::new());
            }
            1 if at(ASSERTION, "NameID") => {
                if self.name_id.is_some() {
                    return Err("two NameIDs".into());
                }
                self.name_id = Some(String::new());
                self.name_id_format = attributes(e)?.into_iter().find(|(k, _)| k == "Format").map(|(_, v)| v);
            }
            1 if at(ASSERTION, "BaseID") || at(ASSERTION, "EncryptedID") => self.other_id = true,
            1 if at(PROTOCOL, "SessionIndex") => self.session_indexes.push(String::new()),
            1 if at(DSIG, "Signature") => self.signed = true,
            2 if at(PROTOCOL, "StatusCode") && path[1] == (PROTOCOL.to_owned(), "Status".to_owned()) => {
                let value = attributes(e)?.into_iter().find(|(k, _)| k == "Value").map(|(_, v)| v);
                self.status = Some(value.ok_or("a StatusCode without Value")?);
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, path: &[(String, String)], text: &str) {
        if path.len() != 2 {
            return;
        }
        let (ns, local) = (&path[1].0, path[1].1.as_str());
        let target = match (ns.as_str(), local) {
            (ASSERTION, "Issuer") => self.issuer.as_mut(),
            (ASSERTION, "NameID") => self.name_id.as_mut(),
            (PROTOCOL, "SessionIndex") => self.session_indexes.last_mut(),
            _ => None,
        };
        if let Some(t) = target {
            t.push_str(text);
        }
    }
}

/// The unprefixed attributes of an element, values normalised (XML 1.0 §3.3.3).
fn attributes(e: &BytesStart) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("a bad attribute: {e}"))?;
        if a.key.prefix().is_some() {
            continue;
        }
        let key = a.key.local_name().as_ref().to_owned();
        let value =
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| format!("attribute {key}: {e}"))?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(format!("attribute {key} twice"));
        }
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }

    fn request(id: &str, issuer: &str, name_id: &str, indexes: &[String]) -> String {
        let idx: String =
            indexes.iter().map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", esc(i))).collect();
        format!(
            r#"<?xml version="1.0"?><samlp:LogoutRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{}" Version="2.0" IssueInstant="2026-12-05T10:00:00Z" NotOnOrAfter="2026-12-05T10:05:00Z"><saml:Issuer>{}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{}</saml:NameID>{idx}</samlp:LogoutRequest>"#,
            esc(id),
            esc(issuer),
            esc(name_id)
        )
    }

    #[test]
    fn a_pysaml2_style_request_is_read_with_its_fields() {
        let xml = request("_abc", "https://lab.example/saml", "n&1", &["sid-1".into()]);
        let Ok(Message::Request(r)) = read(&xml) else { panic!("{xml}") };
        assert_eq!(r.id, "_abc");
        assert_eq!(r.issuer, "https://lab.example/saml");
        assert_eq!(r.name_id, "n&1");
        assert_eq!(r.session_indexes, vec!["sid-1".to_owned()]);
        assert_eq!(r.not_on_or_after.as_deref(), Some("2026-12-05T10:05:00Z"));
        assert!(!r.signed);
    }

    #[test]
    fn a_response_gives_its_top_status_not_the_nested_one() {
        let xml = format!(
            r#"<ns0:LogoutResponse xmlns:ns0="{PROTOCOL}" xmlns:ns1="{ASSERTION}" ID="r1" InResponseTo="_q" Version="2.0" IssueInstant="2026-12-05T10:00:00Z"><ns1:Issuer>sp</ns1:Issuer><ns0:Status><ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></ns0:StatusCode></ns0:Status></ns0:LogoutResponse>"#
        );
        let Ok(Message::Response(r)) = read(&xml) else { panic!("{xml}") };
        assert_eq!(r.status, "urn:oasis:names:tc:SAML:2.0:status:Responder");
        assert_eq!(r.in_response_to.as_deref(), Some("_q"));
        assert_eq!(r.destination, None);
        let sent = xml.replace(r#"Version="2.0""#, r#"Version="2.0" Destination="https://vigie/saml/slo""#);
        let Ok(Message::Response(r)) = read(&sent) else { panic!("{sent}") };
        assert_eq!(r.destination.as_deref(), Some("https://vigie/saml/slo"));
    }

    #[test]
    fn wrong_namespaces_nested_names_and_dtds_are_refused() {
        // The Issuer must be the assertion namespace's, at the root's level.
        let other_ns =
            request("a", "sp", "n", &[]).replace(&format!(r#"xmlns:saml="{ASSERTION}""#), r#"xmlns:saml="urn:x""#);
        assert_eq!(read(&other_ns), Err("no Issuer".into()));
        let nested = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="a" Version="2.0" IssueInstant="x"><samlp:Extensions><saml:Issuer>evil</saml:Issuer><saml:NameID>n</saml:NameID></samlp:Extensions></samlp:LogoutRequest>"#
        );
        assert_eq!(read(&nested), Err("no Issuer".into()));
        let dtd = format!("<!DOCTYPE x [<!ENTITY e \"sp\">]>{}", request("a", "sp", "n", &[]));
        assert!(read(&dtd).is_err_and(|e| e.contains("DOCTYPE")));
        let authn = format!(r#"<samlp:AuthnRequest xmlns:samlp="{PROTOCOL}" ID="a" Version="2.0"/>"#);
        assert!(read(&authn).is_err_and(|e| e.contains("AuthnRequest")));
        let encrypted = request("a", "sp", "n", &[]).replace("<saml:NameID", "<saml:EncryptedID/><saml:NameID");
        assert!(read(&encrypted).is_err_and(|e| e.contains("EncryptedID")));
    }

    proptest! {
        #[test]
        fn what_an_sp_writes_reads_back(
            id in "[A-Za-z_][A-Za-z0-9_.-]{0,40}",
            issuer in "\\PC{1,60}",
            name_id in "\\PC{1,60}",
            indexes in proptest::collection::vec("[A-Za-z0-9_-]{1,40}", 0..4),
        ) {
            prop_assume!(!issuer.trim().is_empty() && !name_id.trim().is_empty());
            let xml = request(&id, &issuer, &name_id, &indexes);
            let read = read(&xml);
            let Ok(Message::Request(r)) = read else { panic!("{read:?} from {xml}") };
            prop_assert_eq!(r.id, id);
            prop_assert_eq!(r.issuer, issuer.trim());
            prop_assert_eq!(r.name_id, name_id.trim());
            prop_assert_eq!(r.session_indexes, indexes);
        }

        #[test]
        fn any_input_is_read_or_refused_without_panicking(input in "\\PC{0,600}") {
            let _ = read(&input);
            let wrapped = format!(r#"<samlp:LogoutRequest xmlns:samlp="{PROTOCOL}" ID="a" Version="2.0" IssueInstant="x">{input}</samlp:LogoutRequest>"#);
            if let Ok(Message::Request(r)) = read(&wrapped) {
                // Whatever the content, a request read has an Issuer and a NameID.
                prop_assert!(!r.issuer.is_empty());
            }
        }
    }
}
