-- API keys with a lifecycle and scopes (issue 22): a name, the visible prefix (keys made
-- before this migration have none), a scope (existing keys keep their full powers: admin for
-- platform keys, write for organization keys), when last used (written at most once a minute),
-- an optional expiry, and when revoked (a revoked key stays listed, never works again).
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN prefix TEXT;
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'
    CHECK (scope IN ('admin', 'publish', 'write', 'read'));
UPDATE api_keys SET scope = 'admin' WHERE kind = 'platform';
ALTER TABLE api_keys ADD COLUMN last_used_at REAL;
ALTER TABLE api_keys ADD COLUMN expires_at REAL;
ALTER TABLE api_keys ADD COLUMN revoked_at REAL;
CREATE INDEX api_keys_org_created ON api_keys (organization_id, created_at, id);
