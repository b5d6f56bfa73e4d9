-- Card orders for joiners (issue 17, docs/identity-lifecycle.md "Card orders"): what HR sends the
-- ANS (a CPS) or the card provider (a CPE) for a person the HR feed brought in. `status` is
-- `ordered`, then `received` when a card of that holder is first registered or used, or
-- `cancelled` when the person leaves first. At most one open (`ordered`) order per person; a
-- person who comes back gets a new row. The order keeps the identity as it was sent (names, birth
-- date, idNat, métier, structure), since HR must answer for what was ordered.
-- Expand-only, portable SQL (SQLite and PostgreSQL).

CREATE TABLE card_orders (
    id          TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    matricule   TEXT NOT NULL,
    family_name TEXT NOT NULL,
    given_name  TEXT NOT NULL,
    birth_date  TEXT,
    idnat       TEXT,
    metier      TEXT,
    structure   TEXT,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE UNIQUE INDEX card_orders_one_open ON card_orders (identity_id) WHERE status = 'ordered';
CREATE INDEX card_orders_status ON card_orders (status, created_at);
