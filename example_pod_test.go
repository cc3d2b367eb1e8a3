package rebound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// StockArgs ask a warehouse API for the stock of one SKU.
type StockArgs struct {
	API string `json:"api"`
	SKU string `json:"sku"`
}

// Kind is the job kind.
func (StockArgs) Kind() string { return "example_stock" }

// OperationKey is the warehouse API's host: one breaker per warehouse.
func (a StockArgs) OperationKey() string { return strings.TrimPrefix(a.API, "http://") }

// StockWorker works StockArgs.
type StockWorker struct {
	river.WorkerDefaults[StockArgs]
}

// HTTPError is a non-2xx answer. Its StatusCode method is how rebound's
// classifier tells a 503 (server_error: retried, counts toward the
// breaker) from a 404 (not_found: dead-lettered at once).
type HTTPError struct{ Status int }

func (e *HTTPError) Error() string   { return fmt.Sprintf("warehouse answered HTTP %d", e.Status) }
func (e *HTTPError) StatusCode() int { return e.Status }

// Work fetches the stock and records it as the job's result.
func (w *StockWorker) Work(ctx context.Context, job *river.Job[StockArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.API+"/stock/"+job.Args.SKU, nil)
	if err != nil {
		return retrypolicy.Permanent(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err // refused, reset, timed out: classified as network or timeout
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Status: resp.StatusCode}
	}
	var stock struct {
		Units int `json:"units"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stock); err != nil {
		return fmt.Errorf("read stock: %w", err) // decode
	}
	return retrypolicy.RecordResult(ctx, stock)
}

// Run a pod with a kind of your own. The warehouse answers 503 once: the
// attempt recorder classifies it, River retries after the delay its class's
// strategy gives, and the second attempt records the stock.
func ExampleNew() {
	ctx := context.Background()
	var calls atomic.Int32
	warehouse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"units": 7}`)
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
		Queues:            map[string]river.QueueConfig{"inventory": {MaxWorkers: 5}},
		FetchPollInterval: 100 * time.Millisecond,
		RetryPolicy: retrypolicy.Policy{
			InitialDelay: 200 * time.Millisecond,
			Jitter:       retrypolicy.JitterNone,
		},
	})
	if err != nil {
		panic(err)
	}
	if err := pod.Start(ctx); err != nil {
		panic(err)
	}
	defer pod.Stop(ctx)

	completed, cancel := pod.Client().Subscribe(river.EventKindJobCompleted)
	defer cancel()
	res, err := pod.Insert(ctx, StockArgs{API: warehouse.URL, SKU: "A-100"}, &river.InsertOpts{Queue: "inventory"})
	if err != nil {
		panic(err)
	}
	select {
	case ev := <-completed:
		out, _ := retrypolicy.ParseOutput(ev.Job.Metadata)
		for _, a := range out.Attempts {
			fmt.Printf("attempt %d: %s (%s), retried after %d ms\n", a.Attempt, a.Class, a.Error, a.DelayMS)
		}
		fmt.Printf("attempt %d: completed with %s\n", ev.Job.Attempt, out.Result)
		fmt.Println("same job:", ev.Job.ID == res.Job.ID)
	case <-time.After(30 * time.Second):
		fmt.Println("timed out")
	}
	// Output:
	// attempt 1: server_error (warehouse answered HTTP 503), retried after 200 ms
	// attempt 2: completed with {"units": 7}
	// same job: true
}
