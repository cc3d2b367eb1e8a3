package retrypolicy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// fetchArgs is a job that calls a URL.
type fetchArgs struct {
	URL string `json:"url"`
}

func (fetchArgs) Kind() string { return "example_fetch" }

type fetchWorker struct {
	river.WorkerDefaults[fetchArgs]
}

func (w *fetchWorker) Work(ctx context.Context, job *river.Job[fetchArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.URL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		ra, _ := retrypolicy.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return &upstreamError{status: resp.StatusCode, retryAfter: ra}
	}
	return retrypolicy.RecordResult(ctx, map[string]int{"status": resp.StatusCode})
}

// The attempt recorder in a River client: a 429 with "Retry-After: 1", then
// a 200. Needs PostgreSQL at TEST_DATABASE_URL (or DATABASE_URL); works in a
// schema of its own, dropped at the end.
func ExampleAttemptRecorder() {
	ctx := context.Background()
	calls := 0
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls++; calls == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()

	pool, schema, cleanup, err := exampleSchema(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	// Wiring, as cmd/worker does it.
	policies, err := retrypolicy.NewPolicies(retrypolicy.Policy{InitialDelay: 100 * time.Millisecond, Jitter: retrypolicy.JitterNone}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	recorder := retrypolicy.NewAttemptRecorder(policies, nil)
	workers := river.NewWorkers()
	river.AddWorker(workers, &fetchWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:            schema,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Middleware:        []rivertype.Middleware{recorder},
		RetryPolicy:       recorder.ClientRetryPolicy(),
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		TestOnly:          true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer client.Stop(ctx) //nolint:errcheck

	res, err := client.Insert(ctx, fetchArgs{URL: upstream.URL}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var job *rivertype.JobRow
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if job, err = client.JobGet(ctx, res.Job.ID); err != nil || job.State == rivertype.JobStateCompleted {
			break
		}
	}
	if err != nil {
		fmt.Println(err)
		return
	}

	out, err := retrypolicy.ParseOutput(job.Metadata)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.State, "on attempt", job.Attempt)
	fmt.Println("result:", string(out.Result))
	for _, a := range out.Attempts {
		fmt.Printf("attempt %d: %s (%s), waited %dms, Retry-After %dms: %s\n", a.Attempt, a.Class, a.Strategy, a.DelayMS, a.RetryAfterMS, a.Error)
	}
	// Output:
	// completed on attempt 2
	// result: {"status": 200}
	// attempt 1: rate_limited (aggressive), waited 1000ms, Retry-After 1000ms: upstream answered 429
}

// exampleSchema migrates River's tables into a fresh schema of the test
// database.
func exampleSchema(ctx context.Context) (*pgxpool.Pool, string, func(), error) {
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	if url == "" {
		return nil, "", nil, fmt.Errorf("set TEST_DATABASE_URL to a PostgreSQL URL to run this example")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, "", nil, err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	schema := "rp_example_" + hex.EncodeToString(suffix)
	ident := pgx.Identifier{schema}.Sanitize()
	cleanup := func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ident+" CASCADE")
		pool.Close()
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return pool, schema, cleanup, nil
}
