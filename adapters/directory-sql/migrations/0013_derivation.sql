-- The idNat derived from the national directory (issue 17, docs/identity-lifecycle.md,
-- "Derivation from the RPPS"):
-- - `rpps_index`: the last loaded RPPS extraction (`vigie rpps load`), one row per professional ×
--   activity as in the file, names also kept normalised (no accents, upper case, hyphens and
--   apostrophes as spaces) for matching; a load replaces the whole table in one transaction.
-- - `rpps_proposals`: matches `vigie rpps propose` found for identities without an idNat, `strong`
--   or `weak`; never applied until HR confirms.
-- - `rpps_links`: confirmed derivations (who confirmed, when), what the RPPS says of the person
--   (refreshed at each load), and `struck_off` when a load no longer lists them active;
--   `dmp_withheld` when `derivation.on_struck_off = "deny_dmp"` stopped their VIHF.
-- Expand-only, portable SQL (SQLite and PostgreSQL): new tables only.

CREATE TABLE rpps_index (
    idnat              TEXT NOT NULL,
    rpps               TEXT NOT NULL,
    family_name        TEXT NOT NULL,
    given_name         TEXT NOT NULL,
    family_norm        TEXT NOT NULL,
    given_norm         TEXT NOT NULL,
    birth_date         TEXT,
    profession_code    TEXT,
    profession_label   TEXT,
    category_code      TEXT,
    category_label     TEXT,
    savoir_faire_code  TEXT,
    savoir_faire_label TEXT,
    activity_start     TEXT,
    activity_end       TEXT,
    ended              BOOLEAN NOT NULL,
    line_no            BIGINT NOT NULL
);
CREATE INDEX rpps_index_by_name ON rpps_index (family_norm, given_norm);
CREATE INDEX rpps_index_by_idnat ON rpps_index (idnat);

CREATE TABLE rpps_loads (
    id         TEXT NOT NULL PRIMARY KEY,
    file       TEXT NOT NULL,
    encoding   TEXT NOT NULL,
    lines      BIGINT NOT NULL,
    loaded_at  TEXT NOT NULL
);

CREATE TABLE rpps_proposals (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    idnat       TEXT NOT NULL,
    strength    TEXT NOT NULL CHECK (strength IN ('strong', 'weak')),
    why         TEXT NOT NULL,
    proposed_at TEXT NOT NULL,
    PRIMARY KEY (identity_id, idnat)
);

CREATE TABLE rpps_links (
    identity_id        TEXT NOT NULL PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    idnat              TEXT NOT NULL UNIQUE,
    confirmed_by       TEXT NOT NULL,
    confirmed_at       TEXT NOT NULL,
    profession_code    TEXT,
    profession_label   TEXT,
    category_code      TEXT,
    savoir_faire_code  TEXT,
    savoir_faire_label TEXT,
    struck_off         TEXT,
    dmp_withheld       TEXT
);
