package metricstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what a Store needs of a connection: a *pgxpool.Pool, a pgx.Tx or
// a *pgx.Conn.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Store reads and writes job_retry_metrics.
type Store struct{ db DBTX }

// New returns a store on db.
func New(db DBTX) *Store { return &Store{db: db} }

// Row is one kind's counts over one period.
type Row struct {
	// Kind is the job kind.
	Kind string
	// PeriodStart is the start of the minute (or hour) counted, UTC.
	PeriodStart time.Time
	// Attempts is the number of attempts worked.
	Attempts int64
	// Completed is the number of jobs that finished completed.
	Completed int64
	// DeadLettered is the number of jobs that finished discarded or
	// cancelled by rebound's rules (not by an operator).
	DeadLettered int64
	// Failures counts failed attempts by failure class.
	Failures map[string]int64
	// RetriesScheduled is the number of retries the retry policy scheduled.
	RetriesScheduled int64
	// ShortCircuited is the number of jobs the circuit breaker gate
	// snoozed or dead-lettered without an attempt.
	ShortCircuited int64
	// RunTimeMS is the attempts' total run time, in milliseconds.
	RunTimeMS int64
	// LastAttemptAt is when the latest attempt counted ended; zero if none.
	LastAttemptAt time.Time

	runTimeNS int64
}

func (r *Row) empty() bool {
	return r.Attempts == 0 && r.Completed == 0 && r.DeadLettered == 0 && len(r.Failures) == 0 &&
		r.RetriesScheduled == 0 && r.ShortCircuited == 0 && r.runTimeNS == 0
}

func (r *Row) add(o *Row) {
	r.Attempts += o.Attempts
	r.Completed += o.Completed
	r.DeadLettered += o.DeadLettered
	r.RetriesScheduled += o.RetriesScheduled
	r.ShortCircuited += o.ShortCircuited
	r.runTimeNS += o.runTimeNS
	r.RunTimeMS += o.RunTimeMS
	if o.LastAttemptAt.After(r.LastAttemptAt) {
		r.LastAttemptAt = o.LastAttemptAt
	}
	for c, n := range o.Failures {
		if r.Failures == nil {
			r.Failures = map[string]int64{}
		}
		r.Failures[c] += n
	}
}

// Add adds rows to the minute rows of job_retry_metrics in one statement
// (INSERT ... ON CONFLICT DO UPDATE adding each count). Each (Kind,
// PeriodStart) may appear once. Kinds are stored as River gave them (River
// refuses a kind with invalid UTF-8 or NUL at insert).
func (s *Store) Add(ctx context.Context, rows []Row) error {
	return addRows(ctx, s.db, rows)
}

// execer is what addRows needs: a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func addRows(ctx context.Context, db execer, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	kinds := make([]string, n)
	starts := make([]time.Time, n)
	attempts, completed, dead, retries, short, runMS := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	failures := make([]string, n)
	last := make([]*time.Time, n)
	for i, r := range rows {
		kinds[i], starts[i] = r.Kind, r.PeriodStart.UTC().Truncate(time.Minute)
		attempts[i], completed[i], dead[i], retries[i], short[i], runMS[i] = r.Attempts, r.Completed, r.DeadLettered, r.RetriesScheduled, r.ShortCircuited, r.RunTimeMS
		f := r.Failures
		if f == nil {
			f = map[string]int64{}
		}
		b, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("metricstore: encode failures: %w", err)
		}
		failures[i] = string(b)
		if !r.LastAttemptAt.IsZero() {
			t := r.LastAttemptAt
			last[i] = &t
		}
	}
	_, err := db.Exec(ctx, `
INSERT INTO job_retry_metrics AS m (kind, period_start, period_seconds, attempts, completed, dead_lettered,
                                   failures, retries_scheduled, short_circuited, run_time_ms, last_attempt_at)
SELECT kind, period_start, 60, attempts, completed, dead_lettered, failures::jsonb, retries, short, run_ms, last_at
  FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[],
              $7::bigint[], $8::bigint[], $9::bigint[], $10::timestamptz[])
       AS t(kind, period_start, attempts, completed, dead_lettered, failures, retries, short, run_ms, last_at)
ON CONFLICT (kind, period_seconds, period_start) DO UPDATE SET
    attempts          = m.attempts + excluded.attempts,
    completed         = m.completed + excluded.completed,
    dead_lettered     = m.dead_lettered + excluded.dead_lettered,
    failures          = rebound_jsonb_sum(m.failures, excluded.failures),
    retries_scheduled = m.retries_scheduled + excluded.retries_scheduled,
    short_circuited   = m.short_circuited + excluded.short_circuited,
    run_time_ms       = m.run_time_ms + excluded.run_time_ms,
    last_attempt_at   = greatest(m.last_attempt_at, excluded.last_attempt_at)`,
		kinds, starts, attempts, completed, dead, failures, retries, short, runMS, last)
	if err != nil {
		return fmt.Errorf("metricstore: add %d rows to job_retry_metrics: %w", n, err)
	}
	return nil
}

// Flush is one flush of a pod's counts: the rows to add and the random
// token (at most 64 bytes) that marks them as added in
// rebound_metric_flush.
type Flush struct {
	Token string
	Rows  []Row
}

// ErrOutcomeUnknown is returned (wrapped) by [Store.AddOnce] when the
// transaction failed at COMMIT: its rows may or may not have been added.
// Pass the Flush it returned as prev to the next AddOnce, which finds out.
var ErrOutcomeUnknown = errors.New("metricstore: flush outcome unknown")

// flushTokenRetention is how long a flush token is kept: far longer than
// any flush retry (the next flush interval).
const flushTokenRetention = time.Hour

