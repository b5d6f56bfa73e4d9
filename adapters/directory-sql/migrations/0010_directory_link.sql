-- The establishment's directory (issue 16, `vigie directory sync`): the stable id of the entry an
-- identity came from (AD's `objectGUID`, OpenLDAP's `entryUUID`), unchanged by a rename, so a
-- sync finds the person by it first, then by matricule. An identity with a link came from the
-- directory: when its entry is gone, the sync disables its account (a leaver).
-- Expand-only, portable SQL (SQLite and PostgreSQL); NULL for everyone else (NULLs are distinct
-- in a UNIQUE index on both).

ALTER TABLE identities ADD COLUMN directory_id TEXT;

CREATE UNIQUE INDEX identities_by_directory_id ON identities (directory_id);
