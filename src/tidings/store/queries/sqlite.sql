-- Every runtime query of the SQLite store, as named blocks. Parameters are :named.
-- A unary `+` on a column (`+organization_id`) keeps SQLite's planner, which has no statistics,
-- from choosing that column's index over the more selective one.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
)

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at)
VALUES (:version, :name, (julianday('now') - 2440587.5) * 86400.0)

-- name: ping
SELECT 1

-- name: insert_organization
INSERT INTO organizations (id, name, created_at) VALUES (:id, :name, :created_at)

-- name: get_organization
SELECT * FROM organizations WHERE id = :id

-- name: insert_api_key
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at)
VALUES (:id, :key_hash, :kind, :organization_id, :created_at)

-- name: ensure_platform_key
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at)
VALUES (:id, :key_hash, :kind, :organization_id, :created_at)
ON CONFLICT (key_hash) DO NOTHING

-- name: find_api_key
SELECT * FROM api_keys WHERE key_hash = :key_hash

-- name: insert_partner
INSERT INTO partners (organization_id, partner_uuid, name, created_at)
VALUES (:organization_id, :partner_uuid, :name, :created_at)

-- name: list_partners
SELECT * FROM partners WHERE organization_id = :organization_id ORDER BY created_at, partner_uuid

-- name: insert_endpoint
INSERT INTO endpoints (
    id, organization_id, url, event_types, format, secrets, status, partner_ids,
    accepted_schema_versions, sources, description, headers, rate_limit_per_second, pause_reason,
    failure_streak, failing_since, last_success_at, created_at, updated_at, deleted_at
) VALUES (
    :id, :organization_id, :url, :event_types, :format, :secrets, :status, :partner_ids,
    :accepted_schema_versions, :sources, :description, :headers, :rate_limit_per_second,
    :pause_reason, :failure_streak, :failing_since, :last_success_at, :created_at, :updated_at,
    :deleted_at
)

-- name: get_endpoint
SELECT * FROM endpoints
WHERE organization_id = :organization_id AND id = :id
  AND (:include_deleted OR deleted_at IS NULL)

-- name: list_endpoints
SELECT * FROM endpoints
WHERE organization_id = :organization_id AND deleted_at IS NULL
  AND (:after_seq IS NULL OR seq > :after_seq)
ORDER BY seq
LIMIT :limit

-- name: list_subscribed_endpoints
SELECT * FROM endpoints
WHERE organization_id = :organization_id AND deleted_at IS NULL
  AND status IN ('active', 'paused')
ORDER BY seq

-- name: update_endpoint
UPDATE endpoints SET
    url = :url, event_types = :event_types, format = :format, partner_ids = :partner_ids,
    accepted_schema_versions = :accepted_schema_versions, sources = :sources,
    description = :description, headers = :headers,
    rate_limit_per_second = :rate_limit_per_second, secrets = :secrets, updated_at = :updated_at
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL

-- name: set_endpoint_secrets
UPDATE endpoints SET secrets = :secrets, updated_at = :now
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL

-- name: delete_endpoint
UPDATE endpoints SET deleted_at = :now, updated_at = :now
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL

-- name: fail_endpoint_deliveries
UPDATE deliveries SET
    status = 'failed', last_error = 'endpoint deleted', next_attempt_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE endpoint_id = :endpoint_id AND status IN ('pending', 'held')

-- name: pause_endpoint
UPDATE endpoints SET status = 'paused', pause_reason = :reason, updated_at = :now
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL
  AND status = 'active'

-- name: hold_endpoint_deliveries
UPDATE deliveries SET status = 'held', lease_owner = NULL, lease_expires_at = NULL,
    updated_at = :now
WHERE endpoint_id = :endpoint_id AND status = 'pending'
  AND (lease_expires_at IS NULL OR lease_expires_at < :now)

-- name: resume_endpoint
UPDATE endpoints SET status = 'active', pause_reason = NULL, failure_streak = 0,
    failing_since = NULL, updated_at = :now
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL

-- name: release_held_deliveries
UPDATE deliveries SET status = 'pending', next_attempt_at = :now, updated_at = :now
WHERE endpoint_id = :endpoint_id AND status = 'held'

-- name: insert_events
INSERT INTO events (
    id, organization_id, type, schema_version, source, partner_uuid, subject, attributes, data,
    idempotency_key, created_at
)
SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.organization_id'),
       json_extract(r.value, '$.type'), json_extract(r.value, '$.schema_version'),
       json_extract(r.value, '$.source'), json_extract(r.value, '$.partner_uuid'),
       json_extract(r.value, '$.subject'), json_extract(r.value, '$.attributes'),
       json_extract(r.value, '$.data'), json_extract(r.value, '$.idempotency_key'),
       json_extract(r.value, '$.created_at')
