package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/sjson"
)

// MetadataKey is the key of a job's metadata that holds the ID of its
// batch, a JSON number.
const MetadataKey = "batch_id"

// CallbackMetadataKey is the key of a callback job's metadata that holds
// the ID of the batch whose completion it reports.
const CallbackMetadataKey = "batch_callback_of"

// Defaults and limits of a [Processor].
const (
	// DefaultBatchSize is the number of jobs per sub-batch when
	// Config.BatchSize is 0.
	DefaultBatchSize = 10
	// MaxNameLength is the longest batch name, in characters.
	MaxNameLength = 200
	// MaxSpread is the longest time between the first and the last
	// sub-batch's scheduled times: 365 days, as enqueue's --schedule-in.
	// (sub-batches - 1) x DelayBetweenBatches past it is refused.
	MaxSpread = 365 * 24 * time.Hour
	// insertChunk is how many jobs go in one INSERT.
	insertChunk = 1000
)

// Errors returned by [Processor.Enqueue] and [Processor.EnqueueTx]; nothing
// is inserted when one is returned.
var (
	// ErrDuplicateName: a batch with the same name exists (names are
	// unique among all batches in job_batch).
	ErrDuplicateName = errors.New("a batch with this name already exists")
	// ErrInvalidBatch: the batch itself is not acceptable (name, kind,
	// items); the wrapping error says why.
	ErrInvalidBatch = errors.New("invalid batch")
)

// Inserter inserts jobs in a transaction. A *river.Client[pgx.Tx] and a
// *rebound.Pod are both Inserters; use the pod's (or a client with
// rebound's insert middleware) so the jobs follow rebound's insert rules.
type Inserter interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Config configures a [Processor].
type Config struct {
	// BatchSize is the number of jobs per sub-batch: sub-batch k holds items
	// k x BatchSize to (k+1) x BatchSize - 1. 0 means [DefaultBatchSize]
	// (10); negative is refused.
	BatchSize int
	// DelayBetweenBatches is the time between the scheduled times of two
	// consecutive sub-batches. 0 means none (every job is available at
	// once); negative is refused, and so is a batch whose last sub-batch
	// would start more than [MaxSpread] after its first.
	DelayBetweenBatches time.Duration
}

// Processor enqueues batches. It is safe for concurrent use.
type Processor struct {
	pool     *pgxpool.Pool
	inserter Inserter
	size     int
	delay    time.Duration
}

