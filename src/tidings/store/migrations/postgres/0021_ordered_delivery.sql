-- Ordered delivery per subject, sequence numbers and the ledger (issue 25).
--
-- endpoints.ordering: 'none' (the default) or 'subject'. For an ordered endpoint a delivery of
-- an event with a subject is `ordered`: it goes out only when every earlier one of its endpoint
-- and subject (by `sequence`) is settled (succeeded, failed or skipped). Until then its status
-- is 'queued': not due, not claimable, not in the due index; whoever settles the subject's
-- head makes the next one due (promote_subjects).
--
-- deliveries.sequence: a number per endpoint, 1, 2, 3 ... in the order the deliveries were
-- stored, taken from endpoint_sequences under its row lock, so two publishes to one endpoint
-- number in the order they commit (a reader never sees n+1 before n). Sent as
-- X-Tidings-Sequence; the ledger pages by it.
-- deliveries.subject: the event's subject (copied: the claim and the ledger need no join).
-- deliveries.previous_event_id: the event of the endpoint's latest earlier delivery of that
-- subject that was not skipped when this one was stored (X-Tidings-Previous-Event-Id).
ALTER TABLE endpoints ADD COLUMN ordering text NOT NULL DEFAULT 'none';
ALTER TABLE endpoints ADD CONSTRAINT endpoints_ordering_check
    CHECK (ordering IN ('none', 'subject'));
ALTER TABLE deliveries ADD COLUMN sequence bigint;
ALTER TABLE deliveries ADD COLUMN subject text;
ALTER TABLE deliveries ADD COLUMN previous_event_id text;
ALTER TABLE deliveries ADD COLUMN ordered boolean NOT NULL DEFAULT false;
-- when webhook.subject_blocked told of this delivery holding its subject back (once)
ALTER TABLE deliveries ADD COLUMN blocked_reported_at double precision;
CREATE TABLE endpoint_sequences (
    endpoint_id text PRIMARY KEY,
    last bigint NOT NULL
);
-- The latest event of each (endpoint, subject) that was owed (not skipped): the next delivery's
-- previous_event_id. A row here instead of an index over every delivery's subject: an index
-- would take an entry at every update of every delivery, this takes one write per publish.
CREATE TABLE subject_heads (
    endpoint_id text NOT NULL,
    subject text NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (endpoint_id, subject)
);

-- What is stored already is numbered in the order it was stored.
UPDATE deliveries AS d SET sequence = n.sequence, subject = n.subject
FROM (SELECT d2.seq, e.subject,
             row_number() OVER (PARTITION BY d2.endpoint_id ORDER BY d2.seq) AS sequence
      FROM deliveries AS d2
      LEFT JOIN events AS e ON e.organization_id = d2.organization_id AND e.id = d2.event_id)
     AS n
WHERE d.seq = n.seq;
UPDATE deliveries AS d SET previous_event_id = p.previous_event_id
FROM (SELECT seq, lag(event_id) OVER (PARTITION BY endpoint_id, subject ORDER BY sequence)
                  AS previous_event_id
      FROM deliveries WHERE subject IS NOT NULL AND status <> 'skipped') AS p
WHERE d.seq = p.seq AND p.previous_event_id IS NOT NULL;
INSERT INTO endpoint_sequences (endpoint_id, last)
SELECT endpoint_id, max(sequence) FROM deliveries GROUP BY endpoint_id;
INSERT INTO subject_heads (endpoint_id, subject, event_id)
SELECT DISTINCT ON (endpoint_id, subject) endpoint_id, subject, event_id
FROM deliveries WHERE subject IS NOT NULL AND status <> 'skipped'
ORDER BY endpoint_id, subject, sequence DESC;
ALTER TABLE deliveries ALTER COLUMN sequence SET NOT NULL;

