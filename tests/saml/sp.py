#!/usr/bin/env python3
"""A SAML 2.0 service provider on pysaml2, driven by gateway/server/tests/saml.rs: it writes its
metadata, makes AuthnRequests (HTTP-Redirect or HTTP-POST, signed or not) and validates Vigie's
Responses with pysaml2's own checks (signature through the xmlsec1 CLI, audience, recipient,
InResponseTo, validity), printing what it read as JSON. Exit status 1, with pysaml2's error on
stderr, when it refuses a Response.

  sp.py CONF.json metadata                     -> the SP's metadata XML on stdout
  sp.py CONF.json redirect [--sign] [--acs URL] [--passive] [--force] [--context CLASS [--comparison C]]
                                               -> {"id", "url"}
  sp.py CONF.json post [--sign]                -> {"id", "SAMLRequest", "RelayState"}
  sp.py CONF.json parse REQUEST_ID < b64       -> {"name_id", "name_id_format", "attributes", "authn_context",
                                                   "authn_instant"}

CONF.json: {"entity_id", "acs", "key", "cert", "idp_metadata" (optional)}.
"""
import base64
import json
import shutil
import sys

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.xmldsig import SIG_RSA_SHA256, DIGEST_SHA256


def client(conf, sign=False):
    xmlsec = shutil.which("xmlsec1")
    if xmlsec is None:
        sys.exit("xmlsec1 (Debian package xmlsec1) is needed: pysaml2 verifies signatures through it")
    settings = {
        "entityid": conf["entity_id"],
        "key_file": conf["key"],
        "cert_file": conf["cert"],
        "xmlsec_binary": xmlsec,
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(conf["acs"], BINDING_HTTP_POST)]},
                "authn_requests_signed": sign,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": False,
            }
        },
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
    }
    if conf.get("idp_metadata"):
        settings["metadata"] = {"local": [conf["idp_metadata"]]}
    config = SPConfig()
    config.load(settings)
    return Saml2Client(config)


def idp_entity(sp):
    return next(iter(sp.metadata.identity_providers()))


def main():
    conf = json.load(open(sys.argv[1]))
    command = sys.argv[2]
    sign = "--sign" in sys.argv
    # --acs URL: ask for another AssertionConsumerServiceURL than the metadata's (a forgery).
    extra = {}
    if "--acs" in sys.argv:
        extra["assertion_consumer_service_url"] = sys.argv[sys.argv.index("--acs") + 1]
    # --passive: IsPassive="true" (saml-core §3.4.1): no login page, an answer either way.
    if "--passive" in sys.argv:
        extra["is_passive"] = "true"
    # --force: ForceAuthn="true" (saml-core §3.4.1): a new login even with a session.
    if "--force" in sys.argv:
        extra["force_authn"] = "true"
    # --context CLASS [--comparison exact|minimum|better|maximum]: RequestedAuthnContext
    # (saml-core §3.3.2.2.1), as pysaml2 builds it.
    if "--context" in sys.argv:
        comparison = sys.argv[sys.argv.index("--comparison") + 1] if "--comparison" in sys.argv else "exact"
        extra["requested_authn_context"] = {
            "authn_context_class_ref": [sys.argv[sys.argv.index("--context") + 1]],
            "comparison": comparison,
        }
    sp = client(conf, sign)
    if command == "metadata":
        print(str(entity_descriptor(sp.config)))
    elif command == "redirect":
        req_id, info = sp.prepare_for_authenticate(
            entityid=idp_entity(sp), relay_state="lab-page", binding=BINDING_HTTP_REDIRECT,
            sign=sign, sigalg=SIG_RSA_SHA256 if sign else None, **extra,
        )
        print(json.dumps({"id": req_id, "url": dict(info["headers"])["Location"]}))
    elif command == "post":
        dest = sp.metadata.single_sign_on_service(idp_entity(sp), BINDING_HTTP_POST)[0]["location"]
        req_id, req = sp.create_authn_request(
            dest, binding=BINDING_HTTP_POST, sign=sign,
            sign_alg=SIG_RSA_SHA256 if sign else None, digest_alg=DIGEST_SHA256 if sign else None, **extra,
        )
        print(json.dumps({"id": req_id, "SAMLRequest": base64.b64encode(str(req).encode()).decode(), "RelayState": "lab-page"}))
    elif command == "parse":
        b64 = sys.stdin.read().strip()
        try:
            r = sp.parse_authn_request_response(b64, BINDING_HTTP_POST, outstanding={sys.argv[3]: "/"})
        except Exception as e:  # pysaml2 raises many kinds: each is a refusal
            sys.exit(f"refused: {type(e).__name__}: {e}")
        if r is None:
            sys.exit("refused: no response")
        print(json.dumps({
            "name_id": r.name_id.text,
            "name_id_format": r.name_id.format,
            "attributes": r.get_identity(),
            "authn_context": [a[0] for a in r.authn_info()],
            "authn_instant": [a[2] for a in r.authn_info()],
            "in_response_to": r.in_response_to,
        }))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
