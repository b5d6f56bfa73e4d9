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
  Single Logout by HTTP-POST (CONF's "slo_binding": "post": the SP's only SingleLogoutService is
  HTTP-POST, and pysaml2 prefers POST for the IdP's); a form is {"action", "fields"}:
  sp.py CONF.json logout NAME_ID_CODE          -> {"binding", "form"}: global_logout's signed form
  sp.py CONF.json logout-post-raw NAME_ID_CODE SESSION_INDEX [--sign [--tamper]]
                                               -> {"form"}: a LogoutRequest as given (--tamper: its
                                                   ID changed after signing)
  sp.py CONF.json logout-post-xsw NAME_ID_CODE SESSION_INDEX
                                               -> {"form"}: an unsigned LogoutRequest for SESSION_INDEX
                                                   wrapping (in Extensions) a signed one for another session
  sp.py CONF.json logout-request-post NAME_ID_CODE < FIELDS.json -> {"form", "logged_out"}: the IdP's
                                                   LogoutRequest, its enveloped signature required, answered
  sp.py CONF.json logout-response-post < FIELDS.json -> {"status", "second", "done"}: the IdP's
                                                   LogoutResponse, its enveloped signature required

CONF.json: {"entity_id", "acs", "slo", "slo_binding" (optional: "post"), "key", "cert", "cache", "idp_metadata" (optional),
            "enc_key", "enc_cert" (optional: the SP's encryption key pair, for encrypted assertions),
            "sign_alg", "digest_alg" (optional: "sha1" or "sha256", the default: what the SP signs with)}.
"""
import base64
import json
import re
import shelve
import shutil
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.ident import code, decode
from saml2.sigver import verify_redirect_signature
from saml2.metadata import entity_descriptor
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

# CONF's "sign_alg" and "digest_alg" (default sha256): what this SP signs with, everywhere.
SIGN_ALGS = {"sha1": SIG_RSA_SHA1, "sha256": SIG_RSA_SHA256}
DIGEST_ALGS = {"sha1": DIGEST_SHA1, "sha256": DIGEST_SHA256}


def client(conf, sign=False):
    slo_binding = BINDING_HTTP_POST if conf.get("slo_binding") == "post" else BINDING_HTTP_REDIRECT
    sign_alg = SIGN_ALGS[conf.get("sign_alg", "sha256")]
    digest_alg = DIGEST_ALGS[conf.get("digest_alg", "sha256")]
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
                    "single_logout_service": [(conf["slo"], slo_binding)],
                },
                "logout_requests_signed": True,
                "logout_responses_signed": True,
                "authn_requests_signed": sign,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": False,
                # Here, under the SP's own service: pysaml2 reads its defaults from the SP's
                # context (`_sp_signing_algorithm`), not from the top level, where they were
                # ignored (the SP then signed with its SHA-1 defaults where no call said otherwise).
                "signing_algorithm": sign_alg,
                "digest_algorithm": digest_alg,
            }
        },
        "preferred_binding": {"single_logout_service": [slo_binding]},
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
    sp = Saml2Client(config, identity_cache=conf["cache"] + ".identity", state_cache=state)
    sp.test_algs = (sign_alg, digest_alg)
    return sp


def redirect_params(url):
    """The query of a redirect, one value per name (what pysaml2's verifier takes)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def check_idp_signature(sp, params):
    """saml-bindings §3.4.4.1 with pysaml2's own verifier and the IdP metadata's certificates."""
    certs = sp.metadata.certs(idp_entity(sp), "any", "signing")
    if not any(verify_redirect_signature(params, sp.sec.sec_backend, cert) for _, cert in certs):
        sys.exit("refused: the IdP's redirect signature does not verify")


class _Form(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def form(http_info):
    """The HTTP-POST binding's form pysaml2 wrote (saml-bindings §3.5.4): its target and fields."""
    f = _Form()
    f.feed(http_info["data"])
    return {"action": f.action, "fields": f.fields}


def posted(sp, typ):
    """The IdP's message posted to the SP (stdin: the form's fields as JSON), its enveloped
    signature required and checked by pysaml2 (xmlsec1) with the IdP metadata's certificates."""
    fields = json.loads(sys.stdin.read())
    xml = base64.b64decode(fields[typ]).decode()
    check = sp.sec.correctly_signed_logout_request if typ == "SAMLRequest" else sp.sec.correctly_signed_logout_response
    try:
        check(xml, must=True)
    except Exception as e:
        sys.exit(f"refused: the IdP's enveloped signature: {type(e).__name__}: {e}")
    return fields


def post_logout_request(sp, name_id, session_index, sign):
    """A LogoutRequest for the IdP's POST endpoint; `--named-dest URL` writes another Destination
    in it (`--named-dest none`: none at all), the form still going to the IdP."""
    dest = sp.metadata.single_logout_service(idp_entity(sp), BINDING_HTTP_POST, "idpsso")[0]["location"]
    named = dest
    if "--named-dest" in sys.argv:
        named = sys.argv[sys.argv.index("--named-dest") + 1]
        named = None if named == "none" else named
    req_id, req = sp.create_logout_request(
        named, idp_entity(sp), name_id=decode(name_id), session_indexes=[session_index], sign=sign,
        sign_alg=sp.test_algs[0] if sign else None, digest_alg=sp.test_algs[1] if sign else None,
    )
    return dest, req_id, str(req)


def logout_response(sp, message, binding):
    """pysaml2 reads the IdP's LogoutResponse and ends its logout: the status, nested too."""
    try:
        r = sp.parse_logout_request_response(message, binding)
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
            sign=sign, sigalg=sp.test_algs[0] if sign else None, **extra,
        )
        print(json.dumps({"id": req_id, "url": dict(info["headers"])["Location"]}))
    elif command == "post":
        dest = sp.metadata.single_sign_on_service(idp_entity(sp), BINDING_HTTP_POST)[0]["location"]
        req_id, req = sp.create_authn_request(
            dest, binding=BINDING_HTTP_POST, sign=sign,
            sign_alg=sp.test_algs[0] if sign else None, digest_alg=sp.test_algs[1] if sign else None, **extra,
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
        responses = sp.global_logout(decode(sys.argv[3]), sign=True, sign_alg=sp.test_algs[0])
        (binding, http_info), = responses.values()
        if binding == BINDING_HTTP_POST:
            print(json.dumps({"form": form(http_info), "binding": binding}))
        else:
            print(json.dumps({"url": location(http_info), "binding": binding}))
    elif command == "logout-post-raw":
        dest, req_id, xml = post_logout_request(sp, sys.argv[3], sys.argv[4], sign)
        if "--tamper" in sys.argv:
            xml = xml.replace(f'ID="{req_id}"', f'ID="{req_id}x"', 1)
        b64 = base64.b64encode(xml.encode()).decode()
        print(json.dumps({"id": req_id, "form": {"action": dest, "fields": {"SAMLRequest": b64}}}))
    elif command == "logout-post-xsw":
        # XSW: the signed request (another session) hidden in the Extensions of an unsigned one
        # naming the session to end; a verifier that checks "a signature somewhere" and reads the
        # root would end it.
        _, _, signed = post_logout_request(sp, sys.argv[3], "not-this-session", True)
        dest, req_id, outer = post_logout_request(sp, sys.argv[3], sys.argv[4], False)
        signed = re.sub(r"^<\?xml[^>]*\?>", "", signed.strip())
        prefix = re.match(r"(?:<\?xml[^>]*\?>)?\s*<(\w+):LogoutRequest", outer).group(1)
        end = re.search(r"</\w+:Issuer>", outer).end()
        outer = f"{outer[:end]}<{prefix}:Extensions>{signed}</{prefix}:Extensions>{outer[end:]}"
        b64 = base64.b64encode(outer.encode()).decode()
        print(json.dumps({"id": req_id, "form": {"action": dest, "fields": {"SAMLRequest": b64}}}))
    elif command == "logout-request-post":
        fields = posted(sp, "SAMLRequest")
        try:
            info = sp.handle_logout_request(
                fields["SAMLRequest"], decode(sys.argv[3]), BINDING_HTTP_POST, sign=True,
                sign_alg=sp.test_algs[0], digest_alg=sp.test_algs[1], relay_state=fields.get("RelayState"),
            )
        except Exception as e:
            sys.exit(f"refused: {type(e).__name__}: {e}")
        print(json.dumps({"form": form(info), "logged_out": not sp.is_logged_in(decode(sys.argv[3]))}))
    elif command == "logout-response-post":
        fields = posted(sp, "SAMLResponse")
        logout_response(sp, fields["SAMLResponse"], BINDING_HTTP_POST)
    elif command == "logout-raw":
        dest = sp.metadata.single_logout_service(idp_entity(sp), BINDING_HTTP_REDIRECT, "idpsso")[0]["location"]
        req_id, req = sp.create_logout_request(
            dest, idp_entity(sp), name_id=decode(sys.argv[3]), session_indexes=[sys.argv[4]], sign=False,
        )
        info = sp.apply_binding(BINDING_HTTP_REDIRECT, str(req), dest, "raw", sign=sign,
                                sigalg=sp.test_algs[0] if sign else None)
        print(json.dumps({"id": req_id, "url": location(info)}))
    elif command == "logout-request":
        params = redirect_params(sys.stdin.read().strip())
        check_idp_signature(sp, params)
        try:
            info = sp.handle_logout_request(
                params["SAMLRequest"], decode(sys.argv[3]), BINDING_HTTP_REDIRECT, sign=True,
                sign_alg=sp.test_algs[0], relay_state=params.get("RelayState"),
                sigalg=params.get("SigAlg"), signature=params.get("Signature"),
            )
        except Exception as e:
            sys.exit(f"refused: {type(e).__name__}: {e}")
        print(json.dumps({"url": location(info), "logged_out": not sp.is_logged_in(decode(sys.argv[3]))}))
    elif command == "logout-response":
        params = redirect_params(sys.stdin.read().strip())
        check_idp_signature(sp, params)
        logout_response(sp, params["SAMLResponse"], BINDING_HTTP_REDIRECT)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
