-- rebound 013: batches. A batch is a named set of jobs of one kind enqueued
-- together (package batch); each job carries the batch's ID in its metadata
-- (metadata.batch_id, a JSON number). Counts are kept as jobs finish, by
-- triggers on river_job (sql/river_triggers/rebound_batch_count*.sql), so a
-- batch's summary stays right after River's cleaner deletes its jobs.

--
-- job_batch: one row per batch. total is fixed at enqueue; succeeded,
-- failed, cancelled and retried are the folded counts (see
-- job_batch_delta); completed_at is set once, when every job has finished.
--
CREATE TABLE job_batch (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unique among all batches (the rule that makes a weekly run unique per
    -- week: name it after the ISO week).
    name                text        NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 200),
    kind                text        NOT NULL,
    total               bigint      NOT NULL CHECK (total >= 0),
    batch_size          integer     NOT NULL CHECK (batch_size >= 1),
    delay_ms            bigint      NOT NULL CHECK (delay_ms >= 0),
    callback_kind       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    starts_at           timestamptz NOT NULL,
    succeeded           bigint      NOT NULL DEFAULT 0,
    failed              bigint      NOT NULL DEFAULT 0,
    cancelled           bigint      NOT NULL DEFAULT 0,
    retried             bigint      NOT NULL DEFAULT 0,
    completed_at        timestamptz,
    callback_job_id     bigint,
    callback_error      text
);
CREATE INDEX job_batch_open_idx ON job_batch (id) WHERE completed_at IS NULL;

--
-- job_batch_delta: signed changes of a batch's counts, appended by the
-- triggers on river_job as jobs finish (or are retried, or deleted before
-- finishing). Appending, rather than updating the job_batch row, never
-- makes two of River's completer transactions wait for each other (nor
-- deadlock on two batches). A pod folds them into job_batch every second
-- (batch.Completer); a summary adds what is not folded yet.
-- failure_class is set on rows that change failed: the class of the job's
-- final attempt, as the dead-letter queue records it.
--
CREATE TABLE job_batch_delta (
    batch_id      bigint  NOT NULL,
    succeeded     integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    cancelled     integer NOT NULL DEFAULT 0,
    retried       integer NOT NULL DEFAULT 0,
    failure_class text
);
CREATE INDEX job_batch_delta_batch_idx ON job_batch_delta (batch_id);

-- job_batch_failure: dead-lettered jobs of a batch per failure class (folded).
CREATE TABLE job_batch_failure (
    batch_id bigint NOT NULL REFERENCES job_batch (id) ON DELETE CASCADE,
    class    text   NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (batch_id, class)
);

-- A batch's dead-letter entries, found by the ID in their metadata.
CREATE INDEX job_dead_letter_queue_batch_idx
    ON job_dead_letter_queue (((metadata ->> 'batch_id')))
    WHERE metadata ? 'batch_id';

-- metadata.batch_id as a bigint; NULL for anything else (never raises).
CREATE FUNCTION rebound_batch_id(p_metadata jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_metadata) = 'object'
                 AND jsonb_typeof(p_metadata -> 'batch_id') = 'number'
                 AND (p_metadata ->> 'batch_id') ~ '^[0-9]{1,18}$'
                THEN (p_metadata ->> 'batch_id')::bigint END
$$;