// AddOnce adds next's rows to job_retry_metrics, once, in one transaction
// that also records next.Token. prev, when not nil, is a flush whose
// outcome was unknown ([ErrOutcomeUnknown]): if its token is in
// rebound_metric_flush its rows were added and are not added again;
// otherwise they are added now with next's. It returns the flush it sent:
// next.Token with next's rows, plus prev's rows when prev was not applied.
//
// Errors: a failure before COMMIT means nothing was added (keep prev and
// next's rows for the next call); a failure at COMMIT wraps
// [ErrOutcomeUnknown] (pass the returned Flush as the next call's prev).
// Tokens older than an hour are removed in the same transaction.
func (s *Store) AddOnce(ctx context.Context, prev *Flush, next Flush) (Flush, error) {
	sent := Flush{Token: next.Token}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return sent, fmt.Errorf("metricstore: flush: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows := next.Rows
	if prev != nil {
		var applied bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rebound_metric_flush WHERE token = $1)`, prev.Token).Scan(&applied); err != nil {
			return sent, fmt.Errorf("metricstore: flush: look up the previous flush: %w", err)
		}
		if !applied {
			rows = mergeRows(prev.Rows, next.Rows)
		}
	}
	sent.Rows = rows
	if _, err := tx.Exec(ctx, `INSERT INTO rebound_metric_flush (token) VALUES ($1)`, next.Token); err != nil {
		return sent, fmt.Errorf("metricstore: flush: record the token: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM rebound_metric_flush WHERE flushed_at < now() - make_interval(secs => $1)`, flushTokenRetention.Seconds()); err != nil {
		return sent, fmt.Errorf("metricstore: flush: remove old tokens: %w", err)
	}
	if err := addRows(ctx, tx, rows); err != nil {
		return sent, err
	}
	if err := tx.Commit(ctx); err != nil {
		return sent, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return sent, nil
}

// mergeRows returns a and b added up by (Kind, PeriodStart), in a's order
// then b's new keys.
func mergeRows(a, b []Row) []Row {
	out := make([]Row, 0, len(a)+len(b))
	at := make(map[rowKey]int, len(a)+len(b))
	for _, rows := range [][]Row{a, b} {
		for _, r := range rows {
			k := rowKey{kind: r.Kind, start: r.PeriodStart}
			if i, ok := at[k]; ok {
				out[i].add(&r)
				continue
			}
			at[k] = len(out)
			r.Failures = maps.Clone(r.Failures)
			out = append(out, r)
		}
	}
	return out
}

// KindStats are one kind's counts summed over a window.
type KindStats struct {
	// Row holds the sums (PeriodStart is the window's start); LastAttemptAt
	// is the latest attempt of the kind in the whole table, not only the
	// window.
	Row
}

// Finished is the number of jobs that finished completed or dead-lettered.
func (k *KindStats) Finished() int64 { return k.Completed + k.DeadLettered }

// SuccessRate is completed / finished in percent (0-100), and false when
// no job finished in the window.
func (k *KindStats) SuccessRate() (float64, bool) {
	f := k.Finished()
	if f == 0 {
		return 0, false
	}
	return 100 * float64(k.Completed) / float64(f), true
}

// RoundRate rounds a rate in percent (0-100) to one decimal, as rebound
// shows every success rate, except that a rate above 0 stays at least 0.1
// and one below 100 at most 99.9: 10,002 of 10,005 (99.97) is 99.9, not
// 100.0, so a rate never reads as all or none when it is not.
func RoundRate(percent float64) float64 {
	r := math.Round(percent*10) / 10
	switch {
	case r >= 100 && percent < 100:
		return 99.9
	case r <= 0 && percent > 0:
		return 0.1
	}
	return r
}

// Window sums every kind's rows whose period starts at or after since
// (minute rows for the last day, hour rows before: a window reaching past
// a day is counted by whole hours). Every kind with a row in the table is
// in the result, with zero counts when none fell in the window.
func (s *Store) Window(ctx context.Context, since time.Time) (map[string]*KindStats, error) {
	rows, err := s.db.Query(ctx, `
SELECT kind,
       coalesce(sum(attempts) FILTER (WHERE in_window), 0)::bigint,
       coalesce(sum(completed) FILTER (WHERE in_window), 0)::bigint,
       coalesce(sum(dead_lettered) FILTER (WHERE in_window), 0)::bigint,
       coalesce(rebound_jsonb_sum_agg(failures) FILTER (WHERE in_window), '{}'),
       coalesce(sum(retries_scheduled) FILTER (WHERE in_window), 0)::bigint,
       coalesce(sum(short_circuited) FILTER (WHERE in_window), 0)::bigint,
       coalesce(sum(run_time_ms) FILTER (WHERE in_window), 0)::bigint,
       max(last_attempt_at)
  FROM (SELECT *, period_start >= $1 AS in_window FROM job_retry_metrics) m
 GROUP BY kind
 ORDER BY kind`, since.UTC().Truncate(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("metricstore: read job_retry_metrics: %w", err)
	}
	defer rows.Close()
	out := map[string]*KindStats{}
	for rows.Next() {
		k := &KindStats{}
		var failures []byte
		var last *time.Time
		if err := rows.Scan(&k.Kind, &k.Attempts, &k.Completed, &k.DeadLettered, &failures,
			&k.RetriesScheduled, &k.ShortCircuited, &k.RunTimeMS, &last); err != nil {
			return nil, fmt.Errorf("metricstore: read job_retry_metrics: %w", err)
		}
		if err := json.Unmarshal(failures, &k.Failures); err != nil {
			return nil, fmt.Errorf("metricstore: failures of %q: %w", k.Kind, err)
		}
		if last != nil {
			k.LastAttemptAt = *last
		}
		k.PeriodStart = since
		out[k.Kind] = k
	}
	return out, rows.Err()
}
