package retrypolicy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// scriptedServer answers each request with the next status of its script
// (the last one repeats), setting Retry-After when given.
type scriptedServer struct {
	*httptest.Server
	calls atomic.Int64
}

type reply struct {
	status     int
	retryAfter string
}

func newScriptedServer(t *testing.T, script ...reply) *scriptedServer {
	t.Helper()
	s := &scriptedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.calls.Add(1))
		rep := script[min(n, len(script))-1]
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(rep.status)
	}))
	t.Cleanup(s.Close)
	return s
}

// get calls url and turns a non-2xx response into a *statusError.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return responseError(resp, time.Now())
}

// sleepRecorder is an injected sleep that records waits and returns at once.
type sleepRecorder struct {
	mu     sync.Mutex
	waited []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waited = append(s.waited, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestDo(t *testing.T) {
	t.Parallel()

	noJitter := retrypolicy.Policy{Jitter: retrypolicy.JitterNone}
	cases := []struct {
		name    string
		policy  retrypolicy.Policy
		script  []reply
		calls   int64
		waited  []time.Duration
		classes []retrypolicy.Class
		err     string
	}{
		{"429 with Retry-After twice then 200", noJitter, []reply{{429, "3"}, {429, "3"}, {200, ""}}, 3,
			// aggressive: 2s raised to 3s; then 6s, above the Retry-After.
			[]time.Duration{3 * time.Second, 6 * time.Second}, []retrypolicy.Class{"rate_limited", "rate_limited"}, ""},
		{"404 is called once", noJitter, []reply{{404, ""}}, 1, nil, []retrypolicy.Class{"not_found"}, "upstream answered 404 Not Found"},
		{"503 until max attempts", retrypolicy.Policy{Jitter: retrypolicy.JitterNone, MaxAttempts: 3}, []reply{{503, ""}}, 3,
			[]time.Duration{2 * time.Second, 4 * time.Second}, []retrypolicy.Class{"server_error", "server_error", "server_error"}, "upstream answered 503 Service Unavailable"},
		{"408 is linear", retrypolicy.Policy{Jitter: retrypolicy.JitterNone, InitialDelay: time.Second}, []reply{{408, ""}, {408, ""}, {408, ""}, {204, ""}}, 4,
			[]time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, []retrypolicy.Class{"timeout", "timeout", "timeout"}, ""},
		{"a per-class override retries 404", retrypolicy.Policy{Jitter: retrypolicy.JitterNone, Rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassNotFound: {Retry: true, Strategy: retrypolicy.StrategyFibonacci}}},
			[]reply{{404, ""}, {404, ""}, {404, ""}, {200, ""}}, 4,
			[]time.Duration{2 * time.Second, 2 * time.Second, 4 * time.Second}, []retrypolicy.Class{"not_found", "not_found", "not_found"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedServer(t, tc.script...)
			var sleeps sleepRecorder
			var classes []retrypolicy.Class
			var finals int
			err := retrypolicy.Do(t.Context(), tc.policy, func(ctx context.Context) error {
				return get(ctx, srv.URL)
			}, &retrypolicy.DoOpts{
				Sleep: sleeps.sleep,
				OnAttempt: func(a retrypolicy.Attempt) {
					classes = append(classes, a.Class)
					if a.Final {
						finals++
						require.Zero(t, a.DelayMS)
					}
				},
			})
			if tc.err == "" {
				require.NoError(t, err)
				require.Zero(t, finals)
			} else {
				require.EqualError(t, err, tc.err)
				_, ok := errors.AsType[*statusError](err)
				require.True(t, ok)
				require.Equal(t, 1, finals)
			}
			require.Equal(t, tc.calls, srv.calls.Load())
			require.Equal(t, tc.waited, sleeps.waited)
			require.Equal(t, tc.classes, classes)
		})
	}
}

func TestDoDecorrelatedUsesThePreviousDelay(t *testing.T) {
	t.Parallel()

	srv := newScriptedServer(t, reply{503, ""})
	var sleeps sleepRecorder
	p := retrypolicy.Policy{InitialDelay: time.Second, MaxDelay: time.Minute, Jitter: retrypolicy.JitterDecorrelated, MaxAttempts: 6}
	err := retrypolicy.Do(t.Context(), p, func(ctx context.Context) error { return get(ctx, srv.URL) },
		&retrypolicy.DoOpts{Sleep: sleeps.sleep, Rand: highRand})
	require.EqualError(t, err, "upstream answered 503 Service Unavailable")
	// Highest pick of [base, 3*previous], capped: 3s, 9s, 27s, 60s, 60s.
	require.Equal(t, []time.Duration{3 * time.Second, 9 * time.Second, 27 * time.Second, time.Minute, time.Minute}, sleeps.waited)
}

func TestDoHonoursContext(t *testing.T) {
	t.Parallel()

	t.Run("cancel during the sleep", func(t *testing.T) {
		t.Parallel()
		srv := newScriptedServer(t, reply{503, ""})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		// The real sleep: the first wait is 10s.
		err := retrypolicy.Do(ctx, retrypolicy.Policy{InitialDelay: 10 * time.Second, Jitter: retrypolicy.JitterNone},
			func(ctx context.Context) error { return get(ctx, srv.URL) }, nil)
		require.Less(t, time.Since(start), 5*time.Second)
		require.ErrorIs(t, err, context.Canceled)
		_, ok := errors.AsType[*statusError](err)
		require.True(t, ok, "the last attempt's error is kept: %v", err)
		require.Equal(t, int64(1), srv.calls.Load())
		require.Equal(t, retrypolicy.ClassCancelled, retrypolicy.Classify(err))
	})

	t.Run("deadline during the call", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		var sleeps sleepRecorder
		err := retrypolicy.Do(ctx, retrypolicy.Policy{}, func(ctx context.Context) error { return get(ctx, srv.URL) },
			&retrypolicy.DoOpts{Sleep: sleeps.sleep})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, sleeps.waited)
	})

	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		called := false
		err := retrypolicy.Do(ctx, retrypolicy.Policy{}, func(context.Context) error { called = true; return nil }, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, called)
	})
}

