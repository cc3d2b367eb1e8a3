package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebound-queue/rebound/monitor/metricstore"
)

// ErrNotFound is returned for a batch ID that does not exist.
var ErrNotFound = errors.New("no such batch")

// MaxDeadLetterIDs is the most dead-letter entry IDs a [Summary] lists;
// DeadLetterIDsTruncated says when there are more.
const MaxDeadLetterIDs = 1000

// Summary is the state of one batch. Its JSON is the shape of `rebound
// batch show --json`, the admin API and a callback job's args.
type Summary struct {
	// ID is the batch's ID.
	ID int64 `json:"id"`
	// Name is its unique name.
	Name string `json:"name"`
	// Kind is its jobs' kind.
	Kind string `json:"kind"`
	// Total is the number of jobs enqueued.
	Total int64 `json:"total"`
	// Succeeded is the number of jobs that completed.
	Succeeded int64 `json:"succeeded"`
	// Failed is the number of jobs dead-lettered (and not replayed).
	Failed int64 `json:"failed"`
	// Cancelled is the number of jobs an operator cancelled or deleted
	// before they finished: neither success nor failure.
	Cancelled int64 `json:"cancelled"`
	// Pending is Total minus the finished jobs (never below 0).
	Pending int64 `json:"pending"`
	// Retried is the number of succeeded or failed jobs that needed more
	// than one attempt (included in those counts, not added to them). A
	// job replayed from the dead-letter queue counts by its replay, which
	// always needed more than one attempt (the dead-lettered run and the
	// replay's): replaying a job dead-lettered at its first attempt adds 1.
	Retried int64 `json:"retried"`
	// SuccessRate is Succeeded / (Succeeded + Failed) x 100, rounded to one
	// decimal; nil (JSON null, "n/a") while both are 0.
	SuccessRate *float64 `json:"success_rate"`
	// FailuresByClass counts the failed jobs by the failure class of their
	// final attempt.
	FailuresByClass map[string]int64 `json:"failures_by_class"`
	// DeadLetterIDs are the IDs of the batch's dead-letter entries that were
	// not replayed (status unresolved or resolved), oldest first, at most
	// [MaxDeadLetterIDs]. Not filled by [List].
	DeadLetterIDs []int64 `json:"dead_letter_ids"`
	// DeadLetterIDsTruncated is set when there are more than listed.
	DeadLetterIDsTruncated bool `json:"dead_letter_ids_truncated,omitempty"`
	// BatchSize is the number of jobs per sub-batch.
	BatchSize int `json:"batch_size"`
	// DelayBetweenBatchesMS is the time between two sub-batches, in
	// milliseconds.
	DelayBetweenBatchesMS int64 `json:"delay_between_batches_ms"`
	// CreatedAt is when the batch was enqueued.
	CreatedAt time.Time `json:"created_at"`
	// StartsAt is the scheduled time of its first sub-batch.
	StartsAt time.Time `json:"starts_at"`
	// CompletedAt is when every job had finished (set once); nil before.
	CompletedAt *time.Time `json:"completed_at"`
	// CallbackKind is the kind of the completion callback job, "" if none.
	CallbackKind string `json:"callback_kind,omitempty"`
	// CallbackJobID is the River ID of the callback job once inserted.
	CallbackJobID *int64 `json:"callback_job_id,omitempty"`
	// CallbackError says why the callback job could not be inserted.
	CallbackError string `json:"callback_error,omitempty"`
}

// Finished is the number of jobs that finished: succeeded, failed or
// cancelled.
func (s *Summary) Finished() int64 { return s.Succeeded + s.Failed + s.Cancelled }

// SuccessRate returns succeeded / (succeeded + failed) x 100 rounded to one
// decimal, or nil when both are 0 (the one definition of success rate:
// completed over completed or dead-lettered; a manual cancel is neither).
// The rounding never reaches 100 while a job failed, nor 0 while one
// succeeded: 10,002 of 10,005 is 99.9, not 100.0 ([metricstore.RoundRate]).
func SuccessRate(succeeded, failed int64) *float64 {
	if succeeded+failed <= 0 {
		return nil
	}
	r := metricstore.RoundRate(float64(succeeded) / float64(succeeded+failed) * 100)
	return &r
}

// Querier begins transactions; *pgxpool.Pool and pgx.Tx are Queriers.
type Querier interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// summaryColumns reads a job_batch row (b) with the deltas not yet folded
// (d, from lateral join) added.
const summaryColumns = `b.id, b.name, b.kind, b.total,
	b.succeeded + coalesce(d.succeeded, 0), b.failed + coalesce(d.failed, 0),
	b.cancelled + coalesce(d.cancelled, 0), b.retried + coalesce(d.retried, 0),
	b.batch_size, b.delay_ms, b.created_at, b.starts_at, b.completed_at,
	coalesce(b.callback_kind, ''), b.callback_job_id, coalesce(b.callback_error, '')`

