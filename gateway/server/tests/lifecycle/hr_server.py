#!/usr/bin/env python3
"""TEST FIXTURE: the HR software's export over HTTPS (Python's http.server and ssl, standard
library only), as `lifecycle.hr_feed.url` pulls it: a bearer token read from a file at each
request (so a test can change it), the export file read at each request, a strong ETag and a
Last-Modified, 304 on a matching If-None-Match (RFC 9110 §13.1.2) or, without one, an
If-Modified-Since not older than the file (§13.1.3). Each answer is appended to the log as
`<status> if-none-match=<yes|no>`.

usage: hr_server.py PORT CERT KEY EXPORT TOKEN_FILE LOG
"""
import email.utils
import hashlib
import http.server
import os
import ssl
import sys

PORT, CERT, KEY, EXPORT, TOKEN_FILE, LOG = sys.argv[1:7]


class Export(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body=b"", headers=()):
        with open(LOG, "a") as log:
            inm = "yes" if self.headers.get("If-None-Match") else "no"
            log.write(f"{status} if-none-match={inm}\n")
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def do_GET(self):
        with open(TOKEN_FILE) as f:
            token = f.read().strip()
        if self.headers.get("Authorization") != f"Bearer {token}":
            return self.answer(401, b"unauthorized\n", [("WWW-Authenticate", 'Bearer realm="sirh"')])
        try:
            with open(EXPORT, "rb") as f:
                body = f.read()
            mtime = int(os.stat(EXPORT).st_mtime)
        except FileNotFoundError:
            return self.answer(404, b"no export today\n")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [("ETag", etag), ("Last-Modified", email.utils.formatdate(mtime, usegmt=True))]
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            if etag in [t.strip() for t in inm.split(",")]:
                return self.answer(304, headers=headers)
        elif ims is not None:
            since = email.utils.parsedate_to_datetime(ims).timestamp()
            if mtime <= since:
                return self.answer(304, headers=headers)
        self.answer(200, body, headers + [("Content-Type", "text/csv; charset=utf-8")])

    def log_message(self, *args):
        pass


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Export)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
