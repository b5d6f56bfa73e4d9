-- The establishment's directory (issue 16, changed-since sync): where the last pass of each
-- source left the directory (its mark: an AD DC's USN, an OpenLDAP CSN or a timestamp, as text)
-- and when its last full pass ended (unix seconds), so that whichever replica runs the next pass
-- reads only what changed since, and a full pass still comes every `full_sync_interval_secs`.
-- Expand-only, portable SQL (SQLite and PostgreSQL).

CREATE TABLE directory_sync_state (
    source TEXT PRIMARY KEY,
    mark TEXT,
    full_pass_at BIGINT NOT NULL
);
