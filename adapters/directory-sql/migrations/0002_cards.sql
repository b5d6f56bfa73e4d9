-- Cards (CPS, CPE) of agents, their life cycle, and the administrative roles of staff (HR and
-- medical affairs bind and track cards: seeds 000).
--
-- Portable SQL, as in 0001: TEXT ids (UUIDs chosen by the adapter), times as RFC 3339 UTC TEXT
-- written by the adapter, no AUTOINCREMENT, no database-specific functions.

CREATE TABLE cards (
    id              TEXT NOT NULL PRIMARY KEY,
    identity_id     TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('cps', 'cpe')),
    status          TEXT NOT NULL CHECK (status IN ('requested', 'ordered', 'received', 'handed_over',
                                                    'returned', 'lost', 'stolen', 'expired')),
    -- The card's authentication certificate, once bound: issuer DN and serial as
    -- vigie-igc-sante writes them. NULL until bound; NULLs do not conflict in the UNIQUE below
    -- on either database.
    issuer_dn       TEXT,
    serial_hex      TEXT,
    cn              TEXT,
    bound_at        TEXT,
    bound_by        TEXT,
    -- Set when the names on the card differed from the agent's and HR bound it anyway.
    override_reason TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (issuer_dn, serial_hex)
);

CREATE INDEX cards_by_identity ON cards (identity_id);

-- One row per step of a card's life. `seq` numbers the steps of one card from 1, chosen by the
-- adapter inside its write transaction: times alone do not order steps made in one second.
CREATE TABLE card_events (
    card_id TEXT NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    status  TEXT NOT NULL,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    comment TEXT,
    PRIMARY KEY (card_id, seq)
);

CREATE TABLE identity_roles (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    PRIMARY KEY (identity_id, role)
);
