package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound/breaker"
)

// DefaultActor is recorded as retried_by / resolved_by when params name
// nobody.
const DefaultActor = "rebound"

// DefaultRetryBatchSize is how many entries [Store.RetryMany] retries per
// transaction when RetryManyParams.BatchSize is 0.
const DefaultRetryBatchSize = 100

// RetryMetadataKey is the metadata key a retried job carries:
// {"entry_id": ..., "river_job_id": ..., "attempt": ...} of the entry it
// replays.
const RetryMetadataKey = "dead_letter_retry_of"

// strippedMetadataKeys are River's (and rebound's) per-run bookkeeping keys:
// a replayed job starts without them — its history, snooze count, and the
// circuit breaker's parking marks (kept, a replay of a breaker_open entry
// would count its old parking time and go straight back here). Keys
// starting with "river:" (River's rescue count, logs, ...) are stripped too.
var strippedMetadataKeys = []string{"output", "snoozes", "cancel_attempted_at", RetryMetadataKey,
	breaker.MetadataParkedKey, breaker.MetadataParkedAt}

// RetryParams retries one entry with [Store.Retry].
type RetryParams struct {
	// ID is the entry to retry.
	ID int64 `json:"id"`
	// Force retries an entry that is already retried or resolved.
	Force bool `json:"force,omitempty"`
	// By names who retried it (retried_by). Defaults to [DefaultActor].
	// At most breaker.MaxTextBytes, no control characters
	// (breaker.ValidateActor).
	By string `json:"by,omitempty"`
}

// RetryResult is one entry retried.
type RetryResult struct {
	// EntryID is the entry retried.
	EntryID int64 `json:"entry_id"`
	// RiverJobID is the job that died.
	RiverJobID int64 `json:"river_job_id"`
	// Kind is the job's kind.
	Kind string `json:"kind"`
	// NewJobID is the job inserted to replay it (0 in a dry run).
	NewJobID int64 `json:"new_job_id,omitempty"`
}

// Retry inserts a new River job with the entry's original args, queue,
// priority, max attempts and tags (fresh attempts; metadata without River's
// bookkeeping keys, plus [RetryMetadataKey]) and marks the entry retried
// with the new job's ID, in one transaction. The new job carries no
// uniqueness options, so a unique job that died never blocks its replay.
//
// Errors: [ErrNotFound]; [ErrAlreadyRetried] or [ErrResolved] without
// params.Force (also when another caller retried it a moment ago: each entry
// is replayed once however many callers race); [ErrInvalid] for an ID < 1
// or a By that breaks breaker.ValidateActor's rule.
// Nothing is inserted when an error is returned.
func (s *Store) Retry(ctx context.Context, params RetryParams) (*RetryResult, error) {
	var res *RetryResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, err = s.RetryTx(ctx, tx, params)
		return err
	})
	return res, err
}

// RetryTx is [Store.Retry] inside the caller's transaction: the new job and
// the entry's change commit or roll back with it.
func (s *Store) RetryTx(ctx context.Context, tx pgx.Tx, params RetryParams) (*RetryResult, error) {
	if params.ID < 1 {
		return nil, fmt.Errorf("%w: entry ID %d", ErrInvalid, params.ID)
	}
	if err := validateActor(params.By); err != nil {
		return nil, err
	}
	var c candidate
	err := tx.QueryRow(ctx, "SELECT id, status, retried_job_id FROM "+Table+" WHERE id = $1", params.ID).
		Scan(&c.id, &c.status, &c.retriedJobID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: no entry %d", ErrNotFound, params.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("read dead-letter entry %d: %w", params.ID, err)
	}
	if err := notRetryable(c, params.Force); err != nil {
		return nil, err
	}
	retried, skipped, err := s.retryBatch(ctx, tx, []candidate{c}, params.Force, params.By)
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		return nil, fmt.Errorf("%w: entry %d %s", ErrAlreadyRetried, params.ID, skipped[0].Reason)
	}
	return &retried[0], nil
}

func notRetryable(c candidate, force bool) error {
	if force {
		return nil
	}
	switch Status(c.status) {
	case StatusRetried:
		if c.retriedJobID != nil {
			return fmt.Errorf("%w: entry %d was retried as job %d; use force to retry it again", ErrAlreadyRetried, c.id, *c.retriedJobID)
		}
		return fmt.Errorf("%w: entry %d; use force to retry it again", ErrAlreadyRetried, c.id)
	case StatusResolved:
		return fmt.Errorf("%w: entry %d; use force to retry it anyway", ErrResolved, c.id)
	}
	return nil
}

