package retrypolicy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// These tests call the recorder directly with job rows built in the test, to
// check its decisions and hand-overs exactly. Outside River the history
// cannot be written (river.RecordOutput needs River's work context; the
// recorder logs and carries on); the River tests check what is written.

func newTestRecorder(t *testing.T, p retrypolicy.Policy, opts *retrypolicy.RecorderOpts) *retrypolicy.AttemptRecorder {
	t.Helper()
	set, err := retrypolicy.NewPolicies(p, nil)
	require.NoError(t, err)
	if opts == nil {
		opts = &retrypolicy.RecorderOpts{}
	}
	opts.Logger = discardLogger()
	if opts.Now == nil {
		opts.Now = fixedClock(testNow)
	}
	return retrypolicy.NewAttemptRecorder(set, opts)
}

func jobRow(id int64, attempt, maxAttempts int) *rivertype.JobRow {
	return &rivertype.JobRow{ID: id, Kind: "http_request", Attempt: attempt, MaxAttempts: maxAttempts, Metadata: []byte(`{}`)}
}

func TestRecorderDecisions(t *testing.T) {
	t.Parallel()

	noJitter := retrypolicy.Policy{Jitter: retrypolicy.JitterNone}
	cases := []struct {
		name     string
		policy   retrypolicy.Policy
		job      *rivertype.JobRow
		err      error
		cancel   bool          // the recorder returns river.JobCancel
		retryIn  time.Duration // > 0: handed over to NextRetry
		sameErr  bool          // the recorder returns the worker's error itself
		canceled bool          // errors.Is(returned, context.Canceled)
	}{
		{"429 retried aggressively", noJitter, jobRow(1, 2, 25), &statusError{code: 429}, false, 6 * time.Second, true, false},
		{"429 raised to Retry-After", noJitter, jobRow(2, 1, 25), &statusError{code: 429, retryAfter: 2 * time.Minute}, false, 2 * time.Minute, true, false},
		{"503 exponential", noJitter, jobRow(3, 3, 25), &statusError{code: 503}, false, 8 * time.Second, true, false},
		{"timeout linear", noJitter, jobRow(4, 3, 25), context.DeadlineExceeded, false, 6 * time.Second, true, false},
		{"404 cancelled", noJitter, jobRow(5, 1, 25), &statusError{code: 404}, true, 0, false, false},
		{"401 wrapped twice cancelled", noJitter, jobRow(6, 1, 25), fmt.Errorf("deliver: %w", fmt.Errorf("post: %w", &statusError{code: 401})), true, 0, false, false},
		{"401 joined cancelled", noJitter, jobRow(14, 1, 25), errors.Join(errors.New("a"), &statusError{code: 401}), true, 0, false, false},
		{"Permanent cancelled", noJitter, jobRow(7, 1, 25), retrypolicy.Permanent(context.DeadlineExceeded), true, 0, false, false},
		{"Retryable 404 retried", noJitter, jobRow(8, 1, 25), retrypolicy.Retryable(&statusError{code: 404}, retrypolicy.ClassTimeout), false, 2 * time.Second, true, false},
		{"last attempt left to River", noJitter, jobRow(9, 25, 25), &statusError{code: 503}, false, 0, true, false},
		{"policy's max attempts cancel", retrypolicy.Policy{Jitter: retrypolicy.JitterNone, MaxAttempts: 3}, jobRow(10, 3, 25), &statusError{code: 503}, true, 0, false, false},
		{"already a JobCancel", noJitter, jobRow(11, 1, 25), river.JobCancel(&statusError{code: 503}), false, 0, true, false},
		{"snooze passes through", noJitter, jobRow(12, 1, 25), river.JobSnooze(time.Minute), false, 0, true, false},
		{"context.Canceled outside a shutdown is retried", noJitter, jobRow(13, 1, 25), context.Canceled, false, 2 * time.Second, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newTestRecorder(t, tc.policy, nil)
			called := 0
			got := rec.Work(t.Context(), tc.job, func(context.Context) error { called++; return tc.err })
			require.Equal(t, 1, called)
			require.Error(t, got)

			_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
			if tc.cancel {
				require.True(t, isCancel)
				require.ErrorIs(t, got, tc.err) // the cause is kept
			}
			if tc.sameErr {
				require.True(t, got == tc.err, "want the worker's error itself, got %v", got)
			}
			require.Equal(t, tc.canceled, errors.Is(got, context.Canceled))

			policy := rec.ClientRetryPolicy()
			if tc.retryIn > 0 {
				require.Equal(t, 1, policy.Pending())
				require.Equal(t, testNow.Add(tc.retryIn), policy.NextRetry(tc.job))
			}
			require.Zero(t, policy.Pending(), "a hand-over is left behind")
		})
	}
}

