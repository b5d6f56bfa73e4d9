"""Self-tests of the DMP stand-in: a real server process over mutual TLS, VIHFs signed by signxml.

Run: conformance/dmp-sandbox/.venv/bin/python -m pytest conformance/dmp-sandbox -q
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import select
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

import testkit
from testkit import TD02, TD31, client_context, envelope, fault_reason, get, post, vihf

HERE = Path(__file__).resolve().parent
SBX = "urn:vigie:dmp-sandbox"
HL7 = "urn:hl7-org:v3"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return testkit.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def sandbox(pki):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "server.py"),
            "--listen",
            "127.0.0.1:0",
            "--cert",
            pki.path("server.pem"),
            "--key",
            pki.path("server.key"),
            "--client-ca",
            pki.path("tls-ca.pem"),
            "--seal-ca",
            pki.path("seal-ca.pem"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "the stand-in did not print its ready line within 15 s"
        line = proc.stdout.readline().strip()
        assert line.startswith("DMP-SANDBOX READY https://127.0.0.1:"), line
        base = line.split()[-1]
        assert base.endswith("/si-dmp-server/v2/services/")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def mtls(pki):
    return client_context(pki)


def soap_body(data: bytes) -> etree._Element:
    return etree.fromstring(data).find("{http://www.w3.org/2003/05/soap-envelope}Body")


def log(sandbox, mtls) -> list[dict]:
    return json.loads(get(sandbox, "/__control/log", mtls))


def test_td02_patient_query_with_a_valid_vihf_names_the_patient(pki, sandbox, mtls):
    a = vihf(pki.seal)
    aid = a.get("ID")
    status, ctype, body = post(sandbox, "PatientSpecific", envelope(TD02, a), mtls)
    assert status == 200, body
    assert ctype.startswith("application/soap+xml")
    root = etree.fromstring(body)
    assert root.findtext("{*}Header/{http://www.w3.org/2005/08/addressing}Action") == "urn:hl7-org:v3:PRPA_IN201306UV02"
    patient = soap_body(body).find(f"{{{HL7}}}PRPA_IN201306UV02//{{{HL7}}}patient")
    assert patient.find(f"{{{HL7}}}id").get("extension") == testkit.PATIENT_INS
    assert patient.findtext(f"{{{HL7}}}patientPerson/{{{HL7}}}name/{{{HL7}}}family") == "PATIENT-TEST"
    entry = next(e for e in log(sandbox, mtls) if e["vihf_id"] == aid)
    assert entry["accepted"] is True and entry["service"] == "PatientSpecific" and entry["action"] == TD02
    assert entry["nameid"] == "810001234567" and entry["reason"] is None
    assert entry["roles"][0]["code"] == "10"
    assert "VIGIE ORG_AUTH_CLI" in entry["client"]


def test_td31_registry_query_returns_one_document_entry(pki, sandbox, mtls):
    status, _, body = post(sandbox, "registry", envelope(TD31, vihf(pki.seal)), mtls)
    assert status == 200, body
    objects = soap_body(body).findall(f".//{{{RIM}}}ExtrinsicObject")
    assert len(objects) == 1
    assert objects[0].get("objectType") == "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    ids = [e.get("value") for e in objects[0].findall(f"{{{RIM}}}ExternalIdentifier")]
    assert f"{testkit.PATIENT_INS}^^^&1.2.250.1.213.1.4.10&ISO" in ids


def test_rsa_sha1_vihf_like_the_official_examples_is_accepted(pki, sandbox, mtls):
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.seal, sha1=True, millis=True)), mtls)
    assert status == 200, body


def test_lowercase_authentification_mode_spelling_is_accepted(pki, sandbox, mtls):
    a = vihf(pki.seal, auth_mode_name="Authentification_mode")
    status, _, body = post(sandbox, "patients", envelope(TD02, a), mtls)
    assert status == 200, body


@pytest.mark.parametrize("sha1", [False, True], ids=["rsa-sha256", "rsa-sha1"])
def test_vihf_signed_by_xmlsec1_with_inclusive_namespaces_is_accepted(pki, sandbox, mtls, tmp_path, sha1):
    a = testkit.vihf_signed_by_xmlsec1(pki.seal, tmp_path, sha1=sha1)
    assert a.find(f"{{{testkit.DS}}}Signature/{{{testkit.DS}}}SignatureValue").text, "xmlsec1 signed"
    status, _, body = post(sandbox, "patients", envelope(TD02, a), mtls)
    assert status == 200, body


def test_replayed_vihf_is_refused(pki, sandbox, mtls):
    a = vihf(pki.seal)
    assert post(sandbox, "patients", envelope(TD02, a), mtls)[0] == 200
    status, ctype, body = post(sandbox, "patients", envelope(TD02, a), mtls)
    assert status == 500 and ctype.startswith("application/soap+xml")
    assert fault_reason(body).startswith("VIHF replayed"), fault_reason(body)
    entry = [e for e in log(sandbox, mtls) if e["vihf_id"] == a.get("ID")]
    assert [e["accepted"] for e in entry] == [True, False]


def test_the_same_vihf_sent_twice_at_once_is_accepted_once(pki, sandbox, mtls):
    from concurrent.futures import ThreadPoolExecutor

    body = envelope(TD02, vihf(pki.seal))
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(s for s, _, _ in pool.map(lambda _: post(sandbox, "patients", body, mtls), range(4)))
    assert statuses == [200, 500, 500, 500]


def test_chunked_request_body_is_read_whole(pki, sandbox, mtls):
    import http.client

    host, port = sandbox.split("//")[1].split("/")[0].split(":")
    c = http.client.HTTPSConnection(host, int(port), context=mtls, timeout=10)
    data = envelope(TD02, vihf(pki.seal))
    chunks = iter([data[:100], data[100:1000], data[1000:]])
    c.request(
        "POST",
        "/si-dmp-server/v2/services/patients",
        body=chunks,
        encode_chunked=True,
        headers={"Content-Type": "application/soap+xml", "Transfer-Encoding": "chunked"},
    )
    r = c.getresponse()
    assert r.status == 200, r.read()
    c.close()


def test_expired_vihf_is_refused(pki, sandbox, mtls):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=90)
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.seal, issued=old)), mtls)
    assert status == 500
    assert fault_reason(body).startswith("VIHF expired"), fault_reason(body)


def test_vihf_living_longer_than_30_seconds_is_refused(pki, sandbox, mtls):
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.seal, lifetime=3600)), mtls)
    assert status == 500
    assert fault_reason(body).startswith("VIHF lifetime too long"), fault_reason(body)


def test_vihf_changed_after_signing_has_an_invalid_signature(pki, sandbox, mtls):
    a = vihf(pki.seal)
    a.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID").text = "810009876543"
    status, _, body = post(sandbox, "patients", envelope(TD02, a), mtls)
    assert status == 500
    assert fault_reason(body).startswith("VIHF signature invalid"), fault_reason(body)


def test_vihf_sealed_by_a_certificate_of_another_ca_is_refused(pki, sandbox, mtls):
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.rogue_seal)), mtls)
    assert status == 500
    reason = fault_reason(body)
    assert reason.startswith("VIHF signature invalid") and "seal CA" in reason, reason


def test_vihf_missing_an_attribute_is_refused_naming_it(pki, sandbox, mtls):
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.seal, drop=("LPS_Nom",))), mtls)
    assert status == 500
    assert fault_reason(body) == "VIHF attribute missing: LPS_Nom"


def test_issuer_not_in_rfc2253_form_is_refused(pki, sandbox, mtls):
    bad = pki.seal.cert.subject.rfc4514_string().replace("ST=", "S=")
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.seal, issuer=bad)), mtls)
    assert status == 500
    assert fault_reason(body).startswith("VIHF issuer mismatch"), fault_reason(body)


def test_ins_with_a_wrong_key_is_refused(pki, sandbox, mtls):
    rid = {"urn:oasis:names:tc:xacml:2.0:resource:resource-id": "207058575627096^^^&1.2.250.1.213.1.4.10&ISO^NH"}
    status, _, body = post(sandbox, "patients", envelope(TD02, vihf(pki.seal, values=rid)), mtls)
    assert status == 500
    assert fault_reason(body).startswith("VIHF resource-id is not a well-formed INS"), fault_reason(body)


def test_call_without_vihf_and_action_on_the_wrong_service_are_refused(pki, sandbox, mtls):
    status, _, body = post(sandbox, "patients", envelope(TD02, None), mtls)
    assert status == 500 and fault_reason(body).startswith("VIHF missing")
    status, _, body = post(sandbox, "registry", envelope(TD02, vihf(pki.seal)), mtls)
    assert status == 500 and "is not served by registry" in fault_reason(body)


def test_soap_11_and_garbage_get_precise_faults(sandbox, mtls):
    status, _, body = post(sandbox, "patients", b"<x/>", mtls, ctype="text/xml")
    assert status == 500 and fault_reason(body).startswith("VersionMismatch")
    status, _, body = post(sandbox, "patients", b"\x00\xffnot xml", mtls)
    assert status == 500 and fault_reason(body).startswith("Not a SOAP message: XML not well-formed")


def test_no_client_certificate_fails_the_tls_handshake(pki, sandbox):
    with pytest.raises((ssl.SSLError, ConnectionError)):
        post(sandbox, "patients", envelope(TD02, vihf(pki.seal)), client_context(pki, with_cert=False))


def test_client_certificate_of_another_ca_fails_the_tls_handshake(pki, sandbox, tmp_path):
    other = testkit.make_ca("TEST AC AUTRE")
    client = testkit.issue(other, pki.client.cert.subject, client=True)
    (tmp_path / "c.pem").write_bytes(client.cert_pem)
    (tmp_path / "c.key").write_bytes(client.key_pem)
    ctx = client_context(pki, with_cert=False)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        post(sandbox, "patients", envelope(TD02, vihf(pki.seal)), ctx)


def test_unknown_service_is_a_404_fault(pki, sandbox, mtls):
    status, _, body = post(sandbox, "Habilitation", envelope(TD02, vihf(pki.seal)), mtls)
    assert status == 404 and fault_reason(body).startswith("No such DMP service")


def test_mtom_call_is_answered_in_mtom_with_the_attachment_hashes(pki, sandbox, mtls):
    docs = [os.urandom(3000) + b"\r\n--MIMEBoundary_not\r\n", b"%PDF-1.4 \x00\x01 sample"]
    ctype, body = testkit.mtom(envelope(TD31, vihf(pki.seal)), docs)
    status, rtype, answer = post(sandbox, "DocumentRegistry_Service", body, mtls, ctype=ctype)
    assert status == 200, answer
    assert rtype.startswith("multipart/related") and 'type="application/xop+xml"' in rtype
    import soap  # the stand-in's own MTOM reader, on its own answer

    parsed = soap.parse_request(rtype, answer)
    received = parsed.header.find(f"{{{SBX}}}Received")
    assert received.get("attachments") == "2"
    got = [(x.get("cid"), x.get("sha256")) for x in received.findall(f"{{{SBX}}}Attachment")]
    assert got == [(f"doc{i}@vigie.test", hashlib.sha256(d).hexdigest()) for i, d in enumerate(docs)]
    [reply] = parsed.attachments
    assert received.find(f"{{{SBX}}}ReplyAttachment").get("sha256") == hashlib.sha256(reply.data).hexdigest()
    assert parsed.body.find(f".//{{{RIM}}}ExtrinsicObject") is not None


def test_check_vihf_loads_the_assertion_with_pysaml2(pki, tmp_path):
    a = vihf(pki.seal)
    f = tmp_path / "vihf.xml"
    f.write_bytes(etree.tostring(a))
    script = [sys.executable, str(HERE / "check_vihf.py")]
    out = subprocess.run(script + [str(f), "--ca", pki.path("seal-ca.pem")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["name_id"] == "810001234567"
    assert doc["issuer"] == pki.seal.cert.subject.rfc4514_string()
    assert doc["signature"] == "verified"
    attrs = doc["attributes"]
    assert attrs["urn:oasis:names:tc:xspa:1.0:subject:subject-id"] == ['DURAND Marie, Cardiologie <&> "A"']
    assert attrs["urn:oasis:names:tc:xacml:2.0:subject:role"][1]["code"] == "SM26"
    assert attrs["urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"][0]["code"] == "normal"

    rogue = subprocess.run(
        script + [str(f), "--ca", pki.path("rogue-seal-ca.pem")], capture_output=True, text=True, timeout=30
    )
    assert rogue.returncode == 1 and "seal CA" in rogue.stderr, rogue.stderr
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(etree.tostring(a).replace(b"810001234567", b"810009876543"))
    bad = subprocess.run(
        script + [str(tampered), "--ca", pki.path("seal-ca.pem")], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 1 and "signature" in bad.stderr, bad.stderr
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"<not-an-assertion/>")
    g = subprocess.run(script + [str(garbage)], capture_output=True, text=True, timeout=30)
    assert g.returncode == 1 and g.stderr.strip(), g.stderr


def test_log_and_reset(pki, sandbox, mtls):
    assert log(sandbox, mtls), "calls were logged by the tests above"
    host_base = sandbox
    status, _, body = post(
        host_base.split("/si-dmp-server")[0] + "/", "__control/reset", b"", mtls, ctype="application/json"
    )
    assert status == 200
    assert log(sandbox, mtls) == []
