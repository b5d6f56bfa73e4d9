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
    let values: String =
        values.iter().map(|v| format!("<rim:Value>'{}'</rim:Value>", v.replace('&', "&amp;"))).collect();
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
