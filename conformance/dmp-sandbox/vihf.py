"""What the DMP stand-in checks in a VIHF (the SAML 2.0 assertion of the AIR simplifié mode).

Every check raises `Rejected` with the text that goes into the SOAP Fault's Reason, so a test can tell
which rule refused a call. Sources: reference/dmp-vihf-cps.md §1 (structure, attributes, EX_AIR-040),
SAML 2.0 core (OASIS saml-core-2.0-os), XML-DSig 1.1 (W3C xmldsig-core1), RFC 2253/4514 (DNs).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.verifier import SignatureConfiguration

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
X509_SUBJECT_NAME = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"

SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
SUBJECT_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"

# Reference §1, AIR example: the attributes a VIHF of the AIR mode carries. `A|B` = either spelling
# (public sources disagree on `Authentification_Mode` vs `Authentification_mode`).
DEFAULT_REQUIRED = (
    "Identifiant_Structure",
    "Secteur_Activite",
    SUBJECT_ID,
    SUBJECT_ROLE,
    "VIHF_Version",
    "Authentification_Mode|Authentification_mode",
    RESOURCE_ID,
    "Ressource_URN",
    PURPOSE_OF_USE,
    "LPS_ID",
    "LPS_Nom",
    "LPS_Version",
)
# INS OIDs: 1.2.250.1.213.1.4.8 INS-NIR, .9 INS-NIA, .10 INS-NIR test, .11 INS-NIA test.
DEFAULT_INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11")
DEFAULT_AUTH_MODES = ("INDIRECTE_RENFORCEE",)

# RFC 4514 §3 keywords plus the ones IGC-Santé DNs use (reference §3: `GN=`, `SN=`, `title=`).
# Keywords are matched as written (cryptography's parser is case-sensitive): both usual spellings.
DN_KEYWORDS = {
    "GN": NameOID.GIVEN_NAME,
    "SN": NameOID.SURNAME,
    "title": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "pseudonym": NameOID.PSEUDONYM,
    "PSEUDONYM": NameOID.PSEUDONYM,
}


class Rejected(Exception):
    """A refusal; `str(e)` is the SOAP Fault Reason (C4 wording: `VIHF <problem>[: detail]`)."""


@dataclass
class Verified:
    """What a verified VIHF says (read from the signed bytes only)."""

    id: str
    issuer: str
    name_id: str
    not_on_or_after: datetime
    attributes: dict[str, list[str]] = field(default_factory=dict)
    patient_ins: str = ""
    ins_oid: str = ""
    roles: list[dict[str, str]] = field(default_factory=list)
    purpose_of_use: dict[str, str] = field(default_factory=dict)


def parse_datetime(text: str | None, what: str) -> datetime:
    """xs:dateTime (SAML core §1.3.3: UTC, `Z`); an offset is tolerated, no zone is refused."""
    if text is None:
        raise Rejected(f"VIHF malformed: {what} missing")
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", text.strip())
    if not m:
        raise Rejected(f"VIHF malformed: {what} is not an xs:dateTime with a time zone: {text[:64]!r}")
    frac = (m.group(2) or "")[:7].ljust(7, "0") if m.group(2) else ""  # Python keeps microseconds: '.' + 6 digits
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(m.group(1) + frac + tz).astimezone(timezone.utc)
    except ValueError as e:
        raise Rejected(f"VIHF malformed: {what} is not a valid date: {text[:64]!r} ({e})") from None


def nir_key(nir13: str) -> int:
    """Key of a NIR: 97 - (NIR mod 97), Corsica's 2A/2B counted as 19/18 (INSEE rule)."""
    digits = nir13.upper().replace("2A", "19", 1) if nir13[5:7].upper() == "2A" else nir13
    digits = digits.upper().replace("2B", "18", 1) if nir13[5:7].upper() == "2B" else digits
    return 97 - int(digits) % 97


def parse_ins(resource_id: str, allowed_oids: tuple[str, ...]) -> tuple[str, str]:
    """`<NIR+key>^^^&<OID>&ISO^NH` (HL7 CX, reference §1 resource-id) → (the 15-character INS, its OID)."""
    m = re.fullmatch(r"([0-9A-Ba-b]{15})\^\^\^&([0-9.]+)&ISO\^NH", resource_id.strip())
    if not m:
        raise Rejected(
            "VIHF resource-id is not a well-formed INS: expected <15-digit NIR+key>^^^&<OID>&ISO^NH, "
            f"got {resource_id[:80]!r}"
        )
    ins, oid = m.group(1), m.group(2)
    if oid not in allowed_oids:
        raise Rejected(
            f"VIHF resource-id is not a well-formed INS: OID {oid} is not an INS OID ({', '.join(allowed_oids)})"
        )
    nir13, key = ins[:13], ins[13:]
    if not re.fullmatch(r"[1-478]\d{4}(\d{2}|2[ABab])\d{6}", nir13) or not key.isdigit():
        raise Rejected(f"VIHF resource-id is not a well-formed INS: {ins} is not a NIR")
    if nir_key(nir13) != int(key):
        raise Rejected(
            f"VIHF resource-id is not a well-formed INS: key {key} of {nir13} should be {nir_key(nir13):02d}"
        )
    return ins, oid


