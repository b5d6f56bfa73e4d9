-- What the policy engine reads of a person beyond the HR record (issue 4):
-- - the kind of their login account: `personal`, or `generic` (a shared account: the RIE keeps
--   those off sensitive services and the DMP);
-- - their employment status: `active`, `suspended` or `left` (anything but `active` is refused
--   everywhere by the default policies).
-- Portable SQL (SQLite and PostgreSQL): plain ADD COLUMN with a constant default.

ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'personal';
ALTER TABLE identities ADD COLUMN employment_status TEXT NOT NULL DEFAULT 'active';
