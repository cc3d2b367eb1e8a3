-- rebound 014: idempotent job metric flushes. A pod's flush of its counts
-- into job_retry_metrics carries a random token, inserted in the same
-- transaction. When a flush's outcome is unknown (the connection or the
-- client's deadline failed around COMMIT), the next flush looks the token
-- up in its own transaction: found, the counts are in and are not added
-- again; missing, they are added with the new counts. Tokens are removed
-- after an hour by the flushes themselves.
CREATE TABLE rebound_metric_flush (
    token      text        PRIMARY KEY CHECK (length(token) <= 64),
    flushed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rebound_metric_flush_flushed_at ON rebound_metric_flush (flushed_at);
