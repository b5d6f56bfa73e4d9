-- The audit trail in PostgreSQL (issue 18; docs/audit.md, "One trail for all replicas"): one
-- global hash chain for every replica, append-only. PostgreSQL only (a trigger in PL/pgSQL), so
-- a migration set of its own (`audit-migrations`, recorded in `_vigie_audit_migrations`), apart
-- from the directory's portable set: `audit.url` may also name another database than the
-- directory's. Expand-only like the directory's migrations (docs/operations.md).

-- One row per record: `record` is the sealed line exactly as hashed (the event's JSON with its
-- `seq`, `prev` and `hash`), so that `vigie audit verify` checks the same bytes as for a file;
-- `seq`, `prev` and `hash` are copies for the order and the lookups, checked against `record`.
CREATE TABLE audit_records (
    seq BIGINT PRIMARY KEY,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    record TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The signed checkpoints (C2SP signed notes), as `<trail>.checkpoints` holds them for a file.
CREATE TABLE audit_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    size BIGINT NOT NULL,
    note TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Append-only whatever the grants: UPDATE, DELETE and TRUNCATE are refused. (The gateway's role
-- gets INSERT and SELECT only, docs/audit.md; the trigger also stops the table's owner, unless it
-- disables the trigger first: that leaves the chain and the checkpoints to catch the edit.)
CREATE FUNCTION vigie_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION vigie_audit_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION vigie_audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION vigie_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION vigie_audit_append_only();
