package deadletter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultReconcileInterval is how often a [Reconciler] runs when
// ReconcilerConfig.Interval is 0.
const DefaultReconcileInterval = time.Minute

// DefaultReconcileBatchSize is how many missing rows one statement of a pass
// adds when ReconcilerConfig.BatchSize is 0.
const DefaultReconcileBatchSize = 500

// maxLoggedFailures bounds the log lines one pass writes about rows it could
// not add; the rest are summed up in one line.
const maxLoggedFailures = 10

// ReconcileLockKey is the transaction advisory lock a pass holds
// (pg_try_advisory_xact_lock): one pod reconciles at a time, the others skip
// that tick.
const ReconcileLockKey int64 = 0x72626e646c71 // "rbndlq"

// ReconcilerConfig configures a [Reconciler]. The zero value is usable.
type ReconcilerConfig struct {
	// Interval is the time between passes. Defaults to
	// [DefaultReconcileInterval].
	Interval time.Duration
	// BatchSize bounds the rows one statement adds. Defaults to
	// [DefaultReconcileBatchSize].
	BatchSize int
	// Logger gets a warning for every row a pass had to add, an error for
	// every row it could not add, and errors of failed passes. Defaults to a logger that discards everything.
	Logger *slog.Logger
}

// Reconciler is the safety net under the capture trigger: every pass it adds
// the dead-letter row of any discarded or cancelled River job (manual
// cancels excluded) that has none, through the same SQL function as the
// trigger (rebound_dead_letter_capture), and counts them in
// rebound_dead_letter_reconciled_total (which should stay 0: a non-zero
// value means the trigger failed, see PostgreSQL's log for its WARNING). A
// pass also folds the deltas behind rebound_dead_letter_queue_size and the
// group counts behind [Store.Stats], and drops tombstones that are no longer
// needed.
//
// One row that cannot be written (a constraint rejects it, say) never stops
// a pass: it is rolled back on its own, reported in ReconcileResult.Failed,
// logged with its River job ID (at most 10 lines a pass) and counted in
// rebound_dead_letter_reconcile_failures_total, and the pass goes on with
// the rows after it. The next pass tries it again.
//
// Every pod may run one: a pass runs inside a transaction holding
// [ReconcileLockKey] with pg_try_advisory_xact_lock, so one pod does the work
// and the others skip. A transaction lock (not River's leadership, which
// River does not expose, nor a session lock) keeps working behind PgBouncer
// in transaction mode and is released by a crash. Reconciler implements
// prometheus.Collector for its two counters. Start and Stop are safe to call once
// each.
type Reconciler struct {
	pool   *pgxpool.Pool
	config ReconcilerConfig

	reconciled prometheus.Counter
	failures   prometheus.Counter

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewReconciler returns a Reconciler on pool. config may be nil.
func NewReconciler(pool *pgxpool.Pool, config *ReconcilerConfig) *Reconciler {
	c := ReconcilerConfig{}
	if config != nil {
		c = *config
	}
	if c.Interval <= 0 {
		c.Interval = DefaultReconcileInterval
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultReconcileBatchSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{
		pool:   pool,
		config: c,
		reconciled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rebound_dead_letter_reconciled_total",
			Help: "Dead-letter rows the reconciliation had to add because the capture trigger did not (should stay 0; see PostgreSQL's log for the trigger's warning).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rebound_dead_letter_reconcile_failures_total",
			Help: "Dead River jobs a reconciliation pass could not add to the dead-letter queue, once per job per pass (should stay 0; the worker logs each job ID and error).",
		}),
	}
}

// Describe implements prometheus.Collector.
func (r *Reconciler) Describe(ch chan<- *prometheus.Desc) {
	r.reconciled.Describe(ch)
	r.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Reconciler) Collect(ch chan<- prometheus.Metric) {
	r.reconciled.Collect(ch)
	r.failures.Collect(ch)
}

// ReconcileResult reports one pass.
type ReconcileResult struct {
	// Skipped is true when another pod held the lock: nothing was done.
	Skipped bool
	// Added are the entries the pass created, by ascending River job ID.
	Added []ReconciledRow
	// Failed are the dead jobs whose entry the pass could not write, by
	// ascending River job ID. The pass went on without them; the next pass
	// tries them again.
	Failed []ReconcileFailure
}

// ReconciledRow is one row a pass added.
type ReconciledRow struct {
	// EntryID is the new entry's ID.
	EntryID int64
	// RiverJobID is the dead River job's ID.
	RiverJobID int64
	// Attempt is the attempt the job died at.
	Attempt int
	// Kind is the job's kind.
	Kind string
}

// ReconcileFailure is one dead job whose entry a pass could not write.
type ReconcileFailure struct {
	// RiverJobID is the dead River job's ID.
	RiverJobID int64
	// Attempt is the attempt the job died at.
	Attempt int
	// Kind is the job's kind.
	Kind string
	// Error is PostgreSQL's message and SQLSTATE.
	Error string
}