// New returns a Processor that records batches in pool's database and
// inserts their jobs through inserter. config may be nil (defaults). It
// refuses a negative or zero-after-defaults batch size and a negative delay.
func New(pool *pgxpool.Pool, inserter Inserter, config *Config) (*Processor, error) {
	var c Config
	if config != nil {
		c = *config
	}
	if pool == nil || inserter == nil {
		return nil, errors.New("batch: New needs a pool and an inserter")
	}
	if c.BatchSize < 0 {
		return nil, fmt.Errorf("batch: BatchSize %d: must be at least 1 (0 means %d)", c.BatchSize, DefaultBatchSize)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.DelayBetweenBatches < 0 {
		return nil, fmt.Errorf("batch: DelayBetweenBatches %s: must not be negative", c.DelayBetweenBatches)
	}
	return &Processor{pool: pool, inserter: inserter, size: c.BatchSize, delay: c.DelayBetweenBatches}, nil
}

// Batch is one batch to enqueue.
type Batch struct {
	// Name names the batch: 1 to MaxNameLength characters, printable,
	// unique among all batches (see the package doc).
	Name string
	// Kind is the kind of every item. Required.
	Kind string
	// Items are the jobs' args, in order; every item's Kind() must be Kind.
	// An empty list makes a batch that completes at the next fold.
	Items []river.JobArgs
	// InsertOpts apply to every job (queue, priority, max attempts, tags,
	// metadata, unique options); nil means the kind's. Their ScheduledAt is
	// ignored (the processor schedules), and their metadata gets
	// [MetadataKey]. A job skipped as a unique duplicate is not part of the
	// batch.
	InsertOpts *river.InsertOpts
	// StartAt is when the first sub-batch is scheduled; zero (or a time
	// past) means now: the sub-batches due now are inserted available, the
	// others scheduled. River's leader makes scheduled jobs available every
	// 5 s, so a later sub-batch starts up to 5 s after its time.
	StartAt time.Time
	// CallbackKind, when set, names the kind of a job inserted once when the
	// batch completes, with its [Summary] as args. The kind needs a worker
	// in the pods, which decodes a Summary from the args.
	CallbackKind string
}

// Enqueued is what [Processor.Enqueue] did.
type Enqueued struct {
	// ID is the batch's ID (job_batch.id).
	ID int64 `json:"id"`
	// Name is the batch's name.
	Name string `json:"name"`
	// Kind is its jobs' kind.
	Kind string `json:"kind"`
	// Total is the number of jobs inserted.
	Total int `json:"total"`
	// SkippedDuplicates is the number of items skipped as unique
	// duplicates (only with InsertOpts.UniqueOpts).
	SkippedDuplicates int `json:"skipped_duplicates"`
	// ScheduledAt are the distinct scheduled times of the sub-batches, in
	// order: start + k x DelayBetweenBatches.
	ScheduledAt []time.Time `json:"scheduled_at"`
}

// Enqueue inserts b in a transaction of its own; see [Processor.EnqueueTx].
func (p *Processor) Enqueue(ctx context.Context, b Batch) (*Enqueued, error) {
	var out *Enqueued
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var err error
		out, err = p.EnqueueTx(ctx, tx, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EnqueueTx inserts b inside tx, your own transaction: the job_batch row
// and every job exist only if tx commits. It works inside a savepoint, so
// an error (wrapping [ErrInvalidBatch], [ErrDuplicateName], or the
// inserter's, e.g. River's unknown-kind error) leaves tx usable and
// nothing of the batch in it.
func (p *Processor) EnqueueTx(ctx context.Context, tx pgx.Tx, b Batch) (*Enqueued, error) {
	if err := validate(&b); err != nil {
		return nil, err
	}
	// Checked by division: (subs-1) x delay can overflow a Duration, and
	// an overflowed sub-batch would be scheduled in the past, at once.
	if subs := (len(b.Items) + p.size - 1) / p.size; subs > 1 && p.delay > 0 && int64(subs-1) > int64(MaxSpread/p.delay) {
		return nil, fmt.Errorf("%w: its %d sub-batches, %s apart, would spread over more than %s (365 days); give a shorter delay or a larger batch size",
			ErrInvalidBatch, subs, p.delay, MaxSpread)
	}
	now := time.Now()
	start := b.StartAt
	if start.IsZero() {
		start = now
	}
	start = start.UTC().Truncate(time.Microsecond) // PostgreSQL's precision
	// River inserts a job with a scheduled time as scheduled, and its
	// leader makes scheduled jobs available every 5 s: the sub-batches due
	// now are inserted available instead (their scheduled_at is the
	// insert's time).
	dueNow := !start.After(now)

	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("batch: savepoint: %w", err)
	}
	defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }()

	var callback *string
	if b.CallbackKind != "" {
		callback = &b.CallbackKind
	}
	out := &Enqueued{Name: b.Name, Kind: b.Kind}
	err = sp.QueryRow(ctx, `INSERT INTO job_batch (name, kind, total, batch_size, delay_ms, callback_kind, starts_at)
		VALUES ($1, $2, 0, $3, $4, $5, $6) RETURNING id`,
		b.Name, b.Kind, p.size, p.delay.Milliseconds(), callback, start).Scan(&out.ID)
	if err != nil {
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23505" {
			return nil, fmt.Errorf("batch %q: %w (names are unique; pick another, or see rebound batch list)", b.Name, ErrDuplicateName)
		}
		return nil, fmt.Errorf("batch: record batch: %w", err)
	}

	base := river.InsertOpts{}
	if b.InsertOpts != nil {
		base = *b.InsertOpts
	}
	metadata := base.Metadata
	if len(metadata) == 0 {
		metadata = []byte("{}")
	}
	metadata, err = sjson.SetBytes(metadata, MetadataKey, out.ID)
	if err != nil {
		return nil, fmt.Errorf("batch: InsertOpts.Metadata must be a JSON object: %w", err)
	}
	base.Metadata = metadata

	// One InsertOpts per sub-batch, shared by its items.
	subs := (len(b.Items) + p.size - 1) / p.size
	opts := make([]*river.InsertOpts, subs)
	for k := range subs {
		o := base
		at := start.Add(time.Duration(k) * p.delay)
		if !dueNow || at.After(start) {
			o.ScheduledAt = at
		}
		opts[k] = &o
		if k == 0 || p.delay > 0 {
			out.ScheduledAt = append(out.ScheduledAt, at)
		}
	}
	params := make([]river.InsertManyParams, 0, min(insertChunk, len(b.Items)))
	for i := 0; i < len(b.Items); i += insertChunk {
		params = params[:0]
		for j := i; j < min(i+insertChunk, len(b.Items)); j++ {
			params = append(params, river.InsertManyParams{Args: b.Items[j], InsertOpts: opts[j/p.size]})
		}
		res, err := p.inserter.InsertManyTx(ctx, sp, params)
		if err != nil {
			return nil, fmt.Errorf("batch %q: insert items %d-%d: %w", b.Name, i+1, i+len(params), err)
		}
		for _, r := range res {
			if r.UniqueSkippedAsDuplicate {
				out.SkippedDuplicates++
			} else {
				out.Total++
			}
		}
	}
	if _, err := sp.Exec(ctx, "UPDATE job_batch SET total = $2 WHERE id = $1", out.ID, out.Total); err != nil {
		return nil, fmt.Errorf("batch: record total: %w", err)
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, fmt.Errorf("batch: release savepoint: %w", err)
	}
	return out, nil
}

