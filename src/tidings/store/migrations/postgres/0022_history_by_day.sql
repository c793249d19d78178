-- The history partitioned by day (issue 27 §3): retention drops a whole day's tables instead of
-- deleting their rows one batch at a time (decisions.md, "History partitioned by day").
--
-- attempts (by started_at) and deliveries (by created_at) become tables partitioned by RANGE,
-- one partition a UTC day, named <table>_pYYYYMMDD, made ahead of need by
-- tidings_make_day_partitions (each worker's retention pass calls it with its clock, see
-- store.make_history_partitions; there is no cron) and dropped by tidings_drop_history_day once
-- the whole day is older than the retention cutoff (what is still open is kept).
-- <table>_default takes a row no day partition covers (a clock far off, a row kept open past
-- its day): the safety net, so an insert never fails for want of a partition.
--
-- The upgrade keeps every row without copying: each table as it was becomes the partition
-- <table>_legacy for everything before the end of the day the migration runs (ATTACH checks
-- its rows against that bound once, under the migration's lock, and builds on deliveries_legacy
-- the plain indexes its unique ones cannot stand for), and is dropped like a day once all of it
-- is past retention. An empty table (a new installation) is simply replaced.
--
-- attempts has no primary key: a partitioned table's key must hold the partition column, and
-- (seq) alone is unique by construction (one sequence); look-ups go by (delivery_id, seq), an
-- index on each partition.
ALTER TABLE attempts RENAME TO attempts_legacy;
ALTER INDEX attempts_pkey RENAME TO attempts_legacy_pkey;
ALTER INDEX attempts_delivery RENAME TO attempts_legacy_delivery;

CREATE TABLE attempts (
    seq bigint NOT NULL DEFAULT nextval('attempts_seq_seq'),
    delivery_id text NOT NULL,
    organization_id text NOT NULL,
    number integer NOT NULL,
    series integer NOT NULL,
    started_at double precision NOT NULL,
    duration_ms double precision NOT NULL,
    status_code integer,
    error text,
    response_excerpt text
) PARTITION BY RANGE (started_at);
-- the sequence outlives the legacy table when that one is dropped
ALTER SEQUENCE attempts_seq_seq OWNED BY attempts.seq;
CREATE INDEX attempts_delivery ON attempts (delivery_id, seq);
CREATE TABLE attempts_default PARTITION OF attempts DEFAULT;

-- deliveries likewise, by day of created_at. PostgreSQL keeps a unique index on a partitioned
-- table only when it holds the partition column, so the keys become plain indexes:
-- (event_id, endpoint_id) stays unique because every insert takes its endpoint's counter lock
-- first and skips the pairs that exist (insert_deliveries: NOT EXISTS, no ON CONFLICT any
-- more); id, seq and (endpoint_id, sequence) are unique by construction (random ids, one
-- sequence, the counter under its lock). The legacy table keeps its unique indexes.
ALTER TABLE deliveries RENAME TO deliveries_legacy;
ALTER INDEX deliveries_pkey RENAME TO deliveries_legacy_pkey;
ALTER INDEX deliveries_id_key RENAME TO deliveries_legacy_id_key;
ALTER INDEX deliveries_event_id_endpoint_id_key RENAME TO deliveries_legacy_event_id_endpoint_id_key;
ALTER INDEX deliveries_created_at RENAME TO deliveries_legacy_created_at;
ALTER INDEX deliveries_due RENAME TO deliveries_legacy_due;
ALTER INDEX deliveries_ordered_head RENAME TO deliveries_legacy_ordered_head;
ALTER INDEX deliveries_ordered_queued RENAME TO deliveries_legacy_ordered_queued;
ALTER INDEX deliveries_org_seq RENAME TO deliveries_legacy_org_seq;
ALTER INDEX deliveries_endpoint_sequence RENAME TO deliveries_legacy_endpoint_sequence;

CREATE TABLE deliveries (LIKE deliveries_legacy INCLUDING DEFAULTS)
PARTITION BY RANGE (created_at);
ALTER SEQUENCE deliveries_seq_seq OWNED BY deliveries.seq;
CREATE INDEX deliveries_seq ON deliveries (seq);
CREATE INDEX deliveries_id ON deliveries (id);
CREATE INDEX deliveries_event_endpoint ON deliveries (event_id, endpoint_id);
CREATE INDEX deliveries_created_at ON deliveries (created_at);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_ordered_head ON deliveries (endpoint_id, subject)
    WHERE ordered AND status IN ('pending', 'held');
CREATE INDEX deliveries_ordered_queued ON deliveries (endpoint_id, subject, sequence)
    WHERE ordered AND status = 'queued';
