//! Putting the VIHF into a DMP SOAP 1.2 call: a `wsse:Security` header as the first child of the
//! envelope's `Header`, in a plain `application/soap+xml` body or in the root part of an MTOM
//! (`multipart/related`) body. Positions are found with a real XML tokenizer (quick-xml); the
//! bytes around the insertion point are copied unchanged.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// SOAP 1.2 Part 1 §5: the envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Security 1.0 SOAP Message Security §5: the `Security` header namespace.
pub const WSSE_NS: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSSE11_NS: &str = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd";

/// Why a SOAP call could not carry the VIHF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the content type {0:?} cannot be read: {1}")]
    ContentType(String, &'static str),
    #[error(
        "the content type {0:?} is not SOAP 1.2: send application/soap+xml, or multipart/related (MTOM) with the envelope as root part"
    )]
    UnsupportedContentType(String),
    #[error("the multipart/related content type has no boundary parameter (RFC 2046 §5.1.1)")]
    NoBoundary,
    #[error("the multipart body is malformed: {0}")]
    Multipart(String),
    #[error("the root part is sent with Content-Transfer-Encoding {0:?}: the envelope must be 8bit or binary")]
    RootEncoding(String),
    #[error("the envelope is not UTF-8 ({0}): the DMP takes UTF-8")]
    Encoding(String),
    #[error("the envelope is not well-formed XML at byte {at}: {reason}")]
    Xml { at: u64, reason: String },
    #[error("the envelope has a document type declaration, which SOAP 1.2 Part 1 §5 forbids")]
    Doctype,
    #[error("this is a SOAP 1.1 envelope ({SOAP11_NS}): the DMP speaks SOAP 1.2 ({SOAP12_NS})")]
    Soap11,
    #[error("the root element is {0}, not a SOAP 1.2 Envelope ({SOAP12_NS})")]
    NotSoap12(String),
    #[error("the envelope's child is {0}: SOAP 1.2 Part 1 §5.1 allows an optional Header, then Body")]
    Structure(String),
    #[error("the envelope has no Body (SOAP 1.2 Part 1 §5.1)")]
    NoBody,
    #[error("the envelope already carries a wsse:Security header: send it without one, Vigie adds the VIHF")]
    AlreadySecured,
    #[error("the envelope has two wsa:Action headers: send one (WS-Addressing 1.0 SOAP Binding §2.4)")]
    TwoActions,
}

/// WS-Addressing 1.0 Core §2.1: the namespace of the `Action` header (SOAP Binding §2.4).
const WSA_NS: &str = "http://www.w3.org/2005/08/addressing";

/// The assigning authorities of the INS (ANS): INS-NIR, INS-NIA, and the twins the DMP's test
/// platforms use (reference §1: `…4.10` in the official AIR example).
pub const INS_OIDS: [&str; 4] =
    ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"];

/// A DMP SOAP 1.2 call read once: where its envelope is (the whole body, or the root part of an
/// MTOM body), where the `wsse:Security` header goes, the patients its Body names and its
/// WS-Addressing action. One parse for all of them, so that the patient check, the insertion
/// point and the action relayed cannot disagree on what the call says.
pub struct SoapCall<'a> {
    body: &'a [u8],
    /// The envelope's bytes within `body`.
    envelope: (usize, usize),
    insertion: Insertion,
    patients: Vec<String>,
    action: Option<String>,
}

impl<'a> SoapCall<'a> {
    /// Reads a call; `content_type` is the request's `Content-Type` (for `multipart/related`, the
    /// root part is the `start` parameter's Content-ID, else the first part: RFC 2387 §3.2), and
    /// `oids` the assigning authorities under which an identifier names a patient. Refuses what
    /// cannot carry a VIHF, and XML whose text a reader could take two ways (see [`EnvelopeError`]).
    pub fn read(body: &'a [u8], content_type: &str, oids: &[&str]) -> Result<Self, EnvelopeError> {
        let (mime, params) = parse_media_type(content_type)?;
        let envelope = match mime.as_str() {
            "application/soap+xml" => (0, body.len()),
            "multipart/related" => root_part(body, &params)?,
            "text/xml" => return Err(EnvelopeError::Soap11),
            _ => return Err(EnvelopeError::UnsupportedContentType(content_type.to_string())),
        };
        let oids: Vec<String> = oids.iter().filter_map(|o| oid_arcs(o)).collect();
        let read = read_envelope(&body[envelope.0..envelope.1], &oids)?;
        Ok(SoapCall { body, envelope, insertion: read.insertion, patients: read.patients, action: read.action })
    }

