package rebound_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Synthetic jobs on a real pod follow the decision matrix by the class
// their args ask for: retried classes come back with their strategy's
// delay, final ones land in the dead-letter queue once, under their
// operation key.
func TestSyntheticKindOnAPod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		args        jobs.SyntheticArgs
		maxAttempts int
		wantState   rivertype.JobState
		wantClasses []retrypolicy.Class // one per failed attempt
		wantDLQ     string              // failure_class of the DLQ row, "" for none
		wantKey     string
	}{
		{name: "no-op", args: jobs.SyntheticArgs{}, wantState: rivertype.JobStateCompleted},
		{name: "two server errors then success", args: jobs.SyntheticArgs{FailAttempts: 2, FailClass: "server_error", SleepMS: 5},
			wantState: rivertype.JobStateCompleted, wantClasses: []retrypolicy.Class{retrypolicy.ClassServerError, retrypolicy.ClassServerError}},
		{name: "404 is not retried", args: jobs.SyntheticArgs{FailAttempts: 3, FailStatus: 404, ExplicitOperationKey: "drill-a"},
			wantState: rivertype.JobStateCancelled, wantClasses: []retrypolicy.Class{retrypolicy.ClassNotFound}, wantDLQ: "not_found", wantKey: "drill-a"},
		{name: "timeouts past max attempts", args: jobs.SyntheticArgs{FailAttempts: 9, FailClass: "timeout"}, maxAttempts: 2,
			wantState: rivertype.JobStateDiscarded, wantClasses: []retrypolicy.Class{retrypolicy.ClassTimeout, retrypolicy.ClassTimeout}, wantDLQ: "timeout", wantKey: "synthetic"},
		{name: "panic then success", args: jobs.SyntheticArgs{PanicOnAttempt: 1},
			wantState: rivertype.JobStateCompleted, wantClasses: []retrypolicy.Class{retrypolicy.ClassPanic}},
	}
	b := startPod(t, func(c *rebound.Config) {
		require.NoError(t, jobs.SyntheticKind().AddWorker(c.Workers, jobs.WorkerDeps{}))
		c.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			res, err := b.pod.Insert(ctx, tt.args, &river.InsertOpts{MaxAttempts: tt.maxAttempts})
			require.NoError(t, err)
			job := b.waitForState(t, res.Job.ID, tt.wantState)
			var classes []retrypolicy.Class
			for _, a := range history(t, job) {
				classes = append(classes, a.Class)
			}
			require.Equal(t, tt.wantClasses, classes)
			if tt.wantDLQ == "" {
				require.Equal(t, 0, b.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", job.ID))
				return
			}
			var class, key string
			var n int
			require.NoError(t, b.db.Pool.QueryRow(ctx,
				"SELECT failure_class, operation_key, count(*) OVER () FROM job_dead_letter_queue WHERE river_job_id = $1", job.ID).Scan(&class, &key, &n))
			require.Equal(t, []any{tt.wantDLQ, tt.wantKey, 1}, []any{class, key, n})
		})
	}
}
