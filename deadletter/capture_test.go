package deadletter_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestCaptureByTrigger(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name          string
		args          failArgs
		maxAttempts   int
		recorderClass string
		wantState     string
		wantClass     string
		wantReason    string
		wantClasses   []string // per attempt in history
	}{
		{
			// No history entry for an attempt with an error: lost, as
			// retrypolicy.LostAttempts counts it.
			name: "permanent failure without history", args: failArgs{Mode: "cancel", Message: "bad request: 400"},
			maxAttempts: 5, wantState: "cancelled", wantClass: "lost", wantReason: "bad request: 400",
			wantClasses: []string{"lost"},
		},
		{
			name: "permanent failure with recorder", args: failArgs{Mode: "cancel", Message: "HTTP 404"},
			maxAttempts: 5, recorderClass: "not_found", wantState: "cancelled", wantClass: "not_found", wantReason: "HTTP 404",
			wantClasses: []string{"not_found"},
		},
		{
			name: "retries exhausted", args: failArgs{Mode: "error", Message: "HTTP 503"},
			maxAttempts: 3, recorderClass: "server_error", wantState: "discarded", wantClass: "server_error", wantReason: "HTTP 503",
			wantClasses: []string{"server_error", "server_error", "server_error"},
		},
		{
			name: "retries exhausted without history", args: failArgs{Mode: "error", Message: "boom"},
			maxAttempts: 2, wantState: "discarded", wantClass: "lost", wantReason: "boom",
			wantClasses: []string{"lost", "lost"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			client := startClient(t, b.pool, clientOpts{recorderClass: tt.recorderClass})
			res, err := client.Insert(ctx, tt.args, &river.InsertOpts{MaxAttempts: tt.maxAttempts, Metadata: []byte(`{"operation_key":"api.example.com"}`)})
			require.NoError(t, err)
			waitFinal(t, b.pool, res.Job.ID, tt.wantState)

			entries := entriesOf(t, b.pool, res.Job.ID)
			require.Len(t, entries, 1)
			e := entries[0]
			require.Equal(t, res.Job.ID, e.RiverJobID)
			require.Equal(t, len(tt.wantClasses), e.Attempt)
			require.Equal(t, tt.maxAttempts, e.MaxAttempts)
			require.Equal(t, "dlq_test", e.Kind)
			require.Equal(t, river.QueueDefault, e.Queue)
			require.Equal(t, 1, e.Priority)
			require.Equal(t, tt.wantState, e.FinalState)
			require.Equal(t, tt.wantClass, e.FailureClass)
			require.Equal(t, tt.wantReason, e.FailureReason)
			require.Equal(t, "api.example.com", e.OperationKey)
			require.Equal(t, deadletter.StatusUnresolved, e.Status)
			require.JSONEq(t, mustJSON(t, tt.args), string(e.Args))
			require.Len(t, e.History, len(tt.wantClasses))
			for i, h := range e.History {
				require.Equal(t, i+1, h.Attempt)
				require.Equal(t, tt.wantClasses[i], h.Class)
				require.Equal(t, tt.wantReason, h.Error)
				require.NotNil(t, h.At)
				if tt.recorderClass != "" {
					require.Equal(t, "exponential", h.Strategy)
					require.Equal(t, int64(1000*(i+1)), *h.DelayMS)
				}
			}
			require.NotNil(t, e.FirstAttemptedAt)
			require.NotNil(t, e.LastAttemptedAt)
			require.False(t, e.LastAttemptedAt.Before(*e.FirstAttemptedAt))
			require.WithinDuration(t, time.Now(), e.DeadLetteredAt, time.Minute)
		})
	}
}

func TestManualCancelIsNotDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	client := startClient(t, b.pool, clientOpts{})

	// Cancelled while waiting.
	scheduled, err := client.Insert(ctx, failArgs{Mode: "ok"}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	_, err = client.JobCancel(ctx, scheduled.Job.ID)
	require.NoError(t, err)
	waitFinal(t, b.pool, scheduled.Job.ID, "cancelled")

	// Cancelled while running: the worker returns its context's error.
	running, err := client.Insert(ctx, failArgs{Mode: "block"}, nil)
	require.NoError(t, err)
	waitFinal(t, b.pool, running.Job.ID, "running")
	_, err = client.JobCancel(ctx, running.Job.ID)
	require.NoError(t, err)
	waitFinal(t, b.pool, running.Job.ID, "cancelled")

	// A worker's own JobCancel in the same database is dead-lettered.
	permanent, err := client.Insert(ctx, failArgs{Mode: "cancel", Message: "no"}, nil)
	require.NoError(t, err)
	waitFinal(t, b.pool, permanent.Job.ID, "cancelled")

	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Len(t, entriesOf(t, b.pool, permanent.Job.ID), 1)

	// The reconciliation agrees: nothing is missing.
	res, err := deadletter.NewReconciler(b.pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Added)
}

// The River UI's Retry re-runs the same job: its entry is marked retried and
// the next death is a second entry.
func TestRiverUIRetryMarksEntryAndFailsAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	client := startClient(t, b.pool, clientOpts{recorderClass: "server_error"})

	res, err := client.Insert(ctx, failArgs{Mode: "error", Message: "HTTP 500"}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)
	waitFinal(t, b.pool, res.Job.ID, "discarded")
	require.Len(t, entriesOf(t, b.pool, res.Job.ID), 1)

	_, err = client.JobRetry(ctx, res.Job.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", res.Job.ID) == 2
	}, 20*time.Second, 20*time.Millisecond)
	waitFinal(t, b.pool, res.Job.ID, "discarded")

	entries := entriesOf(t, b.pool, res.Job.ID)
	require.Len(t, entries, 2)
	require.Equal(t, 1, entries[0].Attempt)
	require.Equal(t, deadletter.StatusRetried, entries[0].Status)
	require.Equal(t, res.Job.ID, *entries[0].RetriedJobID)
	require.Equal(t, "river:JobRetry", entries[0].RetriedBy)
	require.NotNil(t, entries[0].RetriedAt)
	require.Equal(t, 2, entries[1].Attempt)
	require.Equal(t, 2, entries[1].MaxAttempts) // JobRetry raised it
	require.Equal(t, deadletter.StatusUnresolved, entries[1].Status)
	require.Len(t, entries[1].History, 2)
	require.Equal(t, "server_error", entries[1].FailureClass)
}

// A failing capture must not stop River: the DLQ table rejects one row, the
// completer goes on, and the reconciliation adds the row once the cause is
// gone.
func TestTriggerFailureDoesNotStopRiver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `ALTER TABLE job_dead_letter_queue ADD CONSTRAINT test_reject
		CHECK (failure_reason <> 'reject me') NOT VALID`)
	require.NoError(t, err)

	client := startClient(t, b.pool, clientOpts{})
	params := []river.InsertManyParams{
		{Args: failArgs{Mode: "cancel", Message: "reject me"}},
		{Args: failArgs{Mode: "cancel", Message: "keep me"}},
	}
	for range 5 {
		params = append(params, river.InsertManyParams{Args: failArgs{Mode: "ok"}})
	}
	inserted, err := client.InsertMany(ctx, params)
	require.NoError(t, err)
	waitFinal(t, b.pool, inserted[0].Job.ID, "cancelled")
	waitFinal(t, b.pool, inserted[1].Job.ID, "cancelled")
	for _, r := range inserted[2:] {
		waitFinal(t, b.pool, r.Job.ID, "completed")
	}
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job WHERE state = 'running'"))
	require.Empty(t, entriesOf(t, b.pool, inserted[0].Job.ID))
	require.Len(t, entriesOf(t, b.pool, inserted[1].Job.ID), 1)

	rec := deadletter.NewReconciler(b.pool, nil)
	// The cause is still there: the pass skips the row and reports it.
	res, err := rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Added)
	require.Len(t, res.Failed, 1)
	require.Equal(t, inserted[0].Job.ID, res.Failed[0].RiverJobID)
	require.Contains(t, res.Failed[0].Error, "test_reject")
	require.Empty(t, entriesOf(t, b.pool, inserted[0].Job.ID))

	_, err = b.pool.Exec(ctx, "ALTER TABLE job_dead_letter_queue DROP CONSTRAINT test_reject")
	require.NoError(t, err)
	res, err = rec.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Skipped)
	require.Len(t, res.Added, 1)
	require.Equal(t, inserted[0].Job.ID, res.Added[0].RiverJobID)
	entries := entriesOf(t, b.pool, inserted[0].Job.ID)
	require.Len(t, entries, 1)
	require.Equal(t, "reject me", entries[0].FailureReason)
	require.Equal(t, "cancelled", entries[0].FinalState)

	// A second pass finds nothing more.
	res, err = rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Added)
	require.Equal(t, 2, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))
}