    /// The patient identifiers the Body names under the authorities given to [`SoapCall::read`],
    /// each once, in document order: HL7 v3 instance identifiers (an element whose `root` is one
    /// of them: its `extension`, TD0.2's `patientIdentifier`) and HL7 v2 CX values
    /// `ID^^^&OID&ISO` in text or attributes (an ebXML slot `$XDSDocumentEntryPatientId`, an
    /// `ExternalIdentifier`). Text is read as XPath 1.0 §5 string-values are: character data,
    /// CDATA sections and references joined, comments and processing instructions left out.
    pub fn patients(&self) -> &[String] {
        &self.patients
    }

    /// The text of the `wsa:Action` header block, if the call has one.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// The call with `<wsse:Security>ASSERTION</wsse:Security>` as the first child of the
    /// envelope's `Header` (created before `Body` if absent); every other byte unchanged (MTOM
    /// attachments included).
    pub fn secure(&self, assertion_xml: &str) -> Vec<u8> {
        let (es, ee) = self.envelope;
        let env = &self.body[es..ee];
        let sec = format!("<wsse:Security xmlns:wsse=\"{WSSE_NS}\">{assertion_xml}</wsse:Security>");
        let mut out = Vec::with_capacity(self.body.len() + sec.len() + 64);
        out.extend_from_slice(&self.body[..es]);
        match &self.insertion {
            Insertion::AfterHeaderStart(at) => {
                out.extend_from_slice(&env[..*at]);
                out.extend_from_slice(sec.as_bytes());
                out.extend_from_slice(&env[*at..]);
            }
            Insertion::EmptyHeader { start, end, qname } => {
                // `<s:Header a="b"/>` → `<s:Header a="b">` + header + `</s:Header>`.
                let tag = &env[*start..*end];
                let open = tag.strip_suffix(b"/>").unwrap_or(tag);
                out.extend_from_slice(&env[..*start]);
                out.extend_from_slice(open);
                out.push(b'>');
                out.extend_from_slice(sec.as_bytes());
                out.extend_from_slice(format!("</{qname}>").as_bytes());
                out.extend_from_slice(&env[*end..]);
            }
            Insertion::BeforeBody { at, qname_prefix } => {
                let q = qname_prefix.as_ref().map_or_else(|| "Header".to_string(), |p| format!("{p}:Header"));
                out.extend_from_slice(&env[..*at]);
                out.extend_from_slice(format!("<{q}>").as_bytes());
                out.extend_from_slice(sec.as_bytes());
                out.extend_from_slice(format!("</{q}>").as_bytes());
                out.extend_from_slice(&env[*at..]);
            }
        }
        out.extend_from_slice(&self.body[ee..]);
        out
    }
}

/// Adds `<wsse:Security>ASSERTION</wsse:Security>` to a SOAP 1.2 call: [`SoapCall::read`], then
/// [`SoapCall::secure`].
pub fn insert_security(body: &[u8], content_type: &str, assertion_xml: &str) -> Result<Vec<u8>, EnvelopeError> {
    Ok(SoapCall::read(body, content_type, &[])?.secure(assertion_xml))
}

/// The patients a SOAP 1.2 call names under `oids`: [`SoapCall::read`], then
/// [`SoapCall::patients`]; refused as [`insert_security`] refuses.
pub fn patients_named(body: &[u8], content_type: &str, oids: &[&str]) -> Result<Vec<String>, EnvelopeError> {
    Ok(SoapCall::read(body, content_type, oids)?.patients)
}

