// Command crashworker is a River worker whose jobs block forever, for the
// dead-letter crash test: the test starts it, waits until its job is
// running, and kills it with SIGKILL.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

type blockArgs struct{}

func (blockArgs) Kind() string { return "dlq_block" }

type blockWorker struct {
	river.WorkerDefaults[blockArgs]
}

func (w *blockWorker) Work(context.Context, *river.Job[blockArgs]) error {
	select {} // hangs until the process is killed
}

func main() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &blockWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		JobTimeout:        -1,
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := client.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("started")
	select {}
}
