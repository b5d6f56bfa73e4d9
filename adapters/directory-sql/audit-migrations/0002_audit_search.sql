-- Searching the trail (issue 18, `vigie audit search`, `GET /admin/audit`; docs/audit.md,
-- "Searching"): one GIN index over each record as JSON answers the equality filters (person by
-- `subject` or `idnat`, `client_id`, `kind`, `outcome`) through `@>`, whichever are combined;
-- `written_at` bounds a time range (the record's own `at` then filters exactly). Expand-only: two
-- indexes, nothing read or written by an older Vigie changes. Built while the migration holds the
-- table (writes wait): on a large trail run `vigie migrate` in a quiet hour.
CREATE INDEX audit_records_fields ON audit_records USING GIN ((record::jsonb) jsonb_path_ops);
CREATE INDEX audit_records_written_at ON audit_records (written_at);
