package deadletter

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StatsParams selects what [Store.Stats] counts.
type StatsParams struct {
	// Filter selects the entries grouped in Stats.Groups. Empty Statuses
	// means [StatusUnresolved]: the patterns still open.
	Filter
}

// Stats summarises the dead-letter queue: where failures cluster.
type Stats struct {
	// Groups counts the selected entries by kind x failure class x failure
	// reason, largest first.
	Groups []StatsGroup `json:"groups"`
	// ByStatus counts the entries the filter selects by status (its kinds,
	// classes, operation keys and time range apply; its statuses do not).
	ByStatus map[Status]int64 `json:"by_status"`
	// OldestUnresolvedAt is when the oldest unresolved entry the filter
	// selects (statuses aside) was dead-lettered; nil when there is none.
	OldestUnresolvedAt *time.Time `json:"oldest_unresolved_at,omitempty"`
	// OldestUnresolvedAgeSeconds is its age in seconds (0 when none), by
	// the database's clock.
	OldestUnresolvedAgeSeconds float64 `json:"oldest_unresolved_age_seconds"`
}

// StatsGroup is one kind x class x reason group.
type StatsGroup struct {
	// Kind is the job kind.
	Kind string `json:"kind"`
	// Class is the failure class.
	Class string `json:"failure_class"`
	// Reason is the failure reason (redacted by [RedactStats] for display).
	Reason string `json:"failure_reason"`
	// Count is how many entries the group has.
	Count int64 `json:"count"`
	// First is the earliest dead-lettered time in the group.
	First time.Time `json:"first_dead_lettered_at"`
	// Last is the latest dead-lettered time in the group.
	Last time.Time `json:"last_dead_lettered_at"`
}

// Stats counts entries by kind x class x reason and reports the oldest
// unresolved entry. It reads the table (an operator's command, not a
// scrape). Errors wrap [ErrInvalid] for a bad filter.
func (s *Store) Stats(ctx context.Context, params StatsParams) (*Stats, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	f := params.Filter
	if len(f.Statuses) == 0 {
		f.Statuses = []Status{StatusUnresolved}
	}
	cond, args := f.where(nil)
	rows, err := s.pool.Query(ctx, `SELECT kind, failure_class, failure_reason, count(*), min(dead_lettered_at), max(dead_lettered_at)
		FROM `+Table+` WHERE `+cond+`
		GROUP BY kind, failure_class, failure_reason
		ORDER BY count(*) DESC, kind, failure_class, failure_reason`, args...)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	groups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatsGroup, error) {
		var g StatsGroup
		err := r.Scan(&g.Kind, &g.Class, &g.Reason, &g.Count, &g.First, &g.Last)
		g.First, g.Last = g.First.UTC(), g.Last.UTC()
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	st := &Stats{Groups: groups, ByStatus: map[Status]int64{}}
	if st.Groups == nil {
		st.Groups = []StatsGroup{}
	}
	for _, s := range Statuses {
		st.ByStatus[s] = 0
	}
	anyStatus := params.Filter
	anyStatus.Statuses = nil
	cond, args = anyStatus.where(nil)
	rows, err = s.pool.Query(ctx, "SELECT status, count(*) FROM "+Table+" WHERE "+cond+" GROUP BY status", args...)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dead-letter stats: %w", err)
		}
		st.ByStatus[Status(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	var oldest *time.Time
	var age float64
	unresolved := anyStatus
	unresolved.Statuses = []Status{StatusUnresolved}
	cond, args = unresolved.where(nil)
	err = s.pool.QueryRow(ctx, `SELECT min(dead_lettered_at), coalesce(extract(epoch FROM now() - min(dead_lettered_at))::float8, 0)
		FROM `+Table+` WHERE `+cond, args...).Scan(&oldest, &age)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	st.OldestUnresolvedAt, st.OldestUnresolvedAgeSeconds = utcPtr(oldest), max(age, 0)
	return st, nil
}
