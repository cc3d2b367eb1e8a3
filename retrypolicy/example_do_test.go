package retrypolicy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// tinyBreaker is a stand-in for the breaker package: it satisfies Gate
// without importing retrypolicy, and refuses calls with an error exposing
// FailureClass() and RetryAfter().
type tinyBreaker struct {
	mu       sync.Mutex
	failures int
}

type openError struct{ key string }

func (e *openError) Error() string             { return "breaker open: " + e.key }
func (e *openError) FailureClass() string      { return "breaker_open" }
func (e *openError) RetryAfter() time.Duration { return 30 * time.Second }

func (b *tinyBreaker) Execute(ctx context.Context, key string, fn func(context.Context) error) error {
	b.mu.Lock()
	open := b.failures >= 3
	b.mu.Unlock()
	if open {
		return &openError{key: key}
	}
	err := fn(ctx)
	if err != nil {
		b.mu.Lock()
		b.failures++
		b.mu.Unlock()
	}
	return err
}

func ExampleDo() {
	calls := 0
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer upstream.Close()

	fetch := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return &upstreamError{status: resp.StatusCode}
		}
		return nil
	}

	policy := retrypolicy.Policy{InitialDelay: 10 * time.Millisecond, MinDelay: time.Millisecond, Jitter: retrypolicy.JitterNone}
	err := retrypolicy.Do(context.Background(), policy, fetch, &retrypolicy.DoOpts{
		Gate:         &tinyBreaker{},
		OperationKey: "api.example.com",
		OnAttempt: func(a retrypolicy.Attempt) {
			fmt.Printf("attempt %d: %s, next in %dms\n", a.Attempt, a.Class, a.DelayMS)
		},
	})
	fmt.Println("err:", err, "calls:", calls)

	// Once the breaker is open, Do stops at once: breaker_open is not retried.
	down := &tinyBreaker{failures: 3}
	err = retrypolicy.Do(context.Background(), policy, fetch, &retrypolicy.DoOpts{Gate: down, OperationKey: "api.example.com"})
	fmt.Println("err:", err, "class:", retrypolicy.Classify(err))
	// Output:
	// attempt 1: server_error, next in 10ms
	// attempt 2: server_error, next in 20ms
	// err: <nil> calls: 3
	// err: breaker open: api.example.com class: breaker_open
}
