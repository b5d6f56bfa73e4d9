-- The HR enrolment code of a joiner (issue 17, docs/identity-lifecycle.md "Enrolment codes"): one
-- per person (a new one replaces the old, which stops working), single use, expiring, stored as the
-- SHA-256 of the code (base64url) only. Kept in the directory rather than the shared store so that
-- `vigie users feed` and `vigie users enrolment-codes` (other processes) can issue one that a
-- running `serve` with an embedded store accepts.
-- Expand-only, portable SQL (SQLite and PostgreSQL).

CREATE TABLE hr_enrolment_codes (
    identity_id TEXT NOT NULL PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL UNIQUE,
    issued_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    issued_by   TEXT NOT NULL
);
