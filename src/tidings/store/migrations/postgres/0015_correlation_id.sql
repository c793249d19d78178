-- Self-echo filtering (issue 26 item 7): the envelope's optional `correlationId`, set by the
-- platform from the request that caused the event, stored with it, delivered in the
-- X-Tidings-Correlation-Id header and filterable in the feed (only events that carry one are
-- indexed). The publish fast path writes it too: tidings_publish as in 0003/0006 (see
-- schema.sql), with the new column in its insert of events.
ALTER TABLE events ADD COLUMN correlation_id text;
CREATE INDEX events_org_correlation ON events (organization_id, correlation_id)
    WHERE correlation_id IS NOT NULL;

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
