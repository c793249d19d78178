-- Writing a batch of outcomes in one round trip (issue 6).
--
-- The worker's outcome write was a transaction of six round trips: BEGIN, lock the endpoints,
-- update the deliveries, insert the attempts, update the endpoints' failure bookkeeping, COMMIT.
-- At a webhook service's usual rates a flush carries a few outcomes, so those round trips were
-- most of its cost in both processes. tidings_record_outcomes does the same steps, in the same
-- order, as one statement (its own transaction).
--
-- p_outcomes: one object per outcome, in attempt order: the delivery's new state (status,
-- next_attempt_at, started_at, last_status_code, last_error), the attempt (number, duration_ms,
-- status_code, error, response_excerpt) and success (whether the endpoint answered 2xx).
-- p_ids: the outcomes' delivery ids as an array. `d.id = ANY(p_ids)` repeats the join condition
-- so the update looks deliveries up by id: with only the join and `lease_owner = p_worker`
-- (which statistics taken while nothing was leased rate at one row) the planner scanned every
-- delivery of a table of some ten thousand rows on each flush.
-- p_endpoints: the endpoints the worker sent to, locked first, in id order (pause, resume and
-- delete lock the endpoint before its deliveries too, so the two cannot deadlock).
--
-- Answers {"kept": [delivery ids written], "health": [endpoint rows after the update]}. An
-- outcome whose lease this worker no longer holds is dropped with its attempt (another worker
-- owns the delivery now and records its own); a delivery id given twice counts once, the first.
CREATE FUNCTION tidings_record_outcomes(
    p_worker text, p_outcomes json, p_now double precision, p_ids text[], p_endpoints text[]
) RETURNS json
LANGUAGE plpgsql
AS $fn$
DECLARE
    answer json;
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
        RETURNING d.id, d.organization_id, d.endpoint_id, d.series
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
    ) INTO answer;
    RETURN answer;
END
$fn$;
