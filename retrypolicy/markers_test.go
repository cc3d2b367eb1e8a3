package retrypolicy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestMarkers(t *testing.T) {
	t.Parallel()

	notFound := &statusError{code: 404}
	tooMany := &statusError{code: 429, retryAfter: 30 * time.Second}
	cases := []struct {
		name       string
		err        error
		class      retrypolicy.Class
		override   retrypolicy.Override
		retryAfter time.Duration
	}{
		{"Permanent keeps the inner class", retrypolicy.Permanent(context.DeadlineExceeded), retrypolicy.ClassTimeout, retrypolicy.OverridePermanent, 0},
		{"Permanent wrapped", fmt.Errorf("job: %w", retrypolicy.Permanent(&statusError{code: 503})), retrypolicy.ClassServerError, retrypolicy.OverridePermanent, 0},
		{"Retryable sets class and override", retrypolicy.Retryable(notFound, retrypolicy.ClassNetwork), retrypolicy.ClassNetwork, retrypolicy.OverrideRetry, 0},
		{"Retryable with an invalid class", retrypolicy.Retryable(errors.New("x"), "teapot"), retrypolicy.ClassUnknown, retrypolicy.OverrideRetry, 0},
		{"OutOfMemory", retrypolicy.OutOfMemory(errors.New("input too large")), retrypolicy.ClassOutOfMemory, retrypolicy.OverrideNone, 0},
		{"WithRetryAfter only sets the wait", retrypolicy.WithRetryAfter(notFound, 5*time.Second), retrypolicy.ClassNotFound, retrypolicy.OverrideNone, 5 * time.Second},
		{"WithRetryAfter replaces the server's", retrypolicy.WithRetryAfter(tooMany, 2*time.Second), retrypolicy.ClassRateLimited, retrypolicy.OverrideNone, 2 * time.Second},
		{"WithRetryAfter 0 hides the server's", retrypolicy.WithRetryAfter(tooMany, 0), retrypolicy.ClassRateLimited, retrypolicy.OverrideNone, 0},
		{"WithRetryAfter negative is 0", retrypolicy.WithRetryAfter(tooMany, -time.Second), retrypolicy.ClassRateLimited, retrypolicy.OverrideNone, 0},
		{"server Retry-After read through wrapping", fmt.Errorf("x: %w", tooMany), retrypolicy.ClassRateLimited, retrypolicy.OverrideNone, 30 * time.Second},
		{"outermost override wins", retrypolicy.Retryable(retrypolicy.Permanent(notFound), retrypolicy.ClassServerError), retrypolicy.ClassServerError, retrypolicy.OverrideRetry, 0},
		{"outermost override wins (reverse)", retrypolicy.Permanent(retrypolicy.Retryable(notFound, retrypolicy.ClassServerError)), retrypolicy.ClassServerError, retrypolicy.OverridePermanent, 0},
		{"outermost class wins", retrypolicy.Retryable(retrypolicy.Retryable(notFound, retrypolicy.ClassNetwork), retrypolicy.ClassDecode), retrypolicy.ClassDecode, retrypolicy.OverrideRetry, 0},
		{"aspects from different markers", retrypolicy.OutOfMemory(retrypolicy.Permanent(retrypolicy.WithRetryAfter(errors.New("x"), time.Minute))), retrypolicy.ClassOutOfMemory, retrypolicy.OverridePermanent, time.Minute},
		{"outermost WithRetryAfter wins", retrypolicy.WithRetryAfter(retrypolicy.WithRetryAfter(errors.New("x"), time.Minute), time.Second), retrypolicy.ClassUnknown, retrypolicy.OverrideNone, time.Second},
		{"marker class beats behaviour at any depth", &wrapStatus{code: 503, err: retrypolicy.Retryable(errors.New("x"), retrypolicy.ClassDecode)}, retrypolicy.ClassDecode, retrypolicy.OverrideRetry, 0},
		{"markers through errors.Join", errors.Join(errors.New("a"), retrypolicy.Permanent(tooMany)), retrypolicy.ClassRateLimited, retrypolicy.OverridePermanent, 30 * time.Second},
		{"markers through river.JobCancel", river.JobCancel(retrypolicy.Permanent(tooMany)), retrypolicy.ClassRateLimited, retrypolicy.OverridePermanent, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := retrypolicy.Diagnose(tc.err)
			require.Equal(t, retrypolicy.Diagnosis{Class: tc.class, Override: tc.override, RetryAfter: tc.retryAfter}, d)
		})
	}
}

// wrapStatus has a status and wraps another error.
type wrapStatus struct {
	code int
	err  error
}

func (e *wrapStatus) Error() string   { return fmt.Sprintf("%d: %v", e.code, e.err) }
func (e *wrapStatus) Unwrap() error   { return e.err }
func (e *wrapStatus) StatusCode() int { return e.code }

func TestMarkersKeepErrorsIsAndAs(t *testing.T) {
	t.Parallel()

	inner := &statusError{code: 401}
	for name, err := range map[string]error{
		"Permanent":      retrypolicy.Permanent(fmt.Errorf("x: %w", inner)),
		"Retryable":      retrypolicy.Retryable(fmt.Errorf("x: %w", inner), retrypolicy.ClassServerError),
		"OutOfMemory":    retrypolicy.OutOfMemory(fmt.Errorf("x: %w", inner)),
		"WithRetryAfter": retrypolicy.WithRetryAfter(fmt.Errorf("x: %w", inner), time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, "x: upstream answered 401 Unauthorized", err.Error())
			got, ok := errors.AsType[*statusError](err)
			require.True(t, ok)
			require.Same(t, inner, got)
			require.ErrorIs(t, err, inner)
		})
	}

	deadline := retrypolicy.Permanent(context.DeadlineExceeded)
	require.ErrorIs(t, deadline, context.DeadlineExceeded)
	require.Equal(t, retrypolicy.ClassTimeout, retrypolicy.Classify(deadline))
	require.True(t, retrypolicy.Policy{}.WithDefaults().Rule(retrypolicy.ClassTimeout).Retry) // timeout is retried...
	require.Equal(t, retrypolicy.OverridePermanent, retrypolicy.Diagnose(deadline).Override)  // ...but the marker says no

	require.ErrorIs(t, retrypolicy.Permanent(context.Canceled), context.Canceled)

	require.NoError(t, retrypolicy.Permanent(nil))
	require.NoError(t, retrypolicy.Retryable(nil, retrypolicy.ClassNetwork))
	require.NoError(t, retrypolicy.OutOfMemory(nil))
	require.NoError(t, retrypolicy.WithRetryAfter(nil, time.Second))

	require.Equal(t, "none", retrypolicy.OverrideNone.String())
	require.Equal(t, "permanent", retrypolicy.OverridePermanent.String())
	require.Equal(t, "retry", retrypolicy.OverrideRetry.String())
}
