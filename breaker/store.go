package breaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what Store needs from a connection: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Row is one key's shared state: a row of circuit_breaker_state.
type Row struct {
	// Key is breaker_key, the operation key.
	Key string `json:"key"`
	// State is the breaker's state.
	State State `json:"state"`
	// Generation is bumped by every transition.
	Generation int64 `json:"generation"`
	// FailureCount is the number of consecutive failures while closed.
	FailureCount int `json:"failure_count"`
	// SuccessCount is the number of successful probes in this half-open
	// period.
	SuccessCount int `json:"success_count"`
	// WindowStartedAt, WindowCalls and WindowFailures are the rolling
	// window of the failure-ratio rule (nil start: no window).
	WindowStartedAt *time.Time `json:"window_started_at"`
	WindowCalls     int64      `json:"window_calls"`
	WindowFailures  int64      `json:"window_failures"`
	// TripCount is the number of trips since the last full recovery.
	TripCount int `json:"trip_count"`
	// OpenedAt is when the breaker last opened (nil while never opened or
	// after a close).
	OpenedAt *time.Time `json:"opened_at"`
	// NextProbeAt is when an open breaker may admit its first probe.
	NextProbeAt *time.Time `json:"next_probe_at"`
	// OpenSince is when the breaker last left closed: the first open of
	// the outage it is in, kept through its re-opens and probes (OpenedAt
	// is the last open); nil while closed. Kept by a trigger on every
	// write (migration 015); rows out of closed when 015 was applied took
	// their OpenedAt.
	OpenSince *time.Time `json:"open_since"`
	// ProbeDue reports that the breaker is open and NextProbeAt had passed,
	// by the database clock, when the row was read: the next call for the
	// key is admitted as a probe (and moves the row to half_open). The row
	// stays open until such a call comes; ProbeDue tells a display that it
	// is no longer holding calls off. It is not a column.
	ProbeDue bool `json:"probe_due"`
	// LastError is the error text of the last failure ("" for none), as
	// package storable keeps text: NUL and invalid UTF-8 as U+FFFD, at most
	// 1024 bytes (cut at a character boundary, ending in "…"); River's
	// "JobCancelError: " prefix is removed, as from a dead letter's
	// failure_reason (by the same SQL function, rebound_dead_letter_reason),
	// when it is written and when it is read.
	LastError string `json:"last_error"`
	// LastFailureAt and LastSuccessAt are when a failure / success was
	// last written.
	LastFailureAt *time.Time `json:"last_failure_at"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	// ChangedBy, ChangeReason and ChangedAt record the last change made by
	// hand (rebound breaker reset|open, or SQL).
	ChangedBy    string     `json:"changed_by"`
	ChangeReason string     `json:"change_reason"`
	ChangedAt    *time.Time `json:"changed_at"`
	// Probes are the half-open probes in flight: token -> start time.
	Probes map[string]time.Time `json:"probes"`
	// CreatedAt and UpdatedAt are the row's timestamps (database clock).
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// setProbeDue sets ProbeDue from the database clock at the read.
func (r *Row) setProbeDue(dbNow time.Time) {
	r.ProbeDue = r.State == StateOpen && r.NextProbeAt != nil && !r.NextProbeAt.After(dbNow)
}

// columns is the select list every statement returns, in scanRow's order.
// The last column is the database clock at the statement.
const columns = `breaker_key, state, generation, failure_count, success_count,
	window_started_at, window_calls, window_failures, trip_count, opened_at, next_probe_at, open_since,
	coalesce(rebound_dead_letter_reason(last_error), ''), last_failure_at, last_success_at,
	coalesce(changed_by, ''), coalesce(change_reason, ''), changed_at, probes, created_at, updated_at, now()`

func scanRow(r pgx.Row) (*Row, time.Time, error) {
	var (
		row   Row
		state string
		now   time.Time
	)
	err := r.Scan(&row.Key, &state, &row.Generation, &row.FailureCount, &row.SuccessCount,
		&row.WindowStartedAt, &row.WindowCalls, &row.WindowFailures, &row.TripCount, &row.OpenedAt, &row.NextProbeAt, &row.OpenSince,
		&row.LastError, &row.LastFailureAt, &row.LastSuccessAt,
		&row.ChangedBy, &row.ChangeReason, &row.ChangedAt, &row.Probes, &row.CreatedAt, &row.UpdatedAt, &now)
	if err != nil {
		return nil, time.Time{}, err
	}
	if row.State, err = ParseState(state); err != nil {
		return nil, time.Time{}, err
	}
	if row.Probes == nil {
		row.Probes = map[string]time.Time{}
	}
	row.setProbeDue(now)
	return &row, now, nil
}

// Store runs the breaker's SQL on circuit_breaker_state. Every transition is
// one statement: a compare-and-set on the row's generation, timed with the
// database clock. The zero value is not usable; use NewStore.
type Store struct {
	db Querier
}

// NewStore returns a Store over db (a pool, a connection or a transaction).
func NewStore(db Querier) *Store { return &Store{db: db} }

// List returns every row, ordered by key.
func (s *Store) List(ctx context.Context) ([]*Row, error) {
	return s.query(ctx, `SELECT `+columns+` FROM circuit_breaker_state ORDER BY breaker_key`)
}

// Get returns the row of key, an error matching ErrNotFound, or one matching
// ErrInvalidKey when key breaks ValidateKey's rule.
func (s *Store) Get(ctx context.Context, key string) (*Row, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("breaker get: %w", err)
	}
	row, _, err := scanRow(s.db.QueryRow(ctx, `SELECT `+columns+` FROM circuit_breaker_state WHERE breaker_key = $1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("breaker %q: %w", key, ErrNotFound)
	}
	return row, err
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]*Row, error) {
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Row
	for rows.Next() {
		row, _, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// ResetParams are the inputs of Store.Reset.
type ResetParams struct {
	// Key is the operation key to close (see ValidateKey).
	Key string
	// By names who resets (recorded in changed_by). Required: see
	// ValidateActor (at most MaxTextBytes, no control characters).
	By string
	// Reason is recorded in change_reason. Optional: see ValidateText
	// (at most MaxTextBytes of UTF-8, no NUL).
	Reason string
}

// Reset closes key's breaker by hand (a new generation; counters, probes and
// trips cleared), recording who and why. It returns the new row, an error
// matching ErrNotFound when the key has no row, one matching ErrInvalidKey,
// or one naming an invalid By or Reason.
func (s *Store) Reset(ctx context.Context, p ResetParams) (*Row, error) {
	return resetOn(ctx, s.db, p)
}

// ResetTx is Reset inside the caller's transaction.
func (s *Store) ResetTx(ctx context.Context, tx pgx.Tx, p ResetParams) (*Row, error) {
	return resetOn(ctx, tx, p)
}

func resetOn(ctx context.Context, db Querier, p ResetParams) (*Row, error) {
	if err := ValidateKey(p.Key); err != nil {
		return nil, fmt.Errorf("breaker reset: %w", err)
	}
	if p.By == "" {
		return nil, errors.New("breaker reset: by (who resets) is empty")
	}
	if err := validateChange(p.By, p.Reason); err != nil {
		return nil, fmt.Errorf("breaker reset: %w", err)
	}
	row, _, err := scanRow(db.QueryRow(ctx, `UPDATE circuit_breaker_state SET
			state = 'closed', generation = generation + 1,
			failure_count = 0, success_count = 0, trip_count = 0,
			window_started_at = NULL, window_calls = 0, window_failures = 0,
			opened_at = NULL, next_probe_at = NULL, probes = '{}',
			changed_by = $2, change_reason = nullif($3, ''), changed_at = now()
		WHERE breaker_key = $1
		RETURNING `+columns, p.Key, p.By, p.Reason))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("breaker %q: %w", p.Key, ErrNotFound)
	}
	return row, err
}

// MaxHold is the longest Store.Open accepts for For.
const MaxHold = 30 * 24 * time.Hour

// OpenParams are the inputs of Store.Open.
type OpenParams struct {
	// Key is the operation key to hold open; its row is created if absent
	// (see ValidateKey).
	Key string
	// For is how long the breaker stays open before it may probe
	// (maintenance). Must be in (0, MaxHold].
	For time.Duration
	// By names who opens (recorded in changed_by). Required: see
	// ValidateActor (at most MaxTextBytes, no control characters).
	By string
	// Reason is recorded in change_reason. Optional: see ValidateText
	// (at most MaxTextBytes of UTF-8, no NUL).
	Reason string
}

// Open opens key's breaker by hand until now() + For (database clock): a new
// generation, probes cleared. It returns the new row, or an error naming the
// invalid parameter (matching ErrInvalidKey for an invalid Key).
func (s *Store) Open(ctx context.Context, p OpenParams) (*Row, error) {
	return openOn(ctx, s.db, p)
}

// OpenTx is Open inside the caller's transaction.
func (s *Store) OpenTx(ctx context.Context, tx pgx.Tx, p OpenParams) (*Row, error) {
	return openOn(ctx, tx, p)
}

func openOn(ctx context.Context, db Querier, p OpenParams) (*Row, error) {
	if err := ValidateKey(p.Key); err != nil {
		return nil, fmt.Errorf("breaker open: %w", err)
	}
	switch {
	case p.For <= 0 || p.For > MaxHold:
		return nil, fmt.Errorf("breaker open: for %s: must be in (0s, %s]", p.For, MaxHold)
	case p.By == "":
		return nil, errors.New("breaker open: by (who opens) is empty")
	}
	if err := validateChange(p.By, p.Reason); err != nil {
		return nil, fmt.Errorf("breaker open: %w", err)
	}
	row, _, err := scanRow(db.QueryRow(ctx, `INSERT INTO circuit_breaker_state AS s
			(breaker_key, state, generation, opened_at, next_probe_at, changed_by, change_reason, changed_at)
		VALUES ($1, 'open', 2, now(), now() + make_interval(secs => $2::float8 / 1000), $3, nullif($4, ''), now())
		ON CONFLICT (breaker_key) DO UPDATE SET
			state = 'open', generation = s.generation + 1,
			success_count = 0, probes = '{}',
			window_started_at = NULL, window_calls = 0, window_failures = 0,
			opened_at = now(), next_probe_at = excluded.next_probe_at,
			changed_by = excluded.changed_by, change_reason = excluded.change_reason, changed_at = now()
		RETURNING `+columns, p.Key, p.For.Milliseconds(), p.By, p.Reason))
	return row, err
}

// DeleteIdle removes the rows of keys idle (not updated) for longer than
// ttl, except breakers held open into the future. It returns how many rows
// it removed; an error for ttl <= 0 (nothing is removed) or from the
// database.
func (s *Store) DeleteIdle(ctx context.Context, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("breaker cleanup: idle_ttl %s: must be > 0", ttl)
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM circuit_breaker_state
		WHERE updated_at < now() - make_interval(secs => $1::float8 / 1000)
		  AND coalesce(next_probe_at, '-infinity') < now()`, ttl.Milliseconds())
	return tag.RowsAffected(), err
}

// casResult is the outcome of a compare-and-set statement: the row after
// it (or as it was, when the compare failed), whether it applied, whether it
// tripped, and the database clock.
type casResult struct {
	row     *Row
	applied bool
	tripped bool
	dbNow   time.Time
}

// cas wraps an UPDATE of the locked row `cur` into a statement that returns
// the updated row (applied) or the current one (not applied), in one round
// trip. update must be an UPDATE ... FROM cur ... RETURNING s.breaker_key,
// <tripped bool>.
func (s *Store) cas(ctx context.Context, update string, args ...any) (casResult, error) {
	sql := `WITH cur AS (
			SELECT * FROM circuit_breaker_state WHERE breaker_key = $1 FOR UPDATE
		), upd AS (` + update + `)
		SELECT true, tripped, ` + columns + ` FROM upd
		UNION ALL
		SELECT false, false, ` + columns + ` FROM cur WHERE NOT EXISTS (SELECT 1 FROM upd)`
	var res casResult
	var row Row
	var state string
	err := s.db.QueryRow(ctx, sql, args...).Scan(&res.applied, &res.tripped,
		&row.Key, &state, &row.Generation, &row.FailureCount, &row.SuccessCount,
		&row.WindowStartedAt, &row.WindowCalls, &row.WindowFailures, &row.TripCount, &row.OpenedAt, &row.NextProbeAt, &row.OpenSince,
		&row.LastError, &row.LastFailureAt, &row.LastSuccessAt,
		&row.ChangedBy, &row.ChangeReason, &row.ChangedAt, &row.Probes, &row.CreatedAt, &row.UpdatedAt, &res.dbNow)
	if errors.Is(err, pgx.ErrNoRows) {
		return casResult{}, fmt.Errorf("breaker %q: %w", args[0], ErrNotFound)
	}
	if err != nil {
		return casResult{}, err
	}
	if row.State, err = ParseState(state); err != nil {
		return casResult{}, err
	}
	if row.Probes == nil {
		row.Probes = map[string]time.Time{}
	}
	row.setProbeDue(res.dbNow)
	res.row = &row
	return res, nil
}

// updReturning is the RETURNING list of every CAS update: the row's
// columns (without now(), which cas adds) plus the tripped flag.
const updReturning = `RETURNING s.breaker_key, s.state, s.generation, s.failure_count, s.success_count,
	s.window_started_at, s.window_calls, s.window_failures, s.trip_count, s.opened_at, s.next_probe_at, s.open_since,
	rebound_dead_letter_reason(s.last_error) AS last_error, s.last_failure_at, s.last_success_at, s.changed_by, s.change_reason, s.changed_at,
	s.probes, s.created_at, s.updated_at`

// openTimeoutSQL is the open timeout of the trip that follows trip_count
// (before the increment) trips: $base ms * $mult ^ trip_count, capped.
const openTimeoutSQL = `make_interval(secs => least(%[3]s::float8, %[1]s::float8 * power(%[2]s::float8, cur.trip_count)) / 1000)`

func openTimeoutExpr(base, mult, capMs string) string {
	return fmt.Sprintf(openTimeoutSQL, base, mult, capMs)
}

// ensureRow inserts key's row (closed, generation 1) if it is absent.
func (s *Store) ensureRow(ctx context.Context, key string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key) VALUES ($1) ON CONFLICT (breaker_key) DO NOTHING`, key)
	return err
}

