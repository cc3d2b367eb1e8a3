package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rebound-queue/rebound/breaker"
)

// ResolveParams closes one entry with [Store.Resolve].
type ResolveParams struct {
	// ID is the entry to resolve.
	ID int64 `json:"id"`
	// Note says why (required, not blank): what was found, what was done.
	// At most breaker.MaxTextBytes of UTF-8, no NUL (breaker.ValidateText).
	Note string `json:"note"`
	// By names who resolved it (resolved_by). Defaults to [DefaultActor].
	// At most breaker.MaxTextBytes, no control characters
	// (breaker.ValidateActor).
	By string `json:"by,omitempty"`
}

// Resolve marks an unresolved or retried entry resolved with a note and
// returns it. Errors: [ErrInvalid] (no note, bad ID, a note or by that
// breaks the rule of free text, naming it), [ErrNotFound],
// [ErrAlreadyResolved]; the entry is unchanged when an error is returned.
func (s *Store) Resolve(ctx context.Context, params ResolveParams) (*Entry, error) {
	var e *Entry
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = s.ResolveTx(ctx, tx, params)
		return err
	})
	return e, err
}

// ResolveTx is [Store.Resolve] inside the caller's transaction.
func (s *Store) ResolveTx(ctx context.Context, tx pgx.Tx, params ResolveParams) (*Entry, error) {
	if params.ID < 1 {
		return nil, fmt.Errorf("%w: entry ID %d", ErrInvalid, params.ID)
	}
	if err := validateNoteAndActor(params.Note, params.By); err != nil {
		return nil, err
	}
	note := strings.TrimSpace(params.Note)
	if note == "" {
		return nil, fmt.Errorf("%w: a note is required to resolve an entry", ErrInvalid)
	}
	var id int64
	err := tx.QueryRow(ctx, `UPDATE `+Table+`
		SET status = 'resolved', resolution_note = $2, resolved_by = $3, resolved_at = now()
		WHERE id = $1 AND status <> 'resolved' RETURNING id`, params.ID, note, actor(params.By)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		e, gerr := get(ctx, tx, params.ID)
		if gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("%w: entry %d was resolved by %s at %s", ErrAlreadyResolved, e.ID, e.ResolvedBy, e.ResolvedAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	if err != nil {
		return nil, fmt.Errorf("resolve entry %d: %w", params.ID, err)
	}
	return get(ctx, tx, id)
}

// ResolveManyParams closes every entry matching a filter with
// [Store.ResolveMany].
type ResolveManyParams struct {
	// Filter selects the entries; resolved ones are never touched. Empty
	// Statuses means [StatusUnresolved].
	Filter
	// Note says why (required, not blank). At most breaker.MaxTextBytes
	// of UTF-8, no NUL (breaker.ValidateText).
	Note string `json:"note"`
	// By names who resolved them. Defaults to [DefaultActor]. At most
	// breaker.MaxTextBytes, no control characters (breaker.ValidateActor).
	By string `json:"by,omitempty"`
	// DryRun reports what would be resolved and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ResolveManyResult reports a bulk resolve.
type ResolveManyResult struct {
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dry_run"`
	// IDs are the entries resolved (in a dry run: that would be), ascending.
	IDs []int64 `json:"ids"`
}

// ResolveMany resolves every entry matching params in one statement.
// Errors wrap [ErrInvalid] for a missing note, a note or by that breaks the
// rule of free text (naming it) or a bad filter.
func (s *Store) ResolveMany(ctx context.Context, params ResolveManyParams) (*ResolveManyResult, error) {
	var res *ResolveManyResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, err = s.ResolveManyTx(ctx, tx, params)
		return err
	})
	return res, err
}

// ResolveManyTx is [Store.ResolveMany] inside the caller's transaction.
func (s *Store) ResolveManyTx(ctx context.Context, tx pgx.Tx, params ResolveManyParams) (*ResolveManyResult, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if err := validateNoteAndActor(params.Note, params.By); err != nil {
		return nil, err
	}
	note := strings.TrimSpace(params.Note)
	if note == "" && !params.DryRun {
		return nil, fmt.Errorf("%w: a note is required to resolve entries", ErrInvalid)
	}
	f := params.Filter
	if len(f.Statuses) == 0 {
		f.Statuses = []Status{StatusUnresolved}
	}
	cond, args := f.where(nil)
	var sql string
	if params.DryRun {
		sql = "SELECT id FROM " + Table + " WHERE " + cond + " AND status <> 'resolved' ORDER BY id"
	} else {
		args = append(args, note, actor(params.By))
		sql = fmt.Sprintf(`WITH done AS (UPDATE `+Table+`
			SET status = 'resolved', resolution_note = $%d, resolved_by = $%d, resolved_at = now()
			WHERE `+cond+` AND status <> 'resolved' RETURNING id)
			SELECT id FROM done ORDER BY id`, len(args)-1, len(args))
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("resolve entries: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("resolve entries: %w", err)
	}
	if ids == nil {
		ids = []int64{}
	}
	return &ResolveManyResult{DryRun: params.DryRun, IDs: ids}, nil
}

// validateNoteAndActor refuses, as [ErrInvalid] naming the field, a note
// that breaks breaker.ValidateText's rule or a by that breaks
// breaker.ValidateActor's: the one rule for every text an operator records.
func validateNoteAndActor(note, by string) error {
	if err := breaker.ValidateText("note", note); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return validateActor(by)
}

// validateActor refuses, as [ErrInvalid], a by that breaks
// breaker.ValidateActor's rule.
func validateActor(by string) error {
	if err := breaker.ValidateActor("by", by); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func actor(by string) string {
	if by = strings.TrimSpace(by); by == "" {
		return DefaultActor
	}
	return by
}
