//! The VIHF in DMP SOAP calls: where the `wsse:Security` header goes, what is refused, and MTOM
//! bodies whose attachments pass through byte for byte.
mod common;

use common::*;
use proptest::prelude::*;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use vigie_dmp::{EnvelopeError, INS_OIDS, WSSE_NS, insert_security, patients_named};

const A: &str = "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a\"></saml2:Assertion>";
const S12: &str = "application/soap+xml; charset=UTF-8; action=\"urn:ihe:iti:2007:RegistryStoredQuery\"";

fn sec() -> String {
    format!("<wsse:Security xmlns:wsse=\"{WSSE_NS}\">{A}</wsse:Security>")
}

/// The namespaces and local names of Envelope's children and of Header's first child, read back
/// with quick-xml.
fn shape(doc: &[u8]) -> (Vec<String>, Option<(String, String)>) {
    let mut r = NsReader::from_reader(doc);
    let mut depth = 0;
    let mut children = Vec::new();
    let mut header_first = None;
    let mut in_header = false;
    loop {
        let (res, ev) = r.read_resolved_event().unwrap();
        let ns = match res {
            ResolveResult::Bound(n) => n.as_ref().to_string(),
            _ => String::new(),
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name().as_ref().to_string();
                if depth == 1 {
                    children.push(local.clone());
                    in_header = local == "Header";
                }
                if depth == 2 && in_header && header_first.is_none() {
                    header_first = Some((ns, local));
                }
                if !matches!(ev, Event::Empty(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    (children, header_first)
}

#[test]
fn a_second_wsa_action_is_refused() {
    let two = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"><s:Header><wsa:Action>urn:a</wsa:Action><wsa:Action>urn:b</wsa:Action></s:Header><s:Body/></s:Envelope>";
    assert_eq!(insert_security(two.as_bytes(), "application/soap+xml", A), Err(EnvelopeError::TwoActions));
}

#[test]
fn the_security_header_is_the_first_child_of_the_existing_header() {
    let env = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header><a:To xmlns:a=\"http://www.w3.org/2005/08/addressing\">x</a:To></s:Header><s:Body><q/></s:Body></s:Envelope>";
    let out = insert_security(env.as_bytes(), S12, A).unwrap();
    let (children, first) = shape(&out);
    assert_eq!(children, ["Header", "Body"]);
    assert_eq!(first, Some((WSSE_NS.to_string(), "Security".to_string())));
    assert_eq!(String::from_utf8(out).unwrap().replacen(&sec(), "", 1), env);
}

#[test]
fn a_header_is_created_before_the_body_with_the_envelope_prefix_or_none() {
    let env = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<E:Envelope xmlns:E=\"http://www.w3.org/2003/05/soap-envelope\">\n <E:Body/>\n</E:Envelope>";
    let out = String::from_utf8(insert_security(env.as_bytes(), "application/soap+xml", A).unwrap()).unwrap();
    assert_eq!(out.replacen(&format!("<E:Header>{}</E:Header>", sec()), "", 1), env);
    assert_eq!(shape(out.as_bytes()).0, ["Header", "Body"]);

    let env = "<Envelope xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><Body></Body></Envelope>";
    let out = String::from_utf8(insert_security(env.as_bytes(), "application/soap+xml", A).unwrap()).unwrap();
    assert_eq!(out.replacen(&format!("<Header>{}</Header>", sec()), "", 1), env);
    assert_eq!(shape(out.as_bytes()).1.unwrap().1, "Security");
}

#[test]
fn a_created_header_uses_the_envelope_prefix_bound_where_it_goes() {
    // Body declares its own prefix: a Header with Body's prefix would be unbound before it.
    let env = "<Envelope xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><b:Body xmlns:b=\"http://www.w3.org/2003/05/soap-envelope\"/></Envelope>";
    let out = insert_security(env.as_bytes(), "application/soap+xml", A).unwrap();
    assert_eq!(shape(&out).1, Some((WSSE_NS.to_string(), "Security".to_string())));
    assert_eq!(insert_security(&out, "application/soap+xml", A), Err(EnvelopeError::AlreadySecured));
}

#[test]
fn a_byte_order_mark_does_not_shift_the_insertion_point() {
    // Found by the soap_envelope fuzz target: positions were counted after the BOM.
    for env in [
        "\u{FEFF}<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/><s:Body/></s:Envelope>",
        "\u{FEFF}<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header></s:Header><s:Body/></s:Envelope>",
        "\u{FEFF}<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>",
    ] {
        let out = insert_security(env.as_bytes(), "application/soap+xml", A).unwrap();
        assert_eq!(shape(&out[3..]).1, Some((WSSE_NS.to_string(), "Security".to_string())), "{env}");
        assert_eq!(insert_security(&out, "application/soap+xml", A), Err(EnvelopeError::AlreadySecured));
    }
}

#[test]
fn an_empty_header_element_is_opened() {
    let env =
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header a=\"1\" /><s:Body/></s:Envelope>";
    let out = String::from_utf8(insert_security(env.as_bytes(), "application/soap+xml", A).unwrap()).unwrap();
    assert_eq!(
        out,
        format!(
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header a=\"1\" >{}</s:Header><s:Body/></s:Envelope>",
            sec()
        )
    );
}

/// A SOAP 1.2 envelope (prefix `s`) with this header and body markup.
fn soap12(h: &str, b: &str) -> String {
    format!("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">{h}{b}</s:Envelope>")
}

#[test]
fn what_cannot_carry_a_vihf_is_refused_with_the_reason() {
    let e = |body: &str, ct: &str| insert_security(body.as_bytes(), ct, A).unwrap_err();
    let secured = soap12(&format!("<s:Header>{}</s:Header>", sec()), "<s:Body/>");
    assert_eq!(e(&secured, "application/soap+xml"), EnvelopeError::AlreadySecured);
    let s11 = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
    assert_eq!(e(s11, "application/soap+xml"), EnvelopeError::Soap11);
    assert_eq!(e(&soap12("", "<s:Body/>"), "text/xml"), EnvelopeError::Soap11);
    assert!(matches!(e("<a/>", "application/soap+xml"), EnvelopeError::NotSoap12(n) if n == "a"));
    assert!(matches!(e(&soap12("", "<s:Body/>"), "application/json"), EnvelopeError::UnsupportedContentType(_)));
    assert_eq!(e(&soap12("<s:Header/>", ""), "application/soap+xml"), EnvelopeError::NoBody);
    assert!(matches!(e(&soap12("<x/>", "<s:Body/>"), "application/soap+xml"), EnvelopeError::Structure(n) if n == "x"));
    assert!(matches!(e(&soap12("", "<s:Body/><s:Header/>"), "application/soap+xml"), EnvelopeError::Structure(_)));
    let dtd = format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{}", soap12("", "<s:Body/>"));
    assert_eq!(e(&dtd, "application/soap+xml"), EnvelopeError::Doctype);
    assert!(matches!(e(&soap12("", "<s:Body><a></b></s:Body>"), "application/soap+xml"), EnvelopeError::Xml { .. }));
    assert!(matches!(e(&soap12("", "<s:Body>"), "application/soap+xml"), EnvelopeError::Xml { .. }));
    let latin1 = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}", soap12("", "<s:Body/>"));
    assert!(matches!(e(&latin1, "application/soap+xml"), EnvelopeError::Encoding(_)));
    assert!(matches!(
        e(&format!("{}junk", soap12("", "<s:Body/>")), "application/soap+xml"),
        EnvelopeError::Xml { .. }
    ));
    assert_eq!(e("x", "multipart/related; type=\"application/xop+xml\""), EnvelopeError::NoBoundary);
}

fn mtom(root_env: &str, attachments: &[Vec<u8>], root_first: bool) -> (Vec<u8>, String) {
    let b = "MIMEBoundary_9f2c";
    let mut parts: Vec<Vec<u8>> = Vec::new();
    parts.push(
        format!(
            "Content-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root.message@cxf.apache.org>\r\n\r\n{root_env}"
        )
        .into_bytes(),
    );
    for (i, a) in attachments.iter().enumerate() {
        let mut p = format!(
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <doc{i}@vigie>\r\n\r\n"
        )
        .into_bytes();
        p.extend_from_slice(a);
        parts.push(p);
    }
    if !root_first {
        parts.rotate_left(1);
    }
    let mut body = b"preamble ignored\r\n".to_vec();
    for p in parts {
        body.extend_from_slice(format!("--{b}\r\n").as_bytes());
        body.extend_from_slice(&p);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\nepilogue").as_bytes());
    let ct = format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{b}\"; start=\"<root.message@cxf.apache.org>\"; start-info=\"application/soap+xml\""
    );
    (body, ct)
}

const ENV: &str = "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Header></soap:Header><soap:Body><x:ProvideAndRegisterDocumentSetRequest xmlns:x=\"urn:ihe:iti:xds-b:2007\"><x:Document id=\"d\"><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:doc0@vigie\"/></x:Document></x:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>";

#[test]
fn mtom_only_the_root_part_changes_and_attachments_stay_byte_identical() {
    let pdf = b"%PDF-1.7\r\n\x00\xff\r\n--MIMEBoundary_9f2\r\n<soap:Header>\r\n\xe9".to_vec();
    let cda = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><soap:Header/></ClinicalDocument>".as_bytes().to_vec();
    for root_first in [true, false] {
        let (body, ct) = mtom(ENV, &[pdf.clone(), cda.clone()], root_first);
        let v = sealer().issue(&settings(), &request("cps")).unwrap();
        let out = insert_security(&body, &ct, &v.xml).unwrap();
        let inserted = format!("<wsse:Security xmlns:wsse=\"{WSSE_NS}\">{}</wsse:Security>", v.xml);
        let at = out.windows(inserted.len()).position(|w| w == inserted.as_bytes()).unwrap();
        assert!(out[..at].ends_with(b"<soap:Header>"));
        // Everything but the inserted header is the original, byte for byte.
        assert_eq!(&out[..at], &body[..at]);
        assert_eq!(&out[at..at + inserted.len()], inserted.as_bytes());
        assert_eq!(&out[at + inserted.len()..], &body[at..]);
        for a in [&pdf, &cda] {
            assert!(out.windows(a.len()).any(|w| w == a.as_slice()));
        }
        // The root part, cut out, verifies with xmlsec1.
        let start = out.windows(14).position(|w| w == b"<soap:Envelope").unwrap();
        let end = out.windows(16).position(|w| w == b"</soap:Envelope>").unwrap() + 16;
        assert_xmlsec1_ok(&out[start..end]);
    }
}

#[test]
fn mtom_errors_name_the_problem() {
    let (body, ct) = mtom(ENV, &[b"x".to_vec()], true);
    let e = insert_security(&body, &ct.replace("<root.message@cxf.apache.org>", "<nope>"), A).unwrap_err();
    assert!(e.to_string().contains("no part has the Content-ID"), "{e}");
    let e = insert_security(&body, &ct.replace("MIMEBoundary_9f2c", "other"), A).unwrap_err();
    assert!(matches!(e, EnvelopeError::Multipart(_)), "{e}");
    let b64 = String::from_utf8_lossy(&body).replacen("binary", "base64", 1);
    assert_eq!(insert_security(b64.as_bytes(), &ct, A).unwrap_err(), EnvelopeError::RootEncoding("base64".into()));
    let s11 = String::from_utf8_lossy(&body).replacen("application/soap+xml", "text/xml", 1);
    assert_eq!(insert_security(s11.as_bytes(), &ct, A).unwrap_err(), EnvelopeError::Soap11);
    let cut = &body[..body.len() - 30];
    assert!(matches!(insert_security(cut, &ct, A).unwrap_err(), EnvelopeError::Multipart(_)));
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_.-]{0,6}"
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,20}".prop_map(|s| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
}

const INS: &str = "207058575627097";
const INS2: &str = "180017512345621";

/// TD0.2 (HL7 v3 `PRPA_IN201307UV02`): the patient as an instance identifier.
fn td02(root: &str, extension: &str) -> String {
    soap12(
        "<s:Header><a:Action xmlns:a=\"http://www.w3.org/2005/08/addressing\">urn:hl7-org:v3:PRPA_IN201307UV02</a:Action></s:Header>",
        &format!(
            "<s:Body><PRPA_IN201307UV02 xmlns=\"urn:hl7-org:v3\"><controlActProcess><queryByParameter><parameterList>\
             <livingSubjectId><value root=\"{root}\" extension=\"{extension}\"/></livingSubjectId>\
             </parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02></s:Body>"
        ),
    )
}

/// TD3.1 (ebXML `AdhocQueryRequest`): the patient as an HL7 CX value in a slot, `&` escaped.
fn td31(values: &[&str]) -> String {
    let values: Vec<String> = values.iter().map(|v| format!("'{}'", v.replace('&', "&amp;"))).collect();
    td31_xml(&values.iter().map(String::as_str).collect::<Vec<_>>())
}

/// TD3.1 with each slot value written as this XML (character data as the caller encodes it).
fn td31_xml(values: &[&str]) -> String {
    let values: String = values.iter().map(|v| format!("<rim:Value>{v}</rim:Value>")).collect();
    soap12(
        "",
        &format!(
            "<s:Body><q:AdhocQueryRequest xmlns:q=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\" \
             xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\"><rim:AdhocQuery id=\"urn:uuid:14d4debf\">\
             <rim:Slot name=\"$XDSDocumentEntryPatientId\"><rim:ValueList>{values}</rim:ValueList></rim:Slot>\
             </rim:AdhocQuery></q:AdhocQueryRequest></s:Body>"
        ),
    )
}

#[test]
fn the_patients_a_call_names_are_found_in_hl7_identifiers_and_cx_values() {
    let named = |env: &str| patients_named(env.as_bytes(), S12, &INS_OIDS).unwrap();
    assert_eq!(named(&td02("1.2.250.1.213.1.4.10", INS)), [INS]);
    assert_eq!(named(&td02("1.2.250.1.213.1.4.8", &format!(" {INS} "))), [INS], "trimmed");
    // Another authority (here the RPPS) is not a patient.
    assert!(named(&td02("1.2.250.1.71.4.2.1", INS)).is_empty());
    assert_eq!(named(&td31(&[&format!("{INS}^^^&1.2.250.1.213.1.4.10&ISO")])), [INS]);
    assert_eq!(
        named(&td31(&[&format!("{INS}^^^&1.2.250.1.213.1.4.8&ISO"), &format!("{INS2}^^^&1.2.250.1.213.1.4.8&ISO^NH")])),
        [INS, INS2],
        "two patients, in order"
    );
    let twice = format!("{INS}^^^&1.2.250.1.213.1.4.8&ISO");
    assert_eq!(named(&td31(&[&twice, &twice])), [INS], "each once");
    assert!(named(&td31(&[&format!("{INS}^^^&1.2.250.1.71.4.2.1&ISO")])).is_empty(), "not an INS authority");
    // A character reference inside the value is read as the character it stands for.
    let by_ref = td31(&[&format!("{INS}^^^&1.2.250.1.213.1.4.8&ISO")]).replace("^^^", "&#x5E;^^");
    assert_eq!(named(&by_ref), [INS]);
    // In an attribute (an ExternalIdentifier of a submission) and in CDATA.
    let attr = soap12(
        "",
        &format!(
            "<s:Body><rim:ExternalIdentifier xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\" \
             value=\"{INS2}^^^&amp;1.2.250.1.213.1.4.10&amp;ISO\"/><c><![CDATA[{INS}^^^&1.2.250.1.213.1.4.10&ISO]]></c></s:Body>"
        ),
    );
    assert_eq!(named(&attr), [INS2, INS]);
    // The header is not the request: an identifier there is not a patient the call names.
    let in_header = soap12(
        &format!("<s:Header><v root=\"1.2.250.1.213.1.4.8\" extension=\"{INS}\"/></s:Header>"),
        "<s:Body><op/></s:Body>",
    );
    assert!(named(&in_header).is_empty());
    // In the root part of an MTOM call; attachments are not read.
    let attachment = format!("{INS2}^^^&1.2.250.1.213.1.4.8&ISO").into_bytes();
    let (body, ct) = mtom(&td02("1.2.250.1.213.1.4.10", INS), &[attachment], false);
    assert_eq!(patients_named(&body, &ct, &INS_OIDS).unwrap(), [INS]);
}

/// Issue 12 (red-team review), item 7: the same slot value or instance identifier, written so
/// that the scan used to miss it while an XML reader (the DMP's) sees the other patient.
#[test]
fn a_patient_hidden_by_the_xml_encoding_is_still_found() {
    let named = |env: &str| patients_named(env.as_bytes(), S12, &INS_OIDS).unwrap();
    let other = [INS2.to_string()];
    for (why, value) in [
        ("a comment splits the CX", format!("'{INS2}^^<!---->^&amp;1.2.250.1.213.1.4.10&amp;ISO'")),
        ("a comment splits the OID", format!("'{INS2}^^^&amp;1.2.250<!-- x -->.1.213.1.4.10&amp;ISO'")),
        ("a comment splits the ID", "'1800175123<!---->45621^^^&amp;1.2.250.1.213.1.4.10&amp;ISO'".to_string()),
        ("a processing instruction splits it", format!("'{INS2}^^^&amp;1.2.250.1.213<?pi x?>.1.4.10&amp;ISO'")),
        ("partly CDATA", format!("'{INS2}^^^&amp;1.2.250<![CDATA[.1.213.1.4.10&ISO']]>")),
        ("CDATA then text", format!("<![CDATA['{INS2}^^^&1.2.250.1.213.]]>1.4.10&amp;ISO'")),
        ("all CDATA", format!("<![CDATA['{INS2}^^^&1.2.250.1.213.1.4.10&ISO']]>")),
        ("character references", "'&#x31;80017512345621&#x5E;&#94;^&#38;1.2.250.1.213.1.4.10&#x26;ISO'".to_string()),
        ("an assigning authority with a namespace id", format!("'{INS2}^^^INS-NIR&amp;1.2.250.1.213.1.4.10&amp;ISO'")),
        ("the OID as a URN", format!("'{INS2}^^^&amp;urn:oid:1.2.250.1.213.1.4.10&amp;ISO'")),
        ("the OID with spaces", format!("'{INS2}^^^&amp; 1.2.250.1.213.1.4.10 &amp;ISO'")),
        ("the OID with a leading zero", format!("'{INS2}^^^&amp;1.2.250.1.213.1.4.010&amp;ISO'")),
        ("the OID's type in lower case", format!("'{INS2}^^^&amp;1.2.250.1.213.1.4.10&amp;iso'")),
    ] {
        assert_eq!(named(&td31_xml(&[&value])), other, "{why}: {value}");
    }
    // The OID followed by something that is no delimiter: the next value of the list (the
    // tags joined, the authority reads `…4.10x`), or text after it.
    for (why, values) in [
        ("the next value glued on", vec![format!("{INS2}^^^&amp;1.2.250.1.213.1.4.10"), "x".to_string()]),
        ("text after the OID", vec![format!("'{INS2}^^^&amp;1.2.250.1.213.1.4.10x'")]),
    ] {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        assert_eq!(named(&td31_xml(&values)), other, "{why}: {values:?}");
    }
    // The identifier before `^` is the whole CX ID, not its last run of letters and digits.
    let prefixed = td31_xml(&[&format!("'X-{INS}^^^&amp;1.2.250.1.213.1.4.10&amp;ISO'")]);
    assert_eq!(named(&prefixed), [format!("X-{INS}")]);
    // HL7 v3 instance identifiers: every `root`, every `extension`, values as an XML reader reads them.
    let ii = |attrs: &str| {
        soap12(
            "",
            &format!(
                "<s:Body><PRPA_IN201307UV02 xmlns=\"urn:hl7-org:v3\"><value {attrs}/></PRPA_IN201307UV02></s:Body>"
            ),
        )
    };
    for (why, attrs) in [
        (
            "a second, prefixed root",
            format!(
                "root=\"1.2.250.1.213.1.4.10\" extension=\"{INS2}\" h:root=\"1.2.250.1.71.4.2.1\" xmlns:h=\"urn:h\""
            ),
        ),
        (
            "a prefixed extension",
            format!("root=\"1.2.250.1.213.1.4.10\" extension=\"{INS}\" h:extension=\"{INS2}\" xmlns:h=\"urn:h\""),
        ),
        ("a URN root with spaces", format!("root=\" urn:oid:1.2.250.1.213.1.4.10 \" extension=\"{INS2}\"")),
        ("references in the root", format!("root=\"&#x31;.2.250.1.213.1.4.&#49;0\" extension=\"{INS2}\"")),
        ("references in the extension", "root=\"1.2.250.1.213.1.4.10\" extension=\"&#x31;80017512345621\"".to_string()),
    ] {
        let found = named(&ii(&attrs));
        assert!(found.contains(&INS2.to_string()), "{why}: {attrs} gave {found:?}");
    }
    // The same HL7 element in another prefix, or in none.
    let prefixed_ii = soap12(
        "",
        &format!(
            "<s:Body><h:PRPA_IN201307UV02 xmlns:h=\"urn:hl7-org:v3\"><h:value root=\"1.2.250.1.213.1.4.10\" extension=\"{INS2}\"/></h:PRPA_IN201307UV02></s:Body>"
        ),
    );
    assert_eq!(named(&prefixed_ii), other);
}

/// A reference to an entity nobody declared (there is no DTD) is not well-formed (XML 1.0 §4.1,
/// WFC: Entity Declared), nor is a reference to a character XML cannot carry (WFC: Legal
/// Character): read as nothing, they would let the scan and the DMP see different text.
#[test]
fn undeclared_entities_and_illegal_character_references_are_refused() {
    for (env, bad) in [
        (td31_xml(&[&format!("'{INS2}^^&bogus;^&amp;1.2.250.1.213.1.4.10&amp;ISO'")]), "&bogus;"),
        (soap12("<s:Header><a>&nbsp;</a></s:Header>", "<s:Body/>"), "&nbsp;"),
        (td31_xml(&["'&#x1;'"]), "&#x1;"),
        (soap12("<s:Header><a>&#xFFFE;</a></s:Header>", "<s:Body/>"), "&#xFFFE;"),
    ] {
        let e = patients_named(env.as_bytes(), S12, &INS_OIDS).unwrap_err();
        assert!(matches!(e, EnvelopeError::Xml { .. }), "{bad}: {e:?}");
        assert_eq!(insert_security(env.as_bytes(), S12, A).unwrap_err(), e, "{bad}");
    }
}

#[test]
fn a_call_that_cannot_be_secured_is_refused_by_the_patient_scan_too() {
    let e = |body: &str, ct: &str| patients_named(body.as_bytes(), ct, &INS_OIDS).unwrap_err();
    assert_eq!(e(&td02("1.2.250.1.213.1.4.8", INS), "text/xml"), EnvelopeError::Soap11);
    let broken = soap12("", "<s:Body><a></b></s:Body>");
    assert_eq!(e(&broken, S12), insert_security(broken.as_bytes(), S12, A).unwrap_err());
    let secured =
        String::from_utf8(insert_security(td02("1.2.250.1.213.1.4.8", INS).as_bytes(), S12, A).unwrap()).unwrap();
    assert_eq!(e(&secured, S12), EnvelopeError::AlreadySecured);
}

proptest! {
    /// Envelopes with any prefix, whitespace, header blocks and content: the header is added as the
    /// first child of Header, and nothing else changes.
    #[test]
    fn the_header_lands_first_and_nothing_else_changes(
        prefix in prop::option::of(name()), ws in "[ \t\r\n]{0,3}", blocks in prop::collection::vec((name(), text()), 0..4),
        has_header in any::<bool>(), body_text in text(), decl in any::<bool>(), bom in any::<bool>(),
    ) {
        let q = |l: &str| prefix.as_ref().map_or(l.to_string(), |p| format!("{p}:{l}"));
        let xmlns = prefix.as_ref().map_or("xmlns".to_string(), |p| format!("xmlns:{p}"));
        let mut env = String::new();
        if bom { env.push('\u{FEFF}'); }
        if decl { env.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"); }
        env.push_str(&format!("{ws}<{} {xmlns}=\"http://www.w3.org/2003/05/soap-envelope\">{ws}", q("Envelope")));
        if has_header {
            env.push_str(&format!("<{}>", q("Header")));
            for (n, t) in &blocks {
                env.push_str(&format!("{ws}<h:{n} xmlns:h=\"urn:h\">{t}</h:{n}>"));
            }
            env.push_str(&format!("</{}>{ws}", q("Header")));
        }
        env.push_str(&format!("<{}><m:op xmlns:m=\"urn:m\">{body_text}</m:op></{}>{ws}</{}>{ws}", q("Body"), q("Body"), q("Envelope")));
        let out = String::from_utf8(insert_security(env.as_bytes(), "application/soap+xml", A).unwrap()).unwrap();
        let (children, first) = shape(out.trim_start_matches('\u{FEFF}').as_bytes());
        prop_assert_eq!(children, vec!["Header".to_string(), "Body".to_string()]);
        prop_assert_eq!(first, Some((WSSE_NS.to_string(), "Security".to_string())));
        let removed = if has_header {
            out.replacen(&sec(), "", 1)
        } else {
            out.replacen(&format!("<{}>{}</{}>", q("Header"), sec(), q("Header")), "", 1)
        };
        prop_assert_eq!(removed, env);
    }

    /// MTOM bodies with any attachment bytes: only the root part changes.
    #[test]
    fn mtom_attachments_of_any_bytes_pass_through(atts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..4), root_first in any::<bool>()) {
        let (body, ct) = mtom(ENV, &atts, root_first);
        let out = insert_security(&body, &ct, A).unwrap();
        let s = sec();
        let at = out.windows(s.len()).position(|w| w == s.as_bytes()).unwrap();
        prop_assert_eq!(&out[..at], &body[..at]);
        prop_assert_eq!(&out[at..at + s.len()], s.as_bytes());
        prop_assert_eq!(&out[at + s.len()..], &body[at..]);
    }

    /// Any identifier under an INS authority, in a slot or as an HL7 identifier, is found as is;
    /// under another authority, never.
    #[test]
    fn any_ins_named_is_found_and_nothing_else(id in "[0-9A-Za-z]{1,20}", k in 0usize..4, other in "1\\.2\\.250\\.1\\.71\\.[0-9]{1,3}") {
        let oid = INS_OIDS[k];
        let named = |env: String| patients_named(env.as_bytes(), S12, &INS_OIDS).unwrap();
        prop_assert_eq!(named(td31(&[&format!("{id}^^^&{oid}&ISO")])), vec![id.clone()]);
        prop_assert_eq!(named(td02(oid, &id)), vec![id.clone()]);
        let foreign = format!("{id}^^^&{other}&ISO");
        prop_assert!(named(td31(&[&foreign])).is_empty());
        prop_assert!(named(td02(&other, &id)).is_empty());
    }

    /// Any encoding of the same infoset names the same patients as the plain one: characters as
    /// decimal or hexadecimal references or in CDATA sections, comments and processing
    /// instructions anywhere in text, any prefix (or none) for the elements, references in
    /// attribute values. An encoding is the writer's choice, never a way to hide a patient.
    #[test]
    fn any_encoding_of_the_same_call_names_the_same_patients(
        values in prop::collection::vec(slot_value(), 1..4),
        ii in prop::option::of(("[0-9]{1,15}", 0usize..5)),
        how in prop::collection::vec(0u8..8, 0..400),
        attr_how in prop::collection::vec(0u8..3, 0..40),
        prefixes in prop::collection::vec(prop::option::of("[a-z]{1,3}"), 3),
    ) {
        let escaped: Vec<String> = values.iter().map(|v| escape(v)).collect();
        let plain = call(&escaped, ii.as_ref(), &mut |t| escape(t), &[None, None, None]);
        let mut how = how.into_iter().chain(std::iter::repeat(0));
        let encoded_values: Vec<String> = values.iter().map(|v| encode_text(v, &mut how)).collect();
        let mut attr_how = attr_how.into_iter().chain(std::iter::repeat(0));
        let mut attr = |t: &str| -> String {
            t.chars()
                .map(|c| match attr_how.next() {
                    Some(1) => format!("&#x{:X};", c as u32),
                    Some(2) => format!("&#{};", c as u32),
                    _ => escape(&c.to_string()),
                })
                .collect()
        };
        let encoded = call(&encoded_values, ii.as_ref(), &mut attr, &prefixes);
        let want = patients_named(plain.as_bytes(), S12, &INS_OIDS).unwrap();
        prop_assert_eq!(patients_named(encoded.as_bytes(), S12, &INS_OIDS).unwrap(), want, "{}", encoded);
    }

    /// Garbage never panics: it is refused or, if it happens to be a SOAP 1.2 envelope, accepted.
    #[test]
    fn garbage_is_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), ct in prop_oneof![
        Just("application/soap+xml".to_string()),
        Just("multipart/related; boundary=b; start=\"<r>\"".to_string()),
        "\\PC{0,40}",
    ]) {
        if let Ok(out) = insert_security(&bytes, &ct, A) {
            prop_assert_eq!(insert_security(&out, &ct, A), Err(EnvelopeError::AlreadySecured));
        }
        // The patient scan refuses what securing refuses, with the same reason (and may refuse
        // more: it also reads the attributes).
        if let Err(e) = insert_security(&bytes, &ct, A) {
            prop_assert_eq!(patients_named(&bytes, &ct, &INS_OIDS), Err(e));
        }
    }
}

