-- Attempts partitioned by day of started_at (issue 27 §3): retention drops a whole day's table
-- instead of deleting its rows one batch at a time.
--
-- attempts becomes a table partitioned by RANGE (started_at), one partition a UTC day, named
-- attempts_pYYYYMMDD, made ahead of need by tidings_make_day_partitions (each worker calls it
-- with its clock, see store.make_history_partitions; there is no cron) and dropped by
-- tidings_drop_attempts_day once the whole day is older than the retention cutoff.
-- attempts_default takes a row no day partition covers (a clock far off): the safety net, so an
-- insert never fails for want of a partition.
--
-- The upgrade keeps every row without copying: the table as it was becomes the partition
-- attempts_legacy for everything before the end of the day the migration runs (ATTACH checks
-- its rows against that bound once, under the migration's lock), and is dropped like a day once
-- all of it is past retention. An empty table (a new installation) is simply replaced.
--
-- No primary key: a partitioned table's key must hold the partition column, and (seq) alone
-- is unique by construction (one sequence); look-ups go by (delivery_id, seq), an index on each
-- partition.
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
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                           day_name, parent, day_lo, day_hi);
            made := made + 1;
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE 'tidings: % not made, the default partition holds rows of that day',
                day_name;
        END;
    END LOOP;
    RETURN made;
END
$$;

-- Drop the oldest attempts partition wholly before `cutoff`, if any, and answer its name (NULL
-- when there is none). The attempts of deliveries still stored (open ones: a finished delivery
-- older than the cutoff was purged before) are kept: copied aside first, then put back, where
-- the default partition takes them once the day is detached. The lock on `attempts` that
-- DETACH needs is held only for the detach, the put-back and the drop; lock_timeout keeps a
-- long reader from making the drain queue behind it (the next pass tries again).
CREATE FUNCTION tidings_drop_attempts_day(cutoff double precision)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tidings.partitions'));
    SELECT * INTO part FROM tidings_partitions('attempts') AS p
    WHERE p.hi <= cutoff ORDER BY p.hi LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TEMPORARY TABLE tidings_kept_attempts ON COMMIT DROP AS '
                   'SELECT a.* FROM %I AS a WHERE a.delivery_id IN '
                   '(SELECT d.id FROM deliveries AS d WHERE d.created_at < $1)', part.name)
        USING part.hi;
    PERFORM set_config('lock_timeout', '2s', true);
    EXECUTE format('ALTER TABLE attempts DETACH PARTITION %I', part.name);
    INSERT INTO attempts SELECT * FROM tidings_kept_attempts;
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
END
$$;
SELECT tidings_make_day_partitions('attempts', extract(epoch FROM now()), 3);
