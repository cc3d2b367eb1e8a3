package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Sentinel errors. Operations wrap them with a message naming the entry or
// the parameter; test with errors.Is.
var (
	// ErrNotFound: no entry has the given ID.
	ErrNotFound = errors.New("dead-letter entry not found")
	// ErrAlreadyRetried: the entry was retried already; retry it again with
	// Force.
	ErrAlreadyRetried = errors.New("dead-letter entry already retried")
	// ErrResolved: the entry is resolved; retry it with Force.
	ErrResolved = errors.New("dead-letter entry is resolved")
	// ErrAlreadyResolved: Resolve on an entry that is resolved already.
	ErrAlreadyResolved = errors.New("dead-letter entry already resolved")
	// ErrInvalid: a parameter is missing or malformed; the message names it.
	ErrInvalid = errors.New("invalid parameter")
)

// Table is the dead-letter table's name.
const Table = "job_dead_letter_queue"

// DefaultListLimit is the page size of [Store.List] when ListParams.Limit is
// 0; MaxListLimit is the largest page it returns.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// Config configures a [Store]. The zero value is usable.
type Config struct {
	// Client inserts the jobs [Store.Retry] creates, so its insert
	// middleware runs on them. Defaults to an insert-only River client on
	// the store's pool (no workers: any kind may be inserted).
	Client *river.Client[pgx.Tx]
}

// Store reads and changes the dead-letter queue. Rows are written by the
// database itself (see the package doc); Store only lists, shows, retries,
// resolves, purges and counts them. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
}

// New returns a Store on pool. config may be nil. The only error is River
// refusing to build the default insert-only client.
func New(pool *pgxpool.Pool, config *Config) (*Store, error) {
	if config == nil {
		config = &Config{}
	}
	client := config.Client
	if client == nil {
		var err error
		client, err = river.NewClient(riverpgxv5.New(pool), &river.Config{})
		if err != nil {
			return nil, fmt.Errorf("insert-only river client: %w", err)
		}
	}
	return &Store{pool: pool, client: client}, nil
}

// dbtx is what both a pool and a transaction offer.
type dbtx interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const entryColumns = `id, river_job_id, attempt, max_attempts, kind, queue, priority, final_state,
	args, metadata, tags, history, failure_class, failure_reason, failure_fingerprint,
	rebound_failure_fingerprint_id(failure_fingerprint), coalesce(operation_key, ''),
	first_attempted_at, last_attempted_at, dead_lettered_at, status,
	coalesce(resolution_note, ''), coalesce(resolved_by, ''), resolved_at,
	retried_job_id, coalesce(retried_by, ''), retried_at`

func scanEntry(row pgx.Row) (*Entry, error) {
	var (
		e                     Entry
		attempt, max, prio    int16
		args, meta, history   []byte
		status                string
		first, last, resolved *time.Time
		retriedAt             *time.Time
	)
	err := row.Scan(&e.ID, &e.RiverJobID, &attempt, &max, &e.Kind, &e.Queue, &prio, &e.FinalState,
		&args, &meta, &e.Tags, &history, &e.FailureClass, &e.FailureReason, &e.FailureFingerprint,
		&e.FailureFingerprintID, &e.OperationKey,
		&first, &last, &e.DeadLetteredAt, &status,
		&e.ResolutionNote, &e.ResolvedBy, &resolved,
		&e.RetriedJobID, &e.RetriedBy, &retriedAt)
	if err != nil {
		return nil, err
	}
	e.Attempt, e.MaxAttempts, e.Priority = int(attempt), int(max), int(prio)
	e.Args, e.Metadata, e.Status = args, meta, Status(status)
	e.FirstAttemptedAt, e.LastAttemptedAt, e.ResolvedAt, e.RetriedAt = utcPtr(first), utcPtr(last), utcPtr(resolved), utcPtr(retriedAt)
	e.DeadLetteredAt = e.DeadLetteredAt.UTC()
	if e.Tags == nil {
		e.Tags = []string{}
	}
	if err := json.Unmarshal(history, &e.History); err != nil {
		return nil, fmt.Errorf("dead-letter entry %d: history: %w", e.ID, err)
	}
	if e.History == nil {
		e.History = []Attempt{}
	}
	return &e, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Get returns the entry with the given ID, or an error wrapping
// [ErrNotFound].
func (s *Store) Get(ctx context.Context, id int64) (*Entry, error) {
	return get(ctx, s.pool, id)
}

func get(ctx context.Context, q dbtx, id int64) (*Entry, error) {
	e, err := scanEntry(q.QueryRow(ctx, "SELECT "+entryColumns+" FROM "+Table+" WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: no entry %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read dead-letter entry %d: %w", id, err)
	}
	return e, nil
}

// ListParams selects a page of entries for [Store.List].
type ListParams struct {
	Filter
	// After is the cursor of the previous page (ListResult.NextCursor);
	// empty for the first page.
	After string `json:"after,omitempty"`
	// Limit is the page size: 0 means [DefaultListLimit]; at most
	// [MaxListLimit].
	Limit int `json:"limit,omitempty"`
}

// ListResult is one page of entries, newest first (descending ID).
type ListResult struct {
	// Entries are the page's entries (never nil).
	Entries []*Entry `json:"entries"`
	// NextCursor fetches the next page; empty when this page is the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// List returns one page of the entries matching params, newest first.
// Pages are keyed by entry ID, so paging through a queue that grows meanwhile
// reaches every entry that existed at the start once and in order. Errors wrap
// [ErrInvalid] for a bad cursor, limit or filter.
func (s *Store) List(ctx context.Context, params ListParams) (*ListResult, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	limit := params.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return nil, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalid, params.Limit, MaxListLimit)
	}
	cond, args := params.Filter.where(nil)
	if params.After != "" {
		after, err := parseCursor(params.After)
		if err != nil {
			return nil, err
		}
		args = append(args, after)
		cond += fmt.Sprintf(" AND id < $%d", len(args))
	}
	args = append(args, limit+1)
	rows, err := s.pool.Query(ctx, "SELECT "+entryColumns+" FROM "+Table+" WHERE "+cond+
		fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list dead-letter entries: %w", err)
	}
	defer rows.Close()
	res := &ListResult{Entries: []*Entry{}}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		res.Entries = append(res.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead-letter entries: %w", err)
	}
	if len(res.Entries) > limit {
		res.Entries = res.Entries[:limit]
		res.NextCursor = formatCursor(res.Entries[limit-1].ID)
	}
	return res, nil
}

// Cursors are opaque to callers; today they carry the last entry ID seen.
const cursorPrefix = "id:"

func formatCursor(id int64) string { return cursorPrefix + strconv.FormatInt(id, 10) }

// CheckCursor returns nil when c is a cursor [Store.List] accepts as
// ListParams.After: "" (the first page) or a ListResult.NextCursor it
// returned. Otherwise its error wraps [ErrInvalid] and quotes c, as List's
// would; a caller checks before it connects (rebound dlq list --after).
func CheckCursor(c string) error {
	if c == "" {
		return nil
	}
	_, err := parseCursor(c)
	return err
}

func parseCursor(c string) (int64, error) {
	if len(c) > len(cursorPrefix) && c[:len(cursorPrefix)] == cursorPrefix {
		if id, err := strconv.ParseInt(c[len(cursorPrefix):], 10, 64); err == nil && id > 0 {
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w: cursor %q is not one this API returned", ErrInvalid, c)
}
