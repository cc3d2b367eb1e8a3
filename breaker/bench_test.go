package breaker

import (
	"context"
	"errors"
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
)

type benchArgs struct{}

func (benchArgs) Kind() string { return "bench_noop" }

type benchWorker struct {
	river.WorkerDefaults[benchArgs]
	worked atomic.Int64
	err    error
}

func (w *benchWorker) Work(context.Context, *river.Job[benchArgs]) error {
	w.worked.Add(1)
	return w.err
}

// countingMiddleware counts the jobs River hands to the middleware chain
// (fetched jobs), in front of the gate.
type countingMiddleware struct {
	river.MiddlewareDefaults
	n atomic.Int64
}

func (m *countingMiddleware) Work(ctx context.Context, _ *rivertype.JobRow, doInner func(context.Context) error) error {
	m.n.Add(1)
	return doInner(ctx)
}

func insertJobs(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	ins, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(b, err)
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: benchArgs{}}
	}
	for start := 0; start < n; start += 10000 {
		_, err := ins.InsertManyFast(context.Background(), params[start:min(start+10000, n)])
		require.NoError(b, err)
	}
}

// runRound works n no-op jobs with or without the gate and returns jobs/s.
func runRound(b *testing.B, pool *pgxpool.Pool, n int, gate *Gate) float64 {
	b.Helper()
	ctx := context.Background()
	insertJobs(b, pool, n)
	w := &benchWorker{}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	cfg := &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 100}},
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Workers:           workers,
	}
	if gate != nil {
		cfg.Middleware = []rivertype.Middleware{gate}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	require.NoError(b, err)
	start := time.Now()
	require.NoError(b, client.Start(ctx))
	for w.worked.Load() < int64(n) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(b, client.Stop(stopCtx))
	_, err = pool.Exec(ctx, `DELETE FROM river_job`)
	require.NoError(b, err)
	return float64(n) / elapsed.Seconds()
}

// BenchmarkRiverGate works no-op jobs through a River client with the
// breaker gate (every key closed) and without it (plain River), in
// alternating rounds, and reports the median jobs/s of both, their ratio,
// and the database round trips the gate cost per job (queries on the
// breaker's own pool issued by calls, not by its background refresh).
// Run with -benchtime=1x.
func BenchmarkRiverGate(b *testing.B) {
	const jobsPerRound, rounds = 20000, 3
	db := dbtest.New(b)
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(b, err)
	calls := &atomic.Int64{}
	pcfg.ConnConfig.Tracer = queryCounter{calls}
	bpool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(b, err)
	defer bpool.Close()
	br, err := New(bpool, Config{})
	require.NoError(b, err)
	gate := NewGate(br, GateConfig{})
	require.NoError(b, br.Start(ctx))
	defer br.Stop(ctx)

	rpcfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(b, err)
	rpcfg.MaxConns = 20
	rpool, err := pgxpool.NewWithConfig(ctx, rpcfg)
	require.NoError(b, err)
	defer rpool.Close()

	for b.Loop() {
		var on, off []float64
		calls.Store(0)
		for r := range rounds {
			if r%2 == 0 {
				off = append(off, runRound(b, rpool, jobsPerRound, nil))
				on = append(on, runRound(b, rpool, jobsPerRound, gate))
			} else {
				on = append(on, runRound(b, rpool, jobsPerRound, gate))
				off = append(off, runRound(b, rpool, jobsPerRound, nil))
			}
		}
		slices.Sort(on)
		slices.Sort(off)
		b.Logf("jobs/s gate on %v, off %v", on, off)
		b.ReportMetric(on[rounds/2], "jobs/s_gate_on")
		b.ReportMetric(off[rounds/2], "jobs/s_gate_off")
		b.ReportMetric(on[rounds/2]/off[rounds/2], "ratio_on/off")
		b.ReportMetric(float64(calls.Load())/float64(jobsPerRound*rounds), "roundtrips/job")
	}
}

// BenchmarkParkedWakeups parks 100,000 jobs behind a key that stays open
// (every probe fails, open_timeout 30s, default park_spread) and reports
// how many jobs River fetches per second once the first pass has parked
// them all. Run with -benchtime=1x.
func BenchmarkParkedWakeups(b *testing.B) {
	const backlog = 100000
	const measure = 60 * time.Second
	db := dbtest.New(b)
	ctx := context.Background()
	br, err := New(db.Pool, Config{})
	require.NoError(b, err)
	gate := NewGate(br, GateConfig{})
	require.NoError(b, br.Start(ctx))
	defer br.Stop(ctx)
	_, err = br.Store().Open(ctx, OpenParams{Key: "bench_noop", For: DefaultOpenTimeout, By: "bench"})
	require.NoError(b, err)
	require.Eventually(b, func() bool { return br.State("bench_noop") == StateOpen }, 2*time.Second, 5*time.Millisecond)

	for b.Loop() {
		insertJobs(b, db.Pool, backlog)
		counter := &countingMiddleware{}
		w := &benchWorker{err: errors.New("upstream: HTTP 503")}
		workers := river.NewWorkers()
		river.AddWorker(workers, w)
		client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 100}},
			FetchCooldown:     20 * time.Millisecond,
			FetchPollInterval: 50 * time.Millisecond,
			Workers:           workers,
			Middleware:        []rivertype.Middleware{counter, gate},
		})
		require.NoError(b, err)
		start := time.Now()
		require.NoError(b, client.Start(ctx))
		for counter.n.Load() < backlog {
			time.Sleep(10 * time.Millisecond)
		}
		firstPass := time.Since(start)
		before, probesBefore := counter.n.Load(), w.worked.Load()
		time.Sleep(measure)
		after, probesAfter := counter.n.Load(), w.worked.Load()
		stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		require.NoError(b, client.Stop(stopCtx))
		cancel()
		require.Equal(b, StateOpen, br.State("bench_noop"))
		b.Logf("first pass: %d jobs parked in %s; then %d fetches (%d probes ran) in %s",
			backlog, firstPass.Round(time.Millisecond), after-before, probesAfter-probesBefore, measure)
		b.ReportMetric(firstPass.Seconds(), "first_pass_s")
		b.ReportMetric(float64(after-before)/measure.Seconds(), "wakeups/s")
		b.ReportMetric(float64(probesAfter-probesBefore), "probes")
	}
}
