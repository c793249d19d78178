-- Publishing new events in one round trip, and projection reads that stay index lookups.
-- (Issue 6: a single POST /v1/events took eight round trips, BEGIN to COMMIT, each one a
-- wake-up of the API process and of a PostgreSQL backend.)
--
-- tidings_publish_new stores events that are all new, their deliveries and the
-- projection changes computed from projection versions read just before, as one statement,
-- so in its own implicit transaction: all of it or nothing. It refuses (and so rolls back)
-- when the premise does not hold, and the caller then takes the locking path:
--   TD001  one of the events exists already (idempotent repeat, or twice in one batch)
--   TD002  a projection changed since it was read (a concurrent publish to the same key)
--
-- Both functions plan with enable_seqscan off: their plans are cached per connection, and a plan
-- made while `projections` was small (a new database, a bench) hash-joined a sequential scan of
-- it, kept doing so as it grew, and publishing slowed down with every event (seen: two full
-- scans of `projections` per publish, single publishes falling from 650/s to 380/s in 30 s).
-- Every lookup here is by primary key.
CREATE FUNCTION tidings_publish_new(p_events jsonb, p_deliveries json, p_projections json)
RETURNS jsonb
LANGUAGE plpgsql
SET enable_seqscan = off
AS $fn$
DECLARE
    stored jsonb;
    n_stored integer;
    n_ok integer;
    n integer;
BEGIN
    WITH inserted AS (
        INSERT INTO events (
            id, organization_id, type, schema_version, source, partner_uuid, subject,
            attributes, data, idempotency_key, created_at
        )
        SELECT t.id, t.organization_id, t.type, t.schema_version, t.source, t.partner_uuid,
               t.subject, t.attributes, coalesce(t.data, 'null'::jsonb), t.idempotency_key,
               t.created_at
        FROM ROWS FROM (jsonb_to_recordset(p_events)
                        AS (id text, organization_id text, type text, schema_version integer,
                            source text, partner_uuid text, subject text, attributes jsonb,
                            data jsonb, idempotency_key text, created_at double precision))
             WITH ORDINALITY
             AS t(id, organization_id, type, schema_version, source, partner_uuid, subject,
                  attributes, data, idempotency_key, created_at, n)
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

    INSERT INTO deliveries (
        id, organization_id, event_id, endpoint_id, status, skip_reason, schema_version,
        next_attempt_at, is_meta, created_at, updated_at
    )
    SELECT t.id, t.organization_id, t.event_id, t.endpoint_id, t.status, t.skip_reason,
           t.schema_version, CASE WHEN t.status = 'pending' THEN t.now END, t.is_meta, t.now,
           t.now
    FROM json_to_recordset(p_deliveries)
         AS t(id text, organization_id text, event_id text, endpoint_id text, status text,
              skip_reason text, schema_version integer, is_meta boolean, now double precision)
    ON CONFLICT (endpoint_id, event_id) DO NOTHING;
    -- No pg_notify here: NOTIFY holds one database-wide lock from its commit until the commit
    -- is flushed, which lined concurrent publishes up one fsync at a time. The store announces
    -- after commit instead (PostgresStore._announce).

    IF json_array_length(p_projections) = 0 THEN
        RETURN stored;
    END IF;
    -- The same per-key advisory locks, in key order, as the locking path (lock_projections):
    -- a key is written only by its lock's holder, and one lock order means no deadlock.
    PERFORM pg_advisory_xact_lock(hashtextextended(t.organization_id || '/' || t.kind || '/' || t.key, 0))
    FROM (
        SELECT * FROM json_to_recordset(p_projections) AS r(organization_id text, kind text, key text)
        ORDER BY organization_id, kind, key
    ) AS t;
    -- Keys this publish leaves as they are must still be as they were read.
    SELECT count(*) INTO n_ok
    FROM json_to_recordset(p_projections)
         AS t(organization_id text, kind text, key text, expected integer, write boolean)
    LEFT JOIN projections p
      ON p.organization_id = t.organization_id AND p.kind = t.kind AND p.key = t.key
    WHERE NOT t.write AND p.version IS NOT DISTINCT FROM t.expected;
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
    n_ok := n_ok + n;
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
    n_ok := n_ok + n;
    IF n_ok <> json_array_length(p_projections) THEN
        RAISE EXCEPTION 'a projection changed since it was read' USING ERRCODE = 'TD002';
    END IF;
    RETURN stored;
END
$fn$;

-- The projections of a list of keys (organization_id, kind, key), by primary key.
CREATE FUNCTION tidings_projections(p_keys json)
RETURNS SETOF projections
LANGUAGE sql
STABLE
SET enable_seqscan = off
AS $fn$
    SELECT p.*
    FROM projections p
    JOIN json_to_recordset(p_keys) AS t(organization_id text, kind text, key text)
      ON p.organization_id = t.organization_id AND p.kind = t.kind AND p.key = t.key
$fn$;
