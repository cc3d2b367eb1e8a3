package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound/internal/failurelog"
)

// AdvisoryLockKey is the transaction advisory lock a [Completer] holds
// while it folds (pg_try_advisory_xact_lock(bigint)): one pod folds at a
// time, the others skip that pass.
const AdvisoryLockKey int64 = 0x72626e6462617463 // "rbndbatc"

// DefaultFoldInterval is how often a [Completer] folds when
// CompleterConfig.Interval is 0.
const DefaultFoldInterval = time.Second

// maxCallbackError is the longest callback_error stored, in bytes.
const maxCallbackError = 2000

// CompleterConfig configures a [Completer]. The zero value is usable except
// for Inserter, needed only by batches with a callback kind.
type CompleterConfig struct {
	// Inserter inserts callback jobs (the pod's client, so rebound's insert
	// rules apply). nil: a batch's callback is recorded as failed.
	Inserter Inserter
	// Interval is the time between two folds; 0 means
	// [DefaultFoldInterval] (1 s).
	Interval time.Duration
	// OnComplete is called once per batch this Completer completed, after
	// the transaction that completed it committed (the pod counts
	// rebound_batches_completed_total there). It must not block.
	OnComplete func(*Summary)
	// Logger gets one info line per completed batch and warnings. Defaults
	// to a logger that discards everything.
	Logger *slog.Logger
}

// Completer folds the counting triggers' deltas into job_batch and
// completes the batches whose jobs have all finished: completed_at set,
// OnComplete called and the callback job inserted, once per batch across
// all pods. Every pod runs one ([rebound.Pod] does).
type Completer struct {
	pool   *pgxpool.Pool
	config CompleterConfig

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewCompleter returns a Completer on pool's database. config may be nil.
func NewCompleter(pool *pgxpool.Pool, config *CompleterConfig) *Completer {
	var c CompleterConfig
	if config != nil {
		c = *config
	}
	if c.Interval <= 0 {
		c.Interval = DefaultFoldInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Completer{pool: pool, config: c}
}

// Start folds every Interval in a goroutine until ctx is done or Stop.
func (c *Completer) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.config.Interval)
		defer t.Stop()
		fails := failurelog.Log{Logger: c.config.Logger, Msg: "batch fold failed; next pass retries", Recovered: "batch fold works again"}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := c.Fold(ctx); ctx.Err() == nil {
				fails.Observe(ctx, time.Now(), err)
			}
		}
	}()
}

