-- Every statement of the store on SQLite, as named blocks: the same names as postgres.sql (a
-- test checks). Parameters are :name; a list parameter arrives as a JSON array and a batch as a
-- JSON document, both read with json_each. `r.value -> '$.x'` keeps a nested value as JSON text
-- (json_extract would unquote a string). A unary `+` on a column (`+organization_id`) keeps
-- SQLite's planner, which has no statistics, from choosing that column's index over the more
-- selective one.
-- SQLite has one writer: a write transaction (BEGIN IMMEDIATE) holds the whole database, so
-- the statements that take row or advisory locks on PostgreSQL have nothing to do here: their
-- blocks hold only a comment, and the connector runs nothing for them.

-- ---- migrations ---------------------------------------------------------------------------

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
)

-- name: migrations_table_exists
SELECT count(*) > 0 AS present FROM sqlite_master
WHERE type = 'table' AND name = 'schema_migrations'

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at)
VALUES (:version, :name, (julianday('now') - 2440587.5) * 86400.0)

-- name: migration_lock
-- Nothing to lock: each migration's write transaction is exclusive.

-- name: migration_unlock
-- Nothing to unlock.

-- name: schema_objects
-- Today's schema as SQL, one object a row, each table with its indexes and triggers, in the
-- order the migrations made them. scripts/schema writes it to schema/sqlite.sql; a test checks
-- that the migrations still produce that file.
SELECT s.sql FROM sqlite_master AS s
JOIN sqlite_master AS t ON t.type = 'table' AND t.name = s.tbl_name
WHERE s.sql IS NOT NULL AND s.name NOT LIKE 'sqlite_%'
ORDER BY t.rowid, s.type <> 'table', s.rowid

-- name: ping
SELECT 1

-- ---- organizations, keys, partners ------------------------------------------------------------

-- name: insert_organization
INSERT INTO organizations (id, name, created_at) VALUES (:id, :name, :created_at)

-- name: get_organization
SELECT * FROM organizations WHERE id = :id

-- name: list_organizations
-- Oldest first; the cursor is the last organization of the page before.
SELECT * FROM organizations
WHERE :after_id IS NULL
   OR (created_at, id) > (SELECT created_at, id FROM organizations WHERE id = :after_id)
ORDER BY created_at, id
LIMIT :limit

-- name: insert_api_key
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at, name, prefix, scope, expires_at)
VALUES (:id, :key_hash, :kind, :organization_id, :created_at, :name, :prefix, :scope, :expires_at)

-- name: ensure_platform_key
INSERT INTO api_keys (id, key_hash, kind, organization_id, created_at, name, prefix, scope, expires_at)
VALUES (:id, :key_hash, :kind, :organization_id, :created_at, :name, :prefix, :scope, :expires_at)
ON CONFLICT (key_hash) DO NOTHING

-- name: find_api_key
SELECT * FROM api_keys WHERE key_hash = :key_hash

-- name: insert_partner
INSERT INTO partners (organization_id, partner_uuid, name, created_at)
VALUES (:organization_id, :partner_uuid, :name, :created_at)

-- name: list_partners
SELECT * FROM partners WHERE organization_id = :organization_id ORDER BY created_at, partner_uuid

-- ---- endpoints --------------------------------------------------------------------------------

