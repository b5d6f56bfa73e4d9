"""SOAP 1.2 messages of the DMP stand-in: reading a request (plain or MTOM) and writing answers and faults.

Parsers of outside bytes: each refuses garbage with `Rejected` naming the rule broken. Sources: SOAP 1.2
part 1 (W3C soap12-part1), WS-Addressing 1.0 SOAP binding (W3C ws-addr-soap), XOP/MTOM (W3C xop10,
soap12-mtom), RFC 2046 §5.1.1 (multipart bodies), RFC 2392 (cid: URLs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import quopri
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from urllib.parse import unquote

from lxml import etree

from vihf import Rejected

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XOP = "http://www.w3.org/2004/08/xop/include"
SBX = "urn:vigie:dmp-sandbox"
HL7 = "urn:hl7-org:v3"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"

TD02 = "urn:hl7-org:v3:PRPA_IN201307UV02"
TD31 = "urn:ihe:iti:2007:RegistryStoredQuery"
RESPONSE_ACTION = {TD02: "urn:hl7-org:v3:PRPA_IN201306UV02", TD31: "urn:ihe:iti:2007:RegistryStoredQueryResponse"}
FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"  # WS-Addressing SOAP binding §6

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass
class Attachment:
    content_id: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class SoapRequest:
    envelope: etree._Element
    header: etree._Element
    body: etree._Element
    action: str
    message_id: str | None
    mtom: bool
    attachments: list[Attachment] = field(default_factory=list)


def _content_type(value: str) -> Message:
    m = Message()
    m["Content-Type"] = value
    return m


def parse_xml(data: bytes) -> etree._Element:
    """XML with no DTD (SOAP 1.2 part 1 §5: a SOAP message MUST NOT contain a Document Type Declaration)."""
    if not data.strip():
        raise Rejected("Not a SOAP message: empty body")
    try:
        tree = etree.fromstring(data, _PARSER).getroottree()
    except etree.XMLSyntaxError as e:
        raise Rejected(f"Not a SOAP message: XML not well-formed: {e}") from None
    if tree.docinfo.doctype:
        raise Rejected("Not a SOAP message: a DOCTYPE is not allowed (SOAP 1.2 part 1 §5)")
    return tree.getroot()


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """RFC 2046 §5.1.1: body parts between `CRLF--boundary` delimiters, up to the close delimiter."""
    if not re.fullmatch(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]", boundary):
        raise Rejected(f"MTOM: invalid multipart boundary {boundary[:80]!r} (RFC 2046 §5.1.1)")
    dash = b"--" + boundary.encode("ascii")
    if body.startswith(dash):
        pos = len(dash)
    else:
        i = body.find(b"\r\n" + dash)
        if i < 0:
            raise Rejected("MTOM: the body has no multipart boundary line")
        pos = i + 2 + len(dash)
    parts: list[tuple[dict[str, str], bytes]] = []
    while True:
        if body.startswith(b"--", pos):
            break  # close delimiter
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise Rejected("MTOM: a boundary line is not followed by CRLF")
        start = eol + 2
        nxt = body.find(b"\r\n" + dash, start)
        if nxt < 0:
            raise Rejected("MTOM: no closing boundary (the body is cut short)")
        parts.append(_parse_part(body[start:nxt]))
        pos = nxt + 2 + len(dash)
    if not parts:
        raise Rejected("MTOM: multipart body with no part")
    return parts


def _parse_part(raw: bytes) -> tuple[dict[str, str], bytes]:
    if raw.startswith(b"\r\n"):
        return {}, raw[2:]
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise Rejected("MTOM: a part's headers are not ended by an empty line")
    headers: dict[str, str] = {}
    last = None
    for line in raw[:end].split(b"\r\n"):
        text = line.decode("latin-1")
        if text[:1] in (" ", "\t") and last:
            headers[last] += " " + text.strip()
            continue
        name, sep, value = text.partition(":")
        if not sep or not re.fullmatch(r"[!-9;-~]+", name):
            raise Rejected(f"MTOM: malformed part header line {text[:80]!r}")
        last = name.lower()
        headers[last] = value.strip()
    return headers, raw[end + 4 :]


def _decode(headers: dict[str, str], data: bytes) -> bytes:
    cte = headers.get("content-transfer-encoding", "binary").lower()
    if cte in ("binary", "8bit", "7bit"):
        return data
    if cte == "base64":
        try:
            return base64.b64decode(b"".join(data.split()), validate=True)
        except binascii.Error:
            raise Rejected("MTOM: a base64 part is not valid base64") from None
    if cte == "quoted-printable":
        return quopri.decodestring(data)
    raise Rejected(f"MTOM: unknown Content-Transfer-Encoding {cte!r}")


def _cid(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">")


def parse_request(content_type: str, body: bytes) -> SoapRequest:
    """A SOAP 1.2 request: `application/soap+xml`, or MTOM `multipart/related; type="application/xop+xml"`."""
    ct = _content_type(content_type or "")
    mime = ct.get_content_type()
    attachments: list[Attachment] = []
    mtom = False
    action_param = ct.get_param("action")
    if mime == "application/soap+xml":
        envelope = parse_xml(body)
    elif mime == "multipart/related":
        mtom = True
        # XOP §4.1 / SOAP 1.2 MTOM §3: the package's type is application/xop+xml.
        if (ct.get_param("type") or "").lower() != "application/xop+xml":
            raise Rejected('MTOM: multipart/related must have type="application/xop+xml"')
        boundary = ct.get_param("boundary")
        if not boundary:
            raise Rejected("MTOM: multipart/related without a boundary parameter")
        parts = split_multipart(body, str(boundary))
        start = ct.get_param("start")
        root_i = 0
        if start:
            ids = [_cid(h.get("content-id", "")) for h, _ in parts]
            if _cid(str(start)) not in ids:
                raise Rejected(f"MTOM: no part has the start Content-ID {start}")
            root_i = ids.index(_cid(str(start)))
        root_headers, root_raw = parts[root_i]
        root_ct = _content_type(root_headers.get("content-type", ""))
        if root_ct.get_content_type() != "application/xop+xml":
            raise Rejected(f"MTOM: the root part must be application/xop+xml, got {root_ct.get_content_type()}")
        if (root_ct.get_param("type") or "") != "application/soap+xml":
            raise Rejected('MTOM: the root part must have type="application/soap+xml" (SOAP 1.2)')
        action_param = action_param or root_ct.get_param("action")
        envelope = parse_xml(_decode(root_headers, root_raw))
        for i, (h, raw) in enumerate(parts):
            if i != root_i:
                attachments.append(
                    Attachment(_cid(h.get("content-id", "")), h.get("content-type", ""), _decode(h, raw))
                )
        known = {a.content_id for a in attachments}
        for inc in envelope.iter(f"{{{XOP}}}Include"):
            href = inc.get("href", "")
            if not href.startswith("cid:") or unquote(href[4:]) not in known:
                raise Rejected(f"MTOM: xop:Include {href[:80]!r} refers to no attachment part (RFC 2392)")
    elif mime == "text/xml":
        raise Rejected("VersionMismatch: text/xml is SOAP 1.1; the DMP speaks SOAP 1.2 (application/soap+xml)")
    else:
        raise Rejected(f"Not a SOAP message: Content-Type {mime} (expected application/soap+xml or multipart/related)")

    if envelope.tag == f"{{{SOAP11}}}Envelope":
        raise Rejected("VersionMismatch: SOAP 1.1 envelope; the DMP speaks SOAP 1.2")
    if envelope.tag != f"{{{SOAP12}}}Envelope":
        raise Rejected(f"Not a SOAP message: root element {envelope.tag} is not a SOAP 1.2 Envelope")
    kids = [c for c in envelope if isinstance(c.tag, str)]
    header = next((c for c in kids if c.tag == f"{{{SOAP12}}}Header"), None)
    body_el = next((c for c in kids if c.tag == f"{{{SOAP12}}}Body"), None)
    if body_el is None:
        raise Rejected("Not a SOAP message: no env:Body (SOAP 1.2 part 1 §5.1)")
    if header is None:
        raise Rejected("WS-Addressing Action missing: no env:Header")
    actions = header.findall(f"{{{WSA}}}Action")
    if len(actions) != 1 or not (actions[0].text or "").strip():
        raise Rejected("WS-Addressing Action missing: env:Header must carry one wsa:Action")
    action = actions[0].text.strip()
    # SOAP 1.2 part 2 §7.1.2 / WS-Addressing SOAP binding §4: the action parameter, when given, agrees.
    if action_param and str(action_param) != action:
        raise Rejected(f"WS-Addressing Action {action} differs from the Content-Type action {action_param}")
    mid = header.find(f"{{{WSA}}}MessageID")
    message_id = (mid.text or "").strip() if mid is not None else None
    return SoapRequest(envelope, header, body_el, action, message_id, mtom, attachments)


def security_header(req: SoapRequest) -> etree._Element:
    found = req.header.findall(f"{{{WSSE}}}Security")
    if not found:
        raise Rejected("VIHF missing: no wsse:Security header")
    if len(found) > 1:
        raise Rejected(f"VIHF malformed: {len(found)} wsse:Security headers, exactly one expected")
    return found[0]


def _envelope(action: str, relates_to: str | None) -> tuple[etree._Element, etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    body = etree.SubElement(env, f"{{{SOAP12}}}Body")
    return env, header, body


def fault(reason: str, relates_to: str | None = None) -> bytes:
    """SOAP 1.2 part 1 §5.4: Code (Sender, or VersionMismatch), Reason/Text naming the problem."""
    env, _, body = _envelope(FAULT_ACTION, relates_to)
    f = etree.SubElement(body, f"{{{SOAP12}}}Fault")
    code = etree.SubElement(etree.SubElement(f, f"{{{SOAP12}}}Code"), f"{{{SOAP12}}}Value")
    code.text = "env:VersionMismatch" if reason.startswith("VersionMismatch") else "env:Sender"
    text = etree.SubElement(etree.SubElement(f, f"{{{SOAP12}}}Reason"), f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = reason
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _td02_answer(patient_ins: str, ins_oid: str) -> etree._Element:
    """A PRPA_IN201306UV02-like answer naming the patient (HL7 v3 patient query response, TD0.2)."""
    now = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    r = etree.Element(f"{{{HL7}}}PRPA_IN201306UV02", nsmap={None: HL7}, ITSVersion="XML_1.0")

    def sub(parent, tag, **attrs):
        return etree.SubElement(parent, f"{{{HL7}}}{tag}", {k: v for k, v in attrs.items()})

    sub(r, "id", root="1.2.250.1.213.4.1.1.1", extension=str(uuid.uuid4()))
    sub(r, "creationTime", value=now)
    sub(r, "interactionId", root="2.16.840.1.113883.1.6", extension="PRPA_IN201306UV02")
    sub(r, "processingCode", code="P")
    sub(r, "processingModeCode", code="T")
    sub(r, "acceptAckCode", code="NE")
    sub(sub(r, "acknowledgement"), "typeCode", code="AA")
    cap = sub(r, "controlActProcess", classCode="CACT", moodCode="EVN")
    sub(cap, "code", code="PRPA_TE201306UV02", codeSystem="2.16.840.1.113883.1.6")
    ev = sub(sub(cap, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG", moodCode="EVN")
    sub(ev, "statusCode", code="active")
    pat = sub(sub(ev, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
    sub(pat, "id", root=ins_oid, extension=patient_ins)
    sub(pat, "statusCode", code="active")
    person = sub(pat, "patientPerson", classCode="PSN", determinerCode="INSTANCE")
    name = sub(person, "name")
    sub(name, "given").text = "CAMILLE"
    sub(name, "family").text = "PATIENT-TEST"
    # The NIR's first digit is the sex (1 or 3/7 male), digits 2-5 the birth year and month.
    sub(person, "administrativeGenderCode", code="M" if patient_ins[:1] in "137" else "F")
    yy, mm = patient_ins[1:3], patient_ins[3:5]
    sub(person, "birthTime", value=f"{'19' if int(yy) > 30 else '20'}{yy}{mm if '01' <= mm <= '12' else '01'}01")
    sub(sub(cap, "queryAck"), "queryResponseCode", code="OK")
    return r


def _td31_answer(patient_ins: str, ins_oid: str) -> etree._Element:
    """An ebRIM AdhocQueryResponse with one XDSDocumentEntry (IHE ITI TF-3 §4.2.3.2, TD3.1)."""
    r = etree.Element(
        f"{{{QUERY}}}AdhocQueryResponse",
        nsmap={"query": QUERY, "rim": RIM},
        status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success",
    )
    lst = etree.SubElement(r, f"{{{RIM}}}RegistryObjectList")
    doc_id = f"urn:uuid:{uuid.uuid4()}"
    eo = etree.SubElement(
        lst,
        f"{{{RIM}}}ExtrinsicObject",
        id=doc_id,
        mimeType="text/xml",
        objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1",  # XDSDocumentEntry (stable)
        status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
    )
    pid = f"{patient_ins}^^^&{ins_oid}&ISO"

    def slot(name: str, value: str) -> None:
        s = etree.SubElement(eo, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(s, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value

    slot("creationTime", datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))
    slot("sourcePatientId", pid)
    slot("languageCode", "fr-FR")
    name = etree.SubElement(eo, f"{{{RIM}}}Name")
    etree.SubElement(name, f"{{{RIM}}}LocalizedString", value="Compte rendu d'hospitalisation (exemple du stand-in)")
    for scheme, value, label in (
        ("urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", pid, "XDSDocumentEntry.patientId"),
        (
            "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
            f"1.2.250.1.213.4.1.9.{uuid.uuid4().int % 10**12}",
            "XDSDocumentEntry.uniqueId",
        ),
    ):
        ext = etree.SubElement(
            eo,
            f"{{{RIM}}}ExternalIdentifier",
            id=f"urn:uuid:{uuid.uuid4()}",
            registryObject=doc_id,
            identificationScheme=scheme,
            value=value,
        )
        etree.SubElement(etree.SubElement(ext, f"{{{RIM}}}Name"), f"{{{RIM}}}LocalizedString", value=label)
    return r


REPLY_ATTACHMENT = b"DMP-SANDBOX reply attachment\r\n\x00\x01\x02\xff\r\n--not-a-boundary\r\n"


def answer(
    req: SoapRequest, service: str, vihf_id: str, name_id: str, patient_ins: str, ins_oid: str
) -> tuple[str, bytes]:
    """The sample answer for the request's action; MTOM when the request was MTOM. → (content type, body)."""
    env, header, body = _envelope(RESPONSE_ACTION[req.action], req.message_id)
    # Sandbox echo: what arrived, so a relay test can check the VIHF and the attachments made it intact.
    rec = etree.SubElement(
        header,
        f"{{{SBX}}}Received",
        nsmap={"sbx": SBX},
        service=service,
        vihf=vihf_id,
        nameid=name_id,
        attachments=str(len(req.attachments)),
    )
    for a in req.attachments:
        etree.SubElement(rec, f"{{{SBX}}}Attachment", cid=a.content_id, sha256=a.sha256, size=str(len(a.data)))
    body.append(_td02_answer(patient_ins, ins_oid) if req.action == TD02 else _td31_answer(patient_ins, ins_oid))
    if not req.mtom:
        return "application/soap+xml; charset=utf-8", etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    cid = f"reply-{uuid.uuid4()}@dmp-sandbox"
    reply = etree.SubElement(
        rec,
        f"{{{SBX}}}ReplyAttachment",
        sha256=hashlib.sha256(REPLY_ATTACHMENT).hexdigest(),
        size=str(len(REPLY_ATTACHMENT)),
    )
    etree.SubElement(reply, f"{{{XOP}}}Include", nsmap={"xop": XOP}, href=f"cid:{cid}")
    boundary = f"uuid:{uuid.uuid4()}"
    root_cid = f"root-{uuid.uuid4()}@dmp-sandbox"
    out = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n',
            b"Content-Transfer-Encoding: binary\r\n",
            f"Content-ID: <{root_cid}>\r\n\r\n".encode(),
            etree.tostring(env, xml_declaration=True, encoding="UTF-8"),
            f"\r\n--{boundary}\r\n".encode(),
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n",
            f"Content-ID: <{cid}>\r\n\r\n".encode(),
            REPLY_ATTACHMENT,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    ctype = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<{root_cid}>"; '
        'start-info="application/soap+xml"'
    )
    return ctype, out
