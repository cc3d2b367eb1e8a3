package metricstore

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// Defaults of the rollup.
const (
	// DefaultRollupAfter is the age after which minute rows are folded
	// into hour rows: 24 hours.
	DefaultRollupAfter = 24 * time.Hour
	// DefaultRetention is the age after which rows are deleted: 30 days.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultRollupInterval is how often the rollup job runs: hourly.
	DefaultRollupInterval = time.Hour
)

// RollupResult is what one rollup did.
type RollupResult struct {
	// MinuteRows is the number of minute rows folded into hour rows.
	MinuteRows int64 `json:"minute_rows"`
	// Deleted is the number of rows past the retention deleted.
	Deleted int64 `json:"deleted"`
}

// Rollup folds the minute rows of hours that started before now - after
// into hour rows (adding to an hour row already there) and deletes rows
// whose period started before now - retention, in one transaction. Running
// it twice does no harm: the second finds nothing to fold.
func (s *Store) Rollup(ctx context.Context, now time.Time, after, retention time.Duration) (RollupResult, error) {
	var res RollupResult
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("metricstore: rollup: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	cutoff := now.UTC().Add(-after).Truncate(time.Hour)
	if err := tx.QueryRow(ctx, `
WITH moved AS (
    DELETE FROM job_retry_metrics WHERE period_seconds = 60 AND period_start < $1 RETURNING *
), ins AS (
    INSERT INTO job_retry_metrics AS m (kind, period_start, period_seconds, attempts, completed, dead_lettered,
                                       failures, retries_scheduled, short_circuited, run_time_ms, last_attempt_at)
    SELECT kind, date_trunc('hour', period_start), 3600, sum(attempts), sum(completed), sum(dead_lettered),
           rebound_jsonb_sum_agg(failures), sum(retries_scheduled), sum(short_circuited), sum(run_time_ms), max(last_attempt_at)
      FROM moved GROUP BY kind, date_trunc('hour', period_start)
    ON CONFLICT (kind, period_seconds, period_start) DO UPDATE SET
        attempts          = m.attempts + excluded.attempts,
        completed         = m.completed + excluded.completed,
        dead_lettered     = m.dead_lettered + excluded.dead_lettered,
        failures          = rebound_jsonb_sum(m.failures, excluded.failures),
        retries_scheduled = m.retries_scheduled + excluded.retries_scheduled,
        short_circuited   = m.short_circuited + excluded.short_circuited,
        run_time_ms       = m.run_time_ms + excluded.run_time_ms,
        last_attempt_at   = greatest(m.last_attempt_at, excluded.last_attempt_at)
)
SELECT count(*) FROM moved`, cutoff).Scan(&res.MinuteRows); err != nil {
		return res, fmt.Errorf("metricstore: rollup: %w", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM job_retry_metrics WHERE period_start < $1`, now.UTC().Add(-retention))
	if err != nil {
		return res, fmt.Errorf("metricstore: retention: %w", err)
	}
	res.Deleted = tag.RowsAffected()
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("metricstore: rollup: %w", err)
	}
	return res, nil
}

// RollupArgs are the args of the periodic rollup job.
type RollupArgs struct{}

// Kind returns "rebound_job_metrics_rollup".
func (RollupArgs) Kind() string { return "rebound_job_metrics_rollup" }

// OperationKey returns "rebound_job_metrics_rollup": the job has a breaker
// of its own, whatever a service's default key rule says, so a user's open
// breaker never parks it.
func (RollupArgs) OperationKey() string { return "rebound_job_metrics_rollup" }

// InsertOpts makes the job unique per period, so pods never run it twice
// in one hour.
func (RollupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: DefaultRollupInterval}}
}

// RollupWorker works RollupArgs with Store.Rollup and records the
// RollupResult as the job's output.
type RollupWorker struct {
	river.WorkerDefaults[RollupArgs]
	// Store is the table's store. Required.
	Store *Store
	// After: zero means DefaultRollupAfter (24 h).
	After time.Duration
	// Retention: zero means DefaultRetention (30 days).
	Retention time.Duration
}

// Work runs one rollup.
func (w *RollupWorker) Work(ctx context.Context, _ *river.Job[RollupArgs]) error {
	after, retention := w.After, w.Retention
	if after <= 0 {
		after = DefaultRollupAfter
	}
	if retention <= 0 {
		retention = DefaultRetention
	}
	res, err := w.Store.Rollup(ctx, time.Now(), after, retention)
	if err != nil {
		return err
	}
	return river.RecordOutput(ctx, res)
}