// recordParams are the counts one pod adds to a closed key in one write.
type recordParams struct {
	key        string
	generation int64
	calls      int64 // calls to add to the window (successes + failures)
	failures   int64 // failures to add to the window
	reset      bool  // a success came before the trailing failures: restart failure_count
	trailing   int64 // failures since the last success (added to failure_count)
	lastError  string
	settings   Settings
	builtin    bool // trip with the built-in rules in this statement
}

// record adds a pod's counts to a closed key (compare-and-set on generation
// and state), tripping it to open in the same statement when the built-in
// rules say so.
func (s *Store) record(ctx context.Context, p recordParams) (casResult, error) {
	st := p.settings
	update := `
		SELECT cur.breaker_key,
			(CASE WHEN $5 THEN 0 ELSE cur.failure_count END + $6)::int AS fc,
			CASE WHEN win_reset THEN now() ELSE cur.window_started_at END AS ws,
			CASE WHEN win_reset THEN 0 ELSE cur.window_calls END + $3 AS wc,
			CASE WHEN win_reset THEN 0 ELSE cur.window_failures END + $4 AS wf
		FROM cur, LATERAL (SELECT (cur.window_started_at IS NULL
			OR cur.window_started_at <= now() - make_interval(secs => $8::float8 / 1000)) AS win_reset) w
		WHERE cur.generation = $2 AND cur.state = 'closed'`
	decide := `SELECT n.*, ($12 AND (n.fc >= $9 OR ($10::float8 > 0 AND n.wc >= $11 AND n.wf >= $10::float8 * n.wc))) AS trip FROM (` + update + `) n`
	stmt := `
		UPDATE circuit_breaker_state s SET
			failure_count     = d.fc,
			state             = CASE WHEN d.trip THEN 'open' ELSE s.state END,
			generation        = s.generation + CASE WHEN d.trip THEN 1 ELSE 0 END,
			trip_count        = s.trip_count + CASE WHEN d.trip THEN 1 ELSE 0 END,
			window_started_at = CASE WHEN d.trip THEN NULL ELSE d.ws END,
			window_calls      = CASE WHEN d.trip THEN 0 ELSE d.wc END,
			window_failures   = CASE WHEN d.trip THEN 0 ELSE d.wf END,
			opened_at         = CASE WHEN d.trip THEN now() ELSE s.opened_at END,
			next_probe_at     = CASE WHEN d.trip THEN now() + ` + openTimeoutExpr("$13", "$14", "$15") + ` ELSE s.next_probe_at END,
			probes            = CASE WHEN d.trip THEN '{}' ELSE s.probes END,
			last_error        = CASE WHEN $4 > 0 THEN rebound_dead_letter_reason($7) ELSE s.last_error END,
			last_failure_at   = CASE WHEN $4 > 0 THEN now() ELSE s.last_failure_at END,
			last_success_at   = CASE WHEN $3 > $4 THEN now() ELSE s.last_success_at END
		FROM (` + decide + `) d, cur
		WHERE s.breaker_key = d.breaker_key
		` + updReturning + `, d.trip AS tripped`
	return s.cas(ctx, stmt, p.key, p.generation, p.calls, p.failures, p.reset, p.trailing, p.lastError,
		st.Window.Milliseconds(), st.FailureThreshold, st.ratioParam(), st.MinimumCalls, p.builtin,
		st.OpenTimeout.Milliseconds(), st.OpenTimeoutMultiplier, st.MaxOpenTimeout.Milliseconds())
}

