-- Every runtime query of the PostgreSQL store, as named blocks. Parameters are $n; batches are
-- passed as one JSON document (json_to_recordset) or as arrays, so a batch costs one round trip
-- whatever its size.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL
)

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at)
VALUES ($1, $2, extract(epoch FROM clock_timestamp()))

-- name: migration_lock
SELECT pg_advisory_lock(7301868437105066801)

-- name: migration_unlock
SELECT pg_advisory_unlock(7301868437105066801)

-- name: notify_wakeup
SELECT pg_notify('tidings_wakeup', '')

-- name: ping
SELECT 1

-- name: insert_organization
INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)

-- name: get_organization
SELECT * FROM organizations WHERE id = $1

-- name: insert_api_key
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at)
VALUES ($1, $2, $3, $4, $5)

-- name: ensure_platform_key
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key_hash) DO NOTHING

-- name: find_api_key
SELECT * FROM api_keys WHERE key_hash = $1

-- name: insert_partner
INSERT INTO partners (organization_id, partner_uuid, name, created_at) VALUES ($1, $2, $3, $4)

-- name: list_partners
SELECT * FROM partners WHERE organization_id = $1 ORDER BY created_at, partner_uuid

-- name: insert_endpoint
INSERT INTO endpoints (
    id, organization_id, url, event_types, format, secrets, status, partner_ids,
    accepted_schema_versions, sources, description, headers, rate_limit_per_second, pause_reason,
    failure_streak, failing_since, last_success_at, created_at, updated_at, deleted_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
          $20)

-- name: get_endpoint
SELECT * FROM endpoints
WHERE organization_id = $1 AND id = $2 AND ($3::boolean OR deleted_at IS NULL)

-- name: list_endpoints
SELECT * FROM endpoints
WHERE organization_id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR seq > $2)
ORDER BY seq
LIMIT $3

-- name: list_subscribed_endpoints
-- With the organization's endpoints_version (migration 0003), read in one snapshot; one row with
-- null endpoint columns when it has none, none when there is no such organization.
SELECT o.endpoints_version AS subscribers_version, e.*
FROM organizations o
LEFT JOIN endpoints e
  ON e.organization_id = o.id AND e.deleted_at IS NULL AND e.status IN ('active', 'paused')
WHERE o.id = $1
ORDER BY e.seq

-- name: update_endpoint
UPDATE endpoints SET
    url = $3, event_types = $4, format = $5, partner_ids = $6, accepted_schema_versions = $7,
    sources = $8, description = $9, headers = $10, rate_limit_per_second = $11, secrets = $12,
    updated_at = $13
WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL

-- name: set_endpoint_secrets
UPDATE endpoints SET secrets = $3, updated_at = $4
WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL

-- name: delete_endpoint
UPDATE endpoints SET deleted_at = $3, updated_at = $3
WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL

-- name: fail_endpoint_deliveries
UPDATE deliveries SET
    status = 'failed', last_error = 'endpoint deleted', next_attempt_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
WHERE endpoint_id = $1 AND status IN ('pending', 'held')

-- name: pause_endpoint
UPDATE endpoints SET status = 'paused', pause_reason = $3, updated_at = $4
WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL AND status = 'active'

-- name: hold_endpoint_deliveries
UPDATE deliveries SET status = 'held', lease_owner = NULL, lease_expires_at = NULL,
    updated_at = $2
WHERE endpoint_id = $1 AND status = 'pending'
  AND (lease_expires_at IS NULL OR lease_expires_at < $2)

-- name: resume_endpoint
UPDATE endpoints SET status = 'active', pause_reason = NULL, failure_streak = 0,
    failing_since = NULL, updated_at = $3
WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL

-- name: release_held_deliveries
UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2
WHERE endpoint_id = $1 AND status = 'held'

-- name: insert_events
INSERT INTO events (
    id, organization_id, type, schema_version, source, partner_uuid, subject, attributes, data,
    idempotency_key, created_at
)
SELECT t.id, t.organization_id, t.type, t.schema_version, t.source, t.partner_uuid, t.subject,
       t.attributes, coalesce(t.data, 'null'::jsonb), t.idempotency_key, t.created_at
