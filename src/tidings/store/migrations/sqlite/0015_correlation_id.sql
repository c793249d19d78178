-- Self-echo filtering (issue 26 item 7): the envelope's optional `correlationId`, set by the
-- platform from the request that caused the event, stored with it, delivered in the
-- X-Tidings-Correlation-Id header and filterable in the feed (only events that carry one are
-- indexed).
ALTER TABLE events ADD COLUMN correlation_id TEXT;
CREATE INDEX events_org_correlation ON events (organization_id, correlation_id)
    WHERE correlation_id IS NOT NULL;