/// A slot value: quoted CX values under INS or other authorities, as written in TD3.1.
fn slot_value() -> impl Strategy<Value = String> {
    let authority = prop_oneof![
        (0usize..4).prop_map(|k| INS_OIDS[k].to_string()),
        Just("1.2.250.1.71.4.2.1".to_string()),
        Just("urn:oid:1.2.250.1.213.1.4.10".to_string()),
    ];
    prop::collection::vec(("[0-9A-Z]{1,15}", "(\\^\\^\\^&|\\^\\^\\^NS&)", authority, "[ a-z,]{0,3}"), 1..3).prop_map(
        |cx| {
            let v: Vec<String> = cx.iter().map(|(id, sep, oid, tail)| format!("'{id}{sep}{oid}&ISO'{tail}")).collect();
            v.join(",")
        },
    )
}

/// XML 1.0 §2.4: text with `&`, `<` and `>` escaped.
fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Text written character by character in one of the ways XML allows, as `how` says.
fn encode_text(t: &str, how: &mut impl Iterator<Item = u8>) -> String {
    let mut out = String::new();
    let mut in_cdata = false;
    for c in t.chars() {
        let how = how.next().unwrap_or(0);
        if in_cdata && how != 3 {
            out.push_str("]]>");
            in_cdata = false;
        }
        match how {
            1 => out.push_str(&format!("&#{};", c as u32)),
            2 => out.push_str(&format!("&#x{:x};", c as u32)),
            3 => {
                if !in_cdata {
                    out.push_str("<![CDATA[");
                    in_cdata = true;
                }
                out.push(c);
            }
            4 => out.push_str(&format!("<!-- c -->{}", escape(&c.to_string()))),
            5 => out.push_str(&format!("<?pi x?>{}", escape(&c.to_string()))),
            6 => out.push_str(&format!("<!---->{}<!---->", escape(&c.to_string()))),
            _ => out.push_str(&escape(&c.to_string())),
        }
    }
    if in_cdata {
        out.push_str("]]>");
    }
    out
}