FROM ROWS FROM (jsonb_to_recordset($1::text::jsonb)
                AS (id text, organization_id text, type text, schema_version integer,
                    source text, partner_uuid text, subject text, attributes jsonb, data jsonb,
                    idempotency_key text, created_at double precision))
     WITH ORDINALITY
     AS t(id, organization_id, type, schema_version, source, partner_uuid, subject, attributes,
          data, idempotency_key, created_at, n)
ORDER BY t.n
ON CONFLICT DO NOTHING
RETURNING organization_id, id, seq

-- name: get_event
SELECT * FROM events WHERE organization_id = $1 AND id = $2

-- name: get_event_by_idempotency_key
SELECT * FROM events WHERE organization_id = $1 AND idempotency_key = $2

-- name: events_by_keys
SELECT * FROM events
WHERE (organization_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))

-- name: list_events
SELECT * FROM events
WHERE organization_id = $1
  AND ($2::bigint IS NULL OR seq > $2)
  AND ($3::boolean OR type = ANY($4::text[])
       OR EXISTS (SELECT 1 FROM unnest($5::text[]) AS p WHERE starts_with(events.type, p)))
ORDER BY seq
LIMIT $6

-- name: events_page_fingerprint
SELECT count(*) AS n, coalesce(max(seq), 0) AS last_seq FROM (
    SELECT seq FROM events
    WHERE organization_id = $1
      AND ($2::bigint IS NULL OR seq > $2)
      AND ($3::boolean OR type = ANY($4::text[])
           OR EXISTS (SELECT 1 FROM unnest($5::text[]) AS p WHERE starts_with(events.type, p)))
    ORDER BY seq
    LIMIT $6
) AS page

-- name: events_without_delivery
SELECT * FROM events AS e
WHERE e.organization_id = $1
  AND e.created_at >= $3
  AND ($4::double precision IS NULL OR e.created_at < $4)
  AND ($5::boolean OR e.type = ANY($6::text[])
       OR EXISTS (SELECT 1 FROM unnest($7::text[]) AS p WHERE starts_with(e.type, p)))
  AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.endpoint_id = $2 AND d.event_id = e.id)
ORDER BY e.seq
LIMIT $8

-- name: insert_deliveries
INSERT INTO deliveries (
    id, organization_id, event_id, endpoint_id, status, skip_reason, schema_version,
    next_attempt_at, is_meta, created_at, updated_at
)
SELECT t.id, t.organization_id, t.event_id, t.endpoint_id, t.status, t.skip_reason,
       t.schema_version, CASE WHEN t.status = 'pending' THEN t.now END, t.is_meta, t.now, t.now
FROM json_to_recordset($1::json)
     AS t(id text, organization_id text, event_id text, endpoint_id text, status text,
          skip_reason text, schema_version integer, is_meta boolean, now double precision)
ON CONFLICT (endpoint_id, event_id) DO NOTHING

-- name: get_delivery
SELECT * FROM deliveries WHERE organization_id = $1 AND id = $2

-- Delivery history, newest first. Three variants so each filter gets its own index (a
-- generic plan of `$n IS NULL OR col = $n` cannot pick one).
-- name: list_deliveries
SELECT * FROM deliveries
WHERE organization_id = $1
  AND ($2::bigint IS NULL OR seq < $2)
  AND ($3::text IS NULL OR endpoint_id = $3)
  AND ($4::text IS NULL OR event_id = $4)
  AND ($5::text IS NULL OR status = $5)
  AND ($6::double precision IS NULL OR created_at >= $6)
  AND ($7::double precision IS NULL OR created_at < $7)
ORDER BY seq DESC
LIMIT $8

-- name: list_deliveries_for_endpoint
SELECT * FROM deliveries
WHERE endpoint_id = $3 AND organization_id = $1
  AND ($2::bigint IS NULL OR seq < $2)
  AND ($3::text IS NULL OR endpoint_id = $3)
  AND ($4::text IS NULL OR event_id = $4)
  AND ($5::text IS NULL OR status = $5)
  AND ($6::double precision IS NULL OR created_at >= $6)
  AND ($7::double precision IS NULL OR created_at < $7)
ORDER BY seq DESC
LIMIT $8

