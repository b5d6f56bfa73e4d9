-- Security hardening (issue 12): a FIDO2 key is a hardware key only when its attestation was
-- verified to a trusted root at registration (WebAuthn §7.1 steps 21–23). Keys registered
-- before are not: they keep logging in, without `hwk`. Portable SQL (SQLite and PostgreSQL).
ALTER TABLE fido2_credentials ADD COLUMN attested BOOLEAN NOT NULL DEFAULT FALSE;
