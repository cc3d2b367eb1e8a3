package monitor

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// OpenStates are the River job states rebound_queue_jobs reports: the jobs
// still to be worked or being worked. Finished jobs (completed, cancelled,
// discarded) are left out on purpose: River keeps them for a day or more, so
// counting them would scan the bulk of river_job on every refresh. Throughput
// is rebound_job_attempts_total; dead letters are
// rebound_dead_letter_queue_size.
var OpenStates = []string{"available", "pending", "retryable", "running", "scheduled"}

// queueSnapshot is what the queue collector stores in rebound_metric_snapshot.
type queueSnapshot struct {
	Jobs   []queueJobsRow   `json:"jobs"`
	Oldest []queueOldestRow `json:"oldest"`
}

type queueJobsRow struct {
	Queue string `json:"queue"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	Count int64  `json:"count"`
}

type queueOldestRow struct {
	Queue   string  `json:"queue"`
	Seconds float64 `json:"seconds"`
}

// QueueCollector exports the depth of River's queues at scrape time, read
// through [Snapshots] so every pod shares one query per period:
//
//   - rebound_queue_jobs{queue,kind,state}: jobs in each of [OpenStates].
//   - rebound_queue_oldest_available_seconds{queue}: how long the oldest
//     available job has been due, in seconds (0 when none is waiting).
//
// When the database cannot be read the metrics are left out of the scrape
// (and a warning logged) rather than reported as zero.
type QueueCollector struct {
	snapshots *Snapshots
	queues    []string
	kinds     []string
	maxAge    time.Duration
	logger    *slog.Logger

	jobsDesc   *prometheus.Desc
	oldestDesc *prometheus.Desc
}

// QueueCollectorOpts are optional settings of a [QueueCollector].
type QueueCollectorOpts struct {
	// MaxAge is how old the shared snapshot may be; 0 means
	// [DefaultSnapshotMaxAge].
	MaxAge time.Duration
	// Queues and Kinds are always reported, with 0 when they have no open
	// job, so dashboards and alerts see 0 instead of a missing series.
	Queues, Kinds []string
	// Logger receives a warning when the database cannot be read. nil
	// discards.
	Logger *slog.Logger
}

// NewQueueCollector returns a collector reading through snapshots. opts may
// be nil.
func NewQueueCollector(snapshots *Snapshots, opts *QueueCollectorOpts) *QueueCollector {
	if opts == nil {
		opts = &QueueCollectorOpts{}
	}
	maxAge, logger := opts.MaxAge, opts.Logger
	if maxAge <= 0 {
		maxAge = DefaultSnapshotMaxAge
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &QueueCollector{
		snapshots: snapshots,
		queues:    opts.Queues,
		kinds:     opts.Kinds,
		maxAge:    maxAge,
		logger:    logger,
		jobsDesc: prometheus.NewDesc(Namespace+"_queue_jobs",
			"Jobs not yet finished, by queue, job kind and River state (available, pending, retryable, running, scheduled); shared snapshot, refreshed at most every 10 s.",
			[]string{"queue", "kind", "state"}, nil),
		oldestDesc: prometheus.NewDesc(Namespace+"_queue_oldest_available_seconds",
			"Seconds the oldest available job of each queue has been due (0 when none waits).",
			[]string{"queue"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobsDesc
	ch <- c.oldestDesc
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var snap queueSnapshot
	if err := c.snapshots.Get(ctx, "queue_jobs", c.maxAge, computeQueueSnapshot, &snap); err != nil {
		c.logger.Warn("queue metrics unavailable", "error", err)
		return
	}
	// Every open state of every (queue, kind) present, so a state that
	// empties reports 0 instead of vanishing.
	type qk struct{ queue, kind string }
	counts := map[qk]map[string]int64{}
	for _, q := range c.queues {
		for _, k := range c.kinds {
			counts[qk{q, k}] = map[string]int64{}
		}
	}
	for _, r := range snap.Jobs {
		k := qk{r.Queue, r.Kind}
		if counts[k] == nil {
			counts[k] = map[string]int64{}
		}
		counts[k][r.State] = r.Count
	}
	queues := map[string]bool{}
	for k, byState := range counts {
		queues[k.queue] = true
		for _, state := range OpenStates {
			ch <- prometheus.MustNewConstMetric(c.jobsDesc, prometheus.GaugeValue, float64(byState[state]), k.queue, k.kind, state)
		}
	}
	oldest := map[string]float64{}
	for _, r := range snap.Oldest {
		oldest[r.Queue] = r.Seconds
		queues[r.Queue] = true
	}
	for q := range queues {
		ch <- prometheus.MustNewConstMetric(c.oldestDesc, prometheus.GaugeValue, oldest[q], q)
	}
}

func computeQueueSnapshot(ctx context.Context, tx pgx.Tx) (any, error) {
	rows, err := tx.Query(ctx, `SELECT queue, kind, state::text, count(*)
		FROM river_job WHERE state = ANY($1::river_job_state[])
		GROUP BY 1, 2, 3`, OpenStates)
	if err != nil {
		return nil, err
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queueJobsRow, error) {
		var j queueJobsRow
		err := r.Scan(&j.Queue, &j.Kind, &j.State, &j.Count)
		return j, err
	})
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT queue, greatest(0, extract(epoch FROM now() - min(scheduled_at)))::float8
		FROM river_job WHERE state = 'available' GROUP BY queue`)
	if err != nil {
		return nil, err
	}
	oldest, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queueOldestRow, error) {
		var o queueOldestRow
		err := r.Scan(&o.Queue, &o.Seconds)
		return o, err
	})
	if err != nil {
		return nil, err
	}
	return queueSnapshot{Jobs: jobs, Oldest: oldest}, nil
}
