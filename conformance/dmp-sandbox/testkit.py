"""Test material for the stand-in's self-tests: a PKI made with `cryptography`, VIHFs signed with `signxml`
(a third-party signer, so the stand-in is not tested only against Vigie's), SOAP 1.2 envelopes and an
mTLS client. Used by test_sandbox.py; not used by the server."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import ssl
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
HL7 = "urn:hl7-org:v3"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
TD02 = "urn:hl7-org:v3:PRPA_IN201307UV02"
TD31 = "urn:ihe:iti:2007:RegistryStoredQuery"
PATIENT_INS = "207058575627097"  # the INS-NIR of reference §1's example (key 97 is right)


def _name(*pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def make_ca(cn: str) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(
        (NameOID.COMMON_NAME, cn), (NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"), (NameOID.COUNTRY_NAME, "FR")
    )
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(ca: Issued, subject: x509.Name, *, server: bool = False, client: bool = False) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    # A seal (ORG_SIGN) certificate: digitalSignature + nonRepudiation, no EKU.
    b = b.add_extension(
        x509.KeyUsage(True, not (server or client), bool(server or client), False, False, False, False, False, False),
        critical=True,
    )
    return Issued(b.sign(ca.key, hashes.SHA256()), key)


SEAL_SUBJECT = _name(
    (NameOID.COUNTRY_NAME, "FR"),
    (NameOID.STATE_OR_PROVINCE_NAME, "Rhône (69)"),
    (NameOID.ORGANIZATION_NAME, 'CH DE TEST, "Vigie"'),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "10B0127189"),
    (NameOID.COMMON_NAME, "CACHET VIGIE TEST"),
)


@dataclass
class Pki:
    dir: Path
    tls_ca: Issued
    server: Issued
    client: Issued
    seal_ca: Issued
    seal: Issued
    rogue_seal: Issued

    def path(self, name: str) -> str:
        return str(self.dir / name)


def make_pki(d: Path) -> Pki:
    tls_ca = make_ca("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS")
    server = issue(tls_ca, _name((NameOID.COMMON_NAME, "dmp-sandbox.test")), server=True)
    client = issue(
        tls_ca,
        _name((NameOID.ORGANIZATIONAL_UNIT_NAME, "10B0127189"), (NameOID.COMMON_NAME, "VIGIE ORG_AUTH_CLI")),
        client=True,
    )
    seal_ca = make_ca("TEST AC IGC-SANTE SEAL")
    seal = issue(seal_ca, SEAL_SUBJECT)
    rogue_ca = make_ca("TEST AC IGC-SANTE SEAL")  # same name, other key: trust is by key, not by name
    rogue_seal = issue(rogue_ca, SEAL_SUBJECT)
    files = {
        "server.pem": server.cert_pem + tls_ca.cert_pem,
        "server.key": server.key_pem,
        "client.pem": client.cert_pem,
        "client.key": client.key_pem,
        "tls-ca.pem": tls_ca.cert_pem,
        "seal-ca.pem": seal_ca.cert_pem,
        "seal.pem": seal.cert_pem,
        "rogue-seal-ca.pem": rogue_ca.cert_pem,
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return Pki(d, tls_ca, server, client, seal_ca, seal, rogue_seal)


def _iso_at(t: dt.datetime, millis: bool) -> str:
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if millis else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def vihf(
    seal: Issued,
    *,
    issued: dt.datetime | None = None,
    lifetime: int = 30,
    issuer: str | None = None,
    drop: tuple[str, ...] = (),
    values: dict[str, str] | None = None,
    auth_mode_name: str = "Authentification_Mode",
    sha1: bool = False,
    millis: bool = False,
) -> etree._Element:
    """A VIHF shaped like reference §1's AIR example, signed enveloped with exc-c14n by signxml.
    Instants to the second (as Vigie writes them), or to the millisecond."""
    issued = issued or dt.datetime.now(dt.timezone.utc)

    def _iso(t: dt.datetime) -> str:
        return _iso_at(t, millis)

    vals = {
        "Identifiant_Structure": "10B0127189",
        "Secteur_Activite": "SA07^1.2.250.1.71.4.2.4",
        "urn:oasis:names:tc:xspa:1.0:subject:subject-id": 'DURAND Marie, Cardiologie <&> "A"',
        "VIHF_Version": "3.0",
        auth_mode_name: "INDIRECTE_RENFORCEE",
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id": f"{PATIENT_INS}^^^&1.2.250.1.213.1.4.10&ISO^NH",
        "Ressource_URN": "urn:dmp",
        "LPS_ID": "vigie",
        "LPS_Nom": "Vigie",
        "LPS_Version": "0.1",
        "LPS_ID_HOMOLOGATION_DMP": "TEST",
    }
    vals.update(values or {})
    aid = f"_{uuid.uuid4()}"
    a = etree.Element(
        f"{{{SAML}}}Assertion",
        nsmap={"saml2": SAML, "xs": XS, "xsi": XSI},
        ID=aid,
        IssueInstant=_iso(issued),
        Version="2.0",
    )
    iss = etree.SubElement(a, f"{{{SAML}}}Issuer", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName")
    iss.text = issuer if issuer is not None else seal.cert.subject.rfc4514_string()
    etree.SubElement(a, f"{{{DS}}}Signature", nsmap={"ds": DS}, Id="placeholder")
    etree.SubElement(etree.SubElement(a, f"{{{SAML}}}Subject"), f"{{{SAML}}}NameID").text = "810001234567"
    etree.SubElement(
        a, f"{{{SAML}}}Conditions", NotBefore=_iso(issued), NotOnOrAfter=_iso(issued + dt.timedelta(seconds=lifetime))
    )
    st = etree.SubElement(a, f"{{{SAML}}}AuthnStatement", AuthnInstant=_iso(issued - dt.timedelta(minutes=5)))
    ctx = etree.SubElement(st, f"{{{SAML}}}AuthnContext")
    etree.SubElement(ctx, f"{{{SAML}}}AuthnContextClassRef").text = (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
    )
    etree.SubElement(ctx, f"{{{SAML}}}AuthnContextDecl").text = "CONF_EXI_PGSSIS"
    stmt = etree.SubElement(a, f"{{{SAML}}}AttributeStatement")

    def attr(name: str):
        return etree.SubElement(stmt, f"{{{SAML}}}Attribute", Name=name)

    for name, value in vals.items():
        if name in drop:
            continue
        v = etree.SubElement(attr(name), f"{{{SAML}}}AttributeValue")
        v.set(f"{{{XSI}}}type", "xs:string")
        v.text = value
    if "urn:oasis:names:tc:xacml:2.0:subject:role" not in drop:
        role = attr("urn:oasis:names:tc:xacml:2.0:subject:role")
        for code, system, sname, label in (
            ("10", "1.2.250.1.71.1.2.7", "professions", "Médecin"),
            ("SM26", "1.2.250.1.71.4.2.5", "specialites RPPS", "Qualifié en Médecine Générale"),
        ):
            r = etree.SubElement(
                etree.SubElement(role, f"{{{SAML}}}AttributeValue"), f"{{{HL7}}}Role", nsmap={None: HL7}
            )
            r.attrib.update({"code": code, "codeSystem": system, "codeSystemName": sname, "displayName": label})
            r.set(f"{{{XSI}}}type", "CE")
    if "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse" not in drop:
        pv = etree.SubElement(attr("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"), f"{{{SAML}}}AttributeValue")
        p = etree.SubElement(pv, f"{{{HL7}}}PurposeOfUse", nsmap={None: HL7})
        p.attrib.update(
            {
                "code": "normal",
                "codeSystem": "1.2.250.1.213.1.1.4.248",
                "codeSystemName": "mode acces VIHF 2.0",
                "displayName": "Accès normal",
            }
        )
        p.set(f"{{{XSI}}}type", "CE")
    signer = (_Sha1Signer if sha1 else XMLSigner)(
        signature_algorithm=SignatureMethod.RSA_SHA1 if sha1 else SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA1 if sha1 else DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signer.namespaces = {"ds": DS}
    return signer.sign(a, key=seal.key, cert=[seal.cert], reference_uri=aid, id_attribute="ID")


def vihf_signed_by_xmlsec1(seal: Issued, workdir: Path, *, sha1: bool = False) -> etree._Element:
    """The same VIHF signed by the xmlsec1 CLI from a template in Vigie's shape: compact (no whitespace),
    `ec:InclusiveNamespaces PrefixList="xs xsi"` on the exc-c14n transform (reference §1: the kit's
    PrefixList), RSA-SHA1 on option like the official examples."""
    a = vihf(seal)
    for old in a.findall(f"{{{DS}}}Signature"):
        a.remove(old)
    for el in a.iter():
        el.tail = None
    sig_m, dig_m = (
        ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1")
        if sha1
        else ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256")
    )
    exc = "http://www.w3.org/2001/10/xml-exc-c14n#"
    template = etree.fromstring(
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{exc}"/>'
        f'<ds:SignatureMethod Algorithm="{sig_m}"/><ds:Reference URI="#{a.get("ID")}"><ds:Transforms>'
        f'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        f'<ds:Transform Algorithm="{exc}"><ec:InclusiveNamespaces xmlns:ec="{exc}" PrefixList="xs xsi"/></ds:Transform>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="{dig_m}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>'
        f"<ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"
    )
    a.insert(1, template)
    tpl, key, cert, out = (workdir / n for n in ("tpl.xml", "seal.key", "seal.pem", "signed.xml"))
    tpl.write_bytes(etree.tostring(a))
    key.write_bytes(seal.key_pem)
    cert.write_bytes(seal.cert_pem)
    subprocess.run(
        [
            "xmlsec1",
            "--sign",
            "--privkey-pem",
            f"{key},{cert}",
            "--id-attr:ID",
            f"{SAML}:Assertion",
            "--output",
            str(out),
            str(tpl),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return etree.fromstring(out.read_bytes())


class _Sha1Signer(XMLSigner):
    """The official VIHF examples are RSA-SHA1 (reference §1); signxml refuses SHA-1 unless told."""

    def check_deprecated_methods(self):
        pass


def envelope(action: str, assertion: etree._Element | None, body: etree._Element | None = None) -> bytes:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12, "wsa": WSA})
    h = etree.SubElement(env, f"{{{SOAP12}}}Header")
    a = etree.SubElement(h, f"{{{WSA}}}Action")
    a.text = action
    a.set(f"{{{SOAP12}}}mustUnderstand", "true")
    etree.SubElement(h, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(h, f"{{{WSA}}}To").text = "https://dmp.test/si-dmp-server/v2/services/"
    if assertion is not None:
        etree.SubElement(h, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE}).append(assertion)
    b = etree.SubElement(env, f"{{{SOAP12}}}Body")
    if body is not None:
        b.append(body)
    else:
        etree.SubElement(
            b,
            (
                f"{{{HL7}}}PRPA_IN201307UV02"
                if action == TD02
                else "{urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0}AdhocQueryRequest"
            ),
        )
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def mtom(envelope_xml: bytes, attachments: list[bytes], boundary: str = "MIMEBoundary_vigie_test") -> tuple[str, bytes]:
    """Wraps an envelope as the root of an MTOM package (XOP) with binary attachments."""
    parts = [
        f"--{boundary}\r\n".encode(),
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n',
        b"Content-Transfer-Encoding: binary\r\nContent-ID: <root.message@vigie.test>\r\n\r\n",
        envelope_xml,
    ]
    for i, data in enumerate(attachments):
        parts += [
            f"\r\n--{boundary}\r\n".encode(),
            f"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <doc{i}@vigie.test>\r\n\r\n".encode(),
            data,
        ]
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    ctype = f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<root.message@vigie.test>"; start-info="application/soap+xml"'
    return ctype, b"".join(parts)


def client_context(pki: Pki, with_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.path("tls-ca.pem"))
    if with_cert:
        ctx.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
    return ctx


def post(base: str, service: str, body: bytes, ctx: ssl.SSLContext, ctype: str = "application/soap+xml; charset=utf-8"):
    """POST → (status, content type, body bytes)."""
    host, port = base.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    path = "/" + base.split("//", 1)[1].split("/", 1)[1] + service
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def get(base: str, path: str, ctx: ssl.SSLContext) -> bytes:
    host, port = base.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    try:
        c.request("GET", path)
        return c.getresponse().read()
    finally:
        c.close()


def fault_reason(body: bytes) -> str:
    root = etree.fromstring(body)
    text = root.find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault/{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
    assert text is not None, body[:500]
    return text.text or ""