// River's job timeout (a kind's Timeout or the client's JobTimeout) ends the
// work context with a deadline, not a stop: the attempt failed with class
// timeout, is recorded, and its retry is handed over with the timeout
// class's linear delay (2 s per attempt), not left to the lost-job fallback.
func TestRecorderRiverTimeoutIsATimeoutNotAShutdown(t *testing.T) {
	t.Parallel()

	var recorded []retrypolicy.Attempt
	rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, &retrypolicy.RecorderOpts{
		OnAttempt: func(_ *rivertype.JobRow, a retrypolicy.Attempt) { recorded = append(recorded, a) },
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	job := jobRow(1, 2, 25)
	got := rec.Work(ctx, job, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	require.ErrorIs(t, got, context.DeadlineExceeded)
	require.Len(t, recorded, 1)
	require.Equal(t, retrypolicy.ClassTimeout, recorded[0].Class)
	require.Equal(t, int64(4000), recorded[0].DelayMS)
	policy := rec.ClientRetryPolicy()
	require.Equal(t, 1, policy.Pending())
	require.Equal(t, testNow.Add(4*time.Second), policy.NextRetry(job))
}

func TestRecorderShutdownIsNeverAFailure(t *testing.T) {
	t.Parallel()

	// River cancels the work context with its own cause on stop.
	stop := errors.New("stop initiated")
	for _, workErr := range []error{
		context.Canceled,
		&netURLError{err: context.Canceled},
		retrypolicy.Permanent(context.Canceled),
		// net/http returns the context's cause, not context.Canceled:
		// River's own soft-stop check accepts its stop error as well.
		fmt.Errorf("POST http://upstream/hook: %w", stop),
	} {
		var recorded []retrypolicy.Attempt
		rec := newTestRecorder(t, retrypolicy.Policy{}, &retrypolicy.RecorderOpts{
			OnAttempt: func(_ *rivertype.JobRow, a retrypolicy.Attempt) { recorded = append(recorded, a) },
		})
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(stop)
		job := jobRow(1, 1, 25)
		got := rec.Work(ctx, job, func(ctx context.Context) error { return workErr })
		require.Same(t, workErr, got)
		require.Empty(t, recorded, "a shutdown is not a failed attempt: %v", workErr)
		_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
		require.False(t, isCancel)
		require.Zero(t, rec.ClientRetryPolicy().Pending())
	}

	// Cancelled remotely (client.JobCancel): River cancels the job; the
	// recorder returns the error as is, hands nothing over, and does not
	// report an operator's decision as a failed attempt.
	reported := 0
	rec := newTestRecorder(t, retrypolicy.Policy{}, &retrypolicy.RecorderOpts{
		OnAttempt: func(*rivertype.JobRow, retrypolicy.Attempt) { reported++ },
	})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(rivertype.ErrJobCancelledRemotely)
	got := rec.Work(ctx, jobRow(2, 1, 25), func(ctx context.Context) error { return ctx.Err() })
	require.ErrorIs(t, got, context.Canceled)
	require.Zero(t, rec.ClientRetryPolicy().Pending())
	require.Zero(t, reported)
}

func TestRecorderRescueLimit(t *testing.T) {
	t.Parallel()

	rescued := func(attempt int) rivertype.AttemptError {
		return rivertype.AttemptError{Attempt: attempt, At: testNow.Add(-time.Hour), Error: "Stuck job rescued by JobRescuer"}
	}
	history := func(entries ...retrypolicy.Attempt) []byte {
		b, err := json.Marshal(map[string]any{"output": retrypolicy.Output{Attempts: entries}})
		require.NoError(t, err)
		return b
	}
	cases := []struct {
		name     string
		policy   retrypolicy.Policy
		errors   []rivertype.AttemptError
		metadata []byte
		cancel   bool
		message  string
	}{
		{"one lost attempt runs", retrypolicy.Policy{}, []rivertype.AttemptError{rescued(1)}, []byte(`{}`), false, ""},
		{"two lost attempts cancel", retrypolicy.Policy{}, []rivertype.AttemptError{rescued(1), rescued(2)}, []byte(`{}`), true,
			"JobCancelError: retrypolicy: rescue limit reached: 2 lost attempts [1 2] (rescue_limit 2); the worker was not run"},
		{"a recorded failure between them still counts two", retrypolicy.Policy{},
			[]rivertype.AttemptError{rescued(1), {Attempt: 2, Error: "503"}, rescued(3)},
			history(retrypolicy.Attempt{Attempt: 1, Class: retrypolicy.ClassLost}, retrypolicy.Attempt{Attempt: 2, Class: retrypolicy.ClassServerError}), true,
			"JobCancelError: retrypolicy: rescue limit reached: 2 lost attempts [1 3] (rescue_limit 2); the worker was not run"},
		{"recorded failures are not lost", retrypolicy.Policy{},
			[]rivertype.AttemptError{{Attempt: 1, Error: "503"}, {Attempt: 2, Error: "503"}},
			history(retrypolicy.Attempt{Attempt: 1, Class: retrypolicy.ClassServerError}, retrypolicy.Attempt{Attempt: 2, Class: retrypolicy.ClassServerError}), false, ""},
		{"rescue limit 3", retrypolicy.Policy{RescueLimit: 3}, []rivertype.AttemptError{rescued(1), rescued(2)}, []byte(`{}`), false, ""},
		{"lost not retried means a limit of 1", retrypolicy.Policy{Rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassLost: {Retry: false}}},
			[]rivertype.AttemptError{rescued(1)}, []byte(`{}`), true,
			"JobCancelError: retrypolicy: rescue limit reached: 1 lost attempts [1] (rescue_limit 1); the worker was not run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newTestRecorder(t, tc.policy, nil)
			job := jobRow(1, len(tc.errors)+1, 25)
			job.Errors = tc.errors
			job.Metadata = tc.metadata
			called := false
			got := rec.Work(t.Context(), job, func(context.Context) error { called = true; return nil })
			if !tc.cancel {
				require.NoError(t, got)
				require.True(t, called)
				return
			}
			require.False(t, called, "the worker must not run")
			_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
			require.True(t, isCancel)
			require.EqualError(t, got, tc.message)
			require.Zero(t, rec.ClientRetryPolicy().Pending())
		})
	}
}

