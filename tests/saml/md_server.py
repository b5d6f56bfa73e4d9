#!/usr/bin/env python3
"""TEST FIXTURE: an SP publishing its SAML metadata over HTTPS (Python's http.server and ssl,
standard library only), as `[[saml.sps]] metadata_url` fetches it: the file is read at each
request, so a test can change it; each request is appended to the log. Prints `ready` once
listening.

usage: md_server.py PORT CERT KEY METADATA LOG
"""
import http.server
import ssl
import sys

PORT, CERT, KEY, METADATA, LOG = sys.argv[1:6]


class Metadata(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(METADATA, "rb") as f:
            body = f.read()
        with open(LOG, "a") as log:
            log.write("GET\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/samlmetadata+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certfile=CERT, keyfile=KEY)
    with http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Metadata) as httpd:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        print("ready", flush=True)
        httpd.serve_forever()


if __name__ == "__main__":
    main()