/// Stands in the Body's text for a tag: it ends a CX identifier (two elements' texts are two
/// values), and cannot be in XML text (XML 1.0 §2.2: U+0000 is not a `Char`).
const TAG: u8 = 0;
/// The longest CX value read back from its assigning authority; anything longer is reported
/// cut (so, not the header's INS: refused), which keeps the scan linear.
const MAX_CX: usize = 256;

/// An OID as its arcs in canonical form: `urn:oid:` (RFC 3061) and surrounding XML whitespace
/// taken off, leading zeros dropped (`1.2.250.1.213.1.4.010` is `…4.10` to a lenient reader).
/// `None` if it is not an OID.
fn oid_arcs(s: &str) -> Option<String> {
    let s = s.trim_matches(is_xml_space);
    let s = match s.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("urn:oid:") => &s[8..],
        _ => s,
    };
    let mut out = String::with_capacity(s.len());
    for arc in s.split('.') {
        if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let arc = arc.trim_start_matches('0');
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(if arc.is_empty() { "0" } else { arc });
    }
    Some(out)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Every HL7 CX value in `text` whose assigning authority (after `&`, or right after `^` for a
/// lenient reader) is one of `oids`, with no regard for the authority's type (`ISO`, `iso`…):
/// its ID, the value up to the first `^`. The value starts after a space, a quote, a bracket, a
/// comma or a [`TAG`]: a value split by a tag or prefixed by anything else is reported as read
/// (so it is not the header's INS, and the call is refused).
fn cx_identifiers(text: &[u8], oids: &[String], found: &mut Vec<String>) {
    let ends_value = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\'' | b'"' | b'(' | b')' | b',' | TAG);
    for (i, &b) in text.iter().enumerate() {
        if b != b'&' && b != b'^' {
            continue;
        }
        // The authority's universal id, read two ways, since readers differ on what follows it:
        // with tags skipped (an element's string-value) and up to the first tag (the value's own
        // element). Either reading that starts with a listed OID names a patient, whatever text
        // follows the OID: a lenient reader would stop there too.
        let after = &text[i + 1..text.len().min(i + 1 + 2 * MAX_CX)];
        let joined: Vec<u8> = after.iter().copied().filter(|&c| c != TAG).take(MAX_CX).collect();
        let own = after.split(|&c| c == TAG).next().unwrap_or_default();
        let named = [joined.as_slice(), own].into_iter().any(|a| oid_prefix(a).is_some_and(|a| oids.contains(&a)));
        if !named {
            continue;
        }
        let floor = i.saturating_sub(MAX_CX);
        let start = text[floor..i].iter().rposition(|&c| ends_value(c)).map_or(floor, |p| floor + p + 1);
        let value = &text[start..i];
        let id = value.split(|&c| c == b'^').next().unwrap_or_default();
        push_once(found, &String::from_utf8_lossy(id));
    }
}

/// The OID an authority starts with, in [`oid_arcs`]' normal form: after XML space and an
/// optional `urn:oid:`, the longest run of digits and dots (a trailing dot left out).
fn oid_prefix(authority: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(authority)
        .unwrap_or_else(|e| std::str::from_utf8(&authority[..e.valid_up_to()]).unwrap_or_default());
    let s = s.trim_start_matches(is_xml_space);
    let s = match s.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("urn:oid:") => &s[8..],
        _ => s,
    };
    let end = s.bytes().position(|b| !(b.is_ascii_digit() || b == b'.')).unwrap_or(s.len());
    oid_arcs(s[..end].trim_end_matches('.'))
}

fn push_once(found: &mut Vec<String>, id: &str) {
    if !found.iter().any(|f| f == id) {
        found.push(id.to_string());
    }
}

