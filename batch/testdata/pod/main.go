// Command pod is a test program for package batch's multi-process tests: a
// Go service that runs a rebound pod working test_batch_item jobs (GET the
// item's url; non-2xx fails) and the test_batch_done completion callback,
// which prints "callback batch=<id> succeeded=<n> failed=<n>" on stdout.
// It serves the pod's handler (/metrics) on HTTP_ADDR and stops on SIGTERM
// or when stdin closes. DATABASE_URL names the database.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/batch"
)

type itemArgs struct {
	URL string `json:"url"`
}

func (itemArgs) Kind() string { return "test_batch_item" }

type itemWorker struct {
	river.WorkerDefaults[itemArgs]
}

func (w *itemWorker) Work(ctx context.Context, job *river.Job[itemArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.URL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("upstream answered HTTP %d", resp.StatusCode)
	}
	return nil
}

type doneArgs struct {
	batch.Summary
}

func (doneArgs) Kind() string { return "test_batch_done" }

type doneWorker struct {
	river.WorkerDefaults[doneArgs]
}

func (w *doneWorker) Work(_ context.Context, job *river.Job[doneArgs]) error {
	fmt.Printf("callback batch=%d succeeded=%d failed=%d\n", job.Args.ID, job.Args.Succeeded, job.Args.Failed)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pod:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF when the test ends
		stop()
	}()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	river.AddWorker(workers, &itemWorker{})
	river.AddWorker(workers, &doneWorker{})
	pod, err := rebound.New(rebound.Config{
		Pool:              pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		FetchPollInterval: 100 * time.Millisecond,
		HTTPAddr:          os.Getenv("HTTP_ADDR"),
	})
	if err != nil {
		return err
	}
	return pod.Run(ctx)
}
