package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// DefaultStatsTop is how many groups [Store.Stats] returns when
// StatsParams.Top is 0; MaxStatsTop is the most it returns.
const (
	DefaultStatsTop = 20
	MaxStatsTop     = 1000
)

// StatsParams selects what [Store.Stats] counts.
type StatsParams struct {
	// Filter selects the entries grouped in Stats.Groups. Empty Statuses
	// means [StatusUnresolved]: the patterns still open.
	Filter
	// Top is how many groups to return, largest first: 0 means
	// [DefaultStatsTop]; 1 to [MaxStatsTop] (else [ErrInvalid]). The
	// counts of the groups left out are in Stats.MoreGroups and
	// Stats.MoreEntries.
	Top int `json:"top,omitempty"`
}

// Stats summarises the dead-letter queue: where failures cluster.
type Stats struct {
	// Groups are the largest groups of the selected entries by failure
	// fingerprint x kind x failure class, at most StatsParams.Top of them,
	// by count (largest first), then kind, class and fingerprint.
	Groups []StatsGroup `json:"groups"`
	// TotalGroups is how many groups the selected entries form, shown or
	// not.
	TotalGroups int64 `json:"total_groups"`
	// MoreGroups is how many groups are left out of Groups
	// (TotalGroups - len(Groups)); MoreEntries how many entries they hold.
	MoreGroups  int64 `json:"more_groups"`
	MoreEntries int64 `json:"more_entries"`
	// Entries is how many entries the filter selects (all groups).
	Entries int64 `json:"entries"`
	// ByKind and ByClass count the selected entries (all groups) by job
	// kind and by failure class; kinds and classes without entries are
	// absent.
	ByKind  map[string]int64 `json:"by_kind"`
	ByClass map[string]int64 `json:"by_class"`
	// ByStatus counts the entries the filter selects by status (its kinds,
	// classes, operation keys, fingerprints and time range apply; its
	// statuses do not).
	ByStatus map[Status]int64 `json:"by_status"`
	// OldestUnresolvedAt is when the oldest unresolved entry the filter
	// selects (statuses aside) was dead-lettered; nil when there is none.
	OldestUnresolvedAt *time.Time `json:"oldest_unresolved_at,omitempty"`
	// OldestUnresolvedAgeSeconds is its age in seconds (0 when none), by
	// the database's clock.
	OldestUnresolvedAgeSeconds float64 `json:"oldest_unresolved_age_seconds"`
}

// StatsGroup is the entries of one kind and failure class whose failure
// reasons have the same fingerprint.
type StatsGroup struct {
	// FingerprintID names the fingerprint in 12 hex digits: give it to
	// Filter.Fingerprints (--fingerprint, fingerprint=) to select the
	// group's entries.
	FingerprintID string `json:"fingerprint_id"`
	// Fingerprint is the failure fingerprint (see
	// [Entry.FailureFingerprint]; redacted by [RedactStats] for display).
	Fingerprint string `json:"fingerprint"`
	// Kind is the job kind.
	Kind string `json:"kind"`
	// Class is the failure class.
	Class string `json:"failure_class"`
	// Count is how many entries the group has.
	Count int64 `json:"count"`
	// ExampleEntryID is the group's newest entry (the latest
	// dead-lettered; of those, the highest ID), and ExampleReason its
	// failure reason (redacted by [RedactStats] for display).
	ExampleEntryID int64  `json:"example_entry_id"`
	ExampleReason  string `json:"example_reason"`
	// First is the earliest dead-lettered time in the group.
	First time.Time `json:"first_dead_lettered_at"`
	// Last is the latest dead-lettered time in the group.
	Last time.Time `json:"last_dead_lettered_at"`
}

// groupCountsTable holds the entries per (status, fingerprint, kind,
// class) as signed deltas, appended by triggers and folded by the
// [Reconciler] (migrations/sql/012).
const groupCountsTable = "job_dead_letter_queue_group_counts"

// statsGroupsQuery is the query of [Store.Stats]'s groups and totals for
// filter f (empty statuses: unresolved) and top, with its arguments. The
// groups are counted from the group counts when the filter has no time
// range and no operation key (columns those counts lack), else from the
// entries.
func statsGroupsQuery(f Filter, top int) (string, []any) {
	if len(f.Statuses) == 0 {
		f.Statuses = []Status{StatusUnresolved}
	}
	cond, args := f.where(nil)
	args = append(args, top)
	counted := `SELECT failure_fingerprint AS fp, kind, failure_class AS class, count(*) AS n
		  FROM ` + Table + ` WHERE ` + cond + `
		 GROUP BY failure_fingerprint, kind, failure_class`
	if len(f.OperationKeys) == 0 && f.Since.IsZero() && f.Until.IsZero() {
		counted = `SELECT failure_fingerprint AS fp, kind, failure_class AS class, sum(n)::bigint AS n
		  FROM ` + groupCountsTable + ` WHERE ` + cond + `
		 GROUP BY failure_fingerprint, kind, failure_class HAVING sum(n) > 0`
	}
	return statsGroupsSQL(counted, cond, len(args)), args
}

