package retrypolicy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
	"github.com/rebound-queue/rebound/storable"
)

// badStatusError is an HTTP failure whose message holds what PostgreSQL
// refuses: a NUL and bytes that are not UTF-8.
type badStatusError struct{ code int }

func (e *badStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: bad\x00byte \xff\xfe here", e.code)
}
func (e *badStatusError) StatusCode() int { return e.code }

const storedBody = "bad\uFFFDbyte \uFFFD\uFFFD here"

// On every path the recorder returns an error River can store, classified
// from the original, which stays reachable through errors.As / errors.Is;
// its history entry holds the same text.
func TestRecorderReturnsStorableErrors(t *testing.T) {
	t.Parallel()
	noJitter := retrypolicy.Policy{Jitter: retrypolicy.JitterNone}
	stop := errors.New("stop initiated")
	tests := []struct {
		name        string
		job         *rivertype.JobRow
		err         error
		shutdown    bool
		wantMsg     string
		wantClass   retrypolicy.Class // "" when nothing is recorded
		wantHistory string            // the history entry's error
		retryIn     time.Duration
		cancel      bool
	}{
		{"retry", jobRow(1, 1, 25), &badStatusError{code: 503}, false, "HTTP 503: " + storedBody,
			retrypolicy.ClassServerError, "HTTP 503: " + storedBody, 2 * time.Second, false},
		{"last attempt", jobRow(2, 25, 25), &badStatusError{code: 503}, false, "HTTP 503: " + storedBody,
			retrypolicy.ClassServerError, "HTTP 503: " + storedBody, 0, false},
		{"class not retried", jobRow(3, 1, 25), &badStatusError{code: 404}, false, "JobCancelError: HTTP 404: " + storedBody,
			retrypolicy.ClassNotFound, "HTTP 404: " + storedBody, 0, true},
		{"Permanent marker", jobRow(4, 1, 25), retrypolicy.Permanent(&badStatusError{code: 503}), false, "JobCancelError: HTTP 503: " + storedBody,
			retrypolicy.ClassServerError, "HTTP 503: " + storedBody, 0, true},
		{"the job's own JobCancel", jobRow(5, 1, 25), river.JobCancel(&badStatusError{code: 503}), false, "JobCancelError: HTTP 503: " + storedBody,
			retrypolicy.ClassServerError, "JobCancelError: HTTP 503: " + storedBody, 0, true},
		{"shutdown", jobRow(6, 1, 25), fmt.Errorf("POST \x00: %w", stop), true, "POST \uFFFD: stop initiated", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var recorded []retrypolicy.Attempt
			rec := newTestRecorder(t, noJitter, &retrypolicy.RecorderOpts{
				OnAttempt: func(_ *rivertype.JobRow, a retrypolicy.Attempt) { recorded = append(recorded, a) },
			})
			ctx := t.Context()
			if tt.shutdown {
				c, cancel := context.WithCancelCause(ctx)
				cancel(stop)
				ctx = c
			}
			got := rec.Work(ctx, tt.job, func(context.Context) error { return tt.err })
			require.EqualError(t, got, tt.wantMsg)
			require.ErrorIs(t, got, tt.err)
			if orig, ok := errors.AsType[*badStatusError](tt.err); ok {
				found, ok := errors.AsType[*badStatusError](got)
				require.True(t, ok)
				require.Same(t, orig, found)
			}
			_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
			require.Equal(t, tt.cancel, isCancel)
			require.Equal(t, retrypolicy.Classify(tt.err), retrypolicy.Classify(got), "the breaker classifies what the recorder returns as the original")

			if tt.wantClass == "" {
				require.Empty(t, recorded)
				return
			}
			require.Len(t, recorded, 1)
			require.Equal(t, tt.wantClass, recorded[0].Class)
			require.Equal(t, tt.wantHistory, recorded[0].Error)
			policy := rec.ClientRetryPolicy()
			if tt.retryIn > 0 {
				require.Equal(t, testNow.Add(tt.retryIn), policy.NextRetry(tt.job))
			}
			require.Zero(t, policy.Pending())
		})
	}

	t.Run("bounded to 4 KiB", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, noJitter, nil)
		got := rec.Work(t.Context(), jobRow(7, 25, 25), func(context.Context) error { return errors.New(strings.Repeat("x", 10_000)) })
		require.Equal(t, strings.Repeat("x", retrypolicy.MaxErrorBytes-len("…"))+"…", got.Error())
	})

	t.Run("a snooze is returned as it is", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, noJitter, nil)
		snooze := river.JobSnooze(time.Minute)
		require.Same(t, snooze, rec.Work(t.Context(), jobRow(8, 1, 25), func(context.Context) error { return snooze }))
	})
}