/// A TD3.1-like call with these slot values (as XML) and, optionally, an HL7 v3 identifier under
/// the authority `k` (an INS one below 4), attribute values written by `attr`, elements with
/// these prefixes (`None`: a default namespace).
fn call(
    values: &[String],
    ii: Option<&(String, usize)>,
    attr: &mut dyn FnMut(&str) -> String,
    prefixes: &[Option<String>],
) -> String {
    let q = |i: usize, local: &str, ns: &str| match &prefixes[i] {
        Some(p) => (format!("{p}:{local}"), format!("xmlns:{p}=\"{ns}\"")),
        None => (local.to_string(), format!("xmlns=\"{ns}\"")),
    };
    let (query, query_ns) = q(0, "AdhocQueryRequest", "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0");
    let (value, value_ns) = q(1, "Value", "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0");
    let (id, id_ns) = q(2, "id", "urn:hl7-org:v3");
    let slots: String = values.iter().map(|v| format!("<{value} {value_ns}>{v}</{value}>")).collect();
    let ii = ii.map_or_else(String::new, |(ext, k)| {
        let root = INS_OIDS.get(*k).copied().unwrap_or("1.2.250.1.71.4.2.1");
        format!("<{id} {id_ns} root=\"{}\" extension=\"{}\"/>", attr(root), attr(ext))
    });
    soap12("", &format!("<s:Body><{query} {query_ns}>{slots}{ii}</{query}></s:Body>"))
}
