-- rebound 002: dead-letter capture. The functions that turn a River job into
-- a job_dead_letter_queue row, used by the trigger on river_job
-- (sql/river_triggers/rebound_dead_letter_capture.sql) and by the periodic
-- reconciliation alike, so the two never disagree; the counts behind
-- rebound_dead_letter_queue_size; tombstones for purged rows.
-- Forward-only: a change to a function comes as a new file with
-- CREATE OR REPLACE.

-- River's tags, kept for replay.
ALTER TABLE job_dead_letter_queue ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

--
-- job_dead_letter_queue_counts: signed deltas of rows per (kind, status),
-- appended by statement triggers on job_dead_letter_queue. Appending (rather
-- than incrementing one row per kind) never makes two of River's completer
-- transactions wait for each other. The reconciliation folds the deltas into
-- one row per (kind, status) every pass, so the table stays small and
-- sum(n) GROUP BY kind, status is the exact size of the DLQ at any size.
--
CREATE TABLE job_dead_letter_queue_counts (
    kind   text   NOT NULL,
    status text   NOT NULL,
    n      bigint NOT NULL
);

INSERT INTO job_dead_letter_queue_counts (kind, status, n)
SELECT kind, status, count(*) FROM job_dead_letter_queue GROUP BY kind, status;

--
-- job_dead_letter_queue_purged: (River job ID, attempt) of purged rows whose
-- River job was still dead at the time, so neither the reconciliation nor a
-- later River UI retry brings a purged row back. The reconciliation deletes a
-- tombstone once River's cleaner has removed the job or it ran again.
--
CREATE TABLE job_dead_letter_queue_purged (
    river_job_id bigint      NOT NULL,
    attempt      smallint    NOT NULL,
    purged_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (river_job_id, attempt)
);

CREATE FUNCTION rebound_dead_letter_count_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_dead_letter_queue_counts (kind, status, n)
    SELECT kind, status, count(*) FROM rebound_new_rows GROUP BY kind, status;
    RETURN NULL;
END $$;

CREATE FUNCTION rebound_dead_letter_count_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_dead_letter_queue_counts (kind, status, n)
    SELECT kind, status, sum(n)
      FROM (SELECT kind, status, 1 AS n FROM rebound_new_rows
            UNION ALL
            SELECT kind, status, -1 AS n FROM rebound_old_rows) d
     GROUP BY kind, status
    HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE FUNCTION rebound_dead_letter_count_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_dead_letter_queue_counts (kind, status, n)
    SELECT kind, status, -count(*) FROM rebound_old_rows GROUP BY kind, status;
    RETURN NULL;
END $$;

CREATE TRIGGER rebound_dead_letter_count_insert AFTER INSERT ON job_dead_letter_queue
    REFERENCING NEW TABLE AS rebound_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rebound_dead_letter_count_insert();
CREATE TRIGGER rebound_dead_letter_count_update AFTER UPDATE ON job_dead_letter_queue
    REFERENCING NEW TABLE AS rebound_new_rows OLD TABLE AS rebound_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rebound_dead_letter_count_update();
CREATE TRIGGER rebound_dead_letter_count_delete AFTER DELETE ON job_dead_letter_queue
    REFERENCING OLD TABLE AS rebound_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rebound_dead_letter_count_delete();

-- A JSON integer as an integer; NULL for anything else (never raises).
CREATE FUNCTION rebound_jsonb_int(v jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' AND (v #>> '{}') ~ '^-?[0-9]{1,9}$'
                THEN (v #>> '{}')::integer END
$$;

-- A JSON timestamp string as a timestamptz; NULL for anything else (never raises).
CREATE FUNCTION rebound_jsonb_timestamptz(v jsonb) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF jsonb_typeof(v) <> 'string' THEN
        RETURN NULL;
    END IF;
    RETURN (v #>> '{}')::timestamptz;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

-- An attempt error as operators read it: River's "JobCancelError: " prefix removed.
CREATE FUNCTION rebound_dead_letter_reason(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(p, '^(JobCancelError: )+', '')
$$;

-- Every attempt of a job: River's errors ([{at, attempt, error, trace}])
-- merged by attempt number with rebound's history (metadata.output.attempts:
-- [{attempt, at, class, strategy, delay_ms, retry_after_ms, error, stack}]).
-- An attempt River recorded an error for but the history has no entry for
-- has class 'lost' (the worker died or hung and River's rescuer took the job
-- back, the same rule as retrypolicy.LostAttempts); an entry without a class
-- gets 'unknown'.
-- Malformed input never raises: entries that are not objects or have no
-- integer attempt are left out.
CREATE FUNCTION rebound_dead_letter_history(p_errors jsonb, p_metadata jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
WITH errs AS (
    SELECT DISTINCT ON (a) a AS attempt, e
      FROM (SELECT rebound_jsonb_int(e -> 'attempt') AS a, e, ord
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_errors) = 'array'
                                             THEN p_errors ELSE '[]'::jsonb END)
                   WITH ORDINALITY AS x(e, ord)
             WHERE jsonb_typeof(e) = 'object') s
     WHERE a IS NOT NULL
     ORDER BY a, ord DESC
),
hist AS (
    SELECT DISTINCT ON (a) a AS attempt, h
      FROM (SELECT rebound_jsonb_int(h -> 'attempt') AS a, h, ord
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_metadata -> 'output' -> 'attempts') = 'array'
                                             THEN p_metadata -> 'output' -> 'attempts' ELSE '[]'::jsonb END)
                   WITH ORDINALITY AS x(h, ord)
             WHERE jsonb_typeof(h) = 'object') s
     WHERE a IS NOT NULL
     ORDER BY a, ord DESC
)
SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'attempt',        attempt,
           'at',             coalesce(e -> 'at', h -> 'at'),
           'error',          to_jsonb(rebound_dead_letter_reason(coalesce(e ->> 'error', h ->> 'error'))),
           'class',          to_jsonb(CASE
                                 WHEN jsonb_typeof(h -> 'class') = 'string' AND h ->> 'class' <> '' THEN h ->> 'class'
                                 WHEN e IS NOT NULL AND h IS NULL THEN 'lost'
                                 ELSE 'unknown' END),
           'strategy',       h -> 'strategy',
           'delay_ms',       h -> 'delay_ms',
           'retry_after_ms', h -> 'retry_after_ms',
           'trace',          nullif(e -> 'trace', '""'::jsonb),
           'stack',          h -> 'stack'
       )) ORDER BY attempt), '[]'::jsonb)
  FROM errs FULL JOIN hist USING (attempt)
