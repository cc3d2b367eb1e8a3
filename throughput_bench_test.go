package rebound_test

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/dbtest"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

// CPU-bound settings: 500 workers with a 2 ms cooldown could fetch far more
// jobs per second than 2 cores work, so the ratio measures the code, not a
// MaxWorkers / FetchCooldown cap. `rebound bench` is the fuller harness
// (CPU per job, spread, plot; docs/benchmarks.md).
const (
	benchWorkers  = 500
	benchCooldown = 2 * time.Millisecond
)

// BenchmarkThroughput works no-op jobs through a whole rebound pod (insert
// middleware, metrics, breaker gate with every key closed, attempt recorder,
// retry policy, DLQ reconciler, HTTP server) and through a plain River
// client with the same queue settings, alternating, in one run, and reports
// both rates and their ratio. Run with -benchtime=1x; each iteration works
// rounds x jobsPerRound jobs per side.
func BenchmarkThroughput(b *testing.B) {
	const jobsPerRound, rounds = 10000, 3
	db := dbtest.New(b)
	ctx := context.Background()

	for b.Loop() {
		var rebound, plain []float64
		for r := range rounds {
			if r%2 == 0 {
				plain = append(plain, plainRiverRound(b, db.Pool, jobsPerRound))
				rebound = append(rebound, reboundRound(b, db.Pool, jobsPerRound))
			} else {
				rebound = append(rebound, reboundRound(b, db.Pool, jobsPerRound))
				plain = append(plain, plainRiverRound(b, db.Pool, jobsPerRound))
			}
			_, err := db.Pool.Exec(ctx, "DELETE FROM river_job")
			require.NoError(b, err)
		}
		slices.Sort(rebound)
		slices.Sort(plain)
		b.Logf("jobs/s rebound %v, plain River %v", rebound, plain)
		b.ReportMetric(rebound[rounds/2], "jobs/s_rebound")
		b.ReportMetric(plain[rounds/2], "jobs/s_river")
		b.ReportMetric(rebound[rounds/2]/plain[rounds/2], "ratio_rebound/river")
	}
}

func insertNoop(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(b, err)
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	_, err = client.InsertManyFast(context.Background(), params)
	require.NoError(b, err)
}

// waitDone returns the jobs/s from start until done reaches n.
func waitDone(b *testing.B, done *atomic.Int64, n int, start time.Time) float64 {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for done.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d jobs worked in 2 minutes", done.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds()
}

func plainRiverRound(b *testing.B, pool *pgxpool.Pool, n int) float64 {
	b.Helper()
	insertNoop(b, pool, n)
	done := &atomic.Int64{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: done})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: benchWorkers}},
		FetchCooldown: benchCooldown,
		Workers:       workers,
		Logger:        slog.New(slog.DiscardHandler),
	})
	require.NoError(b, err)
	start := time.Now()
	require.NoError(b, client.Start(context.Background()))
	rate := waitDone(b, done, n, start)
	require.NoError(b, client.Stop(context.Background()))
	return rate
}

func reboundRound(b *testing.B, pool *pgxpool.Pool, n int) float64 {
	b.Helper()
	insertNoop(b, pool, n)
	done := &atomic.Int64{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: done})
	ctx, cancel := context.WithCancel(context.Background())
	pod, err := rebound.New(rebound.Config{
		Pool:          pool,
		Workers:       workers,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: benchWorkers}},
		FetchCooldown: benchCooldown,
		HTTPAddr:      "127.0.0.1:0",
	})
	require.NoError(b, err)
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- pod.Run(ctx) }()
	rate := waitDone(b, done, n, start)
	cancel()
	require.NoError(b, <-stopped)
	return rate
}
