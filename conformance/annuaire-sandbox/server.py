#!/usr/bin/env python3
"""TEST FIXTURE: a stand-in for the Annuaire Santé FHIR API v2 (reference annuaire-sante.md §4),
serving the people of `extraction.txt` as R4 Practitioner / PractitionerRole resources built and
validated with pip `fhir.resources` (a resource the models refuse is never served: the request
fails with 500 and the validation error on stderr).

    server.py --port 0 --api-key-file KEY [--api-key-header ESANTE-API-KEY] [--page-size 50]

Prints `listening on PORT` once ready. Routes (base /fhir/v2):
  GET Practitioner?identifier=<idNat | RPPS | system|value>[,…]   (comma = OR)
  GET Practitioner?family=…&given=…   (FHIR string search: case and accent blind, starts with)
  GET Practitioner?…&_revinclude=PractitionerRole:practitioner
  GET PractitionerRole?practitioner=Practitioner/<id> | <id>
  `_count` (default 50) and `_offset` page; `Bundle.link[next]` carries the next page.
  POST /_control {"mode": "ok" | "500" | "slow" | "malformed" | "not_bundle" | "not_fhir"}  (tests)
Every FHIR route wants the API key in the configured header (401 OperationOutcome otherwise).
The public API has no sandbox (annuaire-sante.md §4): this is not one, it plays one for tests."""
import argparse
import json
import sys
import threading
import time
import unicodedata
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole

NOS = "https://mos.esante.gouv.fr/NOS/{0}/FHIR/{1}"
G15 = NOS.format("TRE_G15-ProfessionSante", "TRE-G15-ProfessionSante")
R09 = NOS.format("TRE_R09-CategorieProfessionnelle", "TRE-R09-CategorieProfessionnelle")
R38 = NOS.format("TRE_R38-SpecialiteOrdinale", "TRE-R38-SpecialiteOrdinale")
R04 = NOS.format("TRE_R04-TypeSavoirFaire", "TRE-R04-TypeSavoirFaire")
R21 = NOS.format("TRE_R21-Fonction", "TRE-R21-Fonction")
R22 = NOS.format("TRE_R22-GenreActivite", "TRE-R22-GenreActivite")
R23 = NOS.format("TRE_R23-ModeExercice", "TRE-R23-ModeExercice")
V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
RPPS = "https://rpps.esante.gouv.fr"


def norm(s):
    """Case and accent blind, as FHIR string search (FHIR R4 §3.1.1.4.6 "string")."""
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).upper()
    for c in "-'’.":
        s = s.replace(c, " ")
    return " ".join(s.split())


def coding(system, code, display):
    return {"coding": [{"system": system, "code": code, "display": display}]}


