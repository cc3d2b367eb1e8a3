package rebound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Read the dead-letter queue and the circuit breakers from Go. A SKU the
// warehouse does not know (404) is dead-lettered at once with its args and
// history; two 503s in a row open the warehouse's breaker, so the jobs
// after them wait (snoozed, the warehouse not called) instead of failing.
func ExamplePod_DeadLetterQueue() {
	ctx := context.Background()
	warehouse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stock/GONE":
			w.WriteHeader(http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer warehouse.Close()

	pool, err := pgxpool.New(ctx, exampleDatabaseURL()) // in a service: os.Getenv("DATABASE_URL")
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	workers := river.NewWorkers()
	river.AddWorker(workers, &StockWorker{})
	pod, err := rebound.New(rebound.Config{
		Pool:              pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{"warehouse": {MaxWorkers: 1}},
		FetchPollInterval: 100 * time.Millisecond,
		Breaker: breaker.Config{
			Settings: breaker.Settings{FailureThreshold: 2, OpenTimeout: time.Hour},
		},
		RetryPolicy: retrypolicy.Policy{InitialDelay: time.Second, Jitter: retrypolicy.JitterNone},
	})
	if err != nil {
		panic(err)
	}
	if err := pod.Start(ctx); err != nil {
		panic(err)
	}
	defer pod.Stop(ctx)

	for _, sku := range []string{"GONE", "B-1", "B-2"} {
		if _, err := pod.Insert(ctx, StockArgs{API: warehouse.URL, SKU: sku}, &river.InsertOpts{Queue: "warehouse"}); err != nil {
			panic(err)
		}
	}
	key := StockArgs{API: warehouse.URL}.OperationKey()

	// Wait until the breaker is open and the dead letter written (only for
	// the example's sake: River saves results in the background).
	filter := deadletter.ListParams{Filter: deadletter.Filter{Kinds: []string{"example_stock"}}}
	var page *deadletter.ListResult
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if page, err = pod.DeadLetterQueue().List(ctx, filter); err != nil {
			panic(err)
		}
		if len(page.Entries) > 0 && pod.Breaker().State(key) == breaker.StateOpen {
			break
		}
	}
	for _, e := range page.Entries {
		var args StockArgs
		if err := json.Unmarshal(e.Args, &args); err != nil { // the original args, intact
			panic(err)
		}
		fmt.Printf("dead letter: %s for SKU %s, class %s, %d attempt(s), %s\n", e.Kind, args.SKU, e.FailureClass, len(e.History), e.Status)
		fmt.Println("  reason:", e.FailureReason)
	}

	row, err := pod.Breaker().Store().Get(ctx, key)
	if err != nil {
		panic(err)
	}
	fmt.Printf("breaker: %s, %d consecutive failures, last error %q\n", row.State, row.FailureCount, row.LastError)
	// Output:
	// dead letter: example_stock for SKU GONE, class not_found, 1 attempt(s), unresolved
	//   reason: warehouse answered HTTP 404
	// breaker: open, 2 consecutive failures, last error "warehouse answered HTTP 503"
}
