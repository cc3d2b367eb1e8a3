package migrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/migrations"
)

// emptyDatabase returns a database with nothing in it: the harness's
// databases come migrated, so drop everything first.
func emptyDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := dbtest.Pool(t)
	_, err := pool.Exec(context.Background(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	return pool
}

func TestUpIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyDatabase(t)
	m, err := migrations.New(pool, nil)
	require.NoError(t, err)

	require.ErrorIs(t, m.Check(ctx), migrations.ErrBehind)

	first, err := m.Up(ctx)
	require.NoError(t, err)
	riverCount := len(rivermigrateAll(t))
	require.Len(t, first, riverCount+len(migrations.All())+len(migrations.Triggers()))
	require.Equal(t, "river", first[0].Line)
	require.Equal(t, "rebound", first[riverCount+len(migrations.All())-1].Line)
	require.Equal(t, "trigger", first[len(first)-1].Line)
	require.False(t, first[len(first)-1].Repaired, "a first installation creates the trigger; it repairs nothing")

	second, err := m.Up(ctx)
	require.NoError(t, err)
	require.Empty(t, second)
	require.NoError(t, m.Check(ctx))

	statuses, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, statuses, riverCount+len(migrations.All())+len(migrations.Triggers()))
	for _, s := range statuses {
		require.True(t, s.Applied, "%s %d %s", s.Line, s.Version, s.Name)
	}
}

func TestConcurrentUpMigratesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyDatabase(t)

	const pods = 4
	results := make([][]migrations.Applied, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			m, err := migrations.New(pool, nil)
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = m.Up(ctx)
		})
	}
	wg.Wait()
	total := 0
	for i := range pods {
		require.NoError(t, errs[i])
		total += len(results[i])
	}
	require.Equal(t, len(rivermigrateAll(t))+len(migrations.All())+len(migrations.Triggers()), total, "every migration applied exactly once")

	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+migrations.VersionTable).Scan(&n))
	require.Equal(t, len(migrations.All()), n)
}

func TestStatusOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := migrations.New(emptyDatabase(t), nil)
	require.NoError(t, err)
	statuses, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range statuses {
		require.False(t, s.Applied, "%s %d %s", s.Line, s.Version, s.Name)
	}
	err = m.Check(ctx)
	require.ErrorIs(t, err, migrations.ErrBehind)
	// Counted as `rebound migrate status` counts: migrations apart from
	// triggers.
	pending, triggers := len(rivermigrateAll(t))+len(migrations.All()), len(migrations.Triggers())
	require.Equal(t, migrations.Behind{Migrations: pending, TriggersMissing: triggers}, migrations.CountBehind(statuses))
	require.Equal(t, fmt.Sprintf("database migrations are behind: %d migrations pending, %d triggers missing (river 001_create river migration, river 002_initial schema, river 003_river job tags non null, and %d more); run `rebound migrate up`", pending, triggers, pending+triggers-3), err.Error())
}

func TestCheckReportsUnreachableDatabase(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
	require.NoError(t, err)
	defer pool.Close()
	m, err := migrations.New(pool, nil)
	require.NoError(t, err)
	err = m.Check(context.Background())
	require.Error(t, err)
	require.False(t, errors.Is(err, migrations.ErrBehind))
}

func rivermigrateAll(t *testing.T) []rivermigrate.Migration {
	t.Helper()
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	require.NoError(t, err)
	return m.AllVersions()
}

