-- rebound 004: values computed from the database for /metrics, shared by all
-- pods. Whichever pod finds a value older than its maximum age recomputes it
-- (under an advisory transaction lock, so one pod at a time); the others read
-- the stored row. N pods scraped every 15 s scan river_job once per period,
-- not N times.
CREATE TABLE rebound_metric_snapshot (
    name     text        PRIMARY KEY,
    taken_at timestamptz NOT NULL,
    value    jsonb       NOT NULL
);
