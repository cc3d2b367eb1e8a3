package retrypolicy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// statusError is how an HTTP-calling job reports a non-2xx response: by
// behaviour (StatusCode, RetryAfter), as the http_request job does.
type statusError struct {
	code       int
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	return fmt.Sprintf("upstream answered %d %s", e.code, http.StatusText(e.code))
}
func (e *statusError) StatusCode() int           { return e.code }
func (e *statusError) RetryAfter() time.Duration { return e.retryAfter }

// responseError turns a real response into a *statusError, parsing its
// Retry-After with the given clock.
func responseError(resp *http.Response, now time.Time) error {
	if resp.StatusCode < 300 {
		return nil
	}
	ra, _ := retrypolicy.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	return &statusError{code: resp.StatusCode, retryAfter: ra}
}

// breakerOpenError is what a circuit breaker's refusal looks like to this
// package (see Gate).
type breakerOpenError struct {
	key   string
	probe time.Duration
}

func (e *breakerOpenError) Error() string             { return "circuit breaker open for " + e.key }
func (e *breakerOpenError) FailureClass() string      { return "breaker_open" }
func (e *breakerOpenError) RetryAfter() time.Duration { return e.probe }

// edgeRand is a deterministic jitter source: it always picks the lowest
// (top=false) or the highest (top=true) value of the range it is asked for,
// so tests can assert the exact bounds of each jitter mode.
type edgeRand struct{ top bool }

func (r edgeRand) Int64N(n int64) int64 {
	if r.top {
		return n - 1
	}
	return 0
}

var (
	lowRand  = edgeRand{top: false}
	highRand = edgeRand{top: true}
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var testNow = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
