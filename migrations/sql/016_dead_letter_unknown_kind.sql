-- rebound 016: a job dead-lettered as unknown_kind keeps its whole history.
--
-- A job whose kind the fetching pod has no worker for is given its attempt
-- back after each such failure (river_job.attempt - 1), so River's errors
-- and rebound's history (metadata.output.attempts) hold several entries
-- with the same attempt number. 002's history merged the two by attempt
-- number alone and kept one entry per number, so such a job's dead-letter
-- row had one history row, first_attempted_at equal to last_attempted_at,
-- and River's last error as its reason, without the "; no pod registered
-- the kind in 24h0m0s (since ...)" rebound's final entry carries.
--
-- 1. rebound_dead_letter_history pairs River's errors and history entries
--    by (attempt, position among the entries of that attempt, in order):
--    the n-th error of attempt a with the n-th history entry of attempt a.
--    Every entry is kept; a job with one entry per attempt gets what it got
--    before. An unknown_kind entry's error is rebound's (River's message,
--    and on the final entry why the job was dead-lettered).
-- 2. rebound_dead_letter_capture takes the final attempt's last entry, and
--    when its class is unknown_kind its error as failure_reason.
-- 3. Rows already written with class unknown_kind are rebuilt from the
--    errors and metadata they keep: history, failure_reason (and so its
--    fingerprint), first and last attempt times. No other row changes.

CREATE OR REPLACE FUNCTION rebound_dead_letter_history(p_errors jsonb, p_metadata jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
WITH errs AS (
    SELECT a AS attempt, row_number() OVER (PARTITION BY a ORDER BY ord) AS n, e
      FROM (SELECT rebound_jsonb_int(e -> 'attempt') AS a, e, ord
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_errors) = 'array'
                                             THEN p_errors ELSE '[]'::jsonb END)
                   WITH ORDINALITY AS x(e, ord)
             WHERE jsonb_typeof(e) = 'object') s
     WHERE a IS NOT NULL
),
hist AS (
    SELECT a AS attempt, row_number() OVER (PARTITION BY a ORDER BY ord) AS n, h
      FROM (SELECT rebound_jsonb_int(h -> 'attempt') AS a, h, ord
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_metadata -> 'output' -> 'attempts') = 'array'
                                             THEN p_metadata -> 'output' -> 'attempts' ELSE '[]'::jsonb END)
                   WITH ORDINALITY AS x(h, ord)
             WHERE jsonb_typeof(h) = 'object') s
     WHERE a IS NOT NULL
)
SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'attempt',        attempt,
           'at',             coalesce(e -> 'at', h -> 'at'),
           'error',          to_jsonb(rebound_dead_letter_reason(CASE
                                 WHEN h ->> 'class' = 'unknown_kind' AND coalesce(h ->> 'error', '') <> '' THEN h ->> 'error'
                                 ELSE coalesce(e ->> 'error', h ->> 'error') END)),
           'class',          to_jsonb(CASE
                                 WHEN jsonb_typeof(h -> 'class') = 'string' AND h ->> 'class' <> '' THEN h ->> 'class'
                                 WHEN e IS NOT NULL AND h IS NULL THEN 'lost'
                                 ELSE 'unknown' END),
           'strategy',       h -> 'strategy',
           'delay_ms',       h -> 'delay_ms',
           'retry_after_ms', h -> 'retry_after_ms',
           'trace',          nullif(e -> 'trace', '""'::jsonb),
           'stack',          h -> 'stack'
       )) ORDER BY attempt, n), '[]'::jsonb)
  FROM errs FULL JOIN hist USING (attempt, n)
$$;