func TestRecorderPanics(t *testing.T) {
	t.Parallel()

	t.Run("re-panics with the same value and hands the delay over", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, nil)
		job := jobRow(1, 2, 25)
		value := errors.New("boom")
		require.PanicsWithValue(t, value, func() {
			_ = rec.Work(t.Context(), job, func(context.Context) error { panic(value) })
		})
		require.Equal(t, testNow.Add(4*time.Second), rec.ClientRetryPolicy().NextRetry(job))
	})

	t.Run("re-panics on the last attempt without a hand-over", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{}, nil)
		require.PanicsWithValue(t, "boom", func() {
			_ = rec.Work(t.Context(), jobRow(1, 3, 3), func(context.Context) error { panic("boom") })
		})
		require.Zero(t, rec.ClientRetryPolicy().Pending())
	})

	t.Run("cancels instead when panics are not retried", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{Rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassPanic: {Retry: false}}}, nil)
		var got error
		require.NotPanics(t, func() {
			got = rec.Work(t.Context(), jobRow(1, 1, 25), func(context.Context) error { panic("boom") })
		})
		require.EqualError(t, got, "JobCancelError: panic: boom")
		require.Zero(t, rec.ClientRetryPolicy().Pending())
	})
}

func TestRecorderDecorrelatedReadsTheHistory(t *testing.T) {
	t.Parallel()

	rec := newTestRecorder(t, retrypolicy.Policy{InitialDelay: time.Second, Jitter: retrypolicy.JitterDecorrelated}, &retrypolicy.RecorderOpts{Rand: highRand})
	job := jobRow(1, 3, 25)
	job.Errors = []rivertype.AttemptError{{Attempt: 1}, {Attempt: 2}}
	meta, err := json.Marshal(map[string]any{"output": retrypolicy.Output{Attempts: []retrypolicy.Attempt{
		{Attempt: 1, Class: retrypolicy.ClassServerError, DelayMS: 2500},
		{Attempt: 2, Class: retrypolicy.ClassServerError, DelayMS: 7000},
	}}})
	require.NoError(t, err)
	job.Metadata = meta
	got := rec.Work(t.Context(), job, func(context.Context) error { return &statusError{code: 502} })
	require.Error(t, got)
	// Highest pick of [1s, 3 * 7s].
	require.Equal(t, testNow.Add(21*time.Second), rec.ClientRetryPolicy().NextRetry(job))
}

