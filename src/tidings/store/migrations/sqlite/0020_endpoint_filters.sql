-- Endpoint filters (issue 26 item 8): conditions on what an event says (JSON, checked and
-- compiled by tidings.filters), and whether the events they refuse are recorded as skipped.
-- Planning reads both, so a change of either bumps the organization's endpoints_version.
ALTER TABLE endpoints ADD COLUMN filter TEXT;
ALTER TABLE endpoints ADD COLUMN record_filtered INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER endpoints_subscription_changed;
CREATE TRIGGER endpoints_subscription_changed
AFTER UPDATE OF
    organization_id, event_types, partner_ids, accepted_schema_versions, sources, status,
    deleted_at, filter, record_filtered
ON endpoints
BEGIN
    UPDATE organizations SET endpoints_version = endpoints_version + 1
    WHERE id IN (OLD.organization_id, NEW.organization_id);
END;
