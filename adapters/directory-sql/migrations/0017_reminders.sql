-- The e-mail reminders before an end date (issue 17, docs/identity-lifecycle.md "Reminders before
-- expiry"): one row per (person, end date, threshold in days, recipient) claimed before the e-mail
-- goes, so that a restart or a second replica never sends it twice. `state` is `sending` (claimed,
-- the e-mail under way: a claim left by a process that died is freed after a while), `sent`, or
-- `no_address` (nobody to write to: not tried again). A row whose end date is no longer the
-- person's is forgotten, so a date moved out and back in is reminded again.
-- Expand-only, portable SQL (SQLite and PostgreSQL).

CREATE TABLE lifecycle_reminders (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    end_at      TEXT NOT NULL,
    days        BIGINT NOT NULL,
    recipient   TEXT NOT NULL,
    state       TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (identity_id, end_at, days, recipient)
);