// River's down migrations need the capture trigger gone; once it is back,
// Up drops it around River's migrations, re-applies them and recreates it.
func TestUpAfterRiverDowngradeWithTriggerInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	m, err := migrations.New(pool, nil)
	require.NoError(t, err)
	require.NoError(t, m.Check(ctx))

	for _, tr := range migrations.Triggers() {
		_, err = pool.Exec(ctx, "DROP TRIGGER "+tr.Name+" ON river_job")
		require.NoError(t, err)
	}
	river, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	require.NoError(t, err)
	_, err = river.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: 3})
	require.NoError(t, err)
	for _, tr := range migrations.Triggers() {
		_, err = pool.Exec(ctx, tr.SQL)
		require.NoError(t, err, tr.Name)
	}
	err = m.Check(ctx)
	require.ErrorIs(t, err, migrations.ErrBehind)
	require.Contains(t, err.Error(), "river 004")

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, len(rivermigrateAll(t))-3, len(applied))
	require.NoError(t, m.Check(ctx))

	// The recreated trigger works: a job that dies gets its row.
	var jobID int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, attempt, state, errors)
		VALUES ('{}', 'after_downgrade', 1, 1, 'running', ARRAY['{"attempt":1,"at":"2026-01-01T00:00:00Z","error":"boom"}'::jsonb])
		RETURNING id`).Scan(&jobID))
	_, err = pool.Exec(ctx, "UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE id = $1", jobID)
	require.NoError(t, err)
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", jobID).Scan(&n))
	require.Equal(t, 1, n)
}

// A trigger dropped or disabled by hand: Check names it, Up puts it back
// and says so.
func TestCheckNamesMissingTriggerAndUpRepairsIt(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, sql, want string }{
		{"dropped", "DROP TRIGGER rebound_dead_letter_capture ON river_job", "1 trigger missing (trigger rebound_dead_letter_capture)"},
		{"disabled", "ALTER TABLE river_job DISABLE TRIGGER rebound_dead_letter_capture", "1 trigger disabled (trigger rebound_dead_letter_capture)"},
		{"replica only", "ALTER TABLE river_job ENABLE REPLICA TRIGGER rebound_dead_letter_capture", "1 trigger disabled (trigger rebound_dead_letter_capture)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := dbtest.Pool(t)
			m, err := migrations.New(pool, nil)
			require.NoError(t, err)

			_, err = pool.Exec(ctx, tt.sql)
			require.NoError(t, err)
			err = m.Check(ctx)
			require.ErrorIs(t, err, migrations.ErrBehind)
			require.Equal(t, "database migrations are behind: "+tt.want+"; run `rebound migrate up`", err.Error())

			applied, err := m.Up(ctx)
			require.NoError(t, err)
			require.Equal(t, []migrations.Applied{{Line: "trigger", Name: "rebound_dead_letter_capture", Repaired: true}}, applied)
			require.NoError(t, m.Check(ctx))
			again, err := m.Up(ctx)
			require.NoError(t, err)
			require.Empty(t, again)
		})
	}
}

// A River migration that fails leaves rebound's triggers in place: dead
// jobs keep being captured until the migration is fixed and rerun.
func TestFailedRiverMigrationKeepsTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	for _, tr := range migrations.Triggers() {
		_, err := pool.Exec(ctx, "DROP TRIGGER "+tr.Name+" ON river_job")
		require.NoError(t, err)
	}
	river, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	require.NoError(t, err)
	_, err = river.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: 3})
	require.NoError(t, err)
	for _, tr := range migrations.Triggers() {
		_, err = pool.Exec(ctx, tr.SQL)
		require.NoError(t, err)
	}
	// River's 004 creates river_queue: make it fail.
	_, err = pool.Exec(ctx, "CREATE TABLE river_queue (name text)")
	require.NoError(t, err)

	m, err := migrations.New(pool, nil)
	require.NoError(t, err)
	_, err = m.Up(ctx)
	require.ErrorContains(t, err, "river migrations:")
	var exists bool
	require.NoError(t, pool.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'river_job'::regclass AND tgname = 'rebound_dead_letter_capture')").Scan(&exists))
	require.True(t, exists)
}

// A migration's number is its identity in every database that applied it:
// the applied ones keep their numbers and names, nothing fills the 006-009
// gap, and new files come after 010.
func TestVersionNumbersAreIdentities(t *testing.T) {
	t.Parallel()
	applied := map[int]string{1: "foundation", 2: "dead_letter_capture", 3: "circuit_breaker", 4: "metric_snapshot",
		5: "dead_letter_fixes", 10: "breaker_key_rule"}
	seen := map[int]bool{}
	for _, m := range migrations.All() {
		seen[m.Version] = true
		if name, ok := applied[m.Version]; ok {
			require.Equal(t, name, m.Name, "version %d", m.Version)
			continue
		}
		require.Greater(t, m.Version, 10, "%03d_%s: a new migration takes a number above every existing one", m.Version, m.Name)
	}
	for v := range applied {
		require.True(t, seen[v], "version %d is applied in the field: keep its file", v)
	}
}

// migrationSQL is the SQL of rebound's migration version.
func migrationSQL(t *testing.T, version int) string {
	t.Helper()
	for _, m := range migrations.All() {
		if m.Version == version {
			return m.SQL
		}
	}
	t.Fatalf("no migration %d", version)
	return ""
}

// TestBreakerOpenSinceBackfill: migration 015 gives a breaker out of closed
// its opened_at as open_since (the first open of its outage is not known),
// leaves a closed one's NULL, and stamps nothing else: updated_at (the
// pods' refresh, the idle cleanup) stays.
func TestBreakerOpenSinceBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	sql := migrationSQL(t, 15)
	// The database as 014 left it, with a breaker open for a while and a
	// closed one.
	_, err := db.Pool.Exec(ctx, `DROP TRIGGER circuit_breaker_state_open_since ON circuit_breaker_state;
		DROP FUNCTION circuit_breaker_state_open_since();
		ALTER TABLE circuit_breaker_state DROP COLUMN open_since;
		INSERT INTO circuit_breaker_state (breaker_key, state, trip_count, opened_at, next_probe_at, updated_at) VALUES
			('down', 'open', 4, now() - interval '20 seconds', now() + interval '10 seconds', now() - interval '20 seconds'),
			('fine', 'closed', 0, NULL, NULL, now() - interval '1 hour')`)
	require.NoError(t, err)
	var before string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT string_agg(breaker_key || ' ' || updated_at::text, ', ' ORDER BY breaker_key) FROM circuit_breaker_state`).Scan(&before))
	_, err = db.Pool.Exec(ctx, sql)
	require.NoError(t, err)
	var after string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT string_agg(breaker_key || ' ' || updated_at::text, ', ' ORDER BY breaker_key) FROM circuit_breaker_state`).Scan(&after))
	require.Equal(t, before, after)
	var got string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT string_agg(breaker_key || ': ' || CASE WHEN open_since IS NULL THEN 'NULL' WHEN open_since = opened_at THEN 'opened_at' ELSE open_since::text END, ', ' ORDER BY breaker_key)
		FROM circuit_breaker_state`).Scan(&got))
	require.Equal(t, "down: opened_at, fine: NULL", got)
}

