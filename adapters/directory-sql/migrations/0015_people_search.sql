-- The console's people search index (issue 17: the search stays fast at 100,000 identities).
-- Names are folded (case, accents, ligatures, separators: vigie_core::names::fold) by the adapter,
-- which SQL cannot do portably; each person gets the terms a search may start: family name, given
-- name, "given family", "family given", login (kind 'n', folded), matricule in capitals and idNat
-- (kind 'c'). A search is a prefix range on (kind, term).
--
-- Terms are BYTEA, not TEXT: bytes compare byte by byte on both databases, whatever PostgreSQL's
-- collation, so "starts with q" is exactly the range [q, q || 0xFF) (0xFF never occurs in UTF-8)
-- and the index serves it. SQLite keeps bytes as they are in a column of any declared type.
--
-- Expand-only: new tables. Rows are written by every identity and account writer of the adapter
-- in the same transaction; the adapter fills the missing and stale ones when it opens (this
-- migration's existing identities, or those an older replica wrote during a rolling upgrade).

CREATE TABLE people_search (
    identity_id TEXT NOT NULL PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    -- Folded family and given names: the order of the results.
    family      BYTEA NOT NULL,
    given       BYTEA NOT NULL,
    -- The names, matricule, idNat and login the terms were made from: a row whose source differs
    -- from the identity's is stale.
    source      TEXT NOT NULL
);

CREATE INDEX people_search_by_name ON people_search (family, given, identity_id);

CREATE TABLE people_search_terms (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    term        BYTEA NOT NULL,
    PRIMARY KEY (identity_id, kind, term)
);

CREATE INDEX people_search_terms_by_term ON people_search_terms (kind, term, identity_id);
