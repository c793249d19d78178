-- Table statistics kept fresh by every tidings process (issue 27 §1), not only by autovacuum.
--
-- The PL/pgSQL functions keep each statement's plan for the life of a connection, and a plan
-- made while the tables had no statistics stays until an ANALYZE of a table it reads. Without
-- statistics the planner cannot tell an index that finds one row from one that finds all of
-- them (both seem to find none), so on a new database the publish's plans looked projections
-- up through projections_changed (every key of a kind), probed for an existing (event,
-- endpoint) pair through the endpoint's index (every delivery of the endpoint) and hashed
-- every event of the organization: each publish read what came before it, 1,283 events/s
-- fell to 526 over 10,000 events, and the wan bench's p99 at 500 events/s reached 13 s.
-- Autovacuum analyzes a table once it has changed by 10 % (and 50 rows), but looks at each
-- database only once a minute (autovacuum_naptime): a minute of plans made blind, and then
-- kept, on every new database and every day's new partition.
--
-- tidings_refresh_statistics analyzes each of tidings' tables that its role owns (partitions
-- included, never a partitioned parent, which the planner does not read for a partition's
-- scan; a table owned by another role is left to autovacuum) that has changed
-- by at least p_rows + p_fraction of its rows since its last analyze, busiest first, and
-- answers their names. An ANALYZE ends the cached plans that read the table in every
-- connection. One caller at a time (the others answer nothing at once); a table another
-- ANALYZE or a VACUUM holds is skipped after lock_timeout rather than waited for.
CREATE FUNCTION tidings_refresh_statistics(p_rows bigint, p_fraction double precision)
RETURNS text[]
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_names text[] := '{}';
    r record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('tidings.statistics')) THEN
        RETURN v_names;
    END IF;
    PERFORM set_config('lock_timeout', '1s', true);
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name
        FROM pg_stat_user_tables AS s
        JOIN pg_class AS c ON c.oid = s.relid
        WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
          AND pg_has_role(c.relowner, 'USAGE')  -- only an owner may analyze (else a warning)
          AND s.n_mod_since_analyze >= p_rows + p_fraction * greatest(c.reltuples, 0)
        ORDER BY s.n_mod_since_analyze DESC
    LOOP
        BEGIN
            EXECUTE format('ANALYZE %s', r.rel);
            v_names := v_names || r.name;
        EXCEPTION WHEN lock_not_available THEN
            NULL;  -- another ANALYZE or a VACUUM has it: the next pass looks again
        END;
    END LOOP;
    RETURN v_names;
END
$fn$;

-- And the deliveries' insert looks its rows' event, endpoint, counter and existing pair up one
-- row at a time, whatever the estimates: a JSON array reads as 100 rows to the planner, and
-- against 100 look-ups it took hashing every event of the organization (or every endpoint) for
-- the cheaper, up to some 4,000 rows, even with statistics, for what is most often one row.
-- A LATERAL subquery with OFFSET 0 (and an EXISTS with one) is not flattened into a join the
-- planner may turn around: it runs once per row, through the key's index. Only the FROM clause
-- changed from migration 0022 (queries/postgres.sql's insert_deliveries, the plain path, too).
CREATE OR REPLACE FUNCTION tidings_insert_deliveries(p_rows json) RETURNS integer
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
                CROSS JOIN LATERAL (SELECT e.subject FROM events AS e
                                    WHERE e.organization_id = t.organization_id
                                      AND e.id = t.event_id OFFSET 0) AS e
                CROSS JOIN LATERAL (SELECT ep.ordering FROM endpoints AS ep
                                    WHERE ep.id = t.endpoint_id OFFSET 0) AS ep
                CROSS JOIN LATERAL (SELECT s.last FROM endpoint_sequences AS s
                                    WHERE s.endpoint_id = t.endpoint_id OFFSET 0) AS s
                WHERE NOT EXISTS (SELECT 1 FROM deliveries AS x
                                  WHERE x.event_id = t.event_id AND x.endpoint_id = t.endpoint_id
                                  OFFSET 0)
            ) AS a
        ) AS b
        ORDER BY b.n
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