// RunOnce runs one pass now, in one transaction. Rows that cannot be
// captured are skipped and reported in ReconcileResult.Failed, not
// returned as an error. Errors come from the database (unreachable,
// migrations missing, ctx cancelled); the transaction is rolled back then.
func (r *Reconciler) RunOnce(ctx context.Context) (*ReconcileResult, error) {
	res := &ReconcileResult{}
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", ReconcileLockKey).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			res.Skipped = true
			return nil
		}
		// Page by job ID, so rows that cannot be captured (reported in
		// res.Failed) never hide the ones after them.
		var lastID int64
		for {
			rows, err := tx.Query(ctx, `WITH missing AS (
					SELECT j.* FROM river_job j
					WHERE j.state IN ('discarded', 'cancelled')
					  AND NOT (j.state = 'cancelled' AND j.metadata ? 'cancel_attempted_at')
					  AND NOT EXISTS (SELECT 1 FROM `+Table+` d WHERE d.river_job_id = j.id AND d.attempt = j.attempt)
					  AND NOT EXISTS (SELECT 1 FROM job_dead_letter_queue_purged p WHERE p.river_job_id = j.id AND p.attempt = j.attempt)
					  AND j.id > $2
					ORDER BY j.id LIMIT $1)
				SELECT m.id, m.attempt, m.kind, c.entry_id, c.error
				FROM missing m CROSS JOIN LATERAL rebound_dead_letter_try_capture(to_jsonb(m)) c
				ORDER BY m.id`, r.config.BatchSize, lastID)
			if err != nil {
				return fmt.Errorf("add missing dead-letter rows: %w", err)
			}
			n := 0
			for rows.Next() {
				n++
				var (
					row     ReconciledRow
					entryID *int64
					capErr  *string
				)
				if err := rows.Scan(&row.RiverJobID, &row.Attempt, &row.Kind, &entryID, &capErr); err != nil {
					rows.Close()
					return err
				}
				lastID = row.RiverJobID
				switch {
				case capErr != nil:
					res.Failed = append(res.Failed, ReconcileFailure{RiverJobID: row.RiverJobID, Attempt: row.Attempt, Kind: row.Kind, Error: *capErr})
				case entryID != nil:
					row.EntryID = *entryID
					res.Added = append(res.Added, row)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("add missing dead-letter rows: %w", err)
			}
			if n < r.config.BatchSize {
				break
			}
		}
		if _, err := tx.Exec(ctx, `WITH d AS (DELETE FROM job_dead_letter_queue_counts RETURNING kind, status, n)
			INSERT INTO job_dead_letter_queue_counts (kind, status, n)
			SELECT kind, status, sum(n) FROM d GROUP BY kind, status`); err != nil {
			return fmt.Errorf("fold dead-letter counts: %w", err)
		}
		if _, err := tx.Exec(ctx, `WITH d AS (DELETE FROM job_dead_letter_queue_group_counts
				RETURNING status, failure_fingerprint, kind, failure_class, n)
			INSERT INTO job_dead_letter_queue_group_counts (status, failure_fingerprint, kind, failure_class, n)
			SELECT status, failure_fingerprint, kind, failure_class, sum(n) FROM d
			GROUP BY status, failure_fingerprint, kind, failure_class HAVING sum(n) <> 0`); err != nil {
			return fmt.Errorf("fold dead-letter group counts: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM job_dead_letter_queue_purged p WHERE NOT EXISTS (
			SELECT 1 FROM river_job j WHERE j.id = p.river_job_id AND j.attempt = p.attempt
			AND j.state IN ('discarded', 'cancelled'))`); err != nil {
			return fmt.Errorf("drop stale tombstones: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.failures.Add(float64(len(res.Failed)))
	for i, f := range res.Failed {
		if i == maxLoggedFailures {
			r.config.Logger.ErrorContext(ctx, "dead-letter reconciliation could not add more rows",
				slog.Int("more", len(res.Failed)-i))
			break
		}
		r.config.Logger.ErrorContext(ctx, "dead-letter reconciliation could not add a row; it will try again next pass",
			slog.Int64("river_job_id", f.RiverJobID), slog.Int("attempt", f.Attempt),
			slog.String("kind", f.Kind), slog.String("error", f.Error))
	}
	for _, a := range res.Added {
		r.reconciled.Inc()
		r.config.Logger.WarnContext(ctx, "dead-letter reconciliation added a row the capture trigger missed",
			slog.Int64("entry_id", a.EntryID), slog.Int64("river_job_id", a.RiverJobID),
			slog.Int("attempt", a.Attempt), slog.String("kind", a.Kind))
	}
	return res, nil
}

// Start runs a pass now and then every Interval until ctx is done or Stop
// is called. It returns at once; a failed pass is logged and retried at the
// next tick.
func (r *Reconciler) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.config.Interval)
		defer t.Stop()
		for {
			if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
				r.config.Logger.ErrorContext(ctx, "dead-letter reconciliation failed", slog.String("error", err.Error()))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop Start began and waits for a running pass to finish.
func (r *Reconciler) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