const summaryFrom = ` FROM job_batch b LEFT JOIN LATERAL (
	SELECT sum(succeeded) AS succeeded, sum(failed) AS failed, sum(cancelled) AS cancelled, sum(retried) AS retried
	  FROM job_batch_delta WHERE batch_id = b.id) d ON true`

func scanSummary(row pgx.Row) (*Summary, error) {
	s := &Summary{}
	err := row.Scan(&s.ID, &s.Name, &s.Kind, &s.Total, &s.Succeeded, &s.Failed, &s.Cancelled, &s.Retried,
		&s.BatchSize, &s.DelayBetweenBatchesMS, &s.CreatedAt, &s.StartsAt, &s.CompletedAt,
		&s.CallbackKind, &s.CallbackJobID, &s.CallbackError)
	if err != nil {
		return nil, err
	}
	s.Pending = max(s.Total-s.Finished(), 0)
	s.SuccessRate = SuccessRate(s.Succeeded, s.Failed)
	s.FailuresByClass = map[string]int64{}
	s.DeadLetterIDs = []int64{}
	return s, nil
}

// GetSummary reads batch id's summary from db in one repeatable-read
// snapshot; [ErrNotFound] (wrapped) for an unknown id.
func GetSummary(ctx context.Context, db Querier, id int64) (*Summary, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return summaryTx(ctx, tx, id)
}

func summaryTx(ctx context.Context, tx pgx.Tx, id int64) (*Summary, error) {
	s, err := scanSummary(tx.QueryRow(ctx, `SELECT `+summaryColumns+summaryFrom+` WHERE b.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("batch %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", id, err)
	}
	rows, err := tx.Query(ctx, `SELECT class, sum(n)::bigint FROM (
			SELECT class, n FROM job_batch_failure WHERE batch_id = $1
			UNION ALL
			SELECT failure_class, failed FROM job_batch_delta WHERE batch_id = $1 AND failure_class IS NOT NULL) x
		GROUP BY class HAVING sum(n) <> 0`, id)
	if err != nil {
		return nil, fmt.Errorf("batch %d: failures by class: %w", id, err)
	}
	var class string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&class, &n}, func() error { s.FailuresByClass[class] = n; return nil }); err != nil {
		return nil, fmt.Errorf("batch %d: failures by class: %w", id, err)
	}
	rows, err = tx.Query(ctx, `SELECT id FROM job_dead_letter_queue
		WHERE metadata ? 'batch_id' AND (metadata ->> 'batch_id') = $1::bigint::text AND status <> 'retried'
		ORDER BY id LIMIT $2`, id, MaxDeadLetterIDs+1)
	if err != nil {
		return nil, fmt.Errorf("batch %d: dead letters: %w", id, err)
	}
	var entry int64
	if _, err := pgx.ForEachRow(rows, []any{&entry}, func() error { s.DeadLetterIDs = append(s.DeadLetterIDs, entry); return nil }); err != nil {
		return nil, fmt.Errorf("batch %d: dead letters: %w", id, err)
	}
	if len(s.DeadLetterIDs) > MaxDeadLetterIDs {
		s.DeadLetterIDs, s.DeadLetterIDsTruncated = s.DeadLetterIDs[:MaxDeadLetterIDs], true
	}
	return s, nil
}

// ListOpts filters [List].
type ListOpts struct {
	// Limit is the most batches returned, newest first; 0 means 50, at most
	// 1000.
	Limit int
	// Open lists only batches not completed yet.
	Open bool
}

// List returns batches newest first, with their counts (FailuresByClass
// and DeadLetterIDs left empty: see [GetSummary]).
func List(ctx context.Context, db Querier, opts ListOpts) ([]*Summary, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 1000 {
		return nil, fmt.Errorf("%w: limit %d: at most 1000", ErrInvalidBatch, limit)
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT `+summaryColumns+summaryFrom+`
		WHERE $1::boolean IS FALSE OR b.completed_at IS NULL ORDER BY b.id DESC LIMIT $2`, opts.Open, limit)
	if err != nil {
		return nil, fmt.Errorf("batch: list: %w", err)
	}
	defer rows.Close()
	out := []*Summary{}
	for rows.Next() {
		s, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("batch: list: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("batch: list: %w", err)
	}
	return out, nil
}

// Summary returns batch id's summary; see [GetSummary].
func (p *Processor) Summary(ctx context.Context, id int64) (*Summary, error) {
	return GetSummary(ctx, p.pool, id)
}
