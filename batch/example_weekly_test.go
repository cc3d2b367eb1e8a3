package batch_test

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/jobs"
)

// weeklyRunArgs is the periodic job that enqueues the week's batch.
type weeklyRunArgs struct{}

func (weeklyRunArgs) Kind() string { return "weekly_intelligence_run" }

// weeklyRunWorker enqueues one weekly_intelligence job per user as the
// batch "weekly_intelligence YYYY-Www". River's leader inserts periodic
// jobs from its memory, so a leader change can repeat (or skip) a run: the
// batch's unique name makes a repeat of the same ISO week a no-op.
type weeklyRunWorker struct {
	river.WorkerDefaults[weeklyRunArgs]
	pool      *pgxpool.Pool
	processor *batch.Processor
}

func (w *weeklyRunWorker) Work(ctx context.Context, job *river.Job[weeklyRunArgs]) error {
	week := jobs.ISOWeek(time.Now().UTC())
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id FROM users WHERE active")
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		items := make([]river.JobArgs, len(ids))
		for i, id := range ids {
			items[i] = jobs.WeeklyIntelligenceArgs{UserID: id, Week: week}
		}
		_, err = w.processor.EnqueueTx(ctx, tx, batch.Batch{
			Name:         "weekly_intelligence " + week,
			Kind:         jobs.KindWeeklyIntelligence,
			Items:        items,
			CallbackKind: "weekly_report_done", // your kind: gets the batch's Summary as args
		})
		if errors.Is(err, batch.ErrDuplicateName) {
			return nil // this week's batch exists: a repeated run
		}
		return err
	})
}

// mondays is a river.PeriodicSchedule: every Monday at 06:00 UTC.
type mondays struct{}

func (mondays) Next(now time.Time) time.Time {
	now = now.UTC()
	days := (int(time.Monday) - int(now.Weekday()) + 7) % 7
	next := time.Date(now.Year(), now.Month(), now.Day()+days, 6, 0, 0, 0, time.UTC)
	if !next.After(now) {
		next = next.AddDate(0, 0, 7)
	}
	return next
}

// A Go service runs the weekly batch every Monday: a periodic job whose
// worker enqueues the week's batch (see weeklyRunWorker), at most once per
// ISO week whatever River's leader does.
func Example_weeklyRun() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost/app")
	if err != nil {
		panic(err)
	}
	workers := river.NewWorkers()
	run := &weeklyRunWorker{pool: pool}
	river.AddWorker(workers, run)
	reports := jobs.WeeklyIntelligenceConfig{BaseURL: "https://reports.internal/api"}
	river.AddWorker(workers, &jobs.WeeklyIntelligenceWorker{Config: reports})
	// ... and a worker of your own for weekly_report_done.
	pod, err := rebound.New(rebound.Config{
		Pool:    pool,
		Workers: workers,
		// The reports API's host is the jobs' operation key: one breaker.
		Kinds: map[string]rebound.KindConfig{jobs.KindWeeklyIntelligence: {
			OperationKey: func(string, []byte) string { return reports.OperationKey() },
		}},
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(mondays{},
			func() (river.JobArgs, *river.InsertOpts) { return weeklyRunArgs{}, nil }, nil)},
	})
	if err != nil {
		panic(err)
	}
	// 50 users per sub-batch, one sub-batch a minute.
	run.processor, err = batch.New(pool, pod, &batch.Config{BatchSize: 50, DelayBetweenBatches: time.Minute})
	if err != nil {
		panic(err)
	}
	if err := pod.Run(ctx); err != nil {
		panic(err)
	}
}
