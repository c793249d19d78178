-- Endpoint filters (issue 26 item 8): conditions on what an event says (JSON, checked and
-- compiled by tidings.filters), and whether the events they refuse are recorded as skipped.
-- Planning reads both, so a change of either bumps the organization's endpoints_version.
ALTER TABLE endpoints ADD COLUMN filter jsonb;
ALTER TABLE endpoints ADD COLUMN record_filtered boolean NOT NULL DEFAULT false;
DROP TRIGGER endpoints_subscription_changed ON endpoints;
CREATE TRIGGER endpoints_subscription_changed
AFTER INSERT OR DELETE OR UPDATE OF
    organization_id, event_types, partner_ids, accepted_schema_versions, sources, status,
    deleted_at, filter, record_filtered
ON endpoints FOR EACH ROW EXECUTE FUNCTION tidings_endpoints_changed();