CREATE UNIQUE INDEX deliveries_endpoint_sequence ON deliveries (endpoint_id, sequence);
-- It serves what deliveries_endpoint_seq served (an endpoint's history newest first: the two
-- orders agree within an endpoint), so every update of a delivery writes one index less.
DROP INDEX deliveries_endpoint_seq;
-- An ordered subject's head (at most one pending or held delivery) and its line (the queued
-- ones by sequence): two small partial indexes, so "is one open?" is one probe.
CREATE INDEX deliveries_ordered_head ON deliveries (endpoint_id, subject)
    WHERE ordered AND status IN ('pending', 'held');
CREATE INDEX deliveries_ordered_queued ON deliveries (endpoint_id, subject, sequence)
    WHERE ordered AND status = 'queued';
-- A claim changes only the lease columns, which no index reads: with room left on each page
-- it is a HOT update, writing no index entry at all.
ALTER TABLE deliveries SET (fillfactor = 80);

-- The deliveries of a publish, as the plain path stores them (queries/postgres.sql:
-- lock_sequences, insert_deliveries, then advance_sequences and advance_subject_heads from what
-- it stored), for tidings_publish.
CREATE FUNCTION tidings_insert_deliveries(p_rows json) RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = auto
AS $fn$
DECLARE
    v_ids text[];
    v_count integer;
BEGIN
    SELECT array_agg(DISTINCT t.endpoint_id ORDER BY t.endpoint_id) INTO v_ids
    FROM json_to_recordset(p_rows) AS t(endpoint_id text);
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO endpoint_sequences (endpoint_id, last)
    SELECT t.id, 0 FROM unnest(v_ids) AS t(id) ORDER BY t.id
    ON CONFLICT (endpoint_id) DO UPDATE SET last = endpoint_sequences.last;
    WITH ins AS (
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
                FROM ROWS FROM (json_to_recordset(p_rows)
                                AS (id text, organization_id text, event_id text, endpoint_id text,
                                    status text, skip_reason text, schema_version integer,
                                    is_meta boolean, now double precision))
                     WITH ORDINALITY
                     AS t(id, organization_id, event_id, endpoint_id, status, skip_reason,
                          schema_version, is_meta, now, n)
                JOIN events AS e ON e.organization_id = t.organization_id AND e.id = t.event_id
                JOIN endpoints AS ep ON ep.id = t.endpoint_id
                JOIN endpoint_sequences AS s ON s.endpoint_id = t.endpoint_id
                WHERE NOT EXISTS (SELECT 1 FROM deliveries AS x
                                  WHERE x.event_id = t.event_id AND x.endpoint_id = t.endpoint_id)
            ) AS a
        ) AS b
        ORDER BY b.n
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        RETURNING endpoint_id, subject, event_id, sequence, status
    ), lasts AS (
        UPDATE endpoint_sequences AS s SET last = greatest(s.last, m.last)
        FROM (SELECT i.endpoint_id, max(i.sequence) AS last FROM ins AS i
              GROUP BY i.endpoint_id) AS m
        WHERE s.endpoint_id = m.endpoint_id
    ), heads AS (
        INSERT INTO subject_heads (endpoint_id, subject, event_id)
        SELECT DISTINCT ON (i.endpoint_id, i.subject) i.endpoint_id, i.subject, i.event_id
        FROM ins AS i
        WHERE i.subject IS NOT NULL AND i.status <> 'skipped'
        ORDER BY i.endpoint_id, i.subject, i.sequence DESC
        ON CONFLICT (endpoint_id, subject) DO UPDATE SET event_id = excluded.event_id
    )
    SELECT count(*) INTO v_count FROM ins;
    RETURN v_count;
END
$fn$;

-- promote_subjects (queries/postgres.sql) for tidings_record_outcomes, which holds the locks.
CREATE FUNCTION tidings_promote_subjects(p_keys json, p_now double precision) RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = auto
AS $fn$
DECLARE
    v_count integer;