// RetryManyParams retries every entry matching a filter with
// [Store.RetryMany].
type RetryManyParams struct {
	// Filter selects the entries. With Force unset, Statuses must be empty
	// or [StatusUnresolved] (the default); with Force, empty means every
	// status.
	Filter
	// Force also retries entries already retried or resolved.
	Force bool `json:"force,omitempty"`
	// DryRun reports what would be retried and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// By names who retried them. Defaults to [DefaultActor]. At most
	// breaker.MaxTextBytes, no control characters (breaker.ValidateActor).
	By string `json:"by,omitempty"`
	// BatchSize is how many entries one transaction retries (RetryMany
	// only). Defaults to [DefaultRetryBatchSize].
	BatchSize int `json:"-"`
}

// RetryManyResult reports a bulk retry.
type RetryManyResult struct {
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dry_run"`
	// Retried are the entries retried (in a dry run: that would be).
	Retried []RetryResult `json:"retried"`
	// Skipped are entries that matched when the run started but that
	// another caller changed before this run reached them.
	Skipped []SkippedEntry `json:"skipped"`
}

// SkippedEntry is an entry a bulk operation left alone, and why.
type SkippedEntry struct {
	// EntryID is the entry left alone.
	EntryID int64 `json:"entry_id"`
	// Reason says what another caller did to it meanwhile.
	Reason string `json:"reason"`
}

