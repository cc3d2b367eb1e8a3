package metricstore_test

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
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/metricstore"
)

// BenchmarkRecorderMiddleware is the cost of counting one attempt (both
// middlewares, no database).
func BenchmarkRecorderMiddleware(b *testing.B) {
	rec, err := metricstore.NewRecorder(metricstore.New(nil), &metricstore.RecorderConfig{FlushInterval: time.Hour})
	require.NoError(b, err)
	outer, inner := rec.Middleware(), rec.GateMarker()
	job := &rivertype.JobRow{Kind: "bench", Attempt: 1, MaxAttempts: 5}
	ctx := context.Background()
	work := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = outer.Work(ctx, job, func(ctx context.Context) error { return inner.Work(ctx, job, work) })
		}
	})
}

type benchArgs struct{}

func (benchArgs) Kind() string { return "bench_noop" }

type benchWorker struct {
	river.WorkerDefaults[benchArgs]
	done *atomic.Int64
}

func (w *benchWorker) Work(context.Context, *river.Job[benchArgs]) error {
	w.done.Add(1)
	return nil
}

// BenchmarkThroughputWithMonitoring works no-op jobs through River with
// 500 workers and a 2 ms fetch cooldown, with and without the recorder's
// middleware (flushing every second), alternating, and reports the ratio.
// Run with -benchtime=1x.
func BenchmarkThroughputWithMonitoring(b *testing.B) {
	const jobs, rounds = 10000, 3
	db := dbtest.New(b)
	for b.Loop() {
		var with, without []float64
		for r := range rounds {
			if r%2 == 0 {
				without = append(without, throughputRound(b, db.Pool, jobs, false))
				with = append(with, throughputRound(b, db.Pool, jobs, true))
			} else {
				with = append(with, throughputRound(b, db.Pool, jobs, true))
				without = append(without, throughputRound(b, db.Pool, jobs, false))
			}
			_, err := db.Pool.Exec(context.Background(), "DELETE FROM river_job")
			require.NoError(b, err)
		}
		slices.Sort(with)
		slices.Sort(without)
		b.Logf("jobs/s with monitoring %v, without %v", with, without)
		b.ReportMetric(with[rounds/2], "jobs/s_monitored")
		b.ReportMetric(without[rounds/2], "jobs/s_plain")
		b.ReportMetric(with[rounds/2]/without[rounds/2], "ratio")
	}
}

func throughputRound(b *testing.B, pool *pgxpool.Pool, n int, monitored bool) float64 {
	b.Helper()
	ctx := context.Background()
	done := &atomic.Int64{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &benchWorker{done: done})
	cfg := &river.Config{
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 500}},
		FetchCooldown: 2 * time.Millisecond,
		Workers:       workers,
		Logger:        slog.New(slog.DiscardHandler),
	}
	var rec *metricstore.Recorder
	if monitored {
		var err error
		rec, err = metricstore.NewRecorder(metricstore.New(pool), &metricstore.RecorderConfig{FlushInterval: time.Second})
		require.NoError(b, err)
		cfg.Middleware = []rivertype.Middleware{rec.Middleware(), rec.GateMarker()}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	require.NoError(b, err)
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: benchArgs{}}
	}
	_, err = client.InsertManyFast(ctx, params)
	require.NoError(b, err)
	start := time.Now()
	if rec != nil {
		rec.Start(ctx)
	}
	require.NoError(b, client.Start(ctx))
	deadline := time.Now().Add(2 * time.Minute)
	for done.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d jobs in 2 minutes", done.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	rate := float64(n) / time.Since(start).Seconds()
	require.NoError(b, client.Stop(ctx))
	if rec != nil {
		require.NoError(b, rec.Stop(ctx))
	}
	return rate
}