// statsGroupsSQL takes the groups counted (fp, kind, class, n) and returns
// one row per group of the top $topArg, whose first and latest times and
// newest entry (the entries matching cond) are read at the two ends of the
// group's range of job_dead_letter_queue_fingerprint_idx; or a single row
// of NULL group columns when there is no group. Every row carries the
// totals of all groups.
func statsGroupsSQL(counted, cond string, topArg int) string {
	group := ` AND d.failure_fingerprint = t.fp AND d.kind = t.kind AND d.failure_class = t.class`
	return `WITH g AS MATERIALIZED (
		` + counted + `
	), totals AS (
		SELECT count(*) AS groups, coalesce(sum(n), 0)::bigint AS entries,
		       (SELECT coalesce(jsonb_object_agg(kind, n), '{}') FROM (SELECT kind, sum(n) AS n FROM g GROUP BY kind) k) AS by_kind,
		       (SELECT coalesce(jsonb_object_agg(class, n), '{}') FROM (SELECT class, sum(n) AS n FROM g GROUP BY class) c) AS by_class
		  FROM g
	), top AS (
		SELECT * FROM g ORDER BY n DESC, kind, class, fp LIMIT $` + strconv.Itoa(topArg) + `
	)
	SELECT totals.groups, totals.entries, totals.by_kind, totals.by_class,
	       t.fp, rebound_failure_fingerprint_id(t.fp), t.kind, t.class, t.n, t.first_at, t.last_at, t.example_id, t.reason
	  FROM totals LEFT JOIN (
	       SELECT t.*, f.first_at, l.last_at, l.example_id, l.reason FROM top t
	       CROSS JOIN LATERAL (SELECT d.dead_lettered_at AS first_at FROM ` + Table + ` d WHERE ` + cond + group + `
	                            ORDER BY d.dead_lettered_at LIMIT 1) f
	       CROSS JOIN LATERAL (SELECT d.dead_lettered_at AS last_at, d.id AS example_id, d.failure_reason AS reason
	                             FROM ` + Table + ` d WHERE ` + cond + group + `
	                            ORDER BY d.dead_lettered_at DESC, d.id DESC LIMIT 1) l) t ON true
	 ORDER BY t.n DESC, t.kind, t.class, t.fp`
}

// Stats groups the entries the filter selects by failure fingerprint x
// kind x failure class and returns the largest params.Top groups with one
// example each, the counts by kind and class, the counts by status and the
// oldest unresolved entry. The groups are counted from the group counts
// the triggers keep (one row per group, the same cost at any size of the
// queue) unless the filter has a time range or an operation key, then from
// job_dead_letter_queue_fingerprint_idx (a pass over the entries
// selected); each group shown then costs two probes of that index and one
// row. The counts by status come from the counts the triggers keep when the
// filter is by kind or none. Errors wrap [ErrInvalid] for a bad filter or Top.
func (s *Store) Stats(ctx context.Context, params StatsParams) (*Stats, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	top := params.Top
	if top == 0 {
		top = DefaultStatsTop
	}
	if top < 1 || top > MaxStatsTop {
		return nil, fmt.Errorf("%w: top %d is not between 1 and %d", ErrInvalid, params.Top, MaxStatsTop)
	}
	sql, args := statsGroupsQuery(params.Filter, top)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	st := &Stats{Groups: []StatsGroup{}, ByStatus: map[Status]int64{}}
	var byKind, byClass []byte
	for rows.Next() {
		var (
			fp, id, kind, class, reason *string
			n, exampleID                *int64
			first, last                 *time.Time
		)
		if err := rows.Scan(&st.TotalGroups, &st.Entries, &byKind, &byClass,
			&fp, &id, &kind, &class, &n, &first, &last, &exampleID, &reason); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dead-letter stats: %w", err)
		}
		if fp == nil {
			continue // no entries: the totals' row alone
		}
		st.Groups = append(st.Groups, StatsGroup{
			FingerprintID: *id, Fingerprint: *fp, Kind: *kind, Class: *class, Count: *n,
			ExampleEntryID: *exampleID, ExampleReason: *reason, First: first.UTC(), Last: last.UTC(),
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead-letter stats: %w", err)
	}
	if err := json.Unmarshal(byKind, &st.ByKind); err != nil {
		return nil, fmt.Errorf("dead-letter stats: by kind: %w", err)
	}
	if err := json.Unmarshal(byClass, &st.ByClass); err != nil {
		return nil, fmt.Errorf("dead-letter stats: by class: %w", err)
	}
	st.MoreGroups = st.TotalGroups - int64(len(st.Groups))
	st.MoreEntries = st.Entries
	for _, g := range st.Groups {
		st.MoreEntries -= g.Count
	}

	for _, s := range Statuses {
		st.ByStatus[s] = 0
	}
	anyStatus := params.Filter
	anyStatus.Statuses = nil
	cond, args := anyStatus.where(nil)
	byStatus := "SELECT status, count(*) FROM " + Table + " WHERE " + cond + " GROUP BY status"
	if f := anyStatus; len(f.Classes)+len(f.OperationKeys)+len(f.Fingerprints) == 0 && f.Since.IsZero() && f.Until.IsZero() {
		// By kind alone: the counts the triggers keep (see SizeCollector),
		// exact in any snapshot and the same cost at any size.
		byStatus = "SELECT status, sum(n)::bigint FROM job_dead_letter_queue_counts WHERE " + cond + " GROUP BY status"
	}
	rows, err = s.pool.Query(ctx, byStatus, args...)
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
