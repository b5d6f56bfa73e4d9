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
                                                   "authn_instant", "name_id_code", "session_index"}
  Single Logout (saml-profiles §4.4), HTTP-Redirect, the SP's session kept in CONF's caches:
  sp.py CONF.json logout NAME_ID_CODE          -> {"url"}: pysaml2's global_logout, signed
  sp.py CONF.json logout-raw NAME_ID_CODE SESSION_INDEX [--sign] -> {"url"}: a LogoutRequest as given
  sp.py CONF.json logout-request NAME_ID_CODE < URL -> {"url", "logged_out"}: the IdP's LogoutRequest,
                                                   its signature checked, answered (signed)
  sp.py CONF.json logout-response < URL        -> {"status", "logged_out"}: the IdP's LogoutResponse,
                                                   its signature checked, then handle_logout_response

CONF.json: {"entity_id", "acs", "slo", "key", "cert", "cache", "idp_metadata" (optional),
            "enc_key", "enc_cert" (optional: the SP's encryption key pair, for encrypted assertions)}.
"""
import base64
import json
import shelve
import shutil
import sys
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.ident import code, decode
from saml2.sigver import verify_redirect_signature
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
                "endpoints": {
                    "assertion_consumer_service": [(conf["acs"], BINDING_HTTP_POST)],
                    "single_logout_service": [(conf["slo"], BINDING_HTTP_REDIRECT)],
                },
                "logout_requests_signed": True,
                "logout_responses_signed": True,
                "authn_requests_signed": sign,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": False,
            }
        },
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "preferred_binding": {"single_logout_service": [BINDING_HTTP_REDIRECT]},
    }
    # An SP that wants encrypted assertions: its metadata then carries a KeyDescriptor
    # use="encryption" with this certificate, and pysaml2 decrypts with the key (xmlsec1 CLI).
    if conf.get("enc_key"):
        settings["encryption_keypairs"] = [{"key_file": conf["enc_key"], "cert_file": conf["enc_cert"]}]
    if conf.get("idp_metadata"):
        settings["metadata"] = {"local": [conf["idp_metadata"]]}
    config = SPConfig()
    config.load(settings)
    # The SP's sessions and pending logouts outlive one run of this script (a real SP's store).
    state = shelve.open(conf["cache"] + ".state", writeback=True)
    return Saml2Client(config, identity_cache=conf["cache"] + ".identity", state_cache=state)


def redirect_params(url):
    """The query of a redirect, one value per name (what pysaml2's verifier takes)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def check_idp_signature(sp, params):
    """saml-bindings §3.4.4.1 with pysaml2's own verifier and the IdP metadata's certificates."""
    certs = sp.metadata.certs(idp_entity(sp), "any", "signing")
    if not any(verify_redirect_signature(params, sp.sec.sec_backend, cert) for _, cert in certs):
        sys.exit("refused: the IdP's redirect signature does not verify")


def location(http_info):
    return dict(http_info["headers"])["Location"]


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
    try:
        run(sp, command, sign, extra)
    finally:
        sp.state.close()


def run(sp, command, sign, extra):
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
            "name_id_code": code(r.name_id),
            "session_index": [r.session_info().get("session_index")],
        }))
    elif command == "logout":
        responses = sp.global_logout(decode(sys.argv[3]), sign=True, sign_alg=SIG_RSA_SHA256)
        (binding, http_info), = responses.values()
        print(json.dumps({"url": location(http_info), "binding": binding}))
    elif command == "logout-raw":
        dest = sp.metadata.single_logout_service(idp_entity(sp), BINDING_HTTP_REDIRECT, "idpsso")[0]["location"]
        req_id, req = sp.create_logout_request(
            dest, idp_entity(sp), name_id=decode(sys.argv[3]), session_indexes=[sys.argv[4]], sign=False,
        )
        info = sp.apply_binding(BINDING_HTTP_REDIRECT, str(req), dest, "raw", sign=sign,
                                sigalg=SIG_RSA_SHA256 if sign else None)
        print(json.dumps({"id": req_id, "url": location(info)}))
    elif command == "logout-request":
        params = redirect_params(sys.stdin.read().strip())
        check_idp_signature(sp, params)
        try:
            info = sp.handle_logout_request(
                params["SAMLRequest"], decode(sys.argv[3]), BINDING_HTTP_REDIRECT, sign=True,
                sign_alg=SIG_RSA_SHA256, relay_state=params.get("RelayState"),
                sigalg=params.get("SigAlg"), signature=params.get("Signature"),
            )
        except Exception as e:
            sys.exit(f"refused: {type(e).__name__}: {e}")
        print(json.dumps({"url": location(info), "logged_out": not sp.is_logged_in(decode(sys.argv[3]))}))
    elif command == "logout-response":
        params = redirect_params(sys.stdin.read().strip())
        check_idp_signature(sp, params)
        try:
            r = sp.parse_logout_request_response(params["SAMLResponse"], BINDING_HTTP_REDIRECT)
            status = r.response.status.status_code.value
            done = sp.handle_logout_response(r)
        except Exception as e:
            sys.exit(f"refused: {type(e).__name__}: {e}")
        nested = r.response.status.status_code.status_code
        print(json.dumps({
            "status": status,
            "second": nested.value if nested is not None else None,
            "done": done[1] if isinstance(done, tuple) else str(done),
        }))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