// Stop ends the goroutine Start began and waits for it.
func (c *Completer) Stop() {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Fold runs one pass: in one transaction, under [AdvisoryLockKey] (skipped,
// returning nil, when another pod holds it), it moves every delta into
// job_batch and job_batch_failure, then completes each open batch whose
// finished jobs reach its total: completed_at = now(), and the callback
// job inserted (a callback that cannot be inserted is recorded in
// callback_error and does not stop the completion). It returns the
// summaries of the batches it completed.
func (c *Completer) Fold(ctx context.Context) ([]*Summary, error) {
	var completed []*Summary
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		completed = completed[:0]
		var locked bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", AdvisoryLockKey).Scan(&locked); err != nil {
			return fmt.Errorf("batch lock: %w", err)
		}
		if !locked {
			return nil
		}
		rows, err := tx.Query(ctx, `WITH d AS (DELETE FROM job_batch_delta RETURNING *),
			f AS (INSERT INTO job_batch_failure (batch_id, class, n)
			      SELECT batch_id, failure_class, sum(failed) FROM d
			       WHERE failure_class IS NOT NULL AND batch_id IN (SELECT id FROM job_batch)
			       GROUP BY batch_id, failure_class
			      ON CONFLICT (batch_id, class) DO UPDATE SET n = job_batch_failure.n + EXCLUDED.n),
			s AS (SELECT batch_id, sum(succeeded) AS succeeded, sum(failed) AS failed,
			             sum(cancelled) AS cancelled, sum(retried) AS retried
			        FROM d GROUP BY batch_id)
			UPDATE job_batch b
			   SET succeeded = b.succeeded + s.succeeded, failed = b.failed + s.failed,
			       cancelled = b.cancelled + s.cancelled, retried = b.retried + s.retried
			  FROM s WHERE b.id = s.batch_id
			RETURNING b.id`)
		if err != nil {
			return fmt.Errorf("batch fold: %w", err)
		}
		folded, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("batch fold: %w", err)
		}
		if len(folded) > 0 {
			// A class whose dead letters were all replayed.
			if _, err := tx.Exec(ctx, "DELETE FROM job_batch_failure WHERE batch_id = ANY($1) AND n = 0", folded); err != nil {
				return fmt.Errorf("batch fold: %w", err)
			}
		}
		rows, err = tx.Query(ctx, `UPDATE job_batch SET completed_at = now()
			WHERE completed_at IS NULL AND succeeded + failed + cancelled >= total RETURNING id`)
		if err != nil {
			return fmt.Errorf("batch complete: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("batch complete: %w", err)
		}
		for _, id := range ids {
			s, err := summaryTx(ctx, tx, id)
			if err != nil {
				return err
			}
			if s.CallbackKind != "" {
				c.callback(ctx, tx, s)
			}
			completed = append(completed, s)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range completed {
		c.config.Logger.InfoContext(ctx, "batch completed", "batch_id", s.ID, "name", s.Name, "kind", s.Kind,
			"total", s.Total, "succeeded", s.Succeeded, "failed", s.Failed, "cancelled", s.Cancelled)
		if c.config.OnComplete != nil {
			c.config.OnComplete(s)
		}
	}
	return completed, nil
}

// callback inserts s's callback job in a savepoint of tx and records its
// ID, or the reason it could not be inserted.
func (c *Completer) callback(ctx context.Context, tx pgx.Tx, s *Summary) {
	var jobID int64
	err := func() error {
		if c.config.Inserter == nil {
			return fmt.Errorf("this pod has no inserter for callback jobs")
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }()
		args, err := json.Marshal(s)
		if err != nil {
			return err
		}
		meta, err := json.Marshal(map[string]int64{CallbackMetadataKey: s.ID})
		if err != nil {
			return err
		}
		res, err := c.config.Inserter.InsertManyTx(ctx, sp, []river.InsertManyParams{{
			Args: rawArgs{kind: s.CallbackKind, raw: args}, InsertOpts: &river.InsertOpts{Metadata: meta},
		}})
		if err != nil {
			return err
		}
		jobID = res[0].Job.ID
		return sp.Commit(ctx)
	}()
	if err != nil {
		msg := truncate(err.Error(), maxCallbackError)
		c.config.Logger.WarnContext(ctx, "batch callback job not inserted", "batch_id", s.ID, "callback_kind", s.CallbackKind, "error", msg)
		s.CallbackError = msg
		if _, err := tx.Exec(ctx, "UPDATE job_batch SET callback_error = $2 WHERE id = $1", s.ID, msg); err != nil {
			c.config.Logger.WarnContext(ctx, "batch callback error not recorded", "batch_id", s.ID, "error", err)
		}
		return
	}
	s.CallbackJobID = &jobID
	if _, err := tx.Exec(ctx, "UPDATE job_batch SET callback_job_id = $2 WHERE id = $1", s.ID, jobID); err != nil {
		c.config.Logger.WarnContext(ctx, "batch callback job ID not recorded", "batch_id", s.ID, "error", err)
	}
}

// rawArgs are args already encoded, inserted as they are.
type rawArgs struct {
	kind string
	raw  json.RawMessage
}

// Kind implements river.JobArgs.
func (a rawArgs) Kind() string { return a.kind }

// MarshalJSON returns the encoded args.
func (a rawArgs) MarshalJSON() ([]byte, error) { return a.raw, nil }

// truncate cuts s to at most n bytes at a UTF-8 boundary, with its NUL
// characters removed (PostgreSQL's text refuses them).
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
