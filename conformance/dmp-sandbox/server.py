"""DMP stand-in: a TEST FIXTURE that answers TD0.2 and TD3.1 over mutual TLS after checking the VIHF.

Not the DMP. Usage (contract C4):
  .venv/bin/python server.py --listen 127.0.0.1:0 --cert S.pem --key S.key --client-ca ORG_AUTH_CA.pem
      --seal-ca SEAL_CA.pem [--max-age 30] [--required-attributes a,b,…]
Prints `DMP-SANDBOX READY https://HOST:PORT/si-dmp-server/v2/services/` once listening.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import soap
from vihf import DEFAULT_AUTH_MODES, DEFAULT_INS_OIDS, DEFAULT_REQUIRED, Rejected, VihfChecker

BASE_PATH = "/si-dmp-server/v2/services/"
# Reference §2: service paths of the kit (PatientSpecific, DocumentRegistry_Service) and of DRIMbox
# (patients, registry), each serving one action here.
SERVICES = {
    "patients": soap.TD02,
    "PatientSpecific": soap.TD02,
    "registry": soap.TD31,
    "DocumentRegistry_Service": soap.TD31,
}
SAMPLE_INS = ("279035121518989", "1.2.250.1.213.1.4.10")  # used only when resource-id is not required


class Sandbox(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, tls: ssl.SSLContext, checker: VihfChecker, max_body: int):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, Handler)
        self.tls = tls
        self.checker = checker
        self.max_body = max_body
        self.calls: list[dict] = []
        self.calls_lock = threading.Lock()
        # Set by POST /__control/misbehave, cleared by /__control/reset.
        self.misbehave: dict = {}

    # The TLS handshake runs in the request's thread, so one slow or failing client blocks no one.
    def finish_request(self, request, client_address):
        request.settimeout(30)
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms a call.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls_sock = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print(f"dmp-sandbox: TLS handshake with {client_address[0]} refused: {e}", file=sys.stderr, flush=True)
            return
        try:
            super().finish_request(tls_sock, client_address)
        finally:
            try:
                tls_sock.close()
            except OSError:
                pass

    def record(self, entry: dict) -> None:
        entry["at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self.calls_lock:
            self.calls.append(entry)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Sandbox
    server_version = "dmp-sandbox"

    def log_message(self, fmt, *args):  # one line per request on stderr, no bodies
        sys.stderr.write("dmp-sandbox: %s %s\n" % (self.address_string(), fmt % args))

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._send(status, "application/json", json.dumps(value, ensure_ascii=False).encode())

    def _client_subject(self) -> str | None:
        cert = self.connection.getpeercert()
        if not cert:
            return None
        return ",".join("+".join(f"{k}={v}" for k, v in rdn) for rdn in reversed(cert.get("subject", ())))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise Rejected("HTTP: malformed chunk size") from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > self.server.max_body:
                    raise Rejected(f"HTTP: body larger than {self.server.max_body} bytes")
                out += self.rfile.read(size)
                self.rfile.readline(8)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise Rejected("HTTP: Content-Length is not a number") from None
        if length < 0:
            raise Rejected("HTTP: negative Content-Length")
        if length > self.server.max_body:
            raise Rejected(f"HTTP: body larger than {self.server.max_body} bytes")
        return self.rfile.read(length)

    def do_GET(self):
        if self.path == "/__control/log":
            with self.server.calls_lock:
                return self._json(200, list(self.server.calls))
        self._json(404, {"error": f"no such resource {self.path}; SOAP services take POST under {BASE_PATH}"})

    def do_POST(self):
        if self.path == "/__control/reset":
            self._read_body()
            with self.server.calls_lock:
                self.server.calls.clear()
            self.server.checker.forget()
            self.server.misbehave = {}
            return self._json(200, {"reset": True})
        if self.path == "/__control/misbehave":
            self.server.misbehave = json.loads(self._read_body() or b"{}")
            return self._json(200, self.server.misbehave)
        entry: dict = {"service": None, "action": None, "vihf_id": None, "accepted": False, "reason": None}
        entry["client"] = self._client_subject()
        relates_to = None
        body = None
        try:
            service = self.path.split("?", 1)[0].removeprefix(BASE_PATH) if self.path.startswith(BASE_PATH) else None
            body = self._read_body()
            if service not in SERVICES:
                entry["service"] = self.path
                raise LookupError(
                    f"No such DMP service: {self.path} (served: {', '.join(BASE_PATH + s for s in SERVICES)})"
                )
            entry["service"] = service
            bad = self.server.misbehave
            if bad.get("delay_ms"):
                time.sleep(bad["delay_ms"] / 1000)
            if bad.get("status"):
                entry["reason"] = f"misbehaving: HTTP {bad['status']}"
                self.server.record(entry)
                return self._send(bad["status"], "text/html", b"<html><body>Service Unavailable</body></html>")
            if bad.get("fault_bytes"):
                entry["reason"] = f"misbehaving: a fault of {bad['fault_bytes']} bytes"
                self.server.record(entry)
                return self._send(500, "application/soap+xml; charset=utf-8", soap.fault("x" * bad["fault_bytes"]))
            req = soap.parse_request(self.headers.get("Content-Type", ""), body)
            relates_to = req.message_id
            entry["action"] = req.action
            entry["mtom"] = req.mtom
            entry["attachments"] = [
                {"cid": a.content_id, "sha256": a.sha256, "size": len(a.data)} for a in req.attachments
            ]
            if req.action != SERVICES[service]:
                raise Rejected(
                    f"WS-Addressing Action {req.action} is not served by {service} (expects {SERVICES[service]})"
                )
            security = soap.security_header(req)
            aid = next((c.get("ID") for c in security if isinstance(c.tag, str)), None)
            entry["vihf_id"] = aid
            v = self.server.checker.check(security)
            entry.update(nameid=v.name_id, issuer=v.issuer, patient_ins=v.patient_ins, roles=v.roles)
            ins, oid = (v.patient_ins, v.ins_oid) if v.patient_ins else SAMPLE_INS
            ctype, out = soap.answer(req, service, v.id, v.name_id, ins, oid)
            entry["accepted"] = True
            self.server.record(entry)
            self._send(200, ctype, out)
        except LookupError as e:
            entry["reason"] = str(e)
            self.server.record(entry)
            self._send(404, "application/soap+xml; charset=utf-8", soap.fault(str(e)))
        except Rejected as e:
            entry["reason"] = str(e)
            self.server.record(entry)
            if body is None:  # the body was not read: the connection cannot carry another request
                self.close_connection = True
            self._send(500, "application/soap+xml; charset=utf-8", soap.fault(str(e), relates_to))
        except Exception as e:  # a bug of the stand-in: say so rather than drop the connection
            entry["reason"] = f"DMP stand-in internal error: {type(e).__name__}: {e}"
            self.server.record(entry)
            self.close_connection = True
            self._send(500, "application/soap+xml; charset=utf-8", soap.fault(entry["reason"], relates_to))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="DMP stand-in (a test fixture, not the DMP)")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0 = any free port)")
    p.add_argument("--cert", required=True, help="server certificate chain, PEM")
    p.add_argument("--key", required=True, help="server private key, PEM")
    p.add_argument("--client-ca", required=True, help="CA(s) of the ORG_AUTH_CLI client certificates, PEM")
    p.add_argument("--seal-ca", required=True, help="CA(s) of the VIHF seal (ORG_SIGN) certificates, PEM")
    p.add_argument("--max-age", type=int, default=30, help="seconds a VIHF lives after IssueInstant (EX_AIR-040)")
    p.add_argument("--skew", type=int, default=5, help="clock skew tolerated, seconds")
    p.add_argument(
        "--required-attributes",
        default=",".join(DEFAULT_REQUIRED),
        help="comma-separated Attribute Names the VIHF must carry; A|B = either spelling",
    )
    p.add_argument(
        "--auth-modes", default=",".join(DEFAULT_AUTH_MODES), help="accepted Authentification_Mode values ('' = any)"
    )
    p.add_argument("--ins-oids", default=",".join(DEFAULT_INS_OIDS), help="accepted INS OIDs in resource-id")
    p.add_argument("--max-body", type=int, default=32 * 1024 * 1024, help="largest request body, bytes")
    a = p.parse_args(argv)

    host, _, port = a.listen.rpartition(":")
    if not host or not port.isdigit():
        p.error(f"--listen must be HOST:PORT, got {a.listen!r}")
    # Reference §2 (PDT-INF-579): TLS 1.2 or later; the client must present a certificate (mutual TLS).
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.verify_mode = ssl.CERT_REQUIRED
    try:
        tls.load_cert_chain(a.cert, a.key)
        tls.load_verify_locations(cafile=a.client_ca)
        checker = VihfChecker(
            a.seal_ca,
            max_age=a.max_age,
            required=tuple(x.strip() for x in a.required_attributes.split(",") if x.strip()),
            ins_oids=tuple(x.strip() for x in a.ins_oids.split(",") if x.strip()),
            auth_modes=tuple(x.strip() for x in a.auth_modes.split(",") if x.strip()),
            skew=a.skew,
        )
        server = Sandbox((host.strip("[]"), int(port)), tls, checker, a.max_body)
    except (OSError, ssl.SSLError, ValueError) as e:
        print(f"dmp-sandbox: cannot start: {e}", file=sys.stderr)
        return 2
    h, prt = server.server_address[:2]
    shown = f"[{h}]" if ":" in h else h
    print(f"DMP-SANDBOX READY https://{shown}:{prt}{BASE_PATH}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
