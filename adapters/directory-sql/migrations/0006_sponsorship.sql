-- Sponsorship ("parrainage", seeds 000, issue 7): a colleague of the same unit vouches, face to
-- face, for a professional without a usable card; the professional proves who they are with
-- answers to security questions they enrolled earlier.
-- Portable SQL (SQLite and PostgreSQL): TEXT ids chosen by the adapter, times as RFC 3339 TEXT
-- plus Unix seconds (BIGINT) where the adapter compares them.

-- Where the sponsorship notices go (HR feeds it, the demo sets it). NULL: no e-mail.
ALTER TABLE identities ADD COLUMN email TEXT;

-- Answers to security questions: the question's id in `sponsorship.questions`, the normalised
-- answer hashed with argon2id (PHC string, its own salt). Never the answer itself.
CREATE TABLE security_answers (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    answer_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (identity_id, question_id)
);

-- Each sponsorship granted: who vouched for whom, why, and the temporary credential it gave
-- (SHA-256 of a random code; the code itself was shown once). `revoked`: ended before its time.
CREATE TABLE sponsorships (
    id           TEXT NOT NULL PRIMARY KEY,
    sponsor_id   TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    sponsored_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    reason       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_unix BIGINT NOT NULL,
    code_hash    TEXT NOT NULL,
    expires_unix BIGINT NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);

-- "How many colleagues did this sponsor vouch for today?" and "which grants does this person hold?"
CREATE INDEX sponsorships_by_sponsor ON sponsorships (sponsor_id, created_unix);
CREATE INDEX sponsorships_by_sponsored ON sponsorships (sponsored_id, expires_unix);
