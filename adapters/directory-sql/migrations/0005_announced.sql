-- Professionals HR has announced before their first day (issue 5): when `psc.jit` is on, the
-- first login through Pro Santé Connect of an announced idNat creates their identity, once.
-- An announcement is used up by that login, withdrawn by HR, or lapses at `expires_at`.
-- Portable SQL (SQLite and PostgreSQL): TEXT keys and RFC 3339 UTC times written by the adapter.

CREATE TABLE announced_professionals (
    idnat        TEXT NOT NULL PRIMARY KEY,
    family_name  TEXT NOT NULL,
    given_name   TEXT NOT NULL,
    unit         TEXT,            -- UF code of the first affectation, if HR named one
    announced_by TEXT NOT NULL,
    announced_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
