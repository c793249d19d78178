-- The browser console's sessions and the single-use portal links that open them (issue 21).
-- Both are looked up by the SHA-256 of their token: the token itself (a cookie, a link) is
-- never stored. A session lives no longer than the key behind it: deleting that key deletes
-- its sessions and links (ON DELETE CASCADE).

CREATE TABLE console_sessions (
    id               TEXT PRIMARY KEY,
    token_hash       TEXT NOT NULL UNIQUE,
    key_id           TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('platform', 'organization')),
    organization_id  TEXT REFERENCES organizations (id),
    read_only        BOOLEAN NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    expires_at       DOUBLE PRECISION NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

CREATE TABLE portal_links (
    id               TEXT PRIMARY KEY,
    token_hash       TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    key_id           TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    read_only        BOOLEAN NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    expires_at       DOUBLE PRECISION NOT NULL,
    used_at          DOUBLE PRECISION
);
CREATE INDEX portal_links_expires ON portal_links (expires_at);
