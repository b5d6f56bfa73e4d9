"""Property tests of the stand-in's parsers of outside bytes: garbage gets `Rejected` (a precise fault), never
another exception; well-formed input round-trips."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import soap
from vihf import Rejected, dn_matches, nir_key, parse_datetime, parse_ins

FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10")
BOUNDARY_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?"


def rejected_or_ok(f, *args):
    try:
        f(*args)
    except Rejected as e:
        assert str(e), "a refusal names its reason"


@FAST
@given(st.binary(max_size=2000), st.text(alphabet=BOUNDARY_CHARS, min_size=1, max_size=70))
def test_multipart_garbage_is_rejected_precisely(body, boundary):
    rejected_or_ok(soap.split_multipart, body, boundary)


@FAST
@given(
    st.lists(st.binary(max_size=500), min_size=1, max_size=5),
    st.text(alphabet=BOUNDARY_CHARS, min_size=8, max_size=40),
)
def test_multipart_parts_round_trip_byte_for_byte(payloads, boundary):
    # RFC 2046 §5.1.1: the boundary must not occur in the parts (a sender picks one that does not).
    delim = ("--" + boundary).encode()
    if any(delim in p or p.endswith(b"\r") for p in payloads) or boundary.endswith(" "):
        return
    body = (
        b"preamble\r\n"
        + b"".join(
            b"--%s\r\nContent-ID: <p%d>\r\n\r\n%s\r\n" % (boundary.encode(), i, p) for i, p in enumerate(payloads)
        )
        + b"--%s--\r\nepilogue" % boundary.encode()
    )
    parts = soap.split_multipart(body, boundary)
    assert [h["content-id"] for h, _ in parts] == [f"<p{i}>" for i in range(len(payloads))]
    assert [hashlib.sha256(d).digest() for _, d in parts] == [hashlib.sha256(p).digest() for p in payloads]


@FAST
@given(
    st.sampled_from(
        ["application/soap+xml", 'multipart/related; type="application/xop+xml"; boundary=b1', "text/xml", ""]
    ),
    st.binary(max_size=1500),
)
def test_request_garbage_gets_a_fault_reason(ctype, body):
    rejected_or_ok(soap.parse_request, ctype, body)


@FAST
@given(st.text(max_size=120))
def test_ins_garbage_is_rejected_precisely(text):
    rejected_or_ok(parse_ins, text, INS_OIDS)


@FAST
@given(
    st.sampled_from("12"),
    st.integers(0, 99),
    st.integers(1, 12),
    st.sampled_from(["75", "69", "2A", "2B", "99"]),
    st.integers(0, 999),
    st.integers(1, 999),
)
def test_well_formed_ins_is_accepted_and_any_other_key_refused(sex, yy, mm, dept, commune, order):
    nir13 = f"{sex}{yy:02d}{mm:02d}{dept}{commune:03d}{order:03d}"
    key = nir_key(nir13)
    assert 1 <= key <= 97
    assert parse_ins(f"{nir13}{key:02d}^^^&1.2.250.1.213.1.4.8&ISO^NH", INS_OIDS) == (nir13 + f"{key:02d}", INS_OIDS[0])
    wrong = (key % 97) + 1
    try:
        parse_ins(f"{nir13}{wrong:02d}^^^&1.2.250.1.213.1.4.8&ISO^NH", INS_OIDS)
        raise AssertionError("a wrong key was accepted")
    except Rejected as e:
        assert "key" in str(e)


@FAST
@given(st.text(max_size=60))
def test_datetime_garbage_is_rejected_precisely(text):
    rejected_or_ok(parse_datetime, text, "IssueInstant")


@FAST
@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(timezone.utc)))
def test_datetime_round_trips(t):
    assert parse_datetime(t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "x") == t
    assert parse_datetime(t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00", "x") == t.replace(
        microsecond=t.microsecond // 1000 * 1000
    )
    # Second precision, as Vigie writes it (SAML core §1.3.3).
    assert parse_datetime(t.strftime("%Y-%m-%dT%H:%M:%SZ"), "x") == t.replace(microsecond=0)


@FAST
@given(st.text(max_size=200))
def test_issuer_dn_garbage_never_matches_nor_crashes(text):
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "CACHET"), x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
    )
    assert dn_matches(text, subject) == (text in ("C=FR,CN=CACHET",) or _parses_to(text, subject))


def _parses_to(text, subject):
    try:
        return x509.Name.from_rfc4514_string(text) == subject
    except ValueError:
        return False


def test_issuer_dn_accepts_equivalent_rfc2253_spellings_only():
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Rhône (69)"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "10B0127189"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Certificat Wizard DMP 2019-R2"),
        ]
    )
    assert dn_matches("CN=Certificat Wizard DMP 2019-R2,OU=10B0127189,ST=Rhône (69),C=FR", subject)
    # RFC 2253 §2.4: a character may be written as \XX.
    assert dn_matches("CN=Certificat Wizard DMP 2019-R2,OU=\\31\\30B0127189,ST=Rhône (69),C=FR", subject)
    assert not dn_matches("CN=Certificat Wizard DMP 2019-R2,OU=10B0127189,S=Rhône (69),C=FR", subject)
    # A CPS-like multi-valued RDN with the IGC-Santé keywords (reference §3), as Vigie writes them.
    cps = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, "Pharmacien")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.SURNAME, "PHARMACH0007512"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "899700075122"),
                    x509.NameAttribute(NameOID.GIVEN_NAME, "CAROLE"),
                ]
            ),
        ]
    )
    assert dn_matches("SN=PHARMACH0007512+CN=899700075122+GN=CAROLE,title=Pharmacien,C=FR", cps)
    assert not dn_matches("SN=PHARMACH0007512+CN=899700075122+G=CAROLE,title=Pharmacien,C=FR", cps)
    assert not dn_matches("C=FR,ST=Rhône (69),OU=10B0127189,CN=Certificat Wizard DMP 2019-R2", subject)