def dn_matches(issuer_text: str, subject: x509.Name) -> bool:
    """Issuer = the signing certificate's subject DN in RFC 2253 form (reference §1, CI-SIS transport §4.3.1.5.1.1).

    Parsed and compared attribute by attribute, so equivalent escapings agree; `S=` or `G=` do not parse.
    """
    if issuer_text == subject.rfc4514_string():
        return True
    try:
        parsed = x509.Name.from_rfc4514_string(issuer_text, DN_KEYWORDS)
    except ValueError:
        return False
    if len(parsed.rdns) != len(subject.rdns):
        return False
    for a, b in zip(parsed.rdns, subject.rdns):
        if {(x.oid, x.value) for x in a} != {(x.oid, x.value) for x in b}:
            return False
    return True


def _ee_key_usage(policy, cert, ku) -> None:
    # RFC 5280 §4.2.1.3: verifying signatures other than on certificates/CRLs needs digitalSignature
    # (or contentCommitment, which a seal certificate may carry alone).
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        raise ValueError("the seal certificate's KeyUsage allows neither digitalSignature nor nonRepudiation")


def _ca_basic_constraints(policy, cert, bc) -> None:
    # RFC 5280 §4.2.1.9: a certificate that signs certificates asserts cA.
    if not bc.ca:
        raise ValueError("an issuing certificate is not a CA (basicConstraints cA false)")