// A dead job whose args were unique does not block inserting them again.
func TestDeadUniqueJobDoesNotBlockEnqueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	client := startClient(t, b.pool, clientOpts{})
	args := failArgs{Mode: "cancel", Message: "unique and dead"}
	unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}

	first, err := client.Insert(ctx, args, unique)
	require.NoError(t, err)
	require.False(t, first.UniqueSkippedAsDuplicate)
	waitFinal(t, b.pool, first.Job.ID, "cancelled")
	require.Len(t, entriesOf(t, b.pool, first.Job.ID), 1)

	again, err := client.Insert(ctx, args, unique)
	require.NoError(t, err)
	require.False(t, again.UniqueSkippedAsDuplicate)
	require.NotEqual(t, first.Job.ID, again.Job.ID)
}

// statusError is an HTTP failure as retrypolicy classifies it (by
// behaviour: StatusCode() int).
type statusError struct{ code int }

func (e statusError) Error() string   { return fmt.Sprintf("upstream answered HTTP %d", e.code) }
func (e statusError) StatusCode() int { return e.code }

type statusArgs struct {
	Code int `json:"code"`
}

func (statusArgs) Kind() string { return "dlq_status" }

type statusWorker struct {
	river.WorkerDefaults[statusArgs]
}

func (w *statusWorker) Work(_ context.Context, job *river.Job[statusArgs]) error {
	return statusError{job.Args.Code}
}

// With retrypolicy's own attempt recorder the classes come from its
// history.
func TestCaptureWithRetryPolicyRecorder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	policies, err := retrypolicy.NewPolicies(retrypolicy.Policy{
		MaxAttempts: 3, InitialDelay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond,
		MinDelay: time.Millisecond, Jitter: retrypolicy.JitterNone,
	}, nil)
	require.NoError(t, err)
	recorder := retrypolicy.NewAttemptRecorder(policies, nil)
	workers := river.NewWorkers()
	river.AddWorker(workers, &statusWorker{})
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		Middleware:        []rivertype.Middleware{recorder},
		RetryPolicy:       recorder.ClientRetryPolicy(),
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		TestOnly:          true,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	})

	tests := []struct {
		code        int
		wantState   string
		wantClasses []string
		wantReason  string
	}{
		{code: 503, wantState: "discarded", wantClasses: []string{"server_error", "server_error", "server_error"}, wantReason: "upstream answered HTTP 503"},
		{code: 404, wantState: "cancelled", wantClasses: []string{"not_found"}, wantReason: "upstream answered HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			res, err := client.Insert(ctx, statusArgs{Code: tt.code}, &river.InsertOpts{MaxAttempts: 3})
			require.NoError(t, err)
			waitFinal(t, b.pool, res.Job.ID, tt.wantState)
			entries := entriesOf(t, b.pool, res.Job.ID)
			require.Len(t, entries, 1)
			e := entries[0]
			require.Equal(t, tt.wantClasses[len(tt.wantClasses)-1], e.FailureClass)
			require.Equal(t, tt.wantReason, e.FailureReason)
			require.Equal(t, "dlq_status", e.OperationKey)
			require.Len(t, e.History, len(tt.wantClasses))
			for i, h := range e.History {
				require.Equal(t, i+1, h.Attempt)
				require.Equal(t, tt.wantClasses[i], h.Class)
				require.Equal(t, tt.wantReason, h.Error)
			}
			if tt.code == 503 {
				require.Equal(t, "exponential", e.History[0].Strategy)
				require.Equal(t, int64(10), *e.History[0].DelayMS)
				require.Equal(t, int64(20), *e.History[1].DelayMS)
			}
		})
	}
}
