package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/rebound-queue/rebound"
)

// NoopConfig sets the no-op scenario: jobs that return at once, so what is
// measured is the queue's own cost per job. The defaults make the CPU the
// limit, not a setting: with 500 workers and a 2 ms fetch cooldown a queue
// could fetch 250,000 jobs/s, far beyond what 2 cores work.
type NoopConfig struct {
	// Jobs is how many jobs each side works per round. Default 20,000.
	Jobs int
	// Rounds is how many rounds each side runs. Default 5.
	Rounds int
	// Workers is the queue's MaxWorkers on both sides. Default 500.
	Workers int
	// FetchCooldown is the least time between two fetches, both sides.
	// Default 2 ms.
	FetchCooldown time.Duration
	// FetchPollInterval is the idle poll interval, both sides. Default
	// 50 ms.
	FetchPollInterval time.Duration
	// Timeout bounds one round. Default 5 minutes.
	Timeout time.Duration
}

func (c NoopConfig) withDefaults() NoopConfig {
	if c.Jobs <= 0 {
		c.Jobs = 20000
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.Workers <= 0 {
		c.Workers = 500
	}
	if c.FetchCooldown <= 0 {
		c.FetchCooldown = 2 * time.Millisecond
	}
	if c.FetchPollInterval <= 0 {
		c.FetchPollInterval = 50 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	return c
}

// NoopReport is the result of [RunNoop].
type NoopReport struct {
	Config  NoopConfig
	Machine Machine
	// PoolSize is the connection pool's size (both sides share the pool).
	PoolSize int
	// Rounds are every round of both sides, in the order they ran.
	Rounds []Round
}

// Ratio is rebound's median jobs/s over plain River's (1 means no
// overhead), and River's median CPU per job over rebound's (the same
// reading for CPU: 1 means rebound spends no more CPU per job).
func (r *NoopReport) Ratio() (jobsPerSec, cpuPerJob float64) {
	rr, rc := Of(r.Rounds, SideRebound)
	pr, pc := Of(r.Rounds, SideRiver)
	if pr.Median == 0 || rc.Median == 0 {
		return 0, 0
	}
	return rr.Median / pr.Median, pc.Median / rc.Median
}

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

// RunNoop runs the no-op scenario on pool, which must hold a migrated
// database of the bench's own ([NewDatabase]): every round starts from an
// empty river_job. progress, if not nil, gets one line per round.
func RunNoop(ctx context.Context, pool *pgxpool.Pool, cfg NoopConfig, progress io.Writer) (*NoopReport, error) {
	cfg = cfg.withDefaults()
	rep := &NoopReport{Config: cfg, Machine: machine(ctx, pool), PoolSize: int(pool.Config().MaxConns)}
	db := newDBCPU(ctx, pool)
	for n := 1; n <= cfg.Rounds; n++ {
		order := []Side{SideRiver, SideRebound}
		if n%2 == 0 {
			order = []Side{SideRebound, SideRiver}
		}
		for _, side := range order {
			if _, err := pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
				return nil, err
			}
			var r Round
			var err error
			if side == SideRiver {
				r, err = noopRiverRound(ctx, pool, cfg, db)
			} else {
				r, err = noopReboundRound(ctx, pool, cfg, db)
			}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", n, side, err)
			}
			r.Number = n
			rep.Rounds = append(rep.Rounds, r)
			if progress != nil {
				fmt.Fprintf(progress, "round %d %-7s %8.0f jobs/s %7.1f µs CPU/job%s  (start %s)\n", n, side, r.JobsPerSecond(), r.CPUPerJob(), dbCPUNote(r), r.Start.Round(time.Millisecond))
			}
		}
	}
	rep.Machine.LoadAfter = LoadAverage()
	return rep, nil
}

func noopInsertParams(n int) []river.InsertManyParams {
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	return params
}

// measure starts the side with start, waits until done counts cfg.Jobs, and
// returns the round's wall and CPU time up to there (and PostgreSQL's, when
// db reads it).
func measure(ctx context.Context, cfg NoopConfig, db *dbCPU, side Side, done *atomic.Int64, start func() error) (Round, error) {
	db0, dbOK := db.read()
	cpu0, t0 := processCPU(), time.Now()
	// Every goroutine the side starts carries the label side=<side>, so a
	// --cpuprofile splits by side: go tool pprof -tagfocus side=rebound.
	var err error
	pprof.Do(ctx, pprof.Labels("side", string(side)), func(context.Context) { err = start() })
	if err != nil {
		return Round{}, err
	}
	started := time.Since(t0)
	deadline := t0.Add(cfg.Timeout)
	for done.Load() < int64(cfg.Jobs) {
		if time.Now().After(deadline) {
			return Round{}, fmt.Errorf("only %d of %d jobs worked in %s", done.Load(), cfg.Jobs, cfg.Timeout)
		}
		if err := ctx.Err(); err != nil {
			return Round{}, err
		}
		time.Sleep(time.Millisecond)
	}
	r := Round{Side: side, Jobs: cfg.Jobs, Elapsed: time.Since(t0), CPU: processCPU() - cpu0, Start: started}
	r.DBCPU = db.since(db0, dbOK)
	return r, nil
}

// noopRiverRound works cfg.Jobs no-op jobs with a plain River client.
func noopRiverRound(ctx context.Context, pool *pgxpool.Pool, cfg NoopConfig, db *dbCPU) (Round, error) {
	done := &atomic.Int64{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: done})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: cfg.FetchPollInterval,
		Workers:           workers,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return Round{}, err
	}
	if _, err := client.InsertManyFast(ctx, noopInsertParams(cfg.Jobs)); err != nil {
		return Round{}, err
	}
	r, err := measure(ctx, cfg, db, SideRiver, done, func() error { return client.Start(ctx) })
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return r, errors.Join(err, client.Stop(stopCtx))
}

// noopReboundRound works cfg.Jobs no-op jobs with a whole rebound pod:
// insert rules, metrics, breaker gate, attempt recorder, retry policy,
// dead-letter reconciliation and breaker listener, on a Prometheus
// registry of its own. The jobs are inserted through the pod, as rebound's
// producers insert them (operation key stamped).
func noopReboundRound(ctx context.Context, pool *pgxpool.Pool, cfg NoopConfig, db *dbCPU) (Round, error) {
	done := &atomic.Int64{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: done})
	pod, err := rebound.New(rebound.Config{
		Pool:              pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: cfg.FetchPollInterval,
		Registerer:        prometheus.NewRegistry(),
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return Round{}, err
	}
	if _, err := pod.Client().InsertManyFast(ctx, noopInsertParams(cfg.Jobs)); err != nil {
		return Round{}, errors.Join(err, pod.Stop(ctx))
	}
	r, err := measure(ctx, cfg, db, SideRebound, done, func() error { return pod.Start(ctx) })
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return r, errors.Join(err, pod.Stop(stopCtx))
}