// validate checks b before anything is written.
func validate(b *Batch) error {
	if err := ValidateName(b.Name); err != nil {
		return err
	}
	if b.Kind == "" {
		return fmt.Errorf("%w: no kind", ErrInvalidBatch)
	}
	if !validKind(b.Kind) {
		return fmt.Errorf("%w: kind %q: want 1 to 200 printable characters of valid UTF-8", ErrInvalidBatch, b.Kind)
	}
	for i, item := range b.Items {
		if item == nil {
			return fmt.Errorf("%w: item %d is nil", ErrInvalidBatch, i+1)
		}
		if k := item.Kind(); k != b.Kind {
			return fmt.Errorf("%w: item %d is of kind %q, not the batch's kind %q", ErrInvalidBatch, i+1, k, b.Kind)
		}
	}
	if b.CallbackKind != "" {
		return ValidateCallbackKind(b.CallbackKind)
	}
	return nil
}

// ValidateCallbackKind refuses a callback kind that is not 1 to 200 bytes
// of valid UTF-8 without control characters (an error wrapping
// [ErrInvalidBatch]: `invalid batch: callback kind "...": want 1 to 200
// printable characters of valid UTF-8`). Whether a pod works the kind is
// not checked: it may be one only the caller's pods know.
func ValidateCallbackKind(kind string) error {
	if !validKind(kind) {
		return fmt.Errorf("%w: callback kind %q: want 1 to 200 printable characters of valid UTF-8", ErrInvalidBatch, kind)
	}
	return nil
}

// ValidateName refuses a batch name that is empty, longer than
// [MaxNameLength] characters, not valid UTF-8, or holds control
// characters (an error wrapping [ErrInvalidBatch]).
func ValidateName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidBatch)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the name is not valid UTF-8", ErrInvalidBatch)
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fmt.Errorf("%w: the name has %d characters (at most %d)", ErrInvalidBatch, utf8.RuneCountInString(name), MaxNameLength)
	case !printable(name):
		return fmt.Errorf("%w: the name holds a control character", ErrInvalidBatch)
	}
	return nil
}

// validKind accepts a kind name PostgreSQL's text can store and an
// operator can read: 1 to 200 bytes of valid UTF-8 without control
// characters.
func validKind(k string) bool {
	return k != "" && len(k) <= 200 && utf8.ValidString(k) && printable(k)
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
