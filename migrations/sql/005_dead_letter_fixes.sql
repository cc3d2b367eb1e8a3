-- rebound 005: dead-letter fixes.
--
-- 1. A long operation key is stored normalised (rebound_operation_key): an
--    index row holds at most ~2.7 kB, so a 6000-character key made the
--    capture fail and the job had no dead-letter row.
-- 2. rebound_dead_letter_try_capture: the capture for the reconciliation,
--    which returns the error of a row it cannot write instead of raising,
--    so one bad row cannot stop a pass from adding the others.

-- rebound_operation_key returns an operation key as rebound stores and
-- compares it: unchanged when it has at most 200 characters, else its first
-- 183 characters, '…' (U+2026) and the first 16 hex digits of the SHA-256 of
-- the whole key's UTF-8 bytes: exactly 200 characters (at most 800 bytes),
-- the same for the same key, different for keys that differ anywhere. It is
-- jobs.NormalizeOperationKey in SQL (a test holds the two equal), so a
-- dead-letter row carries the key the job's circuit breaker uses.
CREATE FUNCTION rebound_operation_key(k text) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT CASE WHEN char_length(k) <= 200 THEN k
                ELSE left(k, 183) || '…' || left(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 16) END
$$;

-- Rows written before this migration with keys over 200 characters (up to
-- what the index accepted): store them the same way, so one filter finds
-- old and new rows.
UPDATE job_dead_letter_queue
   SET operation_key = rebound_operation_key(operation_key)
 WHERE char_length(operation_key) > 200;

-- As in 002, except that operation_key and failure_class (both indexed) go
-- through rebound_operation_key.
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
    SELECT h INTO v_final FROM jsonb_array_elements(v_history) h
     WHERE (h ->> 'attempt')::integer = v_attempt;
    IF jsonb_array_length(v_errors) > 0 AND jsonb_typeof(v_errors -> -1) = 'object' THEN
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

-- rebound_dead_letter_try_capture is rebound_dead_letter_capture for the
-- reconciliation: a row that cannot be written (a constraint, an index
-- limit, a lock timeout) gives entry_id NULL and error = PostgreSQL's
-- message and SQLSTATE, with that row's changes rolled back, instead of
-- aborting the whole pass. A query cancel still aborts.
CREATE FUNCTION rebound_dead_letter_try_capture(p_job jsonb, OUT entry_id bigint, OUT error text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    entry_id := rebound_dead_letter_capture(p_job);
EXCEPTION WHEN OTHERS THEN
    entry_id := NULL;
    error := SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')';
END $$;
