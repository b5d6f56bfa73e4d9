-- The purge of the trail in PostgreSQL (issue 18; docs/audit.md, "Retention and purge"): a record
-- past its retention becomes a stub keeping `seq`, `prev` and `hash` (the records after it still
-- link to it, the checkpoints still match), listed in a purge note signed with the checkpoint key.
-- Expand-only: a table, a function, and the append-only trigger's function now letting through
-- the one UPDATE a purge makes; an older Vigie neither reads nor writes any of it.

-- The signed purge notes (C2SP signed notes, as `{"purge": …}` lines of `<trail>.checkpoints`
-- for a file), append-only like the checkpoints.
CREATE TABLE audit_purge_notes (
    id BIGSERIAL PRIMARY KEY,
    note TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_purge_notes_append_only BEFORE UPDATE OR DELETE ON audit_purge_notes
    FOR EACH ROW EXECUTE FUNCTION vigie_audit_append_only();
CREATE TRIGGER audit_purge_notes_no_truncate BEFORE TRUNCATE ON audit_purge_notes
    FOR EACH STATEMENT EXECUTE FUNCTION vigie_audit_append_only();

-- Still refuses every DELETE and TRUNCATE, and every UPDATE but one: a row of `audit_records`
-- turned into its stub, exactly the text `vigie audit purge` writes for a file
-- (`{"seq":N,"prev":"…","purged":"YYYY-MM-DD","hash":"…"}`), built from the row's own columns,
-- which stay as they were. A stub cannot carry anything of the record, nor change its link; a
-- stub no signed note lists is named by `vigie audit verify`.
CREATE OR REPLACE FUNCTION vigie_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_records'
        AND NEW.seq = OLD.seq AND NEW.prev = OLD.prev AND NEW.hash = OLD.hash
        AND NEW.written_at = OLD.written_at
        AND NEW.record ~ '"purged":"\d{4}-\d{2}-\d{2}"'
        AND NEW.record = format('{"seq":%s,"prev":"%s","purged":"%s","hash":"%s"}',
            OLD.seq, OLD.prev, substring(NEW.record from '"purged":"(\d{4}-\d{2}-\d{2})"'), OLD.hash)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The purge itself, run with the rights of the role that ran this migration (the tables' owner):
-- whoever may EXECUTE it can stub the records it names — only those whose hash is the one given,
-- so a purge cannot stub a record it did not verify — after storing the signed note listing them,
-- in one transaction. The role of `vigie audit purge` (`audit.purge_url`) needs EXECUTE on this
-- and SELECT on the tables, nothing else: no UPDATE, no DELETE, no ALTER (docs/audit.md).
-- Returns how many rows became stubs.
CREATE FUNCTION vigie_audit_purge(seqs BIGINT[], hashes TEXT[], day DATE, note TEXT) RETURNS BIGINT
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    stubbed BIGINT;
BEGIN
    IF cardinality(seqs) IS DISTINCT FROM cardinality(hashes) OR cardinality(seqs) = 0 THEN
        RAISE EXCEPTION 'vigie_audit_purge: as many hashes as sequence numbers, at least one';
    END IF;
    INSERT INTO audit_purge_notes (note) VALUES (note);
    UPDATE audit_records r
        SET record = format('{"seq":%s,"prev":"%s","purged":"%s","hash":"%s"}',
            r.seq, r.prev, to_char(day, 'YYYY-MM-DD'), r.hash)
        FROM UNNEST(seqs, hashes) AS p(seq, hash)
        WHERE r.seq = p.seq AND r.hash = p.hash
            AND r.record NOT LIKE format('{"seq":%s,"prev":"%s","purged":"%%', r.seq, r.prev);
    GET DIAGNOSTICS stubbed = ROW_COUNT;
    RETURN stubbed;
END
$$;
REVOKE ALL ON FUNCTION vigie_audit_purge(BIGINT[], TEXT[], DATE, TEXT) FROM PUBLIC;
