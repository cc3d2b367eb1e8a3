-- rebound 001: the dead-letter queue and the shared circuit breaker state,
-- next to River's own tables. Forward-only: later changes come as new files.

--
-- job_dead_letter_queue: one row per (River job ID, attempt) that ended
-- discarded or cancelled by anything but an operator. Rows are never deleted
-- silently; `rebound dlq purge` removes only resolved or retried rows.
--
CREATE TABLE job_dead_letter_queue (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    river_job_id       bigint      NOT NULL,
    attempt            smallint    NOT NULL,
    max_attempts       smallint    NOT NULL,
    kind               text        NOT NULL,
    queue              text        NOT NULL,
    priority           smallint    NOT NULL,
    -- River's state at the moment the job was dead-lettered: discarded or cancelled.
    final_state        text        NOT NULL CHECK (final_state IN ('discarded', 'cancelled')),
    -- The original payload, kept intact for replay (displays redact secrets).
    args               jsonb       NOT NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- River's attempt errors ([{at, attempt, error, trace}]), as on river_job.errors.
    errors             jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- Every attempt merged from River's errors and rebound's own history:
    -- [{attempt, at, error, class, strategy, delay_ms, retry_after_ms, trace}].
    history            jsonb       NOT NULL DEFAULT '[]'::jsonb,
    failure_class      text        NOT NULL,
    -- The last error, normalised (no "JobCancelError: " prefix).
    failure_reason     text        NOT NULL,
    operation_key      text,
    first_attempted_at timestamptz,
    last_attempted_at  timestamptz,
    dead_lettered_at   timestamptz NOT NULL DEFAULT now(),
    status             text        NOT NULL DEFAULT 'unresolved'
                                   CHECK (status IN ('unresolved', 'retried', 'resolved')),
    resolution_note    text,
    resolved_by        text,
    resolved_at        timestamptz,
    retried_job_id     bigint,
    retried_by         text,
    retried_at         timestamptz,
    CONSTRAINT job_dead_letter_queue_job_attempt_key UNIQUE (river_job_id, attempt),
    CONSTRAINT job_dead_letter_queue_resolved_has_note
        CHECK (status <> 'resolved' OR (resolution_note IS NOT NULL AND resolved_at IS NOT NULL))
);

CREATE INDEX job_dead_letter_queue_status_dead_lettered_at_idx
    ON job_dead_letter_queue (status, dead_lettered_at, id);
CREATE INDEX job_dead_letter_queue_kind_class_idx
    ON job_dead_letter_queue (kind, failure_class);
CREATE INDEX job_dead_letter_queue_operation_key_idx
    ON job_dead_letter_queue (operation_key) WHERE operation_key IS NOT NULL;

--
-- circuit_breaker_state: one row per operation key, shared by every pod.
-- Every transition is one compare-and-set statement on `generation`, timed
-- with the database clock.
--
CREATE TABLE circuit_breaker_state (
    breaker_key       text        PRIMARY KEY,
    state             text        NOT NULL DEFAULT 'closed'
                                  CHECK (state IN ('closed', 'open', 'half_open')),
    -- Bumped by every transition; results of an older generation change nothing.
    generation        bigint      NOT NULL DEFAULT 1,
    -- Consecutive failures while closed (or in half-open, failed probes).
    failure_count     integer     NOT NULL DEFAULT 0,
    -- Consecutive successful probes while half-open.
    success_count     integer     NOT NULL DEFAULT 0,
    -- Rolling window for the failure-ratio rule.
    window_started_at timestamptz,
    window_calls      bigint      NOT NULL DEFAULT 0,
    window_failures   bigint      NOT NULL DEFAULT 0,
    -- Consecutive trips without a full recovery (open timeout may grow with it).
    trip_count        integer     NOT NULL DEFAULT 0,
    opened_at         timestamptz,
    -- When an open breaker may admit its first probe.
    next_probe_at     timestamptz,
    last_error        text,
    last_failure_at   timestamptz,
    last_success_at   timestamptz,
    -- Who last changed the state by hand (`rebound breaker reset|open`), and when.
    changed_by        text,
    change_reason     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

--
-- job_retry_queue: River's jobs waiting to be retried, under the name the
-- seed document's operators know.
--
CREATE VIEW job_retry_queue AS
SELECT id         AS river_job_id,
       kind,
       queue,
       attempt,
       max_attempts,
       scheduled_at AS next_attempt_at,
       errors[array_length(errors, 1)] ->> 'error' AS last_error,
       attempted_at AS last_attempted_at,
       args,
       metadata
  FROM river_job
 WHERE state = 'retryable'
    OR (state IN ('available', 'scheduled') AND attempt > 0);