BEGIN
    UPDATE deliveries AS d SET
        status = CASE WHEN ep.status = 'paused' THEN 'held' ELSE 'pending' END,
        next_attempt_at = p_now, updated_at = p_now
    FROM endpoints AS ep
    WHERE d.seq = ANY(ARRAY(
        SELECT (SELECT q.seq FROM deliveries AS q
                WHERE q.endpoint_id = k.endpoint_id AND q.subject = k.subject AND q.ordered
                  AND q.status = 'queued'
                ORDER BY q.sequence LIMIT 1)
        FROM json_to_recordset(p_keys) AS k(endpoint_id text, subject text)
        WHERE NOT EXISTS (SELECT 1 FROM deliveries AS o
                          WHERE o.endpoint_id = k.endpoint_id AND o.subject = k.subject
                            AND o.ordered AND o.status IN ('pending', 'held'))))
      AND d.status = 'queued' AND ep.id = d.endpoint_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$fn$;

-- The publish fast path (tidings_publish as in 0015) with its deliveries stored by
-- tidings_insert_deliveries.
CREATE OR REPLACE FUNCTION tidings_publish(p_events jsonb, p_deliveries json, p_projections json, p_endpoints json)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'auto'
AS $function$
DECLARE
    stale jsonb;
    stored jsonb;
    n_stored integer;
    n integer;
    n_written integer := 0;
BEGIN
    SELECT jsonb_agg(t.organization_id) INTO stale
    FROM json_to_recordset(p_endpoints) AS t(organization_id text, version bigint)
    LEFT JOIN organizations o ON o.id = t.organization_id
    WHERE o.endpoints_version IS DISTINCT FROM t.version;
    IF stale IS NOT NULL THEN
        RETURN jsonb_build_object('endpoints', stale);
    END IF;

    IF json_array_length(p_projections) > 0 THEN
        -- The same per-key advisory locks, in key order, as the locking path
        -- (lock_projections): a key is written only by its lock's holder.
        PERFORM pg_advisory_xact_lock(
            hashtextextended(t.organization_id || '/' || t.kind || '/' || t.key, 0))
        FROM (
            SELECT * FROM json_to_recordset(p_projections)
                AS r(organization_id text, kind text, key text)
            ORDER BY organization_id, kind, key
        ) AS t;
        IF EXISTS (
            SELECT 1
            FROM json_to_recordset(p_projections)
                 AS t(organization_id text, kind text, key text, expected integer)
            LEFT JOIN projections p
              ON p.organization_id = t.organization_id AND p.kind = t.kind AND p.key = t.key
            WHERE p.version IS DISTINCT FROM t.expected
        ) THEN
            RETURN jsonb_build_object('projections', (
                SELECT coalesce(jsonb_agg(to_jsonb(p)), '[]'::jsonb)
                FROM json_to_recordset(p_projections)
                     AS t(organization_id text, kind text, key text)
                JOIN projections p
                  ON p.organization_id = t.organization_id AND p.kind = t.kind
                 AND p.key = t.key
            ));
        END IF;
    END IF;

    WITH inserted AS (
        INSERT INTO events (
            id, organization_id, type, schema_version, source, partner_uuid, subject,
            attributes, data, idempotency_key, created_at, correlation_id
        )
        SELECT t.id, t.organization_id, t.type, t.schema_version, t.source, t.partner_uuid,
               t.subject, t.attributes, coalesce(t.data, 'null'::jsonb), t.idempotency_key,
               t.created_at, t.correlation_id
        FROM ROWS FROM (jsonb_to_recordset(p_events)
                        AS (id text, organization_id text, type text, schema_version integer,
                            source text, partner_uuid text, subject text, attributes jsonb,
                            data jsonb, idempotency_key text, created_at double precision,
                            correlation_id text))
             WITH ORDINALITY
             AS t(id, organization_id, type, schema_version, source, partner_uuid, subject,
                  attributes, data, idempotency_key, created_at, correlation_id, n)
        ORDER BY t.n
        ON CONFLICT DO NOTHING
        RETURNING organization_id, id, seq
    )
    SELECT coalesce(jsonb_agg(jsonb_build_array(organization_id, id, seq)), '[]'::jsonb),
           count(*)
    INTO stored, n_stored
    FROM inserted;
    IF n_stored <> jsonb_array_length(p_events) THEN
        RAISE EXCEPTION 'an event of this publish is stored already' USING ERRCODE = 'TD001';
    END IF;

    -- The deliveries as the plain path stores them (lock_sequences, insert_deliveries,
    -- advance_sequences in queries/postgres.sql): numbered under the endpoints' counter
    -- locks, each step its own statement so it reads what the lock's last holder wrote.
    PERFORM tidings_insert_deliveries(p_deliveries);
    -- No pg_notify here (0002 says why): the store announces after commit.

    IF json_array_length(p_projections) = 0 THEN
        RETURN jsonb_build_object('stored', stored);
    END IF;
    UPDATE projections p
    SET state = t.state, version = t.version, updated_at = t.updated_at,
        source_created_at = t.source_created_at, last_event_id = t.last_event_id
    FROM json_to_recordset(p_projections)
         AS t(organization_id text, kind text, key text, expected integer, write boolean,
              state jsonb, version integer, updated_at double precision,
              source_created_at double precision, last_event_id text)
    WHERE t.write AND t.expected IS NOT NULL
      AND p.organization_id = t.organization_id AND p.kind = t.kind AND p.key = t.key
      AND p.version = t.expected;
    GET DIAGNOSTICS n = ROW_COUNT;
    n_written := n;
    INSERT INTO projections (
        organization_id, kind, key, state, version, updated_at, source_created_at, last_event_id
    )
    SELECT t.organization_id, t.kind, t.key, t.state, t.version, t.updated_at,
           t.source_created_at, t.last_event_id
    FROM json_to_recordset(p_projections)
         AS t(organization_id text, kind text, key text, expected integer, write boolean,
              state jsonb, version integer, updated_at double precision,
              source_created_at double precision, last_event_id text)
    WHERE t.write AND t.expected IS NULL
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    n_written := n_written + n;
    -- Checked under the locks above, so this holds unless something writes projections without
    -- them; then refuse rather than lose an update.
    IF n_written <> (SELECT count(*) FROM json_to_recordset(p_projections) AS t(write boolean)
                     WHERE t.write) THEN
        RAISE EXCEPTION 'a projection changed under its lock' USING ERRCODE = 'TD002';
    END IF;
    RETURN jsonb_build_object('stored', stored);