// TestUnknownKindDeadLetterBackfill: migration 016 rebuilds a dead-letter
// row of class unknown_kind written before it (one history row, River's
// reason, first attempt = last) from the errors and metadata it keeps, and
// changes no row of another class.
func TestUnknownKindDeadLetterBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	sql := migrationSQL(t, 16)
	const (
		msg   = "job kind is not registered in the client's Workers bundle: other_svc_kind"
		final = msg + "; no pod registered the kind in 24h0m0s (since 2026-12-01T17:08:51Z), so it is dead-lettered"
		errs  = `[{"at": "2026-12-01T17:08:51Z", "attempt": 1, "error": "` + msg + `", "trace": ""},
		           {"at": "2026-12-01T17:09:52Z", "attempt": 1, "error": "` + msg + `", "trace": ""},
		           {"at": "2026-12-02T17:14:47Z", "attempt": 1, "error": "` + msg + `", "trace": ""}]`
		output = `{"output": {"attempts": [
		           {"attempt": 1, "at": "2026-12-01T17:08:51Z", "class": "unknown_kind", "strategy": "exponential", "delay_ms": 60000, "error": "` + msg + `"},
		           {"attempt": 1, "at": "2026-12-01T17:09:52Z", "class": "unknown_kind", "strategy": "exponential", "delay_ms": 120000, "error": "` + msg + `"},
		           {"attempt": 1, "at": "2026-12-02T17:14:47Z", "class": "unknown_kind", "final": true, "error": "` + final + `"}]}}`
	)
	// As 015's capture wrote them: one history row, River's last error.
	_, err := db.Pool.Exec(ctx, `
INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, metadata, errors,
                                   history, failure_class, failure_reason, first_attempted_at, last_attempted_at)
VALUES (32, 1, 25, 'other_svc_kind', 'default', 1, 'cancelled', '{}', $1::jsonb, $2::jsonb,
        jsonb_build_array(jsonb_build_object('attempt', 1, 'at', '2026-12-02T17:14:47Z', 'class', 'unknown_kind', 'error', $3::text)),
        'unknown_kind', $3, '2026-12-02T17:14:47Z', '2026-12-02T17:14:47Z'),
       (33, 1, 25, 'mail', 'default', 1, 'cancelled', '{}', '{}', '[{"at": "2026-12-02T17:00:00Z", "attempt": 1, "error": "HTTP 404", "trace": ""}]',
        '[{"attempt": 1, "at": "2026-12-02T17:00:00Z", "class": "not_found", "error": "HTTP 404"}]',
        'not_found', 'HTTP 404', '2026-12-02T17:00:00Z', '2026-12-02T17:00:00Z')`, output, errs, msg)
	require.NoError(t, err)
	var otherBefore string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT to_jsonb(d)::text FROM job_dead_letter_queue d WHERE river_job_id = 33`).Scan(&otherBefore))

	_, err = db.Pool.Exec(ctx, sql)
	require.NoError(t, err)

	var (
		reason, fingerprint string
		first, last         time.Time
		hist                []byte
	)
	require.NoError(t, db.Pool.QueryRow(ctx, `
SELECT failure_reason, failure_fingerprint, first_attempted_at, last_attempted_at, history
  FROM job_dead_letter_queue WHERE river_job_id = 32`).Scan(&reason, &fingerprint, &first, &last, &hist))
	require.Equal(t, final, reason)
	require.Contains(t, fingerprint, "no pod registered the kind in")
	require.Equal(t, "2026-12-01T17:08:51Z", first.UTC().Format(time.RFC3339))
	require.Equal(t, "2026-12-02T17:14:47Z", last.UTC().Format(time.RFC3339))
	var rows []struct {
		Attempt int    `json:"attempt"`
		At      string `json:"at"`
		Class   string `json:"class"`
		Error   string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(hist, &rows))
	require.Len(t, rows, 3)
	for i, want := range []struct{ at, err string }{
		{"2026-12-01T17:08:51Z", msg}, {"2026-12-01T17:09:52Z", msg}, {"2026-12-02T17:14:47Z", final},
	} {
		require.Equal(t, 1, rows[i].Attempt, "row %d", i)
		require.Equal(t, want.at, rows[i].At, "row %d", i)
		require.Equal(t, "unknown_kind", rows[i].Class, "row %d", i)
		require.Equal(t, want.err, rows[i].Error, "row %d", i)
	}
	var otherAfter string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT to_jsonb(d)::text FROM job_dead_letter_queue d WHERE river_job_id = 33`).Scan(&otherAfter))
	require.Equal(t, otherBefore, otherAfter)
}