/// `type/subtype *( OWS ";" OWS name=value )`, value a token or a quoted-string (RFC 9110 §5.6.6).
/// Type and parameter names are lower-cased (they are case-insensitive).
pub fn parse_media_type(ct: &str) -> Result<(String, Vec<(String, String)>), EnvelopeError> {
    let err = |why| EnvelopeError::ContentType(ct.to_string(), why);
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let (mime, mut rest) = ct.split_once(';').map_or((ct, ""), |(m, r)| (m, r));
    let mime = mime.trim().to_ascii_lowercase();
    match mime.split_once('/') {
        Some((t, s)) if !t.is_empty() && !s.is_empty() && t.chars().all(is_token) && s.chars().all(is_token) => {}
        _ => return Err(err("no type/subtype")),
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=').ok_or_else(|| err("a parameter has no '='"))?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(is_token) {
            return Err(err("a parameter name is not a token"));
        }
        let after = after.trim_start_matches([' ', '\t']);
        let value;
        if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next().ok_or_else(|| err("a quoted value ends with '\\'"))?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or_else(|| err("a quoted value is not closed"))?;
            value = v;
            rest = &q[end..];
            let rest_trim = rest.trim_start_matches([' ', '\t']);
            if !(rest_trim.is_empty() || rest_trim.starts_with(';')) {
                return Err(err("text after a quoted value"));
            }
        } else {
            let (v, r) = after.split_once(';').map_or((after, ""), |(v, r)| (v, r));
            let v = v.trim_end_matches([' ', '\t']);
            if v.is_empty() || !v.chars().all(is_token) {
                return Err(err("a parameter value is neither a token nor a quoted string"));
            }
            value = v.to_string();
            rest = r;
        }
        params.push((name, value));
    }
    Ok((mime, params))
}

fn xml_err(reader: &NsReader<&[u8]>, e: impl std::fmt::Display) -> EnvelopeError {
    EnvelopeError::Xml { at: reader.error_position(), reason: e.to_string() }
}

fn is_ns(r: &ResolveResult, ns: &str) -> bool {
    matches!(r, ResolveResult::Bound(n) if n.as_ref() == ns)
}

/// Where the Security header goes in a SOAP 1.2 envelope.
enum Insertion {
    /// Right after the `Header` start tag (ends at this byte).
    AfterHeaderStart(usize),
    /// `<prefix:Header/>` spanning these bytes: written as a start tag, the header, an end tag.
    EmptyHeader { start: usize, end: usize, qname: String },
    /// No Header: a new one before `Body`, with the Envelope's prefix (bound where the new element
    /// goes, which Body's prefix may not be: Body can declare it itself).
    BeforeBody { at: usize, qname_prefix: Option<String> },
}

/// What one reading of an envelope finds.
struct Read {
    insertion: Insertion,
    patients: Vec<String>,
    action: Option<String>,
}