-- name: list_deliveries_for_event
SELECT * FROM deliveries
WHERE event_id = $4 AND organization_id = $1
  AND ($2::bigint IS NULL OR seq < $2)
  AND ($3::text IS NULL OR endpoint_id = $3)
  AND ($4::text IS NULL OR event_id = $4)
  AND ($5::text IS NULL OR status = $5)
  AND ($6::double precision IS NULL OR created_at >= $6)
  AND ($7::double precision IS NULL OR created_at < $7)
ORDER BY seq DESC
LIMIT $8

-- name: list_attempts
SELECT * FROM attempts WHERE delivery_id = $2 AND organization_id = $1 ORDER BY seq

-- name: replay_delivery
UPDATE deliveries AS d SET
    series = d.series + 1, attempt_count = 0, next_attempt_at = $3,
    status = CASE WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
FROM endpoints AS ep
WHERE d.organization_id = $1 AND d.id = $2 AND d.status <> 'skipped'
  AND ep.id = d.endpoint_id AND ep.deleted_at IS NULL
RETURNING d.*

-- name: replay_endpoint_deliveries
UPDATE deliveries AS d SET
    series = d.series + 1, attempt_count = 0, next_attempt_at = $6,
    status = CASE WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $6
FROM endpoints AS ep
WHERE d.organization_id = $1 AND d.endpoint_id = $2
  AND d.created_at >= $3 AND ($4::double precision IS NULL OR d.created_at < $4)
  AND d.status = ANY($5::text[]) AND d.status <> 'skipped'
  AND ep.id = d.endpoint_id AND ep.deleted_at IS NULL

-- name: revive_skipped_delivery
-- Every (id, schema_version) of the batch in one statement ($3: JSON list).
UPDATE deliveries AS d SET
    series = d.series + 1, attempt_count = 0, next_attempt_at = $4, skip_reason = NULL,
    schema_version = r.schema_version,
    status = CASE WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
FROM json_to_recordset($3::json) AS r(id text, schema_version integer), endpoints AS ep
WHERE d.organization_id = $1 AND d.endpoint_id = $2 AND d.id = r.id AND d.status = 'skipped'
  AND ep.id = d.endpoint_id AND ep.deleted_at IS NULL

-- name: claim_due
-- `seq = ANY(ARRAY(...))` and not a join with the due rows: for a join the planner sizes the
-- update side from the table's statistics and, on a table of some ten thousand rows, chose a
-- hash join over a sequential scan of every delivery (dead versions included) on each claim.
-- The array makes it a primary-key lookup per claimed row whatever the table's size.
-- `next_attempt_at >= $5` (the claimer's floor, -Infinity for a scan from the start): the due
-- index keeps an entry for every delivery already sent until VACUUM, all of them at its start,
-- so a scan from the start reads more index pages with each delivery drained (some 120 pages
-- after 28,000, and growing); from the floor it reads the live part only.
UPDATE deliveries SET lease_owner = $1, lease_expires_at = $3
WHERE seq = ANY(ARRAY(
    SELECT seq FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= $2 AND next_attempt_at >= $5
      AND (lease_expires_at IS NULL OR lease_expires_at < $2)
    ORDER BY next_attempt_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
))
RETURNING *

-- name: settle_unsendable_claims
UPDATE deliveries AS d SET
    status = CASE WHEN ep.deleted_at IS NOT NULL THEN 'failed' ELSE 'held' END,
    last_error = CASE WHEN ep.deleted_at IS NOT NULL THEN 'endpoint deleted' ELSE d.last_error END,
    next_attempt_at = CASE WHEN ep.deleted_at IS NOT NULL THEN NULL ELSE d.next_attempt_at END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
FROM endpoints AS ep
WHERE d.id = ANY($1::text[]) AND d.lease_owner = $2 AND ep.id = d.endpoint_id

-- name: endpoints_by_ids
SELECT * FROM endpoints WHERE id = ANY($1::text[])

-- name: record_outcomes
SELECT tidings_record_outcomes($1, $2::json, $3, $4::text[], $5::text[])

-- name: release
-- $3: {delivery id: due time}
UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL,
    next_attempt_at = ($3::text::jsonb ->> id)::double precision
WHERE id = ANY($1::text[]) AND lease_owner = $2 AND status = 'pending'

-- name: backlog_stats
SELECT count(*) AS due, min(next_attempt_at) AS oldest_due_at FROM deliveries
WHERE status = 'pending' AND next_attempt_at <= $1

-- name: count_deliveries_by_status
SELECT status, count(*) AS n FROM deliveries GROUP BY status

-- name: count_endpoints_by_status
SELECT status, count(*) AS n FROM endpoints WHERE deleted_at IS NULL GROUP BY status

-- name: worst_endpoints
SELECT organization_id, id, failure_streak FROM endpoints
WHERE failure_streak > 0 AND deleted_at IS NULL
ORDER BY failure_streak DESC, seq
LIMIT $1

-- name: purge_select_deliveries
SELECT seq, id FROM deliveries
WHERE status IN ('succeeded', 'failed', 'skipped') AND created_at < $1
ORDER BY created_at
LIMIT $2

-- name: purge_attempts
DELETE FROM attempts WHERE delivery_id = ANY($1::text[])

-- name: purge_deliveries
DELETE FROM deliveries
WHERE seq = ANY($1::bigint[]) AND status IN ('succeeded', 'failed', 'skipped')

-- name: purge_events
DELETE FROM events WHERE seq IN (
    SELECT e.seq FROM events AS e
    WHERE e.created_at < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries AS d
                      WHERE d.organization_id = e.organization_id AND d.event_id = e.id
                        AND d.status IN ('pending', 'held'))
    ORDER BY e.created_at
    LIMIT $2
)