// A panic whose value River could not store is re-panicked as a
// *storable.PanicValue: River stores its sanitised text, callers further up
// get the original value.
func TestRecorderRepanicsWithStorableValue(t *testing.T) {
	t.Parallel()
	recoverFrom := func(f func()) (v any) {
		defer func() { v = recover() }()
		f()
		return nil
	}

	t.Run("a string", func(t *testing.T) {
		t.Parallel()
		var recorded []retrypolicy.Attempt
		rec := newTestRecorder(t, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, &retrypolicy.RecorderOpts{
			OnAttempt: func(_ *rivertype.JobRow, a retrypolicy.Attempt) { recorded = append(recorded, a) },
		})
		job := jobRow(1, 1, 25)
		v := recoverFrom(func() {
			_ = rec.Work(t.Context(), job, func(context.Context) error { panic("boom \x00\xff") })
		})
		p, ok := v.(*storable.PanicValue)
		require.True(t, ok, "%T", v)
		require.Equal(t, "boom \x00\xff", p.Value)
		require.Equal(t, "boom \uFFFD\uFFFD", fmt.Sprintf("%v", v)) // what River stores
		require.Equal(t, testNow.Add(2*time.Second), rec.ClientRetryPolicy().NextRetry(job))
		require.Len(t, recorded, 1)
		require.Equal(t, "boom \uFFFD\uFFFD", recorded[0].Error)
		require.Equal(t, retrypolicy.ClassPanic, recorded[0].Class)
		require.Contains(t, recorded[0].Stack, "TestRecorderRepanicsWithStorableValue")
	})

	t.Run("an error", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{}, nil)
		orig := &badStatusError{code: 500}
		v := recoverFrom(func() {
			_ = rec.Work(t.Context(), jobRow(1, 3, 3), func(context.Context) error { panic(orig) })
		})
		err, ok := v.(error)
		require.True(t, ok, "%T", v)
		require.Equal(t, "HTTP 500: "+storedBody, fmt.Sprint(v))
		found, ok := errors.AsType[*badStatusError](err)
		require.True(t, ok)
		require.Same(t, orig, found)
	})

	t.Run("cancelled when panics are not retried", func(t *testing.T) {
		t.Parallel()
		rec := newTestRecorder(t, retrypolicy.Policy{Rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassPanic: {Retry: false}}}, nil)
		got := rec.Work(t.Context(), jobRow(1, 1, 25), func(context.Context) error { panic("boom \x00") })
		require.EqualError(t, got, "JobCancelError: panic: boom \uFFFD")
		_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
		require.True(t, isCancel)
	})
}

// CancelWithClass, for middleware outside the recorder, returns a storable
// cancel too.
func TestCancelWithClassIsStorable(t *testing.T) {
	t.Parallel()
	cause := &badStatusError{code: 503}
	got := retrypolicy.CancelWithClass(t.Context(), jobRow(1, 1, 25), retrypolicy.ClassBreakerOpen, cause)
	require.True(t, strings.HasPrefix(got.Error(), "JobCancelError: HTTP 503: "+storedBody), got.Error())
	require.NotContains(t, got.Error(), "\x00")
	require.ErrorIs(t, got, cause)
	_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
	require.True(t, isCancel)
}

// RecordResult refuses a result jsonb cannot hold, naming the field, and
// keeps the result recorded before.
func TestRecordResultRefusesUnstorableJSON(t *testing.T) {
	t.Parallel()
	rec := newTestRecorder(t, retrypolicy.Policy{}, nil)
	_ = rec.Work(t.Context(), jobRow(1, 1, 25), func(ctx context.Context) error {
		require.EqualError(t, retrypolicy.RecordResult(ctx, map[string]string{"note": "a\x00"}),
			`retrypolicy: RecordResult: result.note: contains a NUL character (\u0000), which PostgreSQL cannot store`)
		require.EqualError(t, retrypolicy.RecordResult(ctx, map[string]string{"k\x00": "v"}),
			`retrypolicy: RecordResult: result: the key "k\x00" contains a NUL character (\u0000), which PostgreSQL cannot store`)
		require.EqualError(t, retrypolicy.RecordResult(ctx, map[string]json.RawMessage{"body": json.RawMessage("\"\xff\"")}),
			`retrypolicy: RecordResult: result.body: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`)
		require.NoError(t, retrypolicy.RecordResult(ctx, map[string]string{"note": "a\xff"}), "json.Marshal makes a Go string valid")
		return nil
	})
}