CREATE INDEX deliveries_org_seq ON deliveries (organization_id, seq);
CREATE INDEX deliveries_endpoint_sequence ON deliveries (endpoint_id, sequence);
-- The open deliveries by event: the events purge keeps an event while one of its deliveries is
-- open, and without this it would look in every day's (event_id, endpoint_id) index, or read
-- every day whole, for each event (a day's events took seconds to purge; now milliseconds).
-- Only open rows are in it: a delivery enters it when stored and leaves when settled.
CREATE INDEX deliveries_open ON deliveries (event_id) WHERE status IN ('pending', 'held', 'queued');
-- fillfactor 80 (migration 0021) is a setting of each partition: a partitioned table has none
CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT WITH (fillfactor = 80);

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
                JOIN events AS e ON e.organization_id = t.organization_id AND e.id = t.event_id
                JOIN endpoints AS ep ON ep.id = t.endpoint_id
                JOIN endpoint_sequences AS s ON s.endpoint_id = t.endpoint_id
                WHERE NOT EXISTS (SELECT 1 FROM deliveries AS x
                                  WHERE x.event_id = t.event_id AND x.endpoint_id = t.endpoint_id)
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

-- A partitioned table's partitions with their bounds (MINVALUE/MAXVALUE as -/+ infinity);
-- the default partition is not listed.
CREATE FUNCTION tidings_partitions(parent text)
RETURNS TABLE (name text, lo double precision, hi double precision)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text,
           CASE WHEN m[1] = 'MINVALUE' THEN '-Infinity'::float8
                ELSE btrim(m[1], '''')::float8 END,  -- a bound reads ('1796342400')
           CASE WHEN m[2] = 'MAXVALUE' THEN 'Infinity'::float8
                ELSE btrim(m[2], '''')::float8 END
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS m
    WHERE i.inhparent = parent::regclass AND m IS NOT NULL
$$;

-- Make the day partitions of `parent` for the `days` UTC days from the one holding `first`;
-- answers how many it made. A day that exists, or that another partition covers in part (the
-- legacy rows), is left as it is; so is a day the default partition already holds rows of
-- (they stay there: PostgreSQL refuses the new partition rather than move them). Concurrent
-- callers queue on one advisory lock.
CREATE FUNCTION tidings_make_day_partitions(parent text, first double precision, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    made integer := 0;
    day_lo double precision;
    day_hi double precision;
    day_name text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tidings.partitions'));
    FOR i IN 0 .. days - 1 LOOP
        day_lo := floor(first / 86400) * 86400 + i * 86400;
        day_hi := day_lo + 86400;
        day_name := parent || '_p' || to_char(to_timestamp(day_lo) AT TIME ZONE 'UTC', 'YYYYMMDD');
        CONTINUE WHEN to_regclass(day_name) IS NOT NULL;
        CONTINUE WHEN EXISTS (SELECT 1 FROM tidings_partitions(parent) AS p
                              WHERE p.lo < day_hi AND p.hi > day_lo);
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)%s',
                           day_name, parent, day_lo, day_hi,
                           CASE WHEN parent = 'deliveries' THEN ' WITH (fillfactor = 80)'
                                ELSE '' END);
            made := made + 1;
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE 'tidings: % not made, the default partition holds rows of that day',
                day_name;
        END;
    END LOOP;
    RETURN made;
END
$$;

-- Drop the oldest day partition wholly before `cutoff` (deliveries first, then attempts), if
-- any, and answer its name (NULL when there is none). What is still needed goes on in the
-- default partition, where PostgreSQL puts it once the day is detached: the day's deliveries
-- still open (pending, held or queued; a delivery retried for longer than the retention, or
-- held by a paused endpoint), and the attempts of deliveries still stored. DETACH locks the
-- parent table for the detach, the put-back (a read of the one day) and the drop; lock_timeout
-- keeps a long reader from making the drain queue behind it (the next pass tries again).
CREATE FUNCTION tidings_drop_history_day(cutoff double precision)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tidings.partitions'));
    PERFORM set_config('lock_timeout', '2s', true);
    SELECT * INTO part FROM tidings_partitions('deliveries') AS p
    WHERE p.hi <= cutoff ORDER BY p.hi LIMIT 1;
    IF FOUND THEN
        EXECUTE format('ALTER TABLE deliveries DETACH PARTITION %I', part.name);
        EXECUTE format('INSERT INTO deliveries SELECT * FROM %I '
                       'WHERE status IN (''pending'', ''held'', ''queued'')', part.name);
        EXECUTE format('DROP TABLE %I', part.name);
        RETURN part.name;
    END IF;
    SELECT * INTO part FROM tidings_partitions('attempts') AS p
    WHERE p.hi <= cutoff ORDER BY p.hi LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE format('ALTER TABLE attempts DETACH PARTITION %I', part.name);
    EXECUTE format('INSERT INTO attempts SELECT a.* FROM %I AS a WHERE a.delivery_id IN '
                   '(SELECT d.id FROM deliveries AS d WHERE d.created_at < $1)', part.name)
        USING part.hi;
    EXECUTE format('DROP TABLE %I', part.name);
    RETURN part.name;
END
$$;

DO $$
DECLARE
    day_end double precision :=
        extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day');
BEGIN
    IF EXISTS (SELECT 1 FROM attempts_legacy) THEN
        EXECUTE format('ALTER TABLE attempts ATTACH PARTITION attempts_legacy '
                       'FOR VALUES FROM (MINVALUE) TO (%s)', day_end);
    ELSE
        DROP TABLE attempts_legacy;
    END IF;
    IF EXISTS (SELECT 1 FROM deliveries_legacy) THEN
        EXECUTE format('ALTER TABLE deliveries ATTACH PARTITION deliveries_legacy '
                       'FOR VALUES FROM (MINVALUE) TO (%s)', day_end);
    ELSE
        DROP TABLE deliveries_legacy;
    END IF;
END
$$;
SELECT tidings_make_day_partitions('attempts', extract(epoch FROM now()), 3);
SELECT tidings_make_day_partitions('deliveries', extract(epoch FROM now()), 3);