func TestRecordResultOutsideTheRecorder(t *testing.T) {
	t.Parallel()

	require.EqualError(t, retrypolicy.RecordResult(t.Context(), 1),
		"retrypolicy: RecordResult must be called from a job run under the AttemptRecorder middleware")

	rec := newTestRecorder(t, retrypolicy.Policy{}, nil)
	err := rec.Work(t.Context(), jobRow(1, 1, 25), func(ctx context.Context) error {
		require.NoError(t, retrypolicy.RecordResult(ctx, map[string]int{"id": 1}))
		require.EqualError(t, retrypolicy.RecordResult(ctx, func() {}), "retrypolicy: RecordResult: json: unsupported type: func()")
		// Contexts derived from the job's still reach the recorder.
		child, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return retrypolicy.RecordResult(child, "ok")
	})
	require.NoError(t, err)
}

func TestClientRetryPolicy(t *testing.T) {
	t.Parallel()

	t.Run("no hand-over falls back to class lost", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone, Rules: map[retrypolicy.Class]retrypolicy.Rule{
			retrypolicy.ClassLost: {Retry: true, Strategy: retrypolicy.StrategyLinear},
		}}, nil)
		policy := rec.ClientRetryPolicy()
		for attempt, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 6 * time.Second, 1000: 300 * time.Second} {
			require.Equal(t, testNow.Add(want), policy.NextRetry(jobRow(9, attempt, 25)), "attempt %d", attempt)
		}
	})

	t.Run("a hand-over already past gives min_delay from now", func(t *testing.T) {
		t.Parallel()
		now := testNow
		clock := func() time.Time { return now }
		rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, &retrypolicy.RecorderOpts{Now: clock})
		job := jobRow(1, 1, 25)
		require.Error(t, rec.Work(t.Context(), job, func(context.Context) error { return &statusError{code: 500} }))
		now = testNow.Add(3 * time.Second) // a slow ErrorHandler: the 2s delay is over
		require.Equal(t, now.Add(100*time.Millisecond), rec.ClientRetryPolicy().NextRetry(job))
	})

	t.Run("the next attempt drops a hand-over River did not take", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{}, nil)
		job := jobRow(1, 1, 25)
		require.Error(t, rec.Work(t.Context(), job, func(context.Context) error { return &statusError{code: 500} }))
		require.Equal(t, 1, rec.ClientRetryPolicy().Pending())
		require.NoError(t, rec.Work(t.Context(), jobRow(1, 2, 25), func(context.Context) error { return nil }))
		require.Zero(t, rec.ClientRetryPolicy().Pending())
	})

	t.Run("bounded: past the cap the oldest is dropped", func(t *testing.T) {
		t.Parallel()
		now := testNow
		clock := func() time.Time { return now }
		rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, &retrypolicy.RecorderOpts{Now: clock, MaxPendingRetries: 3})
		policy := rec.ClientRetryPolicy()
		for id := int64(1); id <= 5; id++ {
			now = testNow.Add(time.Duration(id) * time.Second)
			require.Error(t, rec.Work(t.Context(), jobRow(id, 1, 25), func(context.Context) error { return &statusError{code: 500} }))
			require.LessOrEqual(t, policy.Pending(), 3)
		}
		require.Equal(t, 3, policy.Pending())
		// Jobs 3, 4, 5 kept their hand-over (failed at +3s..+5s, 2s delay);
		// jobs 1 and 2 fall back to class lost, computed at the current clock.
		require.Equal(t, testNow.Add(7*time.Second), policy.NextRetry(jobRow(5, 1, 25)))
		require.Equal(t, testNow.Add(6*time.Second), policy.NextRetry(jobRow(4, 1, 25)))
		now = testNow.Add(10 * time.Second)
		require.Equal(t, now.Add(2*time.Second), policy.NextRetry(jobRow(1, 1, 25)))
		require.Equal(t, 1, policy.Pending()) // job 3's

		// Stale hand-overs (over a minute old) go first when full.
		now = testNow.Add(2 * time.Minute)
		for id := int64(6); id <= 8; id++ {
			require.Error(t, rec.Work(t.Context(), jobRow(id, 1, 25), func(context.Context) error { return &statusError{code: 500} }))
		}
		require.Equal(t, 3, policy.Pending())
		require.Equal(t, now.Add(2*time.Second), policy.NextRetry(jobRow(3, 1, 25))) // dropped as stale: fallback at now
		require.Equal(t, 3, policy.Pending())
		require.Equal(t, now.Add(2*time.Second), policy.NextRetry(jobRow(8, 1, 25))) // kept
		require.Equal(t, 2, policy.Pending())
	})
}

