package deadletter

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PurgeParams deletes old closed entries with [Store.Purge].
type PurgeParams struct {
	// OlderThan is the age an entry must have reached, counted from its last
	// change (the latest of dead-lettered, retried and resolved times).
	// Required, > 0.
	OlderThan time.Duration `json:"older_than"`
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// PurgeResult reports a purge.
type PurgeResult struct {
	// DryRun is true when nothing was deleted.
	DryRun bool `json:"dry_run"`
	// Purged is how many entries were (in a dry run: would be) deleted, by
	// status.
	Purged map[Status]int64 `json:"purged"`
	// Total is the sum of Purged.
	Total int64 `json:"total"`
}

// Purge deletes resolved and retried entries older than params.OlderThan.
// Unresolved entries are never deleted, whatever their age. An entry whose
// River job is still discarded or cancelled leaves a tombstone so the
// reconciliation does not bring it back. Errors wrap [ErrInvalid] when
// OlderThan is not positive.
func (s *Store) Purge(ctx context.Context, params PurgeParams) (*PurgeResult, error) {
	var res *PurgeResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, err = s.PurgeTx(ctx, tx, params)
		return err
	})
	return res, err
}

// PurgeTx is [Store.Purge] inside the caller's transaction.
func (s *Store) PurgeTx(ctx context.Context, tx pgx.Tx, params PurgeParams) (*PurgeResult, error) {
	if params.OlderThan <= 0 {
		return nil, fmt.Errorf("%w: older than must be a positive age such as 30d, got %s", ErrInvalid, params.OlderThan)
	}
	const match = `status IN ('resolved', 'retried')
		AND greatest(dead_lettered_at, coalesce(resolved_at, '-infinity'), coalesce(retried_at, '-infinity'))
		    < now() - make_interval(secs => $1)`
	var sql string
	if params.DryRun {
		sql = "SELECT status, count(*) FROM " + Table + " WHERE " + match + " GROUP BY status"
	} else {
		sql = `WITH gone AS (DELETE FROM ` + Table + ` WHERE ` + match + ` RETURNING river_job_id, attempt, status),
		tomb AS (INSERT INTO job_dead_letter_queue_purged (river_job_id, attempt)
			SELECT g.river_job_id, g.attempt FROM gone g
			WHERE EXISTS (SELECT 1 FROM river_job j WHERE j.id = g.river_job_id AND j.attempt = g.attempt
			              AND j.state IN ('discarded', 'cancelled'))
			ON CONFLICT DO NOTHING)
		SELECT status, count(*) FROM gone GROUP BY status`
	}
	rows, err := tx.Query(ctx, sql, params.OlderThan.Seconds())
	if err != nil {
		return nil, fmt.Errorf("purge entries: %w", err)
	}
	res := &PurgeResult{DryRun: params.DryRun, Purged: map[Status]int64{StatusResolved: 0, StatusRetried: 0}}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("purge entries: %w", err)
		}
		res.Purged[Status(st)] = n
		res.Total += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("purge entries: %w", err)
	}
	return res, nil
}