func TestDoRefusesAnInvalidPolicy(t *testing.T) {
	t.Parallel()

	called := false
	err := retrypolicy.Do(t.Context(), retrypolicy.Policy{InitialDelay: time.Minute, MaxDelay: time.Second},
		func(context.Context) error { called = true; return nil }, nil)
	require.EqualError(t, err, "max_delay: must be >= initial_delay (1m0s)")
	require.False(t, called)
}

// countingGate is a minimal gate: it admits calls until `budget` failures
// whose class says the downstream is unhealthy, then refuses for `probe`,
// then admits again (a breaker in miniature, enough to exercise the Gate
// contract from the consumer's side).
type countingGate struct {
	mu       sync.Mutex
	budget   int
	failures int
	refused  int
	probe    time.Duration
	keys     []string
}

func (g *countingGate) Execute(ctx context.Context, key string, fn func(context.Context) error) error {
	g.mu.Lock()
	g.keys = append(g.keys, key)
	if g.failures >= g.budget {
		g.refused++
		g.failures = 0 // half-open after this refusal
		g.mu.Unlock()
		return &breakerOpenError{key: key, probe: g.probe}
	}
	g.mu.Unlock()
	err := fn(ctx)
	if err != nil && retrypolicy.Classify(err).DownstreamUnhealthy() {
		g.mu.Lock()
		g.failures++
		g.mu.Unlock()
	}
	return err
}

func TestDoThroughAGate(t *testing.T) {
	t.Parallel()

	t.Run("a refusal ends Do as breaker_open", func(t *testing.T) {
		t.Parallel()
		srv := newScriptedServer(t, reply{503, ""})
		gate := &countingGate{budget: 2, probe: 30 * time.Second}
		var sleeps sleepRecorder
		var last retrypolicy.Attempt
		err := retrypolicy.Do(t.Context(), retrypolicy.Policy{Jitter: retrypolicy.JitterNone}, func(ctx context.Context) error { return get(ctx, srv.URL) },
			&retrypolicy.DoOpts{Gate: gate, OperationKey: "api.example.com", Sleep: sleeps.sleep, OnAttempt: func(a retrypolicy.Attempt) { last = a }})
		require.EqualError(t, err, "circuit breaker open for api.example.com")
		require.Equal(t, retrypolicy.ClassBreakerOpen, retrypolicy.Classify(err))
		require.Equal(t, int64(2), srv.calls.Load())
		require.Equal(t, 1, gate.refused)
		require.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second}, sleeps.waited)
		require.Equal(t, []string{"api.example.com", "api.example.com", "api.example.com"}, gate.keys)
		require.Equal(t, retrypolicy.Attempt{Attempt: 3, At: last.At, Class: retrypolicy.ClassBreakerOpen, RetryAfterMS: 30000, Error: "circuit breaker open for api.example.com", Final: true}, last)
	})

	t.Run("retrying breaker_open waits for the probe", func(t *testing.T) {
		t.Parallel()
		srv := newScriptedServer(t, reply{503, ""}, reply{200, ""})
		gate := &countingGate{budget: 1, probe: 30 * time.Second}
		var sleeps sleepRecorder
		p := retrypolicy.Policy{Jitter: retrypolicy.JitterNone, Rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassBreakerOpen: {Retry: true, Strategy: retrypolicy.StrategyLinear}}}
		err := retrypolicy.Do(t.Context(), p, func(ctx context.Context) error { return get(ctx, srv.URL) },
			&retrypolicy.DoOpts{Gate: gate, OperationKey: "api.example.com", Sleep: sleeps.sleep})
		require.NoError(t, err)
		require.Equal(t, int64(2), srv.calls.Load())
		// 503: exponential 2s; refused: linear 4s raised to the probe's 30s.
		require.Equal(t, []time.Duration{2 * time.Second, 30 * time.Second}, sleeps.waited)
	})
}
