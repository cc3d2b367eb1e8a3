package retrypolicy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

type entries struct{ got []retrypolicy.Attempt }

func (e *entries) ObserveAttempt(a retrypolicy.Attempt) { e.got = append(e.got, a) }

// The recorder hands the observer of the attempt's context the entry it
// appends for a failed attempt (after its decision), and nothing for a
// success or a snooze; CancelWithClass does the same.
func TestWithAttemptObserver(t *testing.T) {
	t.Parallel()
	policies, err := retrypolicy.NewPolicies(retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, nil)
	require.NoError(t, err)
	rec := retrypolicy.NewAttemptRecorder(policies, &retrypolicy.RecorderOpts{Logger: discardLogger()})
	tests := []struct {
		name      string
		attempt   int
		result    error
		wantClass retrypolicy.Class // "": no entry
		wantDelay int64
		wantFinal bool
	}{
		{name: "success", attempt: 1},
		{name: "server error, retried", attempt: 1, result: &statusError{code: 503}, wantClass: retrypolicy.ClassServerError, wantDelay: 2000},
		{name: "server error, last attempt", attempt: 5, result: &statusError{code: 503}, wantClass: retrypolicy.ClassServerError, wantFinal: true},
		{name: "not found, cancelled", attempt: 1, result: &statusError{code: 404}, wantClass: retrypolicy.ClassNotFound, wantFinal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs := &entries{}
			ctx := retrypolicy.WithAttemptObserver(context.Background(), obs)
			job := &rivertype.JobRow{ID: 1, Kind: "http_request", Attempt: tt.attempt, MaxAttempts: 5, Metadata: []byte(`{}`)}
			_ = rec.Work(ctx, job, func(context.Context) error { return tt.result })
			if tt.wantClass == "" {
				require.Empty(t, obs.got)
				return
			}
			require.Len(t, obs.got, 1)
			require.Equal(t, tt.attempt, obs.got[0].Attempt)
			require.Equal(t, tt.wantClass, obs.got[0].Class)
			require.Equal(t, tt.wantDelay, obs.got[0].DelayMS)
			require.Equal(t, tt.wantFinal, obs.got[0].Final)
		})
	}
	t.Run("CancelWithClass", func(t *testing.T) {
		t.Parallel()
		obs := &entries{}
		ctx := retrypolicy.WithAttemptObserver(context.Background(), obs)
		job := &rivertype.JobRow{ID: 2, Kind: "http_request", Attempt: 3, MaxAttempts: 5, Metadata: []byte(`{}`)}
		_ = retrypolicy.CancelWithClass(ctx, job, retrypolicy.ClassBreakerOpen, errors.New("parked"))
		require.Len(t, obs.got, 1)
		require.Equal(t, retrypolicy.ClassBreakerOpen, obs.got[0].Class)
		require.Equal(t, 3, obs.got[0].Attempt)
		require.True(t, obs.got[0].Final)
	})
}

// BenchmarkRecorderFailure is the recorder on a failed attempt that is
// retried, without an observer (tracing off) and with one.
func BenchmarkRecorderFailure(b *testing.B) {
	rec := retrypolicy.NewAttemptRecorder(nil, &retrypolicy.RecorderOpts{Logger: discardLogger()})
	job := &rivertype.JobRow{ID: 1, Kind: "http_request", Attempt: 1, MaxAttempts: 5, Metadata: []byte(`{}`)}
	work := func(context.Context) error { return benchHTTPErr }
	b.Run("no_observer", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			sinkErr = rec.Work(ctx, job, work)
		}
	})
	b.Run("with_observer", func(b *testing.B) {
		ctx := retrypolicy.WithAttemptObserver(context.Background(), &discardObserver{})
		b.ReportAllocs()
		for b.Loop() {
			sinkErr = rec.Work(ctx, job, work)
		}
	})
}

type discardObserver struct{}

func (*discardObserver) ObserveAttempt(retrypolicy.Attempt) {}
