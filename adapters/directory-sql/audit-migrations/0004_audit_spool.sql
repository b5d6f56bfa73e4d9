-- A spool re-joining the shared chain (issue 18; docs/audit.md, "When the database fails"): a
-- replica that wrote to its local spool while PostgreSQL was unreachable replays it into
-- `audit_records` once the database is back. Each replayed record carries the id of the event it
-- was in the spool (the spool record's hash) in `event_id`; the unique index makes a second
-- replay of the same spool (a crash after COMMIT, before the spool was removed) add nothing.
-- Expand-only: a nullable column an older Vigie neither reads nor writes (its rows have none,
-- and NULLs do not collide in a unique index), and an index. Built while the migration holds
-- the table (writes wait): on a large trail run `vigie migrate` in a quiet hour.
ALTER TABLE audit_records ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX audit_records_event_id ON audit_records (event_id);
