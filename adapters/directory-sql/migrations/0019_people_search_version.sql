-- The version of the rules that made a person's search terms (issue 20, review of issue 17).
-- Opening the directory used to read every identity and fold its names in Rust to find the rows
-- of `people_search` that were stale (3.6 s at 100,000 people, paid by every replica start and
-- every `vigie` command). A row now says which version of the terms it holds: the adapter writes
-- its own (`people_search::TERMS_VERSION`) with the terms, and at open looks only for rows below
-- it (a range of the index below) and identities without a row.
--
-- Expand-only: a new column with a DEFAULT and a new index. A replica one release older writes
-- its rows without naming the column: they get 0, below every version, and the next open of a
-- current replica rewrites them (the old replica may have renamed without the current fold).

ALTER TABLE people_search ADD COLUMN terms_version INTEGER NOT NULL DEFAULT 0;

CREATE INDEX people_search_by_version ON people_search (terms_version);
