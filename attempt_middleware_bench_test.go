package rebound

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

type chainNoopArgs struct{}

func (chainNoopArgs) Kind() string { return "bench_noop" }

type chainNoopWorker struct {
	river.WorkerDefaults[chainNoopArgs]
}

func (chainNoopWorker) Work(context.Context, *river.Job[chainNoopArgs]) error { return nil }

// BenchmarkWorkerMiddleware runs a successful attempt through the pod's
// worker middleware, built into a chain of closures as River builds it for
// every job (execution.MiddlewareChain), with every breaker closed: what
// rebound adds to each job of plain River's, before River's own work.
// It runs on the benchmark's goroutine, whose stack is already grown, so it
// leaves out what a job's new goroutine pays for stack growth (and counts
// growStack's clearing of 4 KiB every time).
func BenchmarkWorkerMiddleware(b *testing.B) {
	db := dbtest.New(b)
	workers := river.NewWorkers()
	river.AddWorker(workers, chainNoopWorker{})
	pod, err := New(Config{Pool: db.Pool, Workers: workers, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := pod.breaker.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pod.breaker.Stop(ctx) })
	now := time.Now()
	job := &rivertype.JobRow{ID: 1, Kind: "bench_noop", Queue: river.QueueDefault, Attempt: 1, MaxAttempts: 5, AttemptedAt: &now,
		EncodedArgs: []byte(`{}`), Metadata: []byte(`{"operation_key": "bench_noop"}`), State: rivertype.JobStateRunning}
	mws := pod.workerMiddleware
	b.ReportAllocs()
	for b.Loop() {
		do := func(context.Context) error { return nil }
		for i := len(mws) - 1; i >= 0; i-- {
			mw, inner := mws[i], do
			do = func(ctx context.Context) error { return mw.Work(ctx, job, inner) }
		}
		if err := do(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(mws)), "layers")
}