class VihfChecker:
    """Checks one VIHF at a time; remembers the IDs it has seen (single use, EX_AIR-040)."""

    def __init__(
        self,
        seal_ca_file: str,
        max_age: int = 30,
        required: tuple[str, ...] = DEFAULT_REQUIRED,
        ins_oids: tuple[str, ...] = DEFAULT_INS_OIDS,
        auth_modes: tuple[str, ...] = DEFAULT_AUTH_MODES,
        skew: int = 5,
    ):
        self.seal_ca_file = seal_ca_file
        with open(seal_ca_file, "rb") as f:
            if not x509.load_pem_x509_certificates(f.read()):
                raise ValueError(f"{seal_ca_file}: no certificate")
        self.max_age = max_age
        self.required = required
        self.ins_oids = ins_oids
        self.auth_modes = auth_modes
        self.skew = skew
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ee_policy = verification.ExtensionPolicy.permit_all().may_be_present(
            x509.KeyUsage, verification.Criticality.AGNOSTIC, _ee_key_usage
        )
        self._ca_policy = verification.ExtensionPolicy.permit_all().require_present(
            x509.BasicConstraints, verification.Criticality.AGNOSTIC, _ca_basic_constraints
        )

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()

    def check(self, security: etree._Element, now: float | None = None) -> Verified:
        """`security` is the `wsse:Security` header element. Returns what the signed assertion says."""
        now = time.time() if now is None else now
        assertions = [c for c in security if isinstance(c.tag, str)]
        if not assertions:
            raise Rejected("VIHF missing: wsse:Security holds no saml2:Assertion")
        if len(assertions) != 1 or assertions[0].tag != f"{{{SAML}}}Assertion":
            names = ", ".join(etree.QName(c).localname for c in assertions)
            raise Rejected(f"VIHF malformed: wsse:Security must hold exactly one saml2:Assertion, found: {names}")
        assertion = assertions[0]
        aid = assertion.get("ID")
        if not aid:
            raise Rejected("VIHF malformed: the assertion has no ID")
        if assertion.get("Version") != "2.0":
            raise Rejected(f"VIHF malformed: Version must be 2.0 (SAML core §2.3.3), got {assertion.get('Version')!r}")
        self._check_layout(assertion)
        signed, cert = self._verify_signature(assertion, aid)
        return self._check_content(signed, cert, aid, now)

    # SAML core §2.3.3: <Issuer>, then <ds:Signature>, then <Subject>, …
    def _check_layout(self, assertion: etree._Element) -> None:
        children = [c for c in assertion if isinstance(c.tag, str)]
        if not children or children[0].tag != f"{{{SAML}}}Issuer":
            raise Rejected("VIHF malformed: saml2:Issuer must be the assertion's first child (SAML core §2.3.3)")
        sigs = assertion.findall(f"{{{DS}}}Signature")
        if not sigs:
            raise Rejected("VIHF signature invalid: the assertion is not signed (no ds:Signature)")
        if len(sigs) > 1:
            raise Rejected("VIHF signature invalid: more than one ds:Signature in the assertion")
        if len(children) < 2 or children[1] is not sigs[0]:
            raise Rejected("VIHF malformed: ds:Signature must follow saml2:Issuer (SAML core §2.3.3)")
        signed_info = sigs[0].find(f"{{{DS}}}SignedInfo")
        if signed_info is None:
            raise Rejected("VIHF signature invalid: no ds:SignedInfo")
        c14n = signed_info.find(f"{{{DS}}}CanonicalizationMethod")
        if c14n is None or c14n.get("Algorithm") != EXC_C14N:
            got = None if c14n is None else c14n.get("Algorithm")
            raise Rejected(
                f"VIHF signature invalid: CanonicalizationMethod must be exclusive c14n ({EXC_C14N}), got {got}"
            )
        refs = signed_info.findall(f"{{{DS}}}Reference")
        if len(refs) != 1:
            raise Rejected(f"VIHF signature invalid: expected one ds:Reference, found {len(refs)}")
        # Enveloped signature over the assertion itself (SAML core §5.4.2: URI = "#" + the assertion's ID).
        if refs[0].get("URI") != "#" + assertion.get("ID", ""):
            raise Rejected(
                f"VIHF signature invalid: Reference URI {refs[0].get('URI')!r} is not the assertion (#{assertion.get('ID')})"
            )
        transforms = [t.get("Algorithm") for t in refs[0].findall(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        if ENVELOPED not in transforms or any(t not in (ENVELOPED, EXC_C14N) for t in transforms):
            raise Rejected(
                f"VIHF signature invalid: transforms must be enveloped-signature + exc-c14n, got {transforms}"
            )

    def _verify_signature(self, assertion: etree._Element, aid: str) -> tuple[etree._Element, x509.Certificate]:
        # Serialised on its own: lxml copies the in-scope namespace declarations, and exclusive c14n
        # (the only one accepted above) does not depend on the ancestors beyond them.
        standalone = etree.tostring(assertion)
        config = SignatureConfiguration(
            location="./",
            signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA1}),
            digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA1}),
            expect_references=1,
        )
        try:
            result = XMLVerifier().verify(
                standalone,
                ca_pem_file=self.seal_ca_file,
                expect_config=config,
                id_attribute="ID",
                ee_policy=self._ee_policy,
                ca_policy=self._ca_policy,
            )
        except InvalidCertificate as e:
            raise Rejected(
                f"VIHF signature invalid: the signing certificate does not chain to the seal CA ({e})"
            ) from None
        except InvalidDigest as e:
            raise Rejected(
                f"VIHF signature invalid: digest mismatch, the assertion was changed after signing ({e})"
            ) from None
        except (InvalidSignature, InvalidInput) as e:
            raise Rejected(f"VIHF signature invalid: {e}") from None
        except Exception as e:  # signxml raises plain errors on some malformed inputs (e.g. bad base64)
            raise Rejected(f"VIHF signature invalid: {type(e).__name__}: {e}") from None
        signed = result.signed_xml
        if signed is None or signed.tag != f"{{{SAML}}}Assertion" or signed.get("ID") != aid:
            raise Rejected("VIHF signature invalid: the signature does not cover the assertion")
        # The signer is the KeyInfo certificate whose key verified the signature (signxml checked its chain).
        for text in result.signature_xml.findall(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"):
            cert = x509.load_der_x509_certificate(base64.b64decode("".join((text.text or "").split())))
            spki = cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            if spki == result.signature_key:
                return signed, cert
        raise Rejected("VIHF signature invalid: no KeyInfo certificate carries the key that signed")

    def _check_content(self, a: etree._Element, cert: x509.Certificate, aid: str, now: float) -> Verified:
        issuer_el = a.find(f"{{{SAML}}}Issuer")
        issuer = (issuer_el.text or "").strip() if issuer_el is not None else ""
        fmt = issuer_el.get("Format") if issuer_el is not None else None
        if fmt is not None and fmt != X509_SUBJECT_NAME:
            raise Rejected(f"VIHF issuer mismatch: Issuer Format must be {X509_SUBJECT_NAME}, got {fmt}")
        if not dn_matches(issuer, cert.subject):
            raise Rejected(
                f"VIHF issuer mismatch: Issuer {issuer!r} is not the signing certificate's subject DN in RFC 2253 form "
                f"({cert.subject.rfc4514_string()!r})"
            )

        # Single use (reference EX_AIR-040): counted as soon as a validly signed VIHF is presented.
        with self._lock:
            for k in [k for k, exp in self._seen.items() if exp < now]:
                del self._seen[k]
            if aid in self._seen:
                raise Rejected(f"VIHF replayed: assertion {aid} was already presented")
            self._seen[aid] = now + 2 * self.max_age + 3600

        issued = parse_datetime(a.get("IssueInstant"), "IssueInstant").timestamp()
        if issued > now + self.skew:
            raise Rejected(f"VIHF not yet valid: IssueInstant is {issued - now:.0f} s in the future")
        if now - issued > self.max_age + self.skew:
            raise Rejected(f"VIHF expired: issued {now - issued:.0f} s ago, more than {self.max_age} s (EX_AIR-040)")
        cond = a.find(f"{{{SAML}}}Conditions")
        if cond is None or cond.get("NotOnOrAfter") is None:
            raise Rejected("VIHF malformed: Conditions/@NotOnOrAfter missing (the 30 s lifetime, EX_AIR-040)")
        not_after = parse_datetime(cond.get("NotOnOrAfter"), "Conditions/@NotOnOrAfter")
        # SAML core §2.5.1.2: valid while now < NotOnOrAfter.
        if now >= not_after.timestamp() + self.skew:
            raise Rejected(f"VIHF expired: NotOnOrAfter {cond.get('NotOnOrAfter')} has passed")
        if not_after.timestamp() - issued > self.max_age + self.skew:
            raise Rejected(
                f"VIHF lifetime too long: {not_after.timestamp() - issued:.0f} s between IssueInstant and NotOnOrAfter, "
                f"at most {self.max_age} s (EX_AIR-040)"
            )
        if cond.get("NotBefore") is not None:
            if parse_datetime(cond.get("NotBefore"), "Conditions/@NotBefore").timestamp() > now + self.skew:
                raise Rejected("VIHF not yet valid: Conditions/@NotBefore is in the future")

        name_id = a.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
        if name_id is None or not (name_id.text or "").strip():
            raise Rejected("VIHF attribute missing: Subject/NameID (the professional's idNat)")
        authn = a.find(f"{{{SAML}}}AuthnStatement")
        if authn is None or authn.find(f"{{{SAML}}}AuthnContext") is None:
            raise Rejected("VIHF attribute missing: AuthnStatement/AuthnContext")
        parse_datetime(authn.get("AuthnInstant"), "AuthnStatement/@AuthnInstant")

        attrs: dict[str, list[etree._Element]] = {}
        for at in a.findall(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
            attrs.setdefault(at.get("Name", ""), []).extend(at.findall(f"{{{SAML}}}AttributeValue"))
        for req in self.required:
            names = req.split("|")
            if not any(any(_has_value(v) for v in attrs.get(n, [])) for n in names):
                raise Rejected(f"VIHF attribute missing: {req.replace('|', ' (or ')}{')' if '|' in req else ''}")

        v = Verified(id=aid, issuer=issuer, name_id=name_id.text.strip(), not_on_or_after=not_after)
        for name, values in attrs.items():
            v.attributes[name] = [_text(x) for x in values]
        if RESOURCE_ID in attrs:
            v.patient_ins, v.ins_oid = parse_ins(_text(attrs[RESOURCE_ID][0]), self.ins_oids)
        for val in attrs.get(SUBJECT_ROLE, []):
            role = val.find(f"{{{HL7}}}Role")
            if role is None or not role.get("code") or not role.get("codeSystem"):
                raise Rejected(
                    "VIHF attribute malformed: subject:role value must be an hl7:Role with code and codeSystem"
                )
            v.roles.append(dict(role.attrib))
        for val in attrs.get(PURPOSE_OF_USE, [])[:1]:
            pou = val.find(f"{{{HL7}}}PurposeOfUse")
            if pou is None or not pou.get("code"):
                raise Rejected("VIHF attribute malformed: purposeofuse value must be an hl7:PurposeOfUse with a code")
            v.purpose_of_use = dict(pou.attrib)
        for spelling in ("Authentification_Mode", "Authentification_mode"):
            if spelling in attrs and self.auth_modes:
                mode = _text(attrs[spelling][0])
                if mode not in self.auth_modes:
                    raise Rejected(
                        f"VIHF attribute malformed: {spelling} is {mode!r}, expected {' or '.join(self.auth_modes)}"
                    )
        # Plain attributes only (xsi:type and other namespaced ones are not part of the value).
        v.roles = [{str(k): str(x) for k, x in r.items() if not str(k).startswith("{")} for r in v.roles]
        v.purpose_of_use = {str(k): str(x) for k, x in v.purpose_of_use.items() if not str(k).startswith("{")}
        return v


def _has_value(v: etree._Element) -> bool:
    return bool((v.text or "").strip()) or any(isinstance(c.tag, str) for c in v)


def _text(v: etree._Element) -> str:
    return (v.text or "").strip()


__all__ = ["Rejected", "Verified", "VihfChecker", "parse_ins", "parse_datetime", "dn_matches"]
