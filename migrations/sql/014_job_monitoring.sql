-- rebound 014: job monitoring. Success-rate data that outlives River's
-- cleaner (job_retry_metrics), alert rules (job_alert_config), the state of
-- each (rule, subject) pair (job_alert_state) and every firing, repeat and
-- resolution with its delivery (job_alert_history).

--
-- job_retry_metrics: counts per job kind and period. Pods aggregate in
-- memory and add their counts here once per flush (one INSERT ... ON
-- CONFLICT DO UPDATE adding to the row), never once per job. Periods are
-- minutes (period_seconds = 60); the rollup folds minutes older than a day
-- into hours (3600) and removes rows past the retention.
--
CREATE TABLE job_retry_metrics (
    kind              text        NOT NULL,
    period_start      timestamptz NOT NULL,
    period_seconds    integer     NOT NULL CHECK (period_seconds IN (60, 3600)),
    -- attempts worked (a snooze by the circuit breaker gate is not one)
    attempts          bigint      NOT NULL DEFAULT 0,
    -- jobs that finished completed
    completed         bigint      NOT NULL DEFAULT 0,
    -- jobs that finished discarded or cancelled by rebound's rules (the
    -- dead-letter queue's rule: an operator's cancel is neither)
    dead_lettered     bigint      NOT NULL DEFAULT 0,
    -- failed attempts by failure class: {"server_error": 3, ...}
    failures          jsonb       NOT NULL DEFAULT '{}',
    retries_scheduled bigint      NOT NULL DEFAULT 0,
    -- jobs snoozed by an open circuit breaker without an attempt
    short_circuited   bigint      NOT NULL DEFAULT 0,
    -- total run time of the attempts, in milliseconds
    run_time_ms       bigint      NOT NULL DEFAULT 0,
    -- the end of the latest attempt counted in the row
    last_attempt_at   timestamptz,
    PRIMARY KEY (kind, period_seconds, period_start)
);

CREATE INDEX job_retry_metrics_period ON job_retry_metrics (period_start);

-- rebound_jsonb_sum adds two {key: integer} objects key by key; entries
-- that are not integers count 0. Never raises.
CREATE FUNCTION rebound_jsonb_sum(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
      FROM (SELECT k, sum(coalesce(rebound_jsonb_int(v), 0))::bigint AS n
              FROM (SELECT key AS k, value AS v FROM jsonb_each(CASE WHEN jsonb_typeof(a) = 'object' THEN a ELSE '{}'::jsonb END)
                    UNION ALL
                    SELECT key, value FROM jsonb_each(CASE WHEN jsonb_typeof(b) = 'object' THEN b ELSE '{}'::jsonb END)) e
             GROUP BY k) s
$$;

CREATE AGGREGATE rebound_jsonb_sum_agg(jsonb) (
    SFUNC = rebound_jsonb_sum,
    STYPE = jsonb,
    INITCOND = '{}'
);

--
-- job_alert_config: the alert rules. Every pod reads them at each
-- evaluation, so a change applies within one evaluation interval. Channels
-- are names defined in the configuration file; no secret is stored here.
--
CREATE TABLE job_alert_config (
    name             text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    -- failure_rate, breaker_open, dlq_unresolved, dlq_growth, dlq_oldest_age
    metric           text        NOT NULL CHECK (metric IN ('failure_rate', 'breaker_open', 'dlq_unresolved', 'dlq_growth', 'dlq_oldest_age')),
    -- fires when the value is above threshold (percent, count, or seconds)
    threshold        double precision NOT NULL CHECK (threshold >= 0),
    window_seconds   integer     NOT NULL CHECK (window_seconds BETWEEN 60 AND 2592000),
    -- failure_rate only: the least number of finished jobs in the window
    min_jobs         integer     NOT NULL DEFAULT 0 CHECK (min_jobs >= 0),
    severity         text        NOT NULL CHECK (severity IN ('warning', 'error', 'critical')),
    cooldown_seconds integer     NOT NULL DEFAULT 3600 CHECK (cooldown_seconds BETWEEN 0 AND 2592000),
    channels         text[]      NOT NULL DEFAULT '{}',
    enabled          boolean     NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The seed's thresholds.
INSERT INTO job_alert_config (name, metric, threshold, window_seconds, min_jobs, severity) VALUES
    ('failure-rate-warning',   'failure_rate',   20,    900, 10, 'warning'),
    ('failure-rate-error',     'failure_rate',   50,    900, 10, 'error'),
    ('breaker-open',           'breaker_open',   0,      60,  0, 'critical'),
    ('dlq-unresolved-error',   'dlq_unresolved', 50,     60,  0, 'error'),
    ('dlq-unresolved-critical','dlq_unresolved', 100,    60,  0, 'critical'),
    ('dlq-growth',             'dlq_growth',     20,   3600,  0, 'warning'),
    ('dlq-oldest-age',         'dlq_oldest_age', 86400,  60,  0, 'warning');

--
-- job_alert_state: one row per (rule, subject) whose condition held at some
-- evaluation. firing_since is NULL once resolved. Evaluations lock the row
-- (SELECT ... FOR UPDATE) before deciding, so two pods never both notify.
--
CREATE TABLE job_alert_state (
    rule          text        NOT NULL,
    subject       text        NOT NULL,
    severity      text        NOT NULL,
    value         double precision NOT NULL,
    threshold     double precision NOT NULL,
    message       text        NOT NULL,
    firing_since  timestamptz,
    last_notified timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, subject)
);

--
-- job_alert_history: every firing, repeat and resolution.
--
CREATE TABLE job_alert_history (
    id          bigserial   PRIMARY KEY,
    rule        text        NOT NULL,
    subject     text        NOT NULL,
    event       text        NOT NULL CHECK (event IN ('firing', 'repeat', 'resolved', 'test')),
    severity    text        NOT NULL,
    value       double precision NOT NULL,
    threshold   double precision NOT NULL,
    message     text        NOT NULL,
    channels    text[]      NOT NULL DEFAULT '{}',
    -- per channel: {"slack": {"outcome": "delivered", "attempts": 3, "error": "..."}}
    delivery    jsonb       NOT NULL DEFAULT '{}',
    -- when the (rule, subject) started firing
    firing_since timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX job_alert_history_created ON job_alert_history (created_at);