FROM json_each(:rows) AS r
WHERE true
ORDER BY r.key
ON CONFLICT DO NOTHING
RETURNING organization_id, id, seq

-- name: get_event
SELECT * FROM events WHERE organization_id = :organization_id AND id = :id

-- name: get_event_by_idempotency_key
SELECT * FROM events
WHERE organization_id = :organization_id AND idempotency_key = :idempotency_key

-- name: events_by_keys
SELECT * FROM events
WHERE (organization_id, id) IN (
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:keys)
)

-- name: list_events
SELECT * FROM events
WHERE organization_id = :organization_id
  AND (:after_seq IS NULL OR seq > :after_seq)
  AND (:no_types
       OR type IN (SELECT value FROM json_each(:exact))
       OR EXISTS (SELECT 1 FROM json_each(:prefixes) AS p
                  WHERE substr(events.type, 1, length(p.value)) = p.value))
ORDER BY seq
LIMIT :limit

-- name: events_page_fingerprint
SELECT count(*) AS n, coalesce(max(seq), 0) AS last_seq FROM (
    SELECT seq FROM events
    WHERE organization_id = :organization_id
      AND (:after_seq IS NULL OR seq > :after_seq)
      AND (:no_types
           OR type IN (SELECT value FROM json_each(:exact))
           OR EXISTS (SELECT 1 FROM json_each(:prefixes) AS p
                      WHERE substr(events.type, 1, length(p.value)) = p.value))
    ORDER BY seq
    LIMIT :limit
)

-- name: events_without_delivery
SELECT * FROM events AS e
WHERE e.organization_id = :organization_id
  AND e.created_at >= :since
  AND (:until IS NULL OR e.created_at < :until)
  AND (:no_types
       OR e.type IN (SELECT value FROM json_each(:exact))
       OR EXISTS (SELECT 1 FROM json_each(:prefixes) AS p
                  WHERE substr(e.type, 1, length(p.value)) = p.value))
  AND NOT EXISTS (SELECT 1 FROM deliveries AS d
                  WHERE d.endpoint_id = :endpoint_id AND d.event_id = e.id)
ORDER BY e.seq
LIMIT :limit

-- name: insert_deliveries
INSERT INTO deliveries (
    id, organization_id, event_id, endpoint_id, status, skip_reason, schema_version,
    next_attempt_at, is_meta, created_at, updated_at
)
SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.organization_id'),
       json_extract(r.value, '$.event_id'), json_extract(r.value, '$.endpoint_id'),
       json_extract(r.value, '$.status'), json_extract(r.value, '$.skip_reason'),
       json_extract(r.value, '$.schema_version'),
       CASE WHEN json_extract(r.value, '$.status') = 'pending'
            THEN json_extract(r.value, '$.now') END,
       json_extract(r.value, '$.is_meta'), json_extract(r.value, '$.now'),
       json_extract(r.value, '$.now')
FROM json_each(:rows) AS r
WHERE true
ON CONFLICT (endpoint_id, event_id) DO NOTHING

-- name: get_delivery
SELECT * FROM deliveries WHERE organization_id = :organization_id AND id = :id

-- Delivery history, newest first. Three variants so each filter gets its own index (a
-- prepared `:x IS NULL OR col = :x` cannot pick one).
-- name: list_deliveries
SELECT * FROM deliveries
WHERE organization_id = :organization_id
  AND (:before_seq IS NULL OR seq < :before_seq)
  AND (:endpoint_id IS NULL OR endpoint_id = :endpoint_id)
  AND (:event_id IS NULL OR event_id = :event_id)
  AND (:status IS NULL OR status = :status)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY seq DESC
LIMIT :limit

-- name: list_deliveries_for_endpoint
SELECT * FROM deliveries
WHERE endpoint_id = :endpoint_id AND +organization_id = :organization_id
  AND (:before_seq IS NULL OR seq < :before_seq)
  AND (:endpoint_id IS NULL OR endpoint_id = :endpoint_id)
  AND (:event_id IS NULL OR event_id = :event_id)
  AND (:status IS NULL OR status = :status)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY seq DESC
LIMIT :limit

-- name: list_deliveries_for_event
SELECT * FROM deliveries
WHERE event_id = :event_id AND +organization_id = :organization_id
  AND (:before_seq IS NULL OR seq < :before_seq)
  AND (:endpoint_id IS NULL OR endpoint_id = :endpoint_id)
  AND (:event_id IS NULL OR event_id = :event_id)
  AND (:status IS NULL OR status = :status)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY seq DESC
LIMIT :limit

-- name: list_attempts
SELECT a.* FROM attempts AS a
WHERE a.delivery_id = :delivery_id AND a.organization_id = :organization_id
ORDER BY a.seq

