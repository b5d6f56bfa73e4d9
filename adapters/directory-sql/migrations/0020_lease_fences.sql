-- The fences of the jobs' leases (the LDAP sync, the HR feed, the reminders, the RPPS refresh:
-- `directory_sync::Lease` in the gateway). Each take of a job's lease issues a greater token; every
-- write transaction of the holder first raises the job's row to its token, and is refused when the
-- row holds a greater one: a holder paused past its lease cannot write after the one that took over
-- (docs/directory.md, "In `serve`"). Raising the row locks it until the write commits, so two
-- holders' writes never interleave.
-- Expand-only, portable SQL (SQLite and PostgreSQL).

CREATE TABLE lease_fences (
    job TEXT PRIMARY KEY,
    token BIGINT NOT NULL
);