END
$function$;

-- The outcome fast path (tidings_record_outcomes as in 0005) making each settled ordered
-- subject's next delivery due.
CREATE OR REPLACE FUNCTION tidings_record_outcomes(
    p_worker text, p_outcomes json, p_now double precision, p_ids text[], p_endpoints text[]
) RETURNS json
LANGUAGE plpgsql
AS $fn$
DECLARE
    answer json;
    promote json;
    promoted integer := 0;
BEGIN
    PERFORM 1 FROM endpoints WHERE id = ANY(p_endpoints) ORDER BY id FOR NO KEY UPDATE;

    WITH o AS (
        SELECT DISTINCT ON (r.id) r.*
        FROM ROWS FROM (json_to_recordset(p_outcomes)
                        AS (id text, status text, next_attempt_at double precision,
                            started_at double precision, last_status_code integer,
                            last_error text, success boolean, number integer,
                            duration_ms double precision, status_code integer, error text,
                            response_excerpt text))
             WITH ORDINALITY
             AS r(id, status, next_attempt_at, started_at, last_status_code, last_error,
                  success, number, duration_ms, status_code, error, response_excerpt, n)
        ORDER BY r.id, r.n
    ), kept AS (
        UPDATE deliveries AS d SET
            status = CASE WHEN o.status = 'pending' AND ep.status = 'paused' THEN 'held'
                          ELSE o.status END,
            attempt_count = d.attempt_count + 1, next_attempt_at = o.next_attempt_at,
            last_attempt_at = o.started_at, last_status_code = o.last_status_code,
            last_error = o.last_error, lease_owner = NULL, lease_expires_at = NULL,
            updated_at = p_now
        FROM o, endpoints AS ep
        WHERE d.id = ANY(p_ids) AND d.id = o.id AND d.lease_owner = p_worker
          AND ep.id = d.endpoint_id
        RETURNING d.id, d.organization_id, d.endpoint_id, d.series, d.status, d.subject,
                  d.ordered
    ), written AS (
        SELECT k.id, k.organization_id, k.endpoint_id, k.series, o.success, o.n, o.number,
               o.started_at, o.duration_ms, o.status_code, o.error, o.response_excerpt
        FROM kept AS k JOIN o ON o.id = k.id
    ), attempted AS (
        INSERT INTO attempts (
            delivery_id, organization_id, number, series, started_at, duration_ms,
            status_code, error, response_excerpt
        )
        SELECT w.id, w.organization_id, w.number, w.series, w.started_at, w.duration_ms,
               w.status_code, w.error, w.response_excerpt
        FROM written AS w
        ORDER BY w.n
    ), streaks AS (
        -- per endpoint, in attempt order: a success resets the streak, the failures after the
        -- last success add to it
        SELECT s.endpoint_id AS id, bool_or(s.success) AS reset,
               count(*) FILTER (WHERE NOT s.success AND s.n > s.last_success)::integer
                   AS failures
        FROM (SELECT w.endpoint_id, w.success, w.n,
                     coalesce(max(w.n) FILTER (WHERE w.success)
                                  OVER (PARTITION BY w.endpoint_id), 0) AS last_success
              FROM written AS w) AS s
        GROUP BY s.endpoint_id
    ), health AS (
        UPDATE endpoints AS e SET
            failure_streak = CASE WHEN c.reset THEN c.failures
                                  ELSE e.failure_streak + c.failures END,
            failing_since = CASE
                WHEN c.failures = 0 AND c.reset THEN NULL
                WHEN c.failures = 0 THEN e.failing_since
                WHEN c.reset THEN p_now
                ELSE coalesce(e.failing_since, p_now) END,
            last_success_at = CASE WHEN c.reset THEN p_now ELSE e.last_success_at END
        FROM streaks AS c
        WHERE e.id = c.id
        RETURNING e.id, e.organization_id, e.status, e.failure_streak, e.failing_since,
                  e.last_success_at
    )
    SELECT json_build_object(
        'kept', coalesce((SELECT json_agg(k.id) FROM kept AS k), '[]'),
        'health', coalesce((SELECT json_agg(h) FROM health AS h), '[]')
    ), (SELECT json_agg(DISTINCT jsonb_build_object('endpoint_id', k.endpoint_id,
                                                    'subject', k.subject))
        FROM kept AS k
        WHERE k.ordered AND k.status IN ('succeeded', 'failed'))
    INTO answer, promote;
    -- An ordered subject whose delivery was settled: its next one is due (as the plain path's
    -- lock_sequences and promote_subjects do, each its own statement after the lock).
    IF promote IS NOT NULL THEN
        PERFORM 1 FROM endpoint_sequences
        WHERE endpoint_id IN (SELECT k.endpoint_id
                              FROM json_to_recordset(promote) AS k(endpoint_id text))
        ORDER BY endpoint_id FOR UPDATE;
        promoted := tidings_promote_subjects(promote, p_now);
    END IF;
    RETURN (answer::jsonb || jsonb_build_object('promoted', promoted))::json;
END
$fn$;

ALTER FUNCTION tidings_record_outcomes(text, json, double precision, text[], text[])
    SET enable_seqscan = off;
ALTER FUNCTION tidings_record_outcomes(text, json, double precision, text[], text[])
    SET plan_cache_mode = auto;