// trip opens a closed key of the given generation (ReadyToTrip's decision).
func (s *Store) trip(ctx context.Context, key string, generation int64, st Settings) (casResult, error) {
	stmt := `
		UPDATE circuit_breaker_state s SET
			state = 'open', generation = s.generation + 1, trip_count = s.trip_count + 1,
			window_started_at = NULL, window_calls = 0, window_failures = 0,
			opened_at = now(), next_probe_at = now() + ` + openTimeoutExpr("$3", "$4", "$5") + `, probes = '{}'
		FROM cur
		WHERE s.breaker_key = cur.breaker_key AND cur.generation = $2 AND cur.state = 'closed'
		` + updReturning + `, true AS tripped`
	return s.cas(ctx, stmt, key, generation, st.OpenTimeout.Milliseconds(), st.OpenTimeoutMultiplier, st.MaxOpenTimeout.Milliseconds())
}

// acquireProbe takes a probe slot: an open key whose next_probe_at has
// passed becomes half_open (a new generation) with this probe as its only
// one; a half_open key admits it while fewer than maxProbes live probes
// hold slots (probes older than probeTimeout no longer count).
func (s *Store) acquireProbe(ctx context.Context, key string, generation int64, token string, st Settings) (casResult, error) {
	stmt := `
		UPDATE circuit_breaker_state s SET
			state         = 'half_open',
			generation    = s.generation + CASE WHEN cur.state = 'open' THEN 1 ELSE 0 END,
			success_count = CASE WHEN cur.state = 'open' THEN 0 ELSE s.success_count END,
			probes        = CASE WHEN cur.state = 'open' THEN '{}'::jsonb ELSE l.probes END || jsonb_build_object($3::text, now())
		FROM cur, LATERAL (
			SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) AS probes, count(*) AS n
			FROM jsonb_each(cur.probes) e
			WHERE (e.value #>> '{}')::timestamptz > now() - make_interval(secs => $5::float8 / 1000)
		) l
		WHERE s.breaker_key = cur.breaker_key AND cur.generation = $2
		  AND ((cur.state = 'open' AND cur.next_probe_at <= now())
		    OR (cur.state = 'half_open' AND l.n < $4))
		` + updReturning + `, false AS tripped`
	return s.cas(ctx, stmt, key, generation, token, st.HalfOpenMaxProbes, st.ProbeTimeout.Milliseconds())
}