def load(path):
    """The extraction's lines grouped by professional: one Practitioner, one PractitionerRole per line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    names = lines[0].rstrip("|").split("|")
    people = {}
    for n, line in enumerate(lines[1:], start=2):
        row = dict(zip(names, line.rstrip("|").split("|")))
        people.setdefault(row["Identification nationale PP"], []).append((n, row))
    practitioners, roles = [], []
    for idnat, rows in people.items():
        row = rows[0][1]
        pid = "003-" + row["Identifiant PP"]
        quals = [{"code": {"coding": [
            {"system": G15, "code": row["Code profession"], "display": row["Libellé profession"]},
            {"system": R09, "code": row["Code catégorie professionnelle"],
             "display": row["Libellé catégorie professionnelle"]}]}}]
        for _, r in rows:
            if r["Code savoir-faire"]:
                quals.append({"code": {"coding": [
                    {"system": R38, "code": r["Code savoir-faire"], "display": r["Libellé savoir-faire"]},
                    {"system": R04, "code": r["Code type savoir-faire"],
                     "display": r["Libellé type savoir-faire"]}]}})
        name = {"use": "usual", "family": row["Nom d'exercice"]}
        if row["Prénom d'exercice"]:
            name["given"] = [row["Prénom d'exercice"]]
        if row["Libellé civilité d'exercice"]:
            name["suffix"] = [row["Code civilité d'exercice"]]
        if row["Code civilité"]:
            name["prefix"] = [row["Code civilité"]]
        p = Practitioner.model_validate({
            "resourceType": "Practitioner", "id": pid, "active": True,
            "identifier": [
                {"system": IDNPS, "value": idnat, "type": {"coding": [{"system": V2_0203, "code": "IDNPS"}]}},
                {"system": RPPS, "value": row["Identifiant PP"],
                 "type": {"coding": [{"system": V2_0203, "code": "RPPS"}]}}],
            "name": [name], "qualification": quals})
        practitioners.append(p)
        for n, r in rows:
            codes = []
            if r["Code genre activité"]:
                codes.append(coding(R22, r["Code genre activité"], r["Libellé genre activité"]))
            if r["Code mode exercice"]:
                codes.append(coding(R23, r["Code mode exercice"], r["Libellé mode exercice"]))
            if r["Code rôle"]:
                codes.append(coding(R21, r["Code rôle"], r["Libellé rôle"]))
            roles.append(PractitionerRole.model_validate({
                "resourceType": "PractitionerRole", "id": f"005-{r['Identifiant PP']}-{n}", "active": True,
                "identifier": [{"system": RPPS, "value": f"{r['Identifiant PP']}-{n}"}],
                "practitioner": {"reference": f"Practitioner/{pid}"}, "code": codes}))
    return practitioners, roles


class State:
    def __init__(self, args):
        self.practitioners, self.roles = load(args.extraction)
        self.key = Path(args.api_key_file).read_text().strip()
        self.header = args.api_key_header
        self.page_size = args.page_size
        self.mode = "ok"
        self.lock = threading.Lock()
        self.listed = (self.practitioners, self.roles)

    def standing(self, inactive, ended):
        """Practitioners (by idNat) no longer active, and those whose every PractitionerRole's
        period ended, as the API shows them; both lists empty: as the extraction says. Each
        changed resource is validated again by fhir.resources."""
        practitioners, roles = self.listed
        ids = {p.id: next(i.value for i in p.identifier if i.system == IDNPS) for p in practitioners}
        self.practitioners = [
            Practitioner.model_validate({**json.loads(p.model_dump_json()), "active": False})
            if ids[p.id] in inactive else p for p in practitioners]
        self.roles = [
            PractitionerRole.model_validate({**json.loads(r.model_dump_json()),
                                             "period": {"start": "2010-09-01", "end": "2024-06-30"}})
            if ids.get(r.practitioner.reference.removeprefix("Practitioner/")) in ended else r for r in roles]


def ident_match(p, wanted):
    for w in wanted:
        system, _, value = w.rpartition("|")
        for i in p.identifier:
            if i.value == value and (not system or i.system == system):
                return True
    return False


def name_match(p, family, given):
    for n in p.name or []:
        if family is not None and not norm(n.family or "").startswith(norm(family)):
            continue
        if given is not None and not any(norm(g).startswith(norm(given)) for g in n.given or []):
            continue
        return True
    return False


class Handler(BaseHTTPRequestHandler):
    state = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("annuaire-sandbox: " + fmt % a + "\n")

    def send(self, status, body, ctype="application/fhir+json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def outcome(self, status, code, text):
        oo = OperationOutcome.model_validate(
            {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]})
        self.send(status, json.loads(oo.model_dump_json()))

    def do_POST(self):
        if self.path != "/_control":
            return self.outcome(404, "not-found", "no such route")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.state.mode = body.get("mode", "ok")
        if "inactive" in body or "ended" in body:
            self.state.standing(body.get("inactive", []), body.get("ended", []))
        self.send(200, {"mode": self.state.mode}, "application/json")

    def do_GET(self):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if self.headers.get(st.header) != st.key:
            return self.outcome(401, "security", f"missing or unknown {st.header} header")
        mode = st.mode
        if mode == "500":
            return self.outcome(500, "exception", "the stand-in was told to fail")
        if mode == "slow":
            time.sleep(30)
        if mode == "malformed":
            return self.send(200, b'{"resourceType": "Bundle", "entry": [')
        if mode == "not_fhir":
            return self.send(200, b"<html>maintenance</html>", "text/html")
        if mode == "not_bundle":
            return self.send(200, json.loads(st.practitioners[0].model_dump_json()))
        one = lambda k: q[k][0] if k in q else None
        if url.path == "/fhir/v2/Practitioner":
            if "identifier" in q:
                hits = [p for p in st.practitioners if ident_match(p, one("identifier").split(","))]
            elif "family" in q or "given" in q:
                hits = [p for p in st.practitioners if name_match(p, one("family"), one("given"))]
            else:
                return self.outcome(400, "required", "search by identifier, or by family and given")
            include = one("_revinclude") == "PractitionerRole:practitioner"
        elif url.path == "/fhir/v2/PractitionerRole":
            ref = one("practitioner")
            if not ref:
                return self.outcome(400, "required", "search by practitioner")
            ref = ref if ref.startswith("Practitioner/") else "Practitioner/" + ref
            hits = [r for r in st.roles if r.practitioner.reference == ref]
            include = False
        else:
            return self.outcome(404, "not-found", f"no route {url.path}")
        count = int(one("_count") or st.page_size)
        offset = int(one("_offset") or 0)
        page = hits[offset:offset + count]
        entries = [{"fullUrl": f"{self.base()}/Practitioner/{p.id}" if url.path.endswith("Practitioner")
                    else f"{self.base()}/PractitionerRole/{p.id}",
                    "resource": json.loads(p.model_dump_json()), "search": {"mode": "match"}} for p in page]
        if include:
            for p in page:
                for r in st.roles:
                    if r.practitioner.reference == f"Practitioner/{p.id}":
                        entries.append({"fullUrl": f"{self.base()}/PractitionerRole/{r.id}",
                                        "resource": json.loads(r.model_dump_json()), "search": {"mode": "include"}})
        links = [{"relation": "self", "url": self.base() + url.path[len("/fhir/v2"):] + "?" + url.query}]
        if offset + count < len(hits):
            nq = {k: v[0] for k, v in q.items()}
            nq["_offset"] = str(offset + count)
            nq["_count"] = str(count)
            links.append({"relation": "next",
                          "url": self.base() + url.path[len("/fhir/v2"):] + "?" + urllib.parse.urlencode(nq)})
        bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                                        "link": links, "entry": entries})
        self.send(200, json.loads(bundle.model_dump_json()))

    def base(self):
        return f"http://{self.headers.get('Host')}/fhir/v2"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--extraction", default=str(Path(__file__).with_name("extraction.txt")))
    ap.add_argument("--api-key-file", required=True)
    ap.add_argument("--api-key-header", default="ESANTE-API-KEY")
    ap.add_argument("--page-size", type=int, default=50)
    args = ap.parse_args()
    Handler.state = State(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print(f"listening on {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