// OnAttempt sees every entry the recorder appends, after the decision.
func TestRecorderOnAttempt(t *testing.T) {
	t.Parallel()
	var got []retrypolicy.Attempt
	rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, &retrypolicy.RecorderOpts{
		OnAttempt: func(job *rivertype.JobRow, a retrypolicy.Attempt) {
			require.Equal(t, "http_request", job.Kind)
			got = append(got, a)
		},
	})
	_ = rec.Work(t.Context(), jobRow(1, 2, 5), func(context.Context) error { return &statusError{code: 503} })
	_ = rec.Work(t.Context(), jobRow(2, 1, 5), func(context.Context) error { return &statusError{code: 404} })
	_ = rec.Work(t.Context(), jobRow(3, 1, 5), func(context.Context) error { return nil })
	_ = rec.Work(t.Context(), jobRow(4, 1, 5), func(context.Context) error { return river.JobSnooze(time.Second) })
	require.Panics(t, func() {
		_ = rec.Work(t.Context(), jobRow(5, 1, 5), func(context.Context) error { panic("boom") })
	})
	require.Len(t, got, 3, "a success and a snooze are not failed attempts")
	require.Equal(t, []string{"server_error exponential 4000 false", "not_found  0 true", "panic exponential 2000 false"}, []string{
		fmt.Sprintf("%s %s %d %v", got[0].Class, got[0].Strategy, got[0].DelayMS, got[0].Final),
		fmt.Sprintf("%s %s %d %v", got[1].Class, got[1].Strategy, got[1].DelayMS, got[1].Final),
		fmt.Sprintf("%s %s %d %v", got[2].Class, got[2].Strategy, got[2].DelayMS, got[2].Final),
	})
}
