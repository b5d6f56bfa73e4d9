-- The life cycle of a person (issue 17, docs/identity-lifecycle.md): the dates of their activity in
-- the establishment, who answers for them, what kind of person they are, where their record comes
-- from, and why the life cycle ended their access.
-- - `start_at` / `end_at`: RFC 3339 UTC instants to the second (`2027-01-31T23:00:00Z`), written by
--   the adapter so that they compare as text; nobody is let in before the first nor after the
--   second, whatever `employment_status` says (checked at each decision).
-- - `sponsor`: the matricule of the responsible manager (short missions, interns, contractors).
-- - `person_kind`: `staff`, `intern`, `contractor`, `agency`, `mission` (the HR feed's `kind`).
-- - `source`: `hr` for an identity the HR feed keeps (it becomes a leaver when a feed no longer
--   lists it), `cli` for a time-bounded person added by hand; NULL for the others (SCIM, LDAP,
--   demo, older imports), which the feed never ends.
-- - `lifecycle_ended`: why the life cycle disabled the person (a leaver, an end date passed); HR
--   brings back only those (a person suspended by hand stays suspended).
-- Expand-only, portable SQL (SQLite and PostgreSQL): nullable columns, no default to rewrite.

ALTER TABLE identities ADD COLUMN start_at TEXT;
ALTER TABLE identities ADD COLUMN end_at TEXT;
ALTER TABLE identities ADD COLUMN sponsor TEXT;
ALTER TABLE identities ADD COLUMN person_kind TEXT;
ALTER TABLE identities ADD COLUMN source TEXT;
ALTER TABLE identities ADD COLUMN lifecycle_ended TEXT;

-- The expiry watch asks "whose end date passes next?" and `vigie users list --expiring-within`.
CREATE INDEX identities_by_end_at ON identities (end_at);