// probeSucceeded counts a successful probe; the success_threshold-th closes
// the key (a new generation, counters and trips cleared).
func (s *Store) probeSucceeded(ctx context.Context, key string, generation int64, token string, st Settings) (casResult, error) {
	stmt := `
		UPDATE circuit_breaker_state s SET
			state             = CASE WHEN c.closes THEN 'closed' ELSE s.state END,
			generation        = s.generation + CASE WHEN c.closes THEN 1 ELSE 0 END,
			success_count     = CASE WHEN c.closes THEN 0 ELSE s.success_count + 1 END,
			probes            = CASE WHEN c.closes THEN '{}'::jsonb ELSE s.probes - $3::text END,
			failure_count     = CASE WHEN c.closes THEN 0 ELSE s.failure_count END,
			trip_count        = CASE WHEN c.closes THEN 0 ELSE s.trip_count END,
			opened_at         = CASE WHEN c.closes THEN NULL ELSE s.opened_at END,
			next_probe_at     = CASE WHEN c.closes THEN NULL ELSE s.next_probe_at END,
			window_started_at = CASE WHEN c.closes THEN NULL ELSE s.window_started_at END,
			window_calls      = CASE WHEN c.closes THEN 0 ELSE s.window_calls END,
			window_failures   = CASE WHEN c.closes THEN 0 ELSE s.window_failures END,
			last_success_at   = now()
		FROM cur, LATERAL (SELECT cur.success_count + 1 >= $4 AS closes) c
		WHERE s.breaker_key = cur.breaker_key AND cur.generation = $2 AND cur.state = 'half_open'
		` + updReturning + `, false AS tripped`
	return s.cas(ctx, stmt, key, generation, token, st.SuccessThreshold)
}

