-- organizations.endpoints_version on SQLite too (PostgreSQL has had it since its 0003): it
-- counts the changes to an organization's endpoints that can change which endpoints an event
-- goes to, and how (created, deleted, subscription fields, status). The store keeps an
-- organization's endpoints in memory with the version it read them at, and `publish` checks it,
-- on both dialects alike.
ALTER TABLE organizations ADD COLUMN endpoints_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER endpoints_created AFTER INSERT ON endpoints
BEGIN
    UPDATE organizations SET endpoints_version = endpoints_version + 1
    WHERE id = NEW.organization_id;
END;

CREATE TRIGGER endpoints_removed AFTER DELETE ON endpoints
BEGIN
    UPDATE organizations SET endpoints_version = endpoints_version + 1
    WHERE id = OLD.organization_id;
END;

-- Not on the worker's own bookkeeping (failure streak, last success): only what planning reads.
CREATE TRIGGER endpoints_subscription_changed
AFTER UPDATE OF
    organization_id, event_types, partner_ids, accepted_schema_versions, sources, status,
    deleted_at
ON endpoints
BEGIN
    UPDATE organizations SET endpoints_version = endpoints_version + 1
    WHERE id IN (OLD.organization_id, NEW.organization_id);
END;