-- name: lock_projections
-- One advisory lock per projection key of a publish batch, taken in key order (the caller
-- sorts), so concurrent publishers never deadlock.
SELECT pg_advisory_xact_lock(hashtextextended(t.organization_id || '/' || t.kind || '/' || t.key, 0))
FROM (
    SELECT * FROM json_to_recordset($1::json) AS r(organization_id text, kind text, key text)
    ORDER BY organization_id, kind, key
) AS t

-- name: get_projections
-- Through a function that plans with enable_seqscan off (migration 0002 says why).
SELECT * FROM tidings_projections($1::json)

-- name: upsert_projections
INSERT INTO projections (
    organization_id, kind, key, state, version, updated_at, source_created_at, last_event_id
)
SELECT t.organization_id, t.kind, t.key, t.state, t.version, t.updated_at,
       t.source_created_at, t.last_event_id
FROM json_to_recordset($1::json)
     AS t(organization_id text, kind text, key text, state jsonb, version integer,
          updated_at double precision, source_created_at double precision, last_event_id text)
ON CONFLICT (organization_id, kind, key) DO UPDATE SET
    state = excluded.state, version = excluded.version,
    updated_at = excluded.updated_at, source_created_at = excluded.source_created_at,
    last_event_id = excluded.last_event_id

-- name: get_projection
SELECT * FROM projections WHERE organization_id = $1 AND kind = $2 AND key = $3

-- name: publish
-- New events, their deliveries and compare-and-set projection changes in one statement, after
-- checking the endpoint and projection versions they were computed from (migration 0003).
SELECT tidings_publish($1::text::jsonb, $2::json, $3::json, $4::json)

-- name: endpoints_versions
SELECT id, endpoints_version FROM organizations WHERE id = ANY($1::text[])

-- name: insert_console_session
INSERT INTO console_sessions (
    id, token_hash, key_id, kind, organization_id, read_only, created_at, expires_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)

-- name: find_console_session
SELECT * FROM console_sessions WHERE token_hash = $1 AND expires_at > $2

-- name: delete_console_session
DELETE FROM console_sessions WHERE token_hash = $1

-- name: insert_portal_link
INSERT INTO portal_links (
    id, token_hash, organization_id, key_id, read_only, created_at, expires_at
) VALUES ($1, $2, $3, $4, $5, $6, $7)

-- name: use_portal_link
UPDATE portal_links SET used_at = $2
WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
RETURNING *

-- name: find_portal_link
SELECT * FROM portal_links WHERE token_hash = $1

-- name: purge_console_sessions
DELETE FROM console_sessions WHERE expires_at < $1

-- name: purge_portal_links
DELETE FROM portal_links WHERE expires_at < $1