-- name: replay_delivery
UPDATE deliveries SET
    series = series + 1, attempt_count = 0, next_attempt_at = :now,
    status = CASE WHEN (SELECT ep.status FROM endpoints AS ep WHERE ep.id = deliveries.endpoint_id)
                       = 'paused' THEN 'held' ELSE 'pending' END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE organization_id = :organization_id AND id = :id AND status <> 'skipped'
  AND NOT EXISTS (SELECT 1 FROM endpoints AS ep
                  WHERE ep.id = deliveries.endpoint_id AND ep.deleted_at IS NOT NULL)
RETURNING *

-- name: replay_endpoint_deliveries
UPDATE deliveries SET
    series = series + 1, attempt_count = 0, next_attempt_at = :now,
    status = CASE WHEN (SELECT ep.status FROM endpoints AS ep WHERE ep.id = deliveries.endpoint_id)
                       = 'paused' THEN 'held' ELSE 'pending' END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE organization_id = :organization_id AND endpoint_id = :endpoint_id
  AND created_at >= :since AND (:until IS NULL OR created_at < :until)
  AND status IN (SELECT value FROM json_each(:statuses)) AND status <> 'skipped'
  AND NOT EXISTS (SELECT 1 FROM endpoints AS ep
                  WHERE ep.id = deliveries.endpoint_id AND ep.deleted_at IS NOT NULL)

-- name: revive_skipped_delivery
UPDATE deliveries SET
    series = series + 1, attempt_count = 0, next_attempt_at = :now, skip_reason = NULL,
    schema_version = :schema_version,
    status = CASE WHEN (SELECT ep.status FROM endpoints AS ep WHERE ep.id = deliveries.endpoint_id)
                       = 'paused' THEN 'held' ELSE 'pending' END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE organization_id = :organization_id AND endpoint_id = :endpoint_id AND id = :id
  AND status = 'skipped'
  AND NOT EXISTS (SELECT 1 FROM endpoints AS ep
                  WHERE ep.id = deliveries.endpoint_id AND ep.deleted_at IS NOT NULL)

-- name: claim_due
UPDATE deliveries SET lease_owner = :worker_id, lease_expires_at = :lease_until
WHERE seq IN (
    SELECT seq FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= :now AND next_attempt_at >= :due_from
      AND (lease_expires_at IS NULL OR lease_expires_at < :now)
    ORDER BY next_attempt_at
    LIMIT :limit
)
RETURNING *

-- name: settle_unsendable_claims
UPDATE deliveries SET
    status = CASE WHEN ep.deleted_at IS NOT NULL THEN 'failed' ELSE 'held' END,
    last_error = CASE WHEN ep.deleted_at IS NOT NULL THEN 'endpoint deleted'
                      ELSE deliveries.last_error END,
    next_attempt_at = CASE WHEN ep.deleted_at IS NOT NULL THEN NULL
                           ELSE deliveries.next_attempt_at END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM endpoints AS ep
WHERE deliveries.id IN (SELECT value FROM json_each(:ids)) AND deliveries.lease_owner = :worker_id
  AND ep.id = deliveries.endpoint_id

-- name: endpoints_by_ids
SELECT * FROM endpoints WHERE id IN (SELECT value FROM json_each(:ids))

-- name: record_delivery_outcome
UPDATE deliveries SET
    status = CASE WHEN o.status = 'pending' AND ep.status = 'paused' THEN 'held'
                  ELSE o.status END,
    attempt_count = deliveries.attempt_count + 1, next_attempt_at = o.next_attempt_at,
    last_attempt_at = o.started_at, last_status_code = o.last_status_code,
    last_error = o.last_error, lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM (SELECT json_extract(r.value, '$.id') AS id, json_extract(r.value, '$.status') AS status,
             json_extract(r.value, '$.next_attempt_at') AS next_attempt_at,
             json_extract(r.value, '$.started_at') AS started_at,
             json_extract(r.value, '$.last_status_code') AS last_status_code,
             json_extract(r.value, '$.last_error') AS last_error
      FROM json_each(:rows) AS r) AS o,
     endpoints AS ep
WHERE deliveries.id = o.id AND deliveries.lease_owner = :worker_id
  AND ep.id = deliveries.endpoint_id
RETURNING id, organization_id, endpoint_id, series

-- name: insert_attempt
INSERT INTO attempts (
    delivery_id, organization_id, number, series, started_at, duration_ms, status_code, error,
    response_excerpt
)
SELECT json_extract(r.value, '$.delivery_id'), json_extract(r.value, '$.organization_id'),
       json_extract(r.value, '$.number'), json_extract(r.value, '$.series'),
       json_extract(r.value, '$.started_at'), json_extract(r.value, '$.duration_ms'),
       json_extract(r.value, '$.status_code'), json_extract(r.value, '$.error'),
       json_extract(r.value, '$.response_excerpt')