-- rebound_batch_count appends the delta of one job in state p_state, times
-- p_sign (+1 entering the state, -1 leaving it):
--   completed                          -> succeeded
--   discarded, or cancelled by the job -> failed (dead-lettered), with the
--                                         class of the final attempt
--   cancelled by an operator (metadata.cancel_attempted_at), or deleted
--   before finishing (p_state 'deleted') -> cancelled
--   any other state                    -> nothing
-- retried counts succeeded and failed jobs that needed more than one
-- attempt: a completed job with any error, a failed one with more than one,
-- and any job replayed from the dead-letter queue.
CREATE FUNCTION rebound_batch_count(p_batch bigint, p_sign integer, p_state text, p_metadata jsonb,
                                    p_errors jsonb[], p_attempt integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_meta   jsonb   := CASE WHEN jsonb_typeof(p_metadata) = 'object' THEN p_metadata ELSE '{}'::jsonb END;
    v_errors integer := coalesce(cardinality(p_errors), 0);
    v_replay boolean := v_meta ? 'dead_letter_retry_of';
    v_class  text;
BEGIN
    IF p_batch IS NULL OR p_state IS NULL THEN
        RETURN;
    END IF;
    IF p_state = 'completed' THEN
        INSERT INTO job_batch_delta (batch_id, succeeded, retried)
        VALUES (p_batch, p_sign, CASE WHEN v_errors >= 1 OR v_replay THEN p_sign ELSE 0 END);
    ELSIF p_state = 'discarded' OR (p_state = 'cancelled' AND NOT v_meta ? 'cancel_attempted_at') THEN
        SELECT h ->> 'class' INTO v_class
          FROM jsonb_array_elements(rebound_dead_letter_history(to_jsonb(coalesce(p_errors, '{}'::jsonb[])), v_meta)) h
         WHERE rebound_jsonb_int(h -> 'attempt') = p_attempt
         LIMIT 1;
        INSERT INTO job_batch_delta (batch_id, failed, retried, failure_class)
        VALUES (p_batch, p_sign, CASE WHEN v_errors > 1 OR v_replay THEN p_sign ELSE 0 END,
                rebound_operation_key(coalesce(v_class, 'unknown')));
    ELSIF p_state IN ('cancelled', 'deleted') THEN
        INSERT INTO job_batch_delta (batch_id, cancelled) VALUES (p_batch, p_sign);
    END IF;
END $$;

-- The trigger function of the three batch triggers on river_job:
--   INSERT of a job replayed from the dead-letter queue
--          (metadata.dead_letter_retry_of.entry_id): the dead letter it
--          replays stops counting as failed (the replay counts by its own
--          final outcome, so the item counts once);
--   UPDATE of state: the old state's count is taken back and the new
--          state's added (a job retried by River's JobRetry leaves
--          completed/discarded/cancelled);
--   DELETE of a job that had not finished: counted as cancelled, so the
--          batch still completes.
--
-- It never raises: an error here would abort River's completer batch and
-- leave its jobs running. Any error (lock_timeout included) becomes a
-- WARNING and the batch's counts miss that job.
CREATE FUNCTION rebound_batch_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET lock_timeout = '2s' AS $$
DECLARE
    v_entry bigint;
    v_class text;
    v_errs  integer;
    v_prior boolean;
BEGIN
    BEGIN
        IF TG_OP = 'INSERT' THEN
            v_entry := CASE WHEN jsonb_typeof(NEW.metadata -> 'dead_letter_retry_of' -> 'entry_id') = 'number'
                             AND (NEW.metadata -> 'dead_letter_retry_of' ->> 'entry_id') ~ '^[0-9]{1,18}$'
                            THEN (NEW.metadata -> 'dead_letter_retry_of' ->> 'entry_id')::bigint END;
            SELECT failure_class,
                   CASE WHEN jsonb_typeof(errors) = 'array' THEN jsonb_array_length(errors) ELSE 0 END,
                   metadata ? 'dead_letter_retry_of'
              INTO v_class, v_errs, v_prior
              FROM job_dead_letter_queue WHERE id = v_entry;
            IF FOUND THEN
                INSERT INTO job_batch_delta (batch_id, failed, retried, failure_class)
                VALUES (rebound_batch_id(NEW.metadata), -1,
                        CASE WHEN v_errs > 1 OR v_prior THEN -1 ELSE 0 END, v_class);
            END IF;
        ELSIF TG_OP = 'UPDATE' THEN
            PERFORM rebound_batch_count(rebound_batch_id(OLD.metadata), -1, OLD.state::text, OLD.metadata, OLD.errors, OLD.attempt);
            PERFORM rebound_batch_count(rebound_batch_id(NEW.metadata), 1, NEW.state::text, NEW.metadata, NEW.errors, NEW.attempt);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM rebound_batch_count(rebound_batch_id(OLD.metadata), 1, 'deleted', OLD.metadata, OLD.errors, OLD.attempt);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'rebound: batch count failed for river_job % (%): % (SQLSTATE %)',
            CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, TG_OP, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END $$;