/// Reads a SOAP 1.2 envelope once (SOAP 1.2 Part 1 §5: Envelope, optional Header, Body): where
/// the Security header goes, the patients the Body names under `oids` (canonical, [`oid_arcs`]),
/// and the `wsa:Action` header's text.
fn read_envelope(env: &[u8], oids: &[String]) -> Result<Read, EnvelopeError> {
    if let Err(e) = std::str::from_utf8(env) {
        return Err(EnvelopeError::Encoding(e.to_string()));
    }
    // quick-xml skips a byte-order mark and counts positions after it: parse after it ourselves,
    // and add it back to every position.
    let bom = if env.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut reader = NsReader::from_reader(&env[bom..]);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut root_done = false;
    let mut insertion = None;
    let mut seen_body = false;
    let mut in_header = false;
    let mut in_body = false;
    let mut envelope_prefix = None;
    // The Body's text (string-value), a TAG for each tag; the action's text while inside it.
    let mut body_text: Vec<u8> = Vec::new();
    let mut patients = Vec::new();
    let (mut action, mut in_action) = (None::<String>, false);
    loop {
        let start = bom + reader.buffer_position() as usize;
        let (soap, soap11, wsse, wsa, ev) = match reader.read_resolved_event() {
            Ok((res, ev)) => (
                is_ns(&res, SOAP12_NS),
                is_ns(&res, SOAP11_NS),
                is_ns(&res, WSSE_NS) || is_ns(&res, WSSE11_NS),
                is_ns(&res, WSA_NS),
                ev,
            ),
            Err(e) => {
                let reason = e.to_string();
                return Err(EnvelopeError::Xml { at: reader.error_position(), reason });
            }
        };
        let end = bom + reader.buffer_position() as usize;
        let text = match &ev {
            Event::Text(t) => Some(t.xml10_content()),
            Event::CData(c) => Some(c.xml10_content()),
            Event::GeneralRef(r) => Some(std::borrow::Cow::Owned(resolve_reference(r, start)?.to_string())),
            _ => None,
        };
        if let Some(text) = &text {
            if depth == 0 && (!matches!(ev, Event::Text(_)) || !text.chars().all(is_xml_space)) {
                return Err(EnvelopeError::Xml { at: start as u64, reason: "content outside the root element".into() });
            }
            if in_body {
                body_text.extend_from_slice(text.as_bytes());
            }
            if in_action && let Some(a) = action.as_mut() {
                a.push_str(text);
            }
        }
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = e.local_name().as_ref().to_string();
                let name = e.name().as_ref().to_string();
                if root_done {
                    return Err(EnvelopeError::Xml { at: start as u64, reason: "a second root element".into() });
                }
                match depth {
                    0 => {
                        if local != "Envelope" || !soap {
                            return Err(if soap11 { EnvelopeError::Soap11 } else { EnvelopeError::NotSoap12(name) });
                        }
                        if empty {
                            return Err(EnvelopeError::NoBody);
                        }
                        envelope_prefix = e.name().prefix().map(|p| p.as_ref().to_string());
                    }
                    1 => {
                        if soap && local == "Header" && insertion.is_none() && !seen_body {
                            insertion = Some(if empty {
                                Insertion::EmptyHeader { start, end, qname: name }
                            } else {
                                in_header = true;
                                Insertion::AfterHeaderStart(end)
                            });
                        } else if soap && local == "Body" && !seen_body {
                            seen_body = true;
                            in_body = !empty;
                            if insertion.is_none() {
                                let prefix = envelope_prefix.clone();
                                insertion = Some(Insertion::BeforeBody { at: start, qname_prefix: prefix });
                            }
                        } else {
                            return Err(EnvelopeError::Structure(name));
                        }
                    }
                    2 if in_header && wsse && local == "Security" => return Err(EnvelopeError::AlreadySecured),
                    // WS-Addressing SOAP Binding §2.4: the action is the `wsa:Action` header block.
                    // A second one would let what is audited differ from what the DMP runs.
                    2 if in_header && wsa && local == "Action" => {
                        if action.is_some() {
                            return Err(EnvelopeError::TwoActions);
                        }
                        action = Some(String::new());
                        in_action = !empty;
                    }
                    _ if in_body => {
                        body_text.push(TAG);
                        instance_identifiers(e, oids, &mut patients, start)?;
                        if empty {
                            body_text.push(TAG);
                        }
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                } else if depth == 0 {
                    root_done = true;
                }
            }
            Event::End(_) => {
                depth -= 1; // check_end_names: quick-xml refuses an end tag without its start
                match depth {
                    0 => root_done = true,
                    1 => (in_header, in_body) = (false, false),
                    2 => in_action = false,
                    _ => {}
                }
                if in_body {
                    body_text.push(TAG);
                }
            }
            Event::DocType(_) => return Err(EnvelopeError::Doctype),
            Event::Decl(ref d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| xml_err(&reader, e))?;
                    if !enc.eq_ignore_ascii_case("utf-8") {
                        return Err(EnvelopeError::Encoding(format!("declared {}", enc)));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_done {
        return Err(if depth == 0 {
            EnvelopeError::Xml { at: env.len() as u64, reason: "no root element".into() }
        } else {
            EnvelopeError::Xml { at: env.len() as u64, reason: "the document ends inside an element".into() }
        });
    }
    if !seen_body {
        return Err(EnvelopeError::NoBody);
    }
    let insertion = insertion.ok_or(EnvelopeError::NoBody)?;
    cx_identifiers(&body_text, oids, &mut patients);
    let action = action.map(|a| a.trim_matches(is_xml_space).to_owned());
    Ok(Read { insertion, patients, action })
}

/// The character a reference stands for. Without a DTD only the five predefined entities exist
/// (XML 1.0 §4.1, WFC: Entity Declared; §4.6), and a character reference must name a `Char`
/// (WFC: Legal Character): anything else is not XML, and a reader skipping it would see
/// other text than one refusing it.
fn resolve_reference(r: &quick_xml::events::BytesRef, at: usize) -> Result<char, EnvelopeError> {
    let bad = |reason: String| EnvelopeError::Xml { at: at as u64, reason };
    let c = match r.resolve_char_ref() {
        Ok(Some(c)) => c,
        Ok(None) => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
            .and_then(|s| s.chars().next())
            .ok_or_else(|| bad(format!("&{}; is not declared (no DTD: only &amp; &lt; &gt; &apos; &quot;)", &**r)))?,
        Err(e) => return Err(bad(e.to_string())),
    };
    if !crate::xml::is_xml_char(c) {
        return Err(bad(format!("&{}; names U+{:04X}, which XML 1.0 cannot carry", &**r, c as u32)));
    }
    Ok(c)
}

/// The patients an element of the Body names in its attributes (values normalised as XML 1.0
/// §3.3.3 says, references resolved): an HL7 v3 instance identifier (every `extension` when
/// any `root` is one of `oids`, whatever the attributes' prefixes), and CX values in any of them.
fn instance_identifiers(
    e: &quick_xml::events::BytesStart,
    oids: &[String],
    found: &mut Vec<String>,
    at: usize,
) -> Result<(), EnvelopeError> {
    let bad = |reason: String| EnvelopeError::Xml { at: at as u64, reason };
    let (mut patient_root, mut extensions) = (false, Vec::new());
    for a in e.attributes() {
        let a = a.map_err(|e| bad(e.to_string()))?;
        let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| bad(e.to_string()))?;
        if let Some(c) = value.chars().find(|&c| !crate::xml::is_xml_char(c)) {
            return Err(bad(format!("an attribute value holds U+{:04X}, which XML 1.0 cannot carry", c as u32)));
        }
        match a.key.local_name().as_ref() {
            "root" => patient_root |= oid_arcs(&value).is_some_and(|r| oids.contains(&r)),
            "extension" => extensions.push(value.trim_matches(is_xml_space).to_owned()),
            _ => {}
        }
        cx_identifiers(value.as_bytes(), oids, found);
    }
    if patient_root {
        for id in extensions {
            push_once(found, &id);
        }
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// One part of a multipart body: where its headers and its content are.
struct Part {
    headers: (usize, usize),
    content: (usize, usize),
}

/// RFC 2046 §5.1.1: delimiter = CRLF "--" boundary (the first may start the body); after it,
/// optional whitespace and CRLF, or "--" for the close delimiter.
fn split_parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, EnvelopeError> {
    let bad = |s: &str| EnvelopeError::Multipart(s.to_string());
    let dash = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    let mut pos = if body.starts_with(dash.as_bytes()) {
        0
    } else {
        find(body, delim.as_bytes(), 0).ok_or_else(|| bad("no delimiter line with the boundary"))? + 2
    };
    let mut parts = Vec::new();
    loop {
        let mut p = pos + dash.len();
        if body[p..].starts_with(b"--") {
            break; // close delimiter: the epilogue is kept as is
        }
        while p < body.len() && (body[p] == b' ' || body[p] == b'\t') {
            p += 1;
        }
        if !body[p..].starts_with(b"\r\n") {
            return Err(bad("a delimiter line does not end with CRLF"));
        }
        let headers_start = p + 2;
        let (headers_end, content_start) = if body[headers_start..].starts_with(b"\r\n") {
            (headers_start, headers_start + 2)
        } else {
            let e = find(body, b"\r\n\r\n", headers_start).ok_or_else(|| bad("part headers do not end"))?;
            (e, e + 4)
        };
        let next = find(body, delim.as_bytes(), content_start.saturating_sub(2))
            .filter(|&n| n >= content_start.saturating_sub(2))
            .ok_or_else(|| bad("a part is not closed by a delimiter"))?;
        let content_end = next.max(content_start);
        parts.push(Part { headers: (headers_start, headers_end), content: (content_start, content_end) });
        pos = next + 2;
    }
    if parts.is_empty() {
        return Err(bad("no part"));
    }
    Ok(parts)
}

/// Header fields of a part (RFC 5322 §2.2, unfolded), names lower-cased.
fn part_headers(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

fn strip_angles(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<').and_then(|s| s.strip_suffix('>')).unwrap_or(s)
}

/// Where the envelope of a `multipart/related` (MTOM) body is: the root part's content, checked
/// to be a SOAP 1.2 envelope sent 8bit or binary.
fn root_part(body: &[u8], params: &[(String, String)]) -> Result<(usize, usize), EnvelopeError> {
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let boundary = get("boundary").filter(|b| !b.is_empty() && b.len() <= 70).ok_or(EnvelopeError::NoBoundary)?;
    let parts = split_parts(body, boundary)?;
    // RFC 2387 §3.2: `start` names the root part by Content-ID; without it, the first part.
    let root = match get("start") {
        Some(start) => {
            let want = strip_angles(start);
            parts
                .iter()
                .find(|p| {
                    part_headers(&body[p.headers.0..p.headers.1])
                        .iter()
                        .any(|(n, v)| n == "content-id" && strip_angles(v) == want)
                })
                .ok_or_else(|| {
                    EnvelopeError::Multipart(format!("no part has the Content-ID {start:?} of the start parameter"))
                })?
        }
        None => &parts[0],
    };
    let headers = part_headers(&body[root.headers.0..root.headers.1]);
    if let Some((_, cte)) = headers.iter().find(|(n, _)| n == "content-transfer-encoding") {
        let c = cte.to_ascii_lowercase();
        if !matches!(c.as_str(), "8bit" | "binary" | "7bit") {
            return Err(EnvelopeError::RootEncoding(cte.clone()));
        }
    }
    if let Some((_, ct)) = headers.iter().find(|(n, _)| n == "content-type") {
        let (m, p) = parse_media_type(ct)?;
        let inner = p.iter().find(|(k, _)| k == "type").map(|(_, v)| v.to_ascii_lowercase());
        let soap12 = m == "application/soap+xml"
            || (m == "application/xop+xml" && inner.as_deref().is_none_or(|t| t == "application/soap+xml"));
        if !soap12 {
            return Err(if inner.as_deref() == Some("text/xml") || m == "text/xml" {
                EnvelopeError::Soap11
            } else {
                EnvelopeError::UnsupportedContentType(ct.clone())
            });
        }
    }
    Ok(root.content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_parameters() {
        let (m, p) = parse_media_type(
            "Multipart/Related; boundary=\"uuid:1;x\"; type=\"application/xop+xml\"; start=\"<root@x>\";start-info=\"application/soap+xml\"",
        )
        .unwrap();
        assert_eq!(m, "multipart/related");
        assert_eq!(p[0], ("boundary".into(), "uuid:1;x".into()));
        assert_eq!(p[2], ("start".into(), "<root@x>".into()));
        let (_, p) = parse_media_type("application/soap+xml;charset=UTF-8;action=\"urn:a:b\"").unwrap();
        assert_eq!(p, vec![("charset".into(), "UTF-8".into()), ("action".into(), "urn:a:b".into())]);
        assert!(parse_media_type("soap").is_err());
        assert!(parse_media_type("a/b; x=\"open").is_err());
        assert!(parse_media_type("a/b; x").is_err());
    }
}
