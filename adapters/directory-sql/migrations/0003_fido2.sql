-- FIDO2 security keys (WebAuthn discoverable credentials) registered by identities.
-- Portable SQL, as 0001: TEXT ids and RFC 3339 UTC times written by the adapter.

CREATE TABLE fido2_credentials (
    -- base64url credential id (WebAuthn §4), unique across every identity (§7.1 step 22).
    credential_id TEXT NOT NULL PRIMARY KEY,
    identity_id   TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    -- The user handle (a UUID) the key holds and returns with each discoverable assertion.
    user_handle   TEXT NOT NULL,
    name          TEXT NOT NULL,
    aaguid        TEXT NOT NULL,
    -- The verifier's public-key record, JSON written by the gateway.
    public_key    TEXT NOT NULL,
    -- WebAuthn §6.1.1 signCount: a 32-bit unsigned value, hence BIGINT.
    sign_count    BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);

CREATE INDEX fido2_credentials_by_identity ON fido2_credentials (identity_id);