// probeFailed re-opens a half_open key (a new generation, trip_count + 1,
// the open timeout grown by the multiplier).
func (s *Store) probeFailed(ctx context.Context, key string, generation int64, lastError string, st Settings) (casResult, error) {
	stmt := `
		UPDATE circuit_breaker_state s SET
			state = 'open', generation = s.generation + 1, trip_count = s.trip_count + 1,
			failure_count = s.failure_count + 1, success_count = 0, probes = '{}',
			opened_at = now(), next_probe_at = now() + ` + openTimeoutExpr("$4", "$5", "$6") + `,
			last_error = rebound_dead_letter_reason($3), last_failure_at = now()
		FROM cur
		WHERE s.breaker_key = cur.breaker_key AND cur.generation = $2 AND cur.state = 'half_open'
		` + updReturning + `, true AS tripped`
	return s.cas(ctx, stmt, key, generation, lastError, st.OpenTimeout.Milliseconds(), st.OpenTimeoutMultiplier, st.MaxOpenTimeout.Milliseconds())
}

// releaseProbe frees a probe's slot without deciding anything (the probe
// was cancelled).
func (s *Store) releaseProbe(ctx context.Context, key string, generation int64, token string) (casResult, error) {
	stmt := `
		UPDATE circuit_breaker_state s SET probes = s.probes - $3::text
		FROM cur
		WHERE s.breaker_key = cur.breaker_key AND cur.generation = $2 AND cur.state = 'half_open' AND cur.probes ? $3::text
		` + updReturning + `, false AS tripped`
	return s.cas(ctx, stmt, key, generation, token)
}

