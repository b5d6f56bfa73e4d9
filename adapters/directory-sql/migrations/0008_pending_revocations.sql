-- Access that must end (issue 12): a person who left or was suspended, a card lost, stolen,
-- returned or expired, a revoked key. Written with (or before) the change that takes the access
-- away; the gateway ends the target's sessions, refresh families and VIHF issuance, then deletes
-- the row, so an ending that failed (the store down, a crash, a change made from the command line)
-- is completed by the next sweep. `target` is `identity:<id>` or `credential:<credential>`.
-- Portable SQL (SQLite and PostgreSQL).

CREATE TABLE pending_revocations (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
