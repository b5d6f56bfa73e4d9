-- The console's feeds and proposals (issue 17, docs/identity-lifecycle.md "Feed runs"):
-- - `feed_runs`: one row per HR feed run (file drop, HTTPS pull, command line, dry run): when, from
--   where, who started it, its result and counts, the safety stop's reason if it fired, the diff
--   (bounded: the first changes and how many more, JSON) and the error lines (JSON: line, column,
--   what is wrong). Never a whole row of the feed.
-- - `rpps_proposals.source`: where a proposal came from (`extraction:<file>` or `fhir`); NULL for
--   proposals made before this migration.
-- - `rpps_rejections`: proposals HR rejected, never proposed again for the same identity and idNat.
-- Expand-only, portable SQL (SQLite and PostgreSQL): new tables and a nullable column.

CREATE TABLE feed_runs (
    id          TEXT NOT NULL PRIMARY KEY,
    started_at  TEXT NOT NULL,
    source      TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    dry_run     BOOLEAN NOT NULL,
    result      TEXT NOT NULL,
    joiners     BIGINT NOT NULL,
    movers      BIGINT NOT NULL,
    leavers     BIGINT NOT NULL,
    returners   BIGINT NOT NULL,
    unchanged   BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    safety_stop TEXT,
    diff        TEXT NOT NULL,
    error_lines TEXT NOT NULL
);
CREATE INDEX feed_runs_by_time ON feed_runs (started_at);

ALTER TABLE rpps_proposals ADD COLUMN source TEXT;

CREATE TABLE rpps_rejections (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    idnat       TEXT NOT NULL,
    rejected_by TEXT NOT NULL,
    rejected_at TEXT NOT NULL,
    PRIMARY KEY (identity_id, idnat)
);