-- name: insert_endpoint
INSERT INTO endpoints (
    id, organization_id, url, event_types, format, secrets, status, partner_ids,
    accepted_schema_versions, sources, description, headers, rate_limit_per_second, trace_context,
    pause_reason, failure_streak, failing_since, last_success_at, created_at, updated_at, deleted_at,
    filter, record_filtered, ordering
) VALUES (
    :id, :organization_id, :url, :event_types, :format, :secrets, :status, :partner_ids,
    :accepted_schema_versions, :sources, :description, :headers, :rate_limit_per_second,
    :trace_context, :pause_reason, :failure_streak, :failing_since, :last_success_at, :created_at, :updated_at,
    :deleted_at, :filter, :record_filtered, :ordering
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
-- With the organization's endpoints_version, read in one snapshot; one row with null endpoint
-- columns when it has none, none when there is no such organization.
SELECT o.endpoints_version AS subscribers_version, e.*
FROM organizations AS o
LEFT JOIN endpoints AS e
  ON e.organization_id = o.id AND e.deleted_at IS NULL AND e.status IN ('active', 'paused')
WHERE o.id = :organization_id
ORDER BY e.seq

-- name: endpoints_versions
SELECT id, endpoints_version FROM organizations WHERE id IN (SELECT value FROM json_each(:ids))

-- name: endpoints_by_ids
SELECT * FROM endpoints WHERE id IN (SELECT value FROM json_each(:ids))

-- name: update_endpoint
UPDATE endpoints SET
    url = :url, event_types = :event_types, format = :format, partner_ids = :partner_ids,
    accepted_schema_versions = :accepted_schema_versions, sources = :sources,
    description = :description, headers = :headers,
    rate_limit_per_second = :rate_limit_per_second, trace_context = :trace_context,
    filter = :filter, record_filtered = :record_filtered, ordering = :ordering,
    secrets = :secrets, updated_at = :updated_at
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL

-- name: endpoint_ordering
-- The ordering stored before an update (the endpoint's row locked until the update is written).
SELECT ordering FROM endpoints
WHERE organization_id = :organization_id AND id = :id AND deleted_at IS NULL

-- name: order_open_deliveries
-- An endpoint switched to ordering "subject", under lock_sequences: its open deliveries with a
-- subject become ordered, and of each subject only the first (by sequence) stays pending or
-- held; the others are queued, except one whose attempt is under way (it finishes, and its
-- outcome makes the next one due).
UPDATE deliveries SET ordered = 1,
    status = CASE WHEN deliveries.lease_expires_at >= :now THEN deliveries.status
                  WHEN deliveries.sequence = f.first THEN deliveries.status
                  ELSE 'queued' END,
    updated_at = :now
FROM (SELECT subject, min(sequence) AS first FROM deliveries
      WHERE endpoint_id = :endpoint_id AND subject IS NOT NULL
        AND status IN ('pending', 'held')
      GROUP BY subject) AS f
WHERE deliveries.endpoint_id = :endpoint_id AND deliveries.subject = f.subject
  AND deliveries.status IN ('pending', 'held')

-- name: unorder_open_deliveries
-- An endpoint switched to ordering "none": its ordered open deliveries are ordered no more and
-- the queued ones are due at :now (held while the endpoint is paused).
UPDATE deliveries SET ordered = 0,
    status = CASE WHEN status <> 'queued' THEN status
                  WHEN (SELECT ep.status FROM endpoints AS ep
                        WHERE ep.id = deliveries.endpoint_id) = 'paused' THEN 'held'
                  ELSE 'pending' END,
    next_attempt_at = CASE WHEN status = 'queued' THEN :now ELSE next_attempt_at END,
    updated_at = :now
WHERE endpoint_id = :endpoint_id AND ordered AND status IN ('pending', 'held', 'queued')

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
WHERE endpoint_id = :endpoint_id AND status IN ('pending', 'held', 'queued')

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

-- name: lock_endpoints
-- Nothing to lock: the write transaction holds the whole database (see the top of the file).

-- ---- events -------------------------------------------------------------------------------------

-- name: insert_events
INSERT INTO events (
    id, organization_id, type, schema_version, source, partner_uuid, subject, attributes, data,
    idempotency_key, created_at, correlation_id
)
SELECT r.value ->> '$.id', r.value ->> '$.organization_id', r.value ->> '$.type',
       r.value ->> '$.schema_version', r.value ->> '$.source', r.value ->> '$.partner_uuid',
       r.value ->> '$.subject', r.value -> '$.attributes', r.value -> '$.data',
       r.value ->> '$.idempotency_key', r.value ->> '$.created_at',
       r.value ->> '$.correlation_id'
FROM json_each(:rows) AS r
WHERE true
ORDER BY r.key
ON CONFLICT DO NOTHING
RETURNING organization_id, id, seq

-- name: get_event
SELECT * FROM events WHERE organization_id = :organization_id AND id = :id

-- name: get_event_by_idempotency_key
SELECT * FROM events WHERE organization_id = :organization_id AND idempotency_key = :idempotency_key

-- name: events_by_keys
-- The two lists pair up by position. Materialized, they are read once and joined through an
-- automatic index; joined as they are, the inner one was read again for each outer element
-- (5 ms instead of 1 for a claim of 200).
WITH o AS MATERIALIZED (SELECT key, value FROM json_each(:organization_ids)),
     i AS MATERIALIZED (SELECT key, value FROM json_each(:event_ids))
SELECT * FROM events
WHERE (organization_id, id) IN (SELECT o.value, i.value FROM o JOIN i ON i.key = o.key)

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
SELECT count(*) AS n, coalesce(max(seq), 0) AS last_seq,
       (SELECT erasures FROM organizations WHERE id = :organization_id) AS erasures
FROM (
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

-- name: list_events_by_correlation
-- list_events of the events that carry :correlation_id (its index, not the feed's).
SELECT * FROM events
WHERE organization_id = :organization_id AND correlation_id = :correlation_id
  AND (:after_seq IS NULL OR seq > :after_seq)
  AND (:no_types
       OR type IN (SELECT value FROM json_each(:exact))
       OR EXISTS (SELECT 1 FROM json_each(:prefixes) AS p
                  WHERE substr(events.type, 1, length(p.value)) = p.value))
ORDER BY seq
LIMIT :limit

-- name: events_page_fingerprint_by_correlation
SELECT count(*) AS n, coalesce(max(seq), 0) AS last_seq,
       (SELECT erasures FROM organizations WHERE id = :organization_id) AS erasures
FROM (
    SELECT seq FROM events
    WHERE organization_id = :organization_id AND correlation_id = :correlation_id
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
  AND e.erased_at IS NULL
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

-- ---- deliveries ---------------------------------------------------------------------------------

-- name: lock_sequences
-- The endpoints' sequence counters (migration 0013), made when new (one writer at a time: no
-- lock needed; see the PostgreSQL query).
INSERT INTO endpoint_sequences (endpoint_id, last)
SELECT DISTINCT value, 0 FROM json_each(:endpoint_ids) WHERE true
ON CONFLICT (endpoint_id) DO NOTHING

-- name: insert_deliveries
-- Numbered, ordered, queued and linked to the previous event of the subject as the PostgreSQL
-- query says.
INSERT INTO deliveries (
    id, organization_id, event_id, endpoint_id, status, skip_reason, schema_version,
    next_attempt_at, is_meta, created_at, updated_at, sequence, subject, previous_event_id,
    ordered
)
SELECT b.id, b.organization_id, b.event_id, b.endpoint_id, b.status, b.skip_reason,
       b.schema_version, CASE WHEN b.status = 'pending' THEN b.now END, b.is_meta, b.now,
       b.now, b.sequence, b.subject, b.previous_event_id, b.ordered
FROM (
    SELECT a.id, a.organization_id, a.event_id, a.endpoint_id, a.skip_reason,
           a.schema_version, a.is_meta, a.now, a.sequence, a.subject, a.ordered, a.n,
           CASE WHEN a.ordered AND (a.prior IS NOT NULL OR EXISTS (
                    SELECT 1 FROM deliveries AS o
                    WHERE o.endpoint_id = a.endpoint_id AND o.subject = a.subject
                      AND o.ordered AND o.status IN ('pending', 'held')) OR EXISTS (
                    SELECT 1 FROM deliveries AS o
                    WHERE o.endpoint_id = a.endpoint_id AND o.subject = a.subject
                      AND o.ordered AND o.status = 'queued'))
                THEN 'queued' ELSE a.status END AS status,
           CASE WHEN a.subject IS NULL OR a.status = 'skipped' THEN NULL
                ELSE coalesce(a.prior, (
                    SELECT h.event_id FROM subject_heads AS h
                    WHERE h.endpoint_id = a.endpoint_id AND h.subject = a.subject))
           END AS previous_event_id
    FROM (
        SELECT t.id, t.organization_id, t.event_id, t.endpoint_id, t.status, t.skip_reason,
               t.schema_version, t.is_meta, t.now, t.n, e.subject,
               s.last + row_number() OVER (PARTITION BY t.endpoint_id ORDER BY t.n) AS sequence,
               (ep.ordering = 'subject' AND e.subject IS NOT NULL AND t.status <> 'skipped')
                   AS ordered,
               lag(t.event_id) OVER (PARTITION BY t.endpoint_id, e.subject,
                                                  t.status = 'skipped' ORDER BY t.n) AS prior
        FROM (SELECT r.value ->> '$.id' AS id, r.value ->> '$.organization_id' AS organization_id,
                     r.value ->> '$.event_id' AS event_id,
                     r.value ->> '$.endpoint_id' AS endpoint_id,
                     r.value ->> '$.status' AS status, r.value ->> '$.skip_reason' AS skip_reason,
                     r.value ->> '$.schema_version' AS schema_version,
                     r.value ->> '$.is_meta' AS is_meta, r.value ->> '$.now' AS now,
                     r.key AS n
              FROM json_each(:rows) AS r) AS t
        JOIN events AS e ON e.organization_id = t.organization_id AND e.id = t.event_id
        JOIN endpoints AS ep ON ep.id = t.endpoint_id
        JOIN endpoint_sequences AS s ON s.endpoint_id = t.endpoint_id
        WHERE NOT EXISTS (SELECT 1 FROM deliveries AS x
                          WHERE x.event_id = t.event_id AND x.endpoint_id = t.endpoint_id)
    ) AS a
) AS b
WHERE true
ORDER BY b.n
ON CONFLICT (endpoint_id, event_id) DO NOTHING
RETURNING endpoint_id, subject, event_id, sequence, status

-- name: advance_sequences
UPDATE endpoint_sequences SET last = max(last, (
    SELECT t.value ->> '$.last' FROM json_each(:lasts) AS t
    WHERE t.value ->> '$.endpoint_id' = endpoint_sequences.endpoint_id))
WHERE endpoint_id IN (SELECT value ->> '$.endpoint_id' FROM json_each(:lasts))

-- name: advance_subject_heads
INSERT INTO subject_heads (endpoint_id, subject, event_id)
SELECT value ->> '$.endpoint_id', value ->> '$.subject', value ->> '$.event_id'
FROM json_each(:heads) WHERE true
ON CONFLICT (endpoint_id, subject) DO UPDATE SET event_id = excluded.event_id

-- name: promote_subjects
-- See the PostgreSQL query.
UPDATE deliveries AS d SET
    status = CASE WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    next_attempt_at = :now, updated_at = :now
FROM endpoints AS ep
WHERE d.seq IN (
    SELECT (SELECT q.seq FROM deliveries AS q
            WHERE q.endpoint_id = k.endpoint_id AND q.subject = k.subject AND q.ordered
              AND q.status = 'queued'
            ORDER BY q.sequence LIMIT 1)
    FROM (SELECT value ->> '$.endpoint_id' AS endpoint_id, value ->> '$.subject' AS subject
          FROM json_each(:keys)) AS k
    WHERE NOT EXISTS (SELECT 1 FROM deliveries AS o
                      WHERE o.endpoint_id = k.endpoint_id AND o.subject = k.subject
                        AND o.ordered AND o.status IN ('pending', 'held')))
  AND d.status = 'queued' AND ep.id = d.endpoint_id

-- name: endpoint_ledger
-- What an endpoint is owed, in sequence order after :after (issue 25), by
-- deliveries_endpoint_sequence; each row's event type by events_org_id.
SELECT d.sequence, d.event_id, e.type, d.subject, d.status, d.id AS delivery_id
FROM deliveries AS d
JOIN events AS e ON e.organization_id = d.organization_id AND e.id = d.event_id
WHERE d.endpoint_id = :endpoint_id AND d.organization_id = :organization_id
  AND d.sequence > :after
ORDER BY d.sequence
LIMIT :limit

-- name: endpoint_ledger_ids
-- The event ids of an endpoint's deliveries numbered :first to :last that are not skipped
-- (what the endpoint's digest counts).
SELECT d.event_id FROM deliveries AS d
WHERE d.endpoint_id = :endpoint_id AND d.organization_id = :organization_id
  AND d.sequence >= :first AND d.sequence <= :last AND d.status <> 'skipped'

-- name: endpoint_last_sequence
SELECT last FROM endpoint_sequences WHERE endpoint_id = :endpoint_id

-- name: blocked_subjects
-- Ordered subjects held back: the queued deliveries of an (endpoint, subject) the oldest of which
-- was stored before :cutoff, behind a pending delivery that has failed at least once and was not
-- reported yet (webhook.subject_blocked). By deliveries_ordered_queued.
SELECT h.id AS delivery_id, h.organization_id, h.endpoint_id, h.subject, h.event_id, h.series,
       h.attempt_count AS attempts, h.last_status_code, h.last_error, w.waiting, w.waiting_since
FROM (SELECT q.endpoint_id, q.subject, count(*) AS waiting, min(q.created_at) AS waiting_since
      FROM deliveries AS q
      WHERE q.ordered AND q.status = 'queued'
      GROUP BY q.endpoint_id, q.subject
      HAVING min(q.created_at) < :cutoff) AS w
JOIN deliveries AS h
  ON h.endpoint_id = w.endpoint_id AND h.subject = w.subject AND h.ordered
 AND h.status = 'pending' AND h.attempt_count > 0 AND h.blocked_reported_at IS NULL
ORDER BY w.waiting_since, h.id
LIMIT :limit

-- name: mark_blocked_reported
UPDATE deliveries SET blocked_reported_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND blocked_reported_at IS NULL

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
-- Newest first by deliveries_endpoint_sequence: an endpoint's sequence numbers run in the order
-- of seq (numbered in insert order under the endpoint's lock), so the seq cursor is read as
-- the sequence of its row (or, when retention purged that row, one above the highest below it).
SELECT * FROM deliveries
WHERE endpoint_id = :endpoint_id AND +organization_id = :organization_id
  AND (:before_seq IS NULL OR sequence < coalesce(
        (SELECT b.sequence FROM deliveries AS b WHERE b.seq = :before_seq),
        (SELECT max(b.sequence) + 1 FROM deliveries AS b
         WHERE b.endpoint_id = :endpoint_id AND b.seq < :before_seq)))
  AND (:event_id IS NULL OR event_id = :event_id)
  AND (:status IS NULL OR status = :status)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY sequence DESC
LIMIT :limit

-- name: list_deliveries_for_event
SELECT * FROM deliveries
WHERE event_id = :event_id AND +organization_id = :organization_id
  AND (:before_seq IS NULL OR seq < :before_seq)
  AND (:endpoint_id IS NULL OR endpoint_id = :endpoint_id)
  AND (:status IS NULL OR status = :status)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY seq DESC
LIMIT :limit

-- name: list_attempts
SELECT * FROM attempts
WHERE delivery_id = :delivery_id AND organization_id = :organization_id
ORDER BY seq

-- name: replay_delivery
UPDATE deliveries AS d SET
    series = d.series + 1, attempt_count = 0, next_attempt_at = :now,
    status = CASE WHEN ep.ordering = 'subject' AND d.subject IS NOT NULL THEN 'queued'
                  WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    ordered = (ep.ordering = 'subject' AND d.subject IS NOT NULL), blocked_reported_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM endpoints AS ep
WHERE d.organization_id = :organization_id AND d.id = :id AND d.status <> 'skipped'
  AND ep.id = d.endpoint_id AND ep.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.organization_id = d.organization_id
                  AND e.id = d.event_id AND e.erased_at IS NOT NULL)
RETURNING *

-- name: replay_endpoint_deliveries
UPDATE deliveries AS d SET
    series = d.series + 1, attempt_count = 0, next_attempt_at = :now,
    status = CASE WHEN ep.ordering = 'subject' AND d.subject IS NOT NULL THEN 'queued'
                  WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    ordered = (ep.ordering = 'subject' AND d.subject IS NOT NULL), blocked_reported_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM endpoints AS ep
WHERE d.organization_id = :organization_id AND d.endpoint_id = :endpoint_id
  AND d.created_at >= :since AND (:until IS NULL OR d.created_at < :until)
  AND d.status IN (SELECT value FROM json_each(:statuses)) AND d.status <> 'skipped'
  AND ep.id = d.endpoint_id AND ep.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.organization_id = d.organization_id
                  AND e.id = d.event_id AND e.erased_at IS NOT NULL)
RETURNING endpoint_id, subject, ordered

-- name: revive_skipped_deliveries
UPDATE deliveries AS d SET
    series = d.series + 1, attempt_count = 0, next_attempt_at = :now, skip_reason = NULL,
    schema_version = r.schema_version,
    status = CASE WHEN ep.ordering = 'subject' AND d.subject IS NOT NULL THEN 'queued'
                  WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
    ordered = (ep.ordering = 'subject' AND d.subject IS NOT NULL), blocked_reported_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM (SELECT value ->> '$.id' AS id, value ->> '$.schema_version' AS schema_version
      FROM json_each(:rows)) AS r,
     endpoints AS ep
WHERE d.organization_id = :organization_id AND d.endpoint_id = :endpoint_id AND d.id = r.id
  AND d.status = 'skipped'
  AND coalesce(d.skip_reason, '') <> 'erased'
  AND ep.id = d.endpoint_id AND ep.deleted_at IS NULL
RETURNING endpoint_id, subject, ordered

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
UPDATE deliveries AS d SET
    status = CASE WHEN ep.deleted_at IS NOT NULL THEN 'failed' ELSE 'held' END,
    last_error = CASE WHEN ep.deleted_at IS NOT NULL THEN 'endpoint deleted' ELSE d.last_error END,
    next_attempt_at = CASE WHEN ep.deleted_at IS NOT NULL THEN NULL ELSE d.next_attempt_at END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM endpoints AS ep
WHERE d.id IN (SELECT value FROM json_each(:ids)) AND d.lease_owner = :worker_id
  AND ep.id = d.endpoint_id

-- name: record_delivery_outcomes
-- Each delivery whose lease the worker still holds takes its outcome (a retry is held when the
-- endpoint was paused meanwhile).
UPDATE deliveries AS d SET
    status = CASE WHEN o.status = 'pending' AND ep.status = 'paused' THEN 'held'
                  ELSE o.status END,
    attempt_count = d.attempt_count + 1, next_attempt_at = o.next_attempt_at,
    last_attempt_at = o.started_at, last_status_code = o.last_status_code,
    last_error = o.last_error, lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM (SELECT value ->> '$.id' AS id, value ->> '$.status' AS status,
             value ->> '$.next_attempt_at' AS next_attempt_at,
             value ->> '$.started_at' AS started_at,
             value ->> '$.last_status_code' AS last_status_code,
             value ->> '$.last_error' AS last_error
      FROM json_each(:outcomes)) AS o,
     endpoints AS ep
WHERE d.id = o.id AND d.lease_owner = :worker_id AND ep.id = d.endpoint_id
RETURNING id, organization_id, endpoint_id, series, status, subject, ordered

-- name: insert_attempts
-- The attempts of the outcomes written, in attempt order.
INSERT INTO attempts (
    delivery_id, organization_id, number, series, started_at, duration_ms, status_code, error,
    response_excerpt
)
SELECT r.value ->> '$.delivery_id', r.value ->> '$.organization_id', r.value ->> '$.number',
       r.value ->> '$.series', r.value ->> '$.started_at', r.value ->> '$.duration_ms',
       r.value ->> '$.status_code', r.value ->> '$.error', r.value ->> '$.response_excerpt'
FROM json_each(:rows) AS r
ORDER BY r.key

-- name: record_endpoint_health
-- The failing streak. :rows gives, per endpoint, the results of the outcomes written in
-- attempt order ("S" a success, "F" a failure): a success resets the streak, the failures after
-- the last success (the trailing F's) add to it; failing_since is when the current streak began.
UPDATE endpoints AS e SET
    failure_streak = CASE WHEN c.reset THEN c.failures ELSE e.failure_streak + c.failures END,
    failing_since = CASE
        WHEN c.failures = 0 AND c.reset THEN NULL
        WHEN c.failures = 0 THEN e.failing_since
        WHEN c.reset THEN :now
        ELSE coalesce(e.failing_since, :now) END,
    last_success_at = CASE WHEN c.reset THEN :now ELSE e.last_success_at END
FROM (SELECT r.value ->> '$.id' AS id, instr(r.value ->> '$.results', 'S') > 0 AS reset,
             length(r.value ->> '$.results') - length(rtrim(r.value ->> '$.results', 'F'))
                 AS failures
      FROM json_each(:rows) AS r) AS c
WHERE e.id = c.id
RETURNING id, organization_id, status, failure_streak, failing_since, last_success_at

-- name: release
-- :due is {delivery id: due time}
UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL,
    next_attempt_at = json_extract(:due, '$."' || id || '"')
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner = :worker_id
  AND status = 'pending'

-- name: backlog_stats
SELECT count(*) AS due, min(next_attempt_at) AS oldest_due_at FROM deliveries
WHERE status = 'pending' AND next_attempt_at <= :now

-- name: count_deliveries_by_status
SELECT status, count(*) AS n FROM deliveries GROUP BY status

-- name: count_endpoints_by_status
SELECT status, count(*) AS n FROM endpoints WHERE deleted_at IS NULL GROUP BY status

-- name: endpoint_backlogs
-- The endpoints with the most deliveries waiting (pending or held), for the per-endpoint gauges
-- of /metrics: bounded by :limit, so the series stay few whatever the number of endpoints.
SELECT e.organization_id, e.id, e.last_success_at, e.created_at, b.pending, b.held
FROM (
    SELECT endpoint_id,
           SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,
           SUM(CASE WHEN status = 'held' THEN 1 ELSE 0 END) AS held
    FROM deliveries
    WHERE status IN ('pending', 'held')
    GROUP BY endpoint_id
    ORDER BY count(*) DESC, endpoint_id
    LIMIT :limit
) AS b
JOIN endpoints AS e ON e.id = b.endpoint_id
ORDER BY b.pending + b.held DESC, e.id

-- name: worst_endpoints
SELECT organization_id, id, failure_streak FROM endpoints
WHERE failure_streak > 0 AND deleted_at IS NULL
ORDER BY failure_streak DESC, seq
LIMIT :limit

-- name: history_rows_cutoff
-- One table, no days: the row-by-row purge goes to the cutoff itself.
SELECT :cutoff AS cutoff

-- name: purge_select_deliveries
SELECT seq, id FROM deliveries
WHERE status IN ('succeeded', 'failed', 'skipped') AND created_at < :cutoff
ORDER BY created_at
LIMIT :limit

-- name: purge_attempts
DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(:ids))

-- name: purge_deliveries
DELETE FROM deliveries
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status IN ('succeeded', 'failed', 'skipped')

-- name: make_history_partitions
-- SQLite's history is one table: nothing to make (PostgreSQL's partitions days, migration 0022).
SELECT 0 AS made WHERE :now IS NOT NULL AND :days IS NOT NULL

-- name: refresh_statistics
-- Nothing to analyze: tidings makes no statistics on SQLite (no ANALYZE), so its planner's
-- choices rest on the schema alone and do not change as the tables grow (PostgreSQL's do,
-- migration 0023).
SELECT NULL AS analyzed WHERE :rows IS NOT NULL AND :fraction IS NOT NULL

-- name: drop_history_partition
-- Nothing to drop: SQLite's purge deletes rows (purge_select_deliveries and after).
SELECT NULL AS dropped WHERE :cutoff IS NOT NULL

-- name: purge_events
DELETE FROM events WHERE seq IN (
    SELECT e.seq FROM events AS e
    WHERE e.created_at < :cutoff
      AND NOT EXISTS (SELECT 1 FROM deliveries AS d
                      WHERE d.event_id = e.id AND +d.organization_id = e.organization_id
                        AND d.status IN ('pending', 'held', 'queued'))
    ORDER BY e.created_at
    LIMIT :limit
)

-- ---- projections --------------------------------------------------------------------------------

-- name: lock_projections
-- Nothing to lock: the write transaction holds the whole database (see the top of the file).

-- name: get_projections
SELECT p.* FROM projections AS p
JOIN json_each(:keys) AS k
  ON p.organization_id = k.value ->> '$.organization_id' AND p.kind = k.value ->> '$.kind'
 AND p.key = k.value ->> '$.key'

-- name: upsert_projections
INSERT INTO projections (
    organization_id, kind, key, state, version, updated_at, source_created_at, last_event_id
)
SELECT r.value ->> '$.organization_id', r.value ->> '$.kind', r.value ->> '$.key',
       r.value -> '$.state', r.value ->> '$.version', r.value ->> '$.updated_at',
       r.value ->> '$.source_created_at', r.value ->> '$.last_event_id'
FROM json_each(:rows) AS r
WHERE true
ON CONFLICT (organization_id, kind, key) DO UPDATE SET
    state = excluded.state, version = excluded.version,
    updated_at = excluded.updated_at, source_created_at = excluded.source_created_at,
    last_event_id = excluded.last_event_id

-- name: get_projection
SELECT * FROM projections WHERE organization_id = :organization_id AND kind = :kind AND key = :key

-- name: projections_changed
-- One kind's states in change order (`updated_at`, then key), after a keyset cursor; the
-- compliance rollups "changed since" for an integrator that lost a webhook (issue 26).
SELECT * FROM projections
WHERE organization_id = :organization_id AND kind = :kind
  AND (:changed_since IS NULL OR updated_at >= :changed_since)
  AND (:after_at IS NULL OR (updated_at, key) > (:after_at, :after_key))
  AND (:status IS NULL OR json_extract(state, '$.status') = :status)
  AND (:decision IS NULL OR json_extract(state, '$.decision') = :decision)
ORDER BY updated_at, key
LIMIT :limit

-- name: entitlements_of_owner
SELECT * FROM projections
WHERE organization_id = :organization_id AND kind = 'entitlement'
  AND json_extract(state, '$.ownerId') = :owner_id
  AND (:trigger_id IS NULL OR json_extract(state, '$.triggerId') = :trigger_id)
  AND (:status IS NULL OR json_extract(state, '$.status') = :status)
  AND (:after_at IS NULL OR (updated_at, key) > (:after_at, :after_key))
ORDER BY updated_at, key
LIMIT :limit

-- name: entitlements_of_trigger
SELECT * FROM projections
WHERE organization_id = :organization_id AND kind = 'entitlement'
  AND json_extract(state, '$.triggerId') = :trigger_id
  AND (:status IS NULL OR json_extract(state, '$.status') = :status)
  AND (:after_at IS NULL OR (updated_at, key) > (:after_at, :after_key))
ORDER BY updated_at, key
LIMIT :limit

-- name: owners_by_external_id
SELECT * FROM projections
WHERE organization_id = :organization_id AND kind = 'owner'
  AND json_extract(state, '$.external_id') = :external_id
  AND (:after_at IS NULL OR (updated_at, key) > (:after_at, :after_key))
ORDER BY updated_at, key
LIMIT :limit

-- ---- console sessions and portal links ------------------------------------------------------------

-- name: insert_console_session
INSERT INTO console_sessions (
    id, token_hash, key_id, kind, organization_id, read_only, created_at, expires_at
) VALUES (
    :id, :token_hash, :key_id, :kind, :organization_id, :read_only, :created_at, :expires_at
)

-- name: find_console_session
-- A session lives only while the key behind it works (revoked or expired: signed out).
SELECT s.* FROM console_sessions AS s
JOIN api_keys AS k ON k.id = s.key_id
WHERE s.token_hash = :token_hash AND s.expires_at > :now
  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > :now)

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

-- ---- the console's reads (issue 21) -------------------------------------------------------------

-- name: list_deliveries_of_types
-- list_deliveries whose event's type matches a TypeFilter: newest first through
-- deliveries_org_seq (an endpoint's: list_deliveries_of_types_for_endpoint), each row's event by events_org_id.
SELECT d.* FROM deliveries AS d
JOIN events AS e ON e.organization_id = d.organization_id AND e.id = d.event_id
WHERE d.organization_id = :organization_id
  AND (:before_seq IS NULL OR d.seq < :before_seq)
  AND (:endpoint_id IS NULL OR d.endpoint_id = :endpoint_id)
  AND (:event_id IS NULL OR d.event_id = :event_id)
  AND (:status IS NULL OR d.status = :status)
  AND (:created_after IS NULL OR d.created_at >= :created_after)
  AND (:created_before IS NULL OR d.created_at < :created_before)
  AND (:no_types
       OR e.type IN (SELECT value FROM json_each(:exact))
       OR EXISTS (SELECT 1 FROM json_each(:prefixes) AS p
                  WHERE substr(e.type, 1, length(p.value)) = p.value))
ORDER BY d.seq DESC
LIMIT :limit

-- name: list_deliveries_of_types_for_endpoint
-- list_deliveries_of_types of one endpoint, newest first by deliveries_endpoint_sequence (as
-- list_deliveries_for_endpoint).
SELECT d.* FROM deliveries AS d
JOIN events AS e ON e.organization_id = d.organization_id AND e.id = d.event_id
WHERE d.organization_id = :organization_id
  AND (:before_seq IS NULL OR d.sequence < coalesce(
        (SELECT b.sequence FROM deliveries AS b WHERE b.seq = :before_seq),
        (SELECT max(b.sequence) + 1 FROM deliveries AS b
         WHERE b.endpoint_id = :endpoint_id AND b.seq < :before_seq)))
  AND d.endpoint_id = :endpoint_id
  AND (:event_id IS NULL OR d.event_id = :event_id)
  AND (:status IS NULL OR d.status = :status)
  AND (:created_after IS NULL OR d.created_at >= :created_after)
  AND (:created_before IS NULL OR d.created_at < :created_before)
  AND (:no_types
       OR e.type IN (SELECT value FROM json_each(:exact))
       OR EXISTS (SELECT 1 FROM json_each(:prefixes) AS p
                  WHERE substr(e.type, 1, length(p.value)) = p.value))
ORDER BY d.sequence DESC
LIMIT :limit

-- name: count_replay_window
-- How many deliveries replay_endpoint_deliveries would replay (its preview).
SELECT count(*) AS n FROM deliveries AS d
WHERE d.endpoint_id = :endpoint_id AND d.organization_id = :organization_id
  AND d.created_at >= :since AND (:until IS NULL OR d.created_at < :until)
  AND d.status IN (SELECT value FROM json_each(:statuses)) AND d.status <> 'skipped'
  AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.organization_id = d.organization_id
                  AND e.id = d.event_id AND e.erased_at IS NOT NULL)

-- name: search_organizations
-- list_organizations whose name contains :needle (lower case) or whose id is :needle.
SELECT * FROM organizations
WHERE (instr(lower(name), :needle) > 0 OR id = :needle)
  AND (:after_id IS NULL
       OR (created_at, id) > (SELECT created_at, id FROM organizations WHERE id = :after_id))
ORDER BY created_at, id
LIMIT :limit

-- name: list_api_keys
-- An organization's keys, oldest first (the record read from a row leaves the hash out).
SELECT * FROM api_keys
WHERE organization_id = :organization_id
ORDER BY created_at, id

-- name: api_keys_page
-- An organization's keys, or (:organization_id null) the platform keys, oldest first, after a
-- keyset cursor (the last key of the page before).
SELECT * FROM api_keys
WHERE (organization_id = :organization_id OR (:organization_id IS NULL AND organization_id IS NULL))
  AND (:after_id IS NULL
       OR (created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = :after_id))
ORDER BY created_at, id
LIMIT :limit

-- name: lock_api_keys
-- Two revocations of the last two platform keys must not both pass the count (SQLite
-- serializes writers already).
SELECT 1

-- name: get_api_key
SELECT * FROM api_keys WHERE id = :id

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL

-- name: count_usable_platform_keys
-- Platform admin keys that still work, but the one about to go (a publish key cannot make
-- keys: left with publish keys only, an operator would be locked out).
SELECT count(*) AS n FROM api_keys
WHERE kind = 'platform' AND scope = 'admin' AND revoked_at IS NULL AND id <> :except_id
  AND (expires_at IS NULL OR expires_at > :now)

-- name: touch_api_key
UPDATE api_keys SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :now - 60)

-- name: deliveries_per_minute
-- Deliveries created since :since, by minute (epoch minute), through deliveries_created_at.
SELECT CAST(created_at / 60 AS INTEGER) AS minute, count(*) AS n FROM deliveries
WHERE created_at >= :since
GROUP BY minute

-- ---- workers seen (migration 0017) --------------------------------------------------------------

-- name: worker_seen
INSERT INTO workers_seen (worker_id, started_at, last_seen_at)
VALUES (:worker_id, :started_at, :now)
ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = excluded.last_seen_at

-- name: purge_workers_seen
DELETE FROM workers_seen WHERE last_seen_at < :cutoff

-- name: worker_gone
DELETE FROM workers_seen WHERE worker_id = :worker_id

-- name: workers_seen_since
SELECT * FROM workers_seen WHERE last_seen_at >= :since ORDER BY started_at, worker_id

-- ---- endpoint stats (the console's health at a glance) ----------------------------------------

-- name: add_endpoint_stats
-- One endpoint's hour, added to what other workers (and this one, earlier) recorded.
INSERT INTO endpoint_stats (
    endpoint_id, organization_id, hour, attempts, successes, ms_le_10, ms_le_50, ms_le_100, ms_le_250, ms_le_500, ms_le_1000, ms_le_5000, ms_over_5000,
    last_attempt_at, last_status_code, last_error
) VALUES (
    :endpoint_id, :organization_id, :hour, :attempts, :successes, :ms_le_10, :ms_le_50, :ms_le_100, :ms_le_250, :ms_le_500, :ms_le_1000, :ms_le_5000, :ms_over_5000,
    :last_attempt_at, :last_status_code, :last_error
)
ON CONFLICT (endpoint_id, hour) DO UPDATE SET
    attempts = endpoint_stats.attempts + excluded.attempts,
    successes = endpoint_stats.successes + excluded.successes,
    ms_le_10 = endpoint_stats.ms_le_10 + excluded.ms_le_10,
    ms_le_50 = endpoint_stats.ms_le_50 + excluded.ms_le_50,
    ms_le_100 = endpoint_stats.ms_le_100 + excluded.ms_le_100,
    ms_le_250 = endpoint_stats.ms_le_250 + excluded.ms_le_250,
    ms_le_500 = endpoint_stats.ms_le_500 + excluded.ms_le_500,
    ms_le_1000 = endpoint_stats.ms_le_1000 + excluded.ms_le_1000,
    ms_le_5000 = endpoint_stats.ms_le_5000 + excluded.ms_le_5000,
    ms_over_5000 = endpoint_stats.ms_over_5000 + excluded.ms_over_5000,
    last_status_code = CASE WHEN excluded.last_attempt_at >= endpoint_stats.last_attempt_at
        THEN excluded.last_status_code ELSE endpoint_stats.last_status_code END,
    last_error = CASE WHEN excluded.last_attempt_at >= endpoint_stats.last_attempt_at
        THEN excluded.last_error ELSE endpoint_stats.last_error END,
    last_attempt_at = CASE WHEN excluded.last_attempt_at >= endpoint_stats.last_attempt_at
        THEN excluded.last_attempt_at ELSE endpoint_stats.last_attempt_at END

-- name: purge_endpoint_stats
DELETE FROM endpoint_stats WHERE hour < :cutoff

-- name: endpoint_stats
-- The hours since :since of the endpoints asked (the rows of a console page's endpoints).
SELECT * FROM endpoint_stats
WHERE organization_id = :organization_id AND endpoint_id IN (SELECT value FROM json_each(:endpoint_ids)) AND hour >= :since
ORDER BY endpoint_id, hour

-- name: held_counts
-- Held deliveries per endpoint asked (only paused endpoints have any).
SELECT endpoint_id, count(*) AS held FROM deliveries
WHERE organization_id = :organization_id AND endpoint_id IN (SELECT value FROM json_each(:endpoint_ids)) AND status = 'held'
GROUP BY endpoint_id

-- ---- endpoint secrets at rest (issue 22) -------------------------------------------------------

-- name: endpoint_secrets_page
-- Every endpoint (deleted ones too: their secrets are kept) in seq order, for the start-up
-- check and the re-wrap.
SELECT seq, id, secrets FROM endpoints
WHERE (:after_seq IS NULL OR seq > :after_seq)
ORDER BY seq
LIMIT :limit

-- name: rewrap_endpoint_secrets
-- Only if the row still holds what the re-wrap read (a rotation or update meanwhile wins).
UPDATE endpoints SET secrets = :secrets
WHERE id = :id AND secrets = :old

-- ---- audit trail (issue 22 section 3) ---------------------------------------------------------

-- name: insert_audit_entry
INSERT INTO audit_log (
    id, at, organization_id, actor_key_id, actor_session_id, action, target_id, changes,
    client_address
) VALUES (
    :id, :at, :organization_id, :actor_key_id, :actor_session_id, :action, :target_id, :changes,
    :client_address
)

-- name: list_audit_entries
-- :all_organizations true: every organization's entries (the platform's view).
SELECT * FROM audit_log
WHERE (:all_organizations OR organization_id = :organization_id)
  AND (:action IS NULL OR action = :action)
  AND (:target_id IS NULL OR target_id = :target_id)
  AND (:since IS NULL OR at >= :since)
  AND (:after_seq IS NULL OR seq > :after_seq)
ORDER BY seq
LIMIT :limit

-- name: purge_audit_entries
DELETE FROM audit_log WHERE seq IN (
    SELECT seq FROM audit_log WHERE at < :cutoff ORDER BY seq LIMIT :limit
)

-- ---- erasure of personal data (issue 22 section 4) ---------------------------------------------

-- name: event_to_erase
SELECT * FROM events
WHERE organization_id = :organization_id AND id = :id AND erased_at IS NULL

-- name: events_to_erase_by_subject
-- Events about :subject not erased yet, in :organization_id or (null) every organization.
SELECT * FROM events
WHERE subject = :subject AND erased_at IS NULL
  AND (:organization_id IS NULL OR organization_id = :organization_id)
ORDER BY seq
LIMIT :limit

-- name: erase_events
-- The data goes (JSON null); the skeleton stays. SQLite overwrites the freed bytes
-- (secure_delete, set when the connection opens).
UPDATE events SET data = 'null', erased_at = :now
WHERE organization_id = :organization_id AND id IN (SELECT value FROM json_each(:event_ids))
  AND erased_at IS NULL

-- name: erased_ordered_endpoints
-- The endpoints where an erasure stops ordered deliveries: their sequence locks are taken before
-- the deliveries are (a worker that settled a delivery holds the lock and then queued rows).
SELECT DISTINCT endpoint_id FROM deliveries
WHERE event_id IN (SELECT value FROM json_each(:event_ids)) AND organization_id = :organization_id
  AND ordered AND status IN ('pending', 'held', 'queued')
ORDER BY endpoint_id

-- name: stop_erased_deliveries
-- What was still to be sent of an erased event will not be: skipped, reason "erased" (a worker
-- holding one loses its lease, and its late outcome is dropped with its attempt).
UPDATE deliveries SET
    status = 'skipped', skip_reason = 'erased', next_attempt_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE event_id IN (SELECT value FROM json_each(:event_ids))
  AND organization_id = :organization_id AND status IN ('pending', 'held', 'queued')
RETURNING endpoint_id, subject, ordered

-- name: clear_erased_attempts
-- The receivers' answers (which may echo the payload) go; the outcomes stay.
UPDATE attempts SET response_excerpt = NULL
WHERE delivery_id IN (SELECT d.id FROM deliveries AS d
                      WHERE d.event_id IN (SELECT value FROM json_each(:event_ids))
                        AND d.organization_id = :organization_id)
  AND response_excerpt IS NOT NULL

-- name: count_erasure
-- An organization's erasures: part of its feed's ETag.
UPDATE organizations SET erasures = erasures + 1 WHERE id = :organization_id