// RetryMany retries every entry matching params (see [Store.Retry] for what
// one retry does). The set of entries is fixed when it starts: entries added
// while it runs, including those of jobs it replays that fail again, are not
// picked up. It commits every params.BatchSize entries; an error stops it,
// leaving the batches before committed and reported in the result. Two
// callers racing over the same entries replay each one once: the second
// skips what the first did.
func (s *Store) RetryMany(ctx context.Context, params RetryManyParams) (*RetryManyResult, error) {
	cands, err := s.retryCandidates(ctx, s.pool, &params)
	if err != nil {
		return nil, err
	}
	res := &RetryManyResult{DryRun: params.DryRun, Retried: []RetryResult{}, Skipped: []SkippedEntry{}}
	if params.DryRun {
		res.Retried = dryRunResults(cands)
		return res, nil
	}
	size := params.BatchSize
	if size <= 0 {
		size = DefaultRetryBatchSize
	}
	for start := 0; start < len(cands); start += size {
		batch := cands[start:min(start+size, len(cands))]
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			retried, skipped, err := s.retryBatch(ctx, tx, batch, params.Force, params.By)
			if err == nil {
				res.Retried = append(res.Retried, retried...)
				res.Skipped = append(res.Skipped, skipped...)
			}
			return err
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

type candidate struct {
	id           int64
	riverJobID   int64
	kind         string
	status       string
	retriedJobID *int64
}

func (s *Store) retryCandidates(ctx context.Context, q dbtx, params *RetryManyParams) ([]candidate, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if err := validateActor(params.By); err != nil {
		return nil, err
	}
	if !params.Force {
		for _, st := range params.Statuses {
			if st != StatusUnresolved {
				return nil, fmt.Errorf("%w: retrying %s entries needs force", ErrInvalid, st)
			}
		}
		params.Statuses = []Status{StatusUnresolved}
	}
	cond, args := params.Filter.where(nil)
	rows, err := q.Query(ctx, "SELECT id, river_job_id, kind, status, retried_job_id FROM "+Table+" WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("select entries to retry: %w", err)
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := r.Scan(&c.id, &c.riverJobID, &c.kind, &c.status, &c.retriedJobID)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("select entries to retry: %w", err)
	}
	return cands, nil
}

func dryRunResults(cands []candidate) []RetryResult {
	out := make([]RetryResult, len(cands))
	for i, c := range cands {
		out[i] = RetryResult{EntryID: c.id, RiverJobID: c.riverJobID, Kind: c.kind}
	}
	return out
}

// retryBatch locks the candidates' rows (in ID order, so concurrent callers
// cannot deadlock), replays those that nobody changed since they were
// selected, and marks them retried.
func (s *Store) retryBatch(ctx context.Context, tx pgx.Tx, cands []candidate, force bool, by string) ([]RetryResult, []SkippedEntry, error) {
	if by == "" {
		by = DefaultActor
	}
	seen := make(map[int64]candidate, len(cands))
	ids := make([]int64, len(cands))
	for i, c := range cands {
		seen[c.id] = c
		ids[i] = c.id
	}
	rows, err := tx.Query(ctx, "SELECT "+entryColumns+" FROM "+Table+" WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids)
	if err != nil {
		return nil, nil, fmt.Errorf("lock entries: %w", err)
	}
	var entries []*Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("lock entries: %w", err)
	}

	skipped := []SkippedEntry{}
	found := make(map[int64]bool, len(entries))
	var todo []*Entry
	var inserts []river.InsertManyParams
	for _, e := range entries {
		found[e.ID] = true
		c := seen[e.ID]
		if string(e.Status) != c.status || !sameID(e.RetriedJobID, c.retriedJobID) || (!force && e.Status != StatusUnresolved) {
			reason := "was changed by someone else meanwhile (now " + string(e.Status)
			if e.RetriedJobID != nil {
				reason += fmt.Sprintf(", retried as job %d", *e.RetriedJobID)
			}
			skipped = append(skipped, SkippedEntry{EntryID: e.ID, Reason: reason + ")"})
			continue
		}
		meta, err := replayMetadata(e)
		if err != nil {
			return nil, nil, err
		}
		todo = append(todo, e)
		inserts = append(inserts, river.InsertManyParams{
			Args: replayArgs{kind: e.Kind, raw: e.Args},
			InsertOpts: &river.InsertOpts{
				MaxAttempts: e.MaxAttempts,
				Metadata:    meta,
				Priority:    e.Priority,
				Queue:       e.Queue,
				Tags:        e.Tags,
			},
		})
	}
	for _, c := range cands {
		if !found[c.id] {
			skipped = append(skipped, SkippedEntry{EntryID: c.id, Reason: "was purged meanwhile"})
		}
	}
	if len(todo) == 0 {
		return []RetryResult{}, skipped, nil
	}
	inserted, err := s.client.InsertManyTx(ctx, tx, inserts)
	if err != nil {
		return nil, nil, fmt.Errorf("insert replay jobs: %w", err)
	}
	entryIDs := make([]int64, len(todo))
	newIDs := make([]int64, len(todo))
	results := make([]RetryResult, len(todo))
	for i, e := range todo {
		entryIDs[i], newIDs[i] = e.ID, inserted[i].Job.ID
		results[i] = RetryResult{EntryID: e.ID, RiverJobID: e.RiverJobID, Kind: e.Kind, NewJobID: inserted[i].Job.ID}
	}
	_, err = tx.Exec(ctx, `UPDATE `+Table+` d
		SET status = 'retried', retried_job_id = u.new_id, retried_by = $3, retried_at = now()
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, new_id)
		WHERE d.id = u.id`, entryIDs, newIDs, by)
	if err != nil {
		return nil, nil, fmt.Errorf("mark entries retried: %w", err)
	}
	return results, skipped, nil
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// replayMetadata is the entry's metadata without River's per-run keys, with
// a link back to the entry.
func replayMetadata(e *Entry) ([]byte, error) {
	meta := map[string]json.RawMessage{}
	if len(e.Metadata) > 0 {
		if err := json.Unmarshal(e.Metadata, &meta); err != nil || meta == nil {
			meta = map[string]json.RawMessage{} // not an object: start afresh
		}
	}
	for k := range meta {
		if strings.HasPrefix(k, "river:") {
			delete(meta, k)
		}
	}
	for _, k := range strippedMetadataKeys {
		delete(meta, k)
	}
	link, err := json.Marshal(map[string]int64{"entry_id": e.ID, "river_job_id": e.RiverJobID, "attempt": int64(e.Attempt)})
	if err != nil {
		return nil, err
	}
	meta[RetryMetadataKey] = link
	return json.Marshal(meta)
}

// replayArgs are a dead job's args, inserted as they were stored.
type replayArgs struct {
	kind string
	raw  json.RawMessage
}

// Kind implements river.JobArgs: the dead job's kind.
func (a replayArgs) Kind() string { return a.kind }

// MarshalJSON returns the stored args as they are.
func (a replayArgs) MarshalJSON() ([]byte, error) {
	if len(a.raw) == 0 {
		return []byte("{}"), nil
	}
	return a.raw, nil
}
