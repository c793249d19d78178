-- API keys with a lifecycle and scopes (issue 22): a name, the visible prefix (keys made
-- before this migration have none), a scope (existing keys keep their full powers: admin for
-- platform keys, write for organization keys), when last used (written at most once a minute),
-- an optional expiry, and when revoked (a revoked key stays listed, never works again).
ALTER TABLE api_keys ADD COLUMN name text;
ALTER TABLE api_keys ADD COLUMN prefix text;
ALTER TABLE api_keys ADD COLUMN scope text;
UPDATE api_keys SET scope = CASE WHEN kind = 'platform' THEN 'admin' ELSE 'write' END;
ALTER TABLE api_keys ALTER COLUMN scope SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check
    CHECK (scope IN ('admin', 'publish', 'write', 'read'));
ALTER TABLE api_keys ADD COLUMN last_used_at double precision;
ALTER TABLE api_keys ADD COLUMN expires_at double precision;
ALTER TABLE api_keys ADD COLUMN revoked_at double precision;
CREATE INDEX api_keys_org_created ON api_keys (organization_id, created_at, id);