// changedSince returns rows updated after since (database clock), and the
// database clock.
func (s *Store) changedSince(ctx context.Context, since time.Time) ([]*Row, time.Time, error) {
	var rows pgx.Rows
	var err error
	if since.IsZero() {
		rows, err = s.db.Query(ctx, `SELECT `+columns+` FROM circuit_breaker_state`)
	} else {
		rows, err = s.db.Query(ctx, `SELECT `+columns+` FROM circuit_breaker_state WHERE updated_at > $1`, since)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return collect(rows)
}

// byKeys returns the rows of keys (absent keys are omitted), and the
// database clock.
func (s *Store) byKeys(ctx context.Context, keys []string) ([]*Row, time.Time, error) {
	rows, err := s.db.Query(ctx, `SELECT `+columns+` FROM circuit_breaker_state WHERE breaker_key = ANY($1)`, keys)
	if err != nil {
		return nil, time.Time{}, err
	}
	return collect(rows)
}

func collect(rows pgx.Rows) ([]*Row, time.Time, error) {
	defer rows.Close()
	var out []*Row
	var dbNow time.Time
	for rows.Next() {
		row, now, err := scanRow(rows)
		if err != nil {
			return nil, time.Time{}, err
		}
		dbNow = now
		out = append(out, row)
	}
	return out, dbNow, rows.Err()
}
