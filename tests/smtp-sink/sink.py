"""A real SMTP server (aiosmtpd) that keeps every message it accepts, for the sponsorship tests.

    sink.py --port PORT --dir DIR

Listens on 127.0.0.1:PORT (plain SMTP, as `mail.security = "plain"` allows on loopback), writes
each accepted message to DIR/NNNN.eml and, read back by Python's own e-mail parser (not the
sender's code), its envelope, headers and decoded text body to DIR/NNNN.json; prints `ready`
once listening. `--fail-first N` answers the first N messages with a 451 (temporary failure), to
prove that the gateway retries. `--tls-cert CERT --tls-key KEY` with `--mode starttls` requires
STARTTLS (RFC 3207: MAIL is refused before it), with `--mode tls` speaks TLS from the first byte
(RFC 8314 §3.3).
"""
import argparse
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory, fail_first):
        self.directory = directory
        self.fail_first = fail_first
        self.count = 0
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refused < self.fail_first:
            self.refused += 1
            return "451 4.3.0 try again later (test sink)"
        self.count += 1
        stem = os.path.join(self.directory, f"{self.count:04d}")
        raw = envelope.original_content or envelope.content
        with open(stem + ".eml", "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        decoded = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "content_type": msg.get_content_type(),
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "body": body.get_content() if body is not None else None,
        }
        # Written whole then renamed: a reader never sees half a file.
        with open(stem + ".json.tmp", "w") as f:
            json.dump(decoded, f, ensure_ascii=False)
        os.replace(stem + ".json.tmp", stem + ".json")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    kwargs = {}
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.mode == "starttls":
            kwargs = {"tls_context": ctx, "require_starttls": True}
        else:
            kwargs = {"ssl_context": ctx}
    controller = Controller(Keep(a.dir, a.fail_first), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        # Ends when the test closes our stdin (or dies).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
