package breaker

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// DefaultIdleTTL is how long a key's row may go without a write before the
// cleanup job removes it (an absent row is a closed breaker).
const DefaultIdleTTL = 7 * 24 * time.Hour

// DefaultCleanupInterval is how often the cleanup periodic job runs.
const DefaultCleanupInterval = time.Hour

// CleanupArgs are the args of the periodic job that removes idle rows.
type CleanupArgs struct{}

// Kind returns "rebound_breaker_cleanup".
func (CleanupArgs) Kind() string { return "rebound_breaker_cleanup" }

// OperationKey returns "rebound_breaker_cleanup": the job has a breaker of
// its own, whatever a service's default key rule says, so a user's open
// breaker never parks it.
func (CleanupArgs) OperationKey() string { return "rebound_breaker_cleanup" }

// InsertOpts makes the job unique per period, so pods never run it twice.
func (CleanupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: DefaultCleanupInterval}}
}

// CleanupWorker works CleanupArgs: it deletes the rows of keys idle longer
// than IdleTTL (Store.DeleteIdle) and records how many in the job's output.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	// Store is where rows are deleted. Required.
	Store *Store
	// IdleTTL: zero means DefaultIdleTTL (7 days).
	IdleTTL time.Duration
}

// Work deletes idle rows.
func (w *CleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	ttl := w.IdleTTL
	if ttl <= 0 {
		ttl = DefaultIdleTTL
	}
	n, err := w.Store.DeleteIdle(ctx, ttl)
	if err != nil {
		return err
	}
	_ = river.RecordOutput(ctx, map[string]int64{"deleted": n})
	return nil
}

// CleanupPeriodicJob returns the River periodic job that enqueues
// CleanupArgs every interval (zero means DefaultCleanupInterval, 1 hour).
// River's leader enqueues periodic jobs, so one pod runs it per period; the
// first run comes one interval after the leader starts.
func CleanupPeriodicJob(interval time.Duration) *river.PeriodicJob {
	if interval <= 0 {
		interval = DefaultCleanupInterval
	}
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil },
		nil)
}
