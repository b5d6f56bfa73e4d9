"""Loads a VIHF with a SAML library written by others (pysaml2) and prints what it says, as JSON.

  check_vihf.py FILE [--ca SEAL_CA.pem]

Exit 0: prints {"id", "issuer", "name_id", "issue_instant", "not_on_or_after", "authn_context",
"attributes": {Name: [text, or the attributes of a structured value such as hl7:Role]}, "signature"}.
With --ca, the signature is verified by pysaml2's SecurityContext (the xmlsec1 binary) with the KeyInfo
certificate, after that certificate is checked to chain to the CA. Exit 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from saml2 import saml
from saml2.sigver import CryptoBackendXmlSec1, SecurityContext, SignatureError, get_xmlsec_binary

from vihf import _ca_basic_constraints, _ee_key_usage


class Bad(Exception):
    pass


def _values(attribute) -> list:
    out = []
    for v in attribute.attribute_value:
        if v.extension_elements:  # structured value (hl7:Role, hl7:PurposeOfUse): its XML attributes
            out.append({k: val for k, val in v.extension_elements[0].attributes.items() if not k.startswith("{")})
        else:
            out.append(v.text)
    return out


def _chain(assertion, ca_file: str) -> x509.Certificate:
    sig = assertion.signature
    try:
        b64 = sig.key_info.x509_data[0].x509_certificate.text
        cert = x509.load_der_x509_certificate(base64.b64decode("".join(b64.split())))
    except (AttributeError, IndexError, TypeError, ValueError) as e:
        raise Bad(f"no usable KeyInfo/X509Data/X509Certificate in the signature ({e})") from None
    store = verification.Store(x509.load_pem_x509_certificates(Path(ca_file).read_bytes()))
    ee = verification.ExtensionPolicy.permit_all().may_be_present(
        x509.KeyUsage, verification.Criticality.AGNOSTIC, _ee_key_usage
    )
    ca = verification.ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, verification.Criticality.AGNOSTIC, _ca_basic_constraints
    )
    verifier = (
        verification.PolicyBuilder().store(store).extension_policies(ee_policy=ee, ca_policy=ca).build_client_verifier()
    )
    try:
        verifier.verify(cert, [])
    except verification.VerificationError as e:
        raise Bad(f"the signing certificate does not chain to the seal CA {ca_file}: {e}") from None
    return cert


def check(data: bytes, ca_file: str | None) -> dict:
    try:
        assertion = saml.assertion_from_string(data.decode("utf-8"))
    except Exception as e:  # pysaml2 raises assorted errors on bad XML
        raise Bad(f"not loadable by pysaml2: {type(e).__name__}: {e}") from None
    if assertion is None:
        raise Bad("not a saml2:Assertion (pysaml2 found no Assertion element at the root)")
    if assertion.issuer is None or not (assertion.issuer.text or "").strip():
        raise Bad("the assertion has no Issuer")
    if assertion.subject is None or assertion.subject.name_id is None:
        raise Bad("the assertion has no Subject/NameID")
    out = {
        "id": assertion.id,
        "issuer": assertion.issuer.text.strip(),
        "name_id": (assertion.subject.name_id.text or "").strip(),
        "issue_instant": assertion.issue_instant,
        "not_on_or_after": assertion.conditions.not_on_or_after if assertion.conditions else None,
        "authn_context": [
            {
                "class_ref": (
                    s.authn_context.authn_context_class_ref.text if s.authn_context.authn_context_class_ref else None
                ),
                "decl": s.authn_context.authn_context_decl.text if s.authn_context.authn_context_decl else None,
            }
            for s in assertion.authn_statement
            if s.authn_context is not None
        ],
        "attributes": {},
        "signature": "present" if assertion.signature is not None else "absent",
    }
    for st in assertion.attribute_statement:
        for at in st.attribute:
            out["attributes"].setdefault(at.name, []).extend(_values(at))
    if ca_file:
        if assertion.signature is None:
            raise Bad("the assertion is not signed")
        cert = _chain(assertion, ca_file)
        with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
            pem.write(cert.public_bytes(serialization.Encoding.PEM))
            pem.flush()
            sec = SecurityContext(CryptoBackendXmlSec1(get_xmlsec_binary()))
            try:
                ok = sec.verify_signature(
                    data,
                    cert_file=pem.name,
                    node_name=saml.Assertion.c_namespace + ":" + saml.Assertion.c_tag,
                    node_id=assertion.id,
                )
            except SignatureError as e:
                raise Bad(f"signature not verified by xmlsec1: {e}") from None
        if not ok:
            raise Bad("signature not verified by xmlsec1")
        out["signature"] = "verified"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Load a VIHF with pysaml2 and print it as JSON")
    p.add_argument("file")
    p.add_argument("--ca", help="seal CA (PEM): verify the signature and the certificate chain")
    a = p.parse_args(argv)
    try:
        data = Path(a.file).read_bytes()
        print(json.dumps(check(data, a.ca), ensure_ascii=False, indent=2))
        return 0
    except (Bad, OSError) as e:
        print(f"check_vihf: {a.file}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