$$;

-- rebound_dead_letter_capture inserts the dead-letter row for one River job
-- (to_jsonb of a river_job row) and returns its id; NULL when the job is not
-- dead (state other than discarded or cancelled), was cancelled by an
-- operator (metadata.cancel_attempted_at), already has its row for this
-- attempt, or had that row purged. It is the one definition of a
-- dead-letter row: the trigger on river_job and the reconciliation both
-- call it.
--
--   failure_class:  the class of the final attempt in the merged history
--                   (see rebound_dead_letter_history), else 'unknown'.
--   failure_reason: River's last error, "JobCancelError: " removed; else the
--                   final history entry's error; else ''.
--   operation_key:  metadata.operation_key, else args.operation_key, else kind.
--   first/last_attempted_at: the earliest and latest attempt times of the
--                   history, else River's attempted_at.
--   dead_lettered_at: River's finalized_at, else now().
CREATE FUNCTION rebound_dead_letter_capture(p_job jsonb) RETURNS bigint
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
        coalesce(v_final ->> 'class', 'unknown'),
        coalesce(v_reason, v_final ->> 'error', ''),
        coalesce(v_metadata ->> 'operation_key',
                 CASE WHEN jsonb_typeof(v_args) = 'object' THEN v_args ->> 'operation_key' END,
                 p_job ->> 'kind'),
        coalesce(v_first, rebound_jsonb_timestamptz(p_job -> 'attempted_at')),
        coalesce(v_last, rebound_jsonb_timestamptz(p_job -> 'attempted_at')),
        coalesce(rebound_jsonb_timestamptz(p_job -> 'finalized_at'), now()))
    ON CONFLICT (river_job_id, attempt) DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

-- The trigger function on river_job (the trigger itself is created by the
-- migration runner from sql/river_triggers/rebound_dead_letter_capture.sql).
-- A job entering discarded or cancelled gets its row; a job leaving them (the
-- River UI's Retry, client.JobRetry) marks the row of the attempt it leaves
-- retried, with retried_job_id = the same job ID.
--
-- It never raises: an error here would abort River's completer batch and
-- leave its jobs running. Any error (lock_timeout included: 2s, so a lock on
-- the DLQ table cannot stall the completer) is turned into a WARNING and the
-- reconciliation adds the row later.
CREATE FUNCTION rebound_dead_letter_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET lock_timeout = '2s' AS $$
BEGIN
    BEGIN
        IF NEW.state::text IN ('discarded', 'cancelled') THEN
            PERFORM rebound_dead_letter_capture(to_jsonb(NEW));
        END IF;
        IF OLD.state::text IN ('discarded', 'cancelled') AND NEW.state::text NOT IN ('discarded', 'cancelled') THEN
            -- Add the row if the capture had failed, so the retry is recorded.
            PERFORM rebound_dead_letter_capture(to_jsonb(OLD));
            UPDATE job_dead_letter_queue
               SET status = 'retried', retried_job_id = NEW.id,
                   retried_by = 'river:JobRetry', retried_at = now()
             WHERE river_job_id = OLD.id AND attempt = OLD.attempt AND status = 'unresolved';
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'rebound: dead-letter capture failed for river_job % (% -> %): % (SQLSTATE %); the reconciliation will add the row',
            NEW.id, OLD.state, NEW.state, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END $$;