FROM json_each(:rows) AS r
ORDER BY r.key

-- name: record_endpoint_health
UPDATE endpoints SET
    failure_streak = CASE WHEN c.reset THEN c.failures
                          ELSE endpoints.failure_streak + c.failures END,
    failing_since = CASE
        WHEN c.failures = 0 AND c.reset THEN NULL
        WHEN c.failures = 0 THEN endpoints.failing_since
        WHEN c.reset THEN :now
        ELSE coalesce(endpoints.failing_since, :now) END,
    last_success_at = CASE WHEN c.reset THEN :now ELSE endpoints.last_success_at END
FROM (SELECT json_extract(r.value, '$.id') AS id, json_extract(r.value, '$.reset') AS reset,
             json_extract(r.value, '$.failures') AS failures
      FROM json_each(:rows) AS r) AS c
WHERE endpoints.id = c.id
RETURNING id, organization_id, status, failure_streak, failing_since, last_success_at

-- name: release
-- :due is {delivery id: due time}
UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL,
    next_attempt_at = json_extract(:due, '$."' || id || '"')
WHERE id IN (SELECT key FROM json_each(:due)) AND lease_owner = :worker_id
  AND status = 'pending'

-- name: backlog_stats
SELECT count(*) AS due, min(next_attempt_at) AS oldest_due_at FROM deliveries
WHERE status = 'pending' AND next_attempt_at <= :now

-- name: count_deliveries_by_status
SELECT status, count(*) AS n FROM deliveries GROUP BY status

-- name: count_endpoints_by_status
SELECT status, count(*) AS n FROM endpoints WHERE deleted_at IS NULL GROUP BY status

-- name: worst_endpoints
SELECT organization_id, id, failure_streak FROM endpoints
WHERE failure_streak > 0 AND deleted_at IS NULL
ORDER BY failure_streak DESC, seq
LIMIT :limit

-- name: purge_select_deliveries
SELECT seq, id FROM deliveries
WHERE status IN ('succeeded', 'failed', 'skipped') AND created_at < :cutoff
ORDER BY created_at
LIMIT :limit

-- name: purge_attempts
DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(:ids))

-- name: purge_deliveries
DELETE FROM deliveries WHERE seq IN (SELECT value FROM json_each(:seqs))

-- name: purge_events
DELETE FROM events WHERE seq IN (
    SELECT e.seq FROM events AS e
    WHERE e.created_at < :cutoff
      AND NOT EXISTS (SELECT 1 FROM deliveries AS d
                      WHERE d.event_id = e.id AND +d.organization_id = e.organization_id
                        AND d.status IN ('pending', 'held'))
    ORDER BY e.created_at
    LIMIT :limit
)

-- name: get_projection
SELECT * FROM projections
WHERE organization_id = :organization_id AND kind = :kind AND key = :key

-- name: upsert_projection
INSERT INTO projections (
    organization_id, kind, key, state, version, updated_at, source_created_at, last_event_id
) VALUES (
    :organization_id, :kind, :key, :state, 1, :updated_at, :source_created_at, :last_event_id
)
ON CONFLICT (organization_id, kind, key) DO UPDATE SET
    state = excluded.state, version = projections.version + 1,
    updated_at = excluded.updated_at, source_created_at = excluded.source_created_at,
    last_event_id = excluded.last_event_id

-- name: insert_console_session
INSERT INTO console_sessions (
    id, token_hash, key_id, kind, organization_id, read_only, created_at, expires_at
) VALUES (
    :id, :token_hash, :key_id, :kind, :organization_id, :read_only, :created_at, :expires_at
)

-- name: find_console_session
SELECT * FROM console_sessions WHERE token_hash = :token_hash AND expires_at > :now

-- name: delete_console_session
DELETE FROM console_sessions WHERE token_hash = :token_hash

-- name: insert_portal_link
INSERT INTO portal_links (
    id, token_hash, organization_id, key_id, read_only, created_at, expires_at
) VALUES (
    :id, :token_hash, :organization_id, :key_id, :read_only, :created_at, :expires_at
)

-- name: use_portal_link
UPDATE portal_links SET used_at = :now
WHERE token_hash = :token_hash AND used_at IS NULL AND expires_at > :now
RETURNING *

-- name: find_portal_link
SELECT * FROM portal_links WHERE token_hash = :token_hash

-- name: purge_console_sessions
DELETE FROM console_sessions WHERE expires_at < :cutoff

-- name: purge_portal_links
DELETE FROM portal_links WHERE expires_at < :cutoff