-- As in 005, except that the final entry is the last of the final attempt's
-- entries, and an unknown_kind final entry gives its own error as the reason.
CREATE OR REPLACE FUNCTION rebound_dead_letter_capture(p_job jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_state    text  := p_job ->> 'state';
    v_metadata jsonb := CASE WHEN jsonb_typeof(p_job -> 'metadata') = 'object' THEN p_job -> 'metadata' ELSE '{}'::jsonb END;
    v_args     jsonb := coalesce(p_job -> 'args', '{}'::jsonb);
    v_errors   jsonb := CASE WHEN jsonb_typeof(p_job -> 'errors') = 'array' THEN p_job -> 'errors' ELSE '[]'::jsonb END;
    v_job_id   bigint := (p_job ->> 'id')::bigint;
    v_attempt  integer := coalesce(rebound_jsonb_int(p_job -> 'attempt'), 0);
    v_history  jsonb;
    v_final    jsonb;
    v_reason   text;
    v_first    timestamptz;
    v_last     timestamptz;
    v_id       bigint;
BEGIN
    IF v_state IS NULL OR v_state NOT IN ('discarded', 'cancelled') THEN
        RETURN NULL;
    END IF;
    IF v_state = 'cancelled' AND v_metadata ? 'cancel_attempted_at' THEN
        RETURN NULL; -- an operator's decision, not a failure
    END IF;
    IF EXISTS (SELECT 1 FROM job_dead_letter_queue_purged
                WHERE river_job_id = v_job_id AND attempt = v_attempt) THEN
        RETURN NULL;
    END IF;

    v_history := rebound_dead_letter_history(v_errors, v_metadata);
    SELECT h INTO v_final FROM jsonb_array_elements(v_history) WITH ORDINALITY AS x(h, ord)
     WHERE (h ->> 'attempt')::integer = v_attempt
     ORDER BY ord DESC LIMIT 1;
    IF v_final ->> 'class' = 'unknown_kind' AND coalesce(v_final ->> 'error', '') <> '' THEN
        v_reason := v_final ->> 'error'; -- River's error and why the job ends
    END IF;
    IF v_reason IS NULL AND jsonb_array_length(v_errors) > 0 AND jsonb_typeof(v_errors -> -1) = 'object' THEN
        v_reason := rebound_dead_letter_reason(v_errors -> -1 ->> 'error');
    END IF;
    SELECT min(rebound_jsonb_timestamptz(h -> 'at')), max(rebound_jsonb_timestamptz(h -> 'at'))
      INTO v_first, v_last
      FROM jsonb_array_elements(v_history) h;

    INSERT INTO job_dead_letter_queue (
        river_job_id, attempt, max_attempts, kind, queue, priority, final_state,
        args, metadata, errors, history, tags, failure_class, failure_reason, operation_key,
        first_attempted_at, last_attempted_at, dead_lettered_at)
    VALUES (
        v_job_id,
        v_attempt,
        coalesce(rebound_jsonb_int(p_job -> 'max_attempts'), 0),
        coalesce(p_job ->> 'kind', ''),
        coalesce(p_job ->> 'queue', ''),
        coalesce(rebound_jsonb_int(p_job -> 'priority'), 1),
        v_state,
        v_args,
        v_metadata,
        v_errors,
        v_history,
        coalesce(ARRAY(SELECT jsonb_array_elements_text(p_job -> 'tags')
                        WHERE jsonb_typeof(p_job -> 'tags') = 'array'), '{}'),
        rebound_operation_key(coalesce(v_final ->> 'class', 'unknown')),
        coalesce(v_reason, v_final ->> 'error', ''),
        rebound_operation_key(coalesce(v_metadata ->> 'operation_key',
                 CASE WHEN jsonb_typeof(v_args) = 'object' THEN v_args ->> 'operation_key' END,
                 p_job ->> 'kind')),
        coalesce(v_first, rebound_jsonb_timestamptz(p_job -> 'attempted_at')),
        coalesce(v_last, rebound_jsonb_timestamptz(p_job -> 'attempted_at')),
        coalesce(rebound_jsonb_timestamptz(p_job -> 'finalized_at'), now()))
    ON CONFLICT (river_job_id, attempt) DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

-- 3: the unknown_kind rows written before this migration.
UPDATE job_dead_letter_queue d
   SET history            = n.history,
       failure_reason     = CASE WHEN f.h ->> 'class' = 'unknown_kind' AND coalesce(f.h ->> 'error', '') <> ''
                                 THEN f.h ->> 'error' ELSE d.failure_reason END,
       first_attempted_at = coalesce(t.first_at, d.first_attempted_at),
       last_attempted_at  = coalesce(t.last_at, d.last_attempted_at)
  FROM job_dead_letter_queue q
 CROSS JOIN LATERAL (SELECT rebound_dead_letter_history(q.errors, q.metadata) AS history) n
 CROSS JOIN LATERAL (SELECT min(rebound_jsonb_timestamptz(h -> 'at')) AS first_at,
                            max(rebound_jsonb_timestamptz(h -> 'at')) AS last_at
                       FROM jsonb_array_elements(n.history) h) t
  LEFT JOIN LATERAL (SELECT h FROM jsonb_array_elements(n.history) WITH ORDINALITY AS x(h, ord)
                      WHERE (h ->> 'attempt')::integer = q.attempt
                      ORDER BY ord DESC LIMIT 1) f ON true
 WHERE d.id = q.id AND q.failure_class = 'unknown_kind';
