-- SCIM 2.0 provisioning (issue 16, RFC 7643 / RFC 7644): people and groups pushed by an
-- identity-governance tool or an HR connector. A provisioned person is an identity and its
-- account (what Vigie reads stays in those tables) plus this record: the client's document as it
-- was written and a version for ETags. Groups are the client's; one named after a Vigie role
-- grants it to its members (`identity_roles.granted_by` = `scim-group:<id>`, so that only the
-- grants a group made are taken back with it).
-- Expand-only, portable SQL (SQLite and PostgreSQL).

CREATE TABLE scim_users (
    identity_id   TEXT NOT NULL PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    external_id   TEXT,
    document      TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE scim_groups (
    id            TEXT NOT NULL PRIMARY KEY,
    display_name  TEXT NOT NULL UNIQUE,
    external_id   TEXT,
    role          TEXT,
    document      TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE scim_group_members (
    group_id      TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    identity_id   TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, identity_id)
);

CREATE INDEX scim_group_members_by_identity ON scim_group_members (identity_id);
