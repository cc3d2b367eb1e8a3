// Package migrations creates and upgrades the database schema rebound needs:
// River's own tables first (through River's rivermigrate), then rebound's.
//
// # Files
//
// rebound's migrations are SQL files embedded in the binary:
//
//   - sql/NNN_name.sql: versioned, forward-only migrations applied in order
//     of NNN, each in its own transaction together with its row in the
//     rebound_migration table. An applied file's statements are never
//     edited (comments may be): a change comes as a new file.
//   - sql/river_triggers/NAME.sql: one CREATE TRIGGER statement each for a
//     trigger named NAME on River's river_job table (the dead-letter capture).
//     They are dropped before River's own migrations run (a River migration
//     that alters river_job.state fails while a trigger depends on that
//     column) and created again after every migration has run, so
//     `rebound migrate up` also repairs a trigger that went missing.
//
// # From a service's start-up
//
// A Go service that runs rebound (package rebound) migrates with this
// package, before it starts its pod, the way `rebound migrate up` does:
//
//	m, err := migrations.New(pool, nil)
//	if err != nil { ... }
//	applied, err := m.Up(ctx) // nothing to apply: an empty slice
//
// A pod's Start checks the result with [Migrator.Check] and refuses to work
// on a database that is behind ([ErrBehind]).
//
// # Version numbers
//
// A database records each applied migration by its number alone
// (rebound_migration.version; no checksum), and [Migrator.Up] applies every
// number it has no row for. So a number is a migration's identity, not a
// position, and numbers are never changed or reused: renumbering 010 to 006
// would make every database that applied 010 run it again as 006 (and fail:
// its constraint exists) while keeping a row for a 010 no file has. The
// numbers need not be dense: 006 to 009 were never used (010 was written on
// the circuit breaker's branch while the dead-letter queue's branch was
// still adding migrations, 005 among them, and took a number clear of
// theirs). A new migration takes a number above every existing file: one in a
// gap would run after higher numbers on databases already migrated, and
// before them on new ones. TestVersionNumbersAreIdentities pins this.
//
// # Concurrency
//
// [Migrator.Up] applies each migration in a transaction of its own that
// takes a transaction-level PostgreSQL advisory lock ([AdvisoryLockKey])
// before it reads what is pending, so any number of pods may run it at the
// same moment, at start-up: each migration is applied once, the others wait
// (up to Config.LockTimeout) and then find nothing to do. Nothing outlives a
// transaction (no session lock, no session setting), so Up is safe through
// PgBouncer in transaction mode too, and a process killed mid-way leaves no
// lock behind. A direct connection is still the better choice for
// migrations: a pooler's query_timeout or server_lifetime may cut a long one
// short (it then rolls back and the next Up applies it).
package migrations

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed sql
var files embed.FS

// AdvisoryLockKey is the key of the transaction advisory lock each of
// [Migrator.Up]'s transactions takes before it reads what is pending
// (pg_advisory_xact_lock(bigint)).
const AdvisoryLockKey int64 = 0x7265626f756e64 // "rebound"

// VersionTable is the table that records which of rebound's versioned
// migrations are applied.
const VersionTable = "rebound_migration"

// Migration is one of rebound's versioned migrations.
type Migration struct {
	// Version is the number the file name starts with (001 -> 1).
	Version int
	// Name is the file name without version and extension ("foundation").
	Name string
	// SQL is the file's content.
	SQL string
}

// Trigger is a trigger rebound keeps on River's river_job table.
type Trigger struct {
	// Name is the trigger's name (the file name without extension).
	Name string
	// SQL is the CREATE TRIGGER statement.
	SQL string
}

// ErrBehind is returned (wrapped, with what is pending) by [Migrator.Check]
// when the database needs `rebound migrate up`.
var ErrBehind = errors.New("database migrations are behind")

// All returns rebound's versioned migrations in the order they apply.
func All() []Migration {
	all, err := loadMigrations(files)
	if err != nil {
		panic(err) // embedded files are checked by tests; a bad name is a build defect
	}
	return all
}

// Triggers returns the triggers rebound keeps on river_job, by name.
func Triggers() []Trigger {
	entries, err := fs.ReadDir(files, "sql/river_triggers")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		panic(err)
	}
	out := make([]Trigger, 0, len(entries))
	for _, e := range entries {
		b, err := fs.ReadFile(files, path.Join("sql/river_triggers", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, Trigger{Name: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(b)})
	}
	return out
}

// Fingerprint identifies the complete schema this binary migrates to
// (River's migrations and rebound's files). Test harnesses use it to name a
// template database.
func Fingerprint() string {
	var b strings.Builder
	for _, m := range rivermigrateVersions() {
		fmt.Fprintf(&b, "river:%d:%d\n", m.Version, len(m.SQLUp))
	}
	for _, m := range All() {
		fmt.Fprintf(&b, "rebound:%d:%s:%s\n", m.Version, m.Name, m.SQL)
	}
	for _, t := range Triggers() {
		fmt.Fprintf(&b, "trigger:%s:%s\n", t.Name, t.SQL)
	}
	return b.String()
}

func rivermigrateVersions() []rivermigrate.Migration {
	m, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	return m.AllVersions()
}

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, "sql")
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version < 1 || name == "" {
			return nil, fmt.Errorf("migration file %q: want NNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join("sql", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: version, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

// Config configures a [Migrator]. The zero value is usable.
type Config struct {
	// Logger receives one line per applied migration. Defaults to a logger
	// that discards everything.
	Logger *slog.Logger
	// LockTimeout bounds each wait for the migration lock (another
	// process applying a migration), through PostgreSQL's lock_timeout set
	// for the lock alone. Defaults to [DefaultLockTimeout].
	LockTimeout time.Duration
}

// DefaultLockTimeout is the default wait for the migration advisory lock.
const DefaultLockTimeout = 5 * time.Minute

// Migrator applies River's and rebound's migrations to one database.
type Migrator struct {
	pool   *pgxpool.Pool
	river  *rivermigrate.Migrator[pgx.Tx]
	logger *slog.Logger
	config Config
}

// New returns a Migrator for the database behind pool. config may be nil.
func New(pool *pgxpool.Pool, config *Config) (*Migrator, error) {
	if config == nil {
		config = &Config{}
	}
	c := *config
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	c.LockTimeout = cmp.Or(c.LockTimeout, DefaultLockTimeout)
	river, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: c.Logger})
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	return &Migrator{pool: pool, river: river, logger: c.Logger, config: c}, nil
}

// Applied is one migration [Migrator.Up] applied, or a trigger it had to
// create again because it was missing or disabled.
type Applied struct {
	// Line is "river", "rebound" or "trigger".
	Line string `json:"line"`
	// Version is the migration's number (0 for a trigger).
	Version int `json:"version"`
	// Name is the migration's name, or the trigger's.
	Name string `json:"name"`
	// Duration is how long the migration took, in nanoseconds in JSON.
	Duration time.Duration `json:"duration_ns"`
	// Repaired is set on a trigger that existed before but was missing or
	// disabled (not on the first installation).
	Repaired bool `json:"repaired,omitempty"`
}

// Up applies every pending migration, River's first, then rebound's, and
// (re)creates rebound's triggers on river_job. It is idempotent: on a
// current database it applies nothing and returns an empty slice.
//
// Each migration runs in a transaction of its own that first takes the
// transaction-level advisory lock [AdvisoryLockKey] and only then reads what
// is pending, and that records the migration's row before it commits. So
// any number of processes may run Up at the same moment (one applies each
// migration, the others wait up to Config.LockTimeout per migration and
// find it applied), and no session state is involved: Up is as safe through
// PgBouncer in transaction mode as on a direct connection, and a process
// killed mid-way leaves no lock behind (its transaction rolls back).
//
// rebound's triggers on river_job are dropped and recreated inside the
// transaction of each River migration (one that alters river_job.state
// fails while a trigger depends on the column), so they never go missing
// between two migrations, and created in the transaction of the last
// migration, or in a transaction of their own when one is missing or
// disabled on an otherwise current database (then reported as Repaired).
// Errors name the migration that failed; its transaction is rolled back.
func (m *Migrator) Up(ctx context.Context) ([]Applied, error) {
	var applied []Applied
	for {
		var (
			step []Applied
			done bool
		)
		err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
			if err := m.lock(ctx, tx); err != nil {
				return err
			}
			var err error
			step, done, err = m.step(ctx, tx)
			return err
		})
		if err != nil {
			return applied, err
		}
		for _, a := range step {
			if a.Line == "trigger" {
				m.logger.InfoContext(ctx, "created trigger", "name", a.Name, "repaired", a.Repaired)
			} else {
				m.logger.InfoContext(ctx, "applied migration", "line", a.Line, "version", a.Version, "name", a.Name, "duration", a.Duration)
			}
		}
		applied = append(applied, step...)
		if done {
			return applied, nil
		}
	}
}

// lock takes the migration lock for tx's lifetime, waiting at most
// Config.LockTimeout (lock_timeout, local to tx).
func (m *Migrator) lock(ctx context.Context, tx pgx.Tx) error {
	ms := max(m.config.LockTimeout.Milliseconds(), 1)
	var previous string
	if err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&previous); err != nil {
		return fmt.Errorf("read lock_timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1::text, true)", strconv.FormatInt(ms, 10)+"ms"); err != nil {
		return fmt.Errorf("set lock_timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::bigint)", AdvisoryLockKey); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
			return fmt.Errorf("wait for migration lock: another migration held it for more than %s", m.config.LockTimeout)
		}
		return fmt.Errorf("wait for migration lock: %w", err)
	}
	// Back to the session's value for the migrations themselves.
	if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1::text, true)", previous); err != nil {
		return fmt.Errorf("set lock_timeout: %w", err)
	}
	return nil
}

// step applies, in tx and under the migration lock, the first pending
// migration (River's before rebound's) with what the triggers need around
// it, or, when none is pending, creates a missing or disabled trigger.
// done reports that nothing is left to apply.
func (m *Migrator) step(ctx context.Context, tx pgx.Tx) (applied []Applied, done bool, err error) {
	present, err := presentTriggers(ctx, tx)
	if err != nil {
		return nil, false, err
	}
	riverPending, err := m.riverPending(ctx, tx)
	if err != nil {
		return nil, false, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+VersionTable+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", VersionTable, err)
	}
	doneVersions, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, false, err
	}
	var reboundPending []Migration
	for _, mig := range All() {
		if _, ok := doneVersions[mig.Version]; !ok {
			reboundPending = append(reboundPending, mig)
		}
	}

	switch {
	case len(riverPending) > 0:
		v := riverPending[0]
		if err := dropTriggers(ctx, tx); err != nil {
			return nil, false, err
		}
		res, err := m.river.MigrateTx(ctx, tx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{MaxSteps: 1}) //nolint:staticcheck // one migration per transaction: what River's deprecation warns of (several in one) does not happen
		if err != nil {
			return nil, false, fmt.Errorf("river migrations: %w", err)
		}
		for _, r := range res.Versions {
			applied = append(applied, Applied{Line: "river", Version: r.Version, Name: r.Name, Duration: r.Duration})
		}
		if len(res.Versions) != 1 || res.Versions[0].Version != v.Version {
			return nil, false, fmt.Errorf("river migrations: applied %d migrations, want only %03d", len(res.Versions), v.Version)
		}
	case len(reboundPending) > 0:
		mig := reboundPending[0]
		start := time.Now()
		if _, err := tx.Exec(ctx, mig.SQL); err != nil {
			return nil, false, fmt.Errorf("migration %03d_%s: %w", mig.Version, mig.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+VersionTable+" (version, name) VALUES ($1::integer, $2::text)", mig.Version, mig.Name); err != nil {
			return nil, false, fmt.Errorf("migration %03d_%s: %w", mig.Version, mig.Name, err)
		}
		applied = append(applied, Applied{Line: "rebound", Version: mig.Version, Name: mig.Name, Duration: time.Since(start)})
		reboundPending = reboundPending[1:]
	}
	upToDate := len(applied) == 0
	riverStep := len(riverPending) > 0
	last := len(reboundPending) == 0 && (!riverStep || len(riverPending) == 1)

	// The triggers call rebound's functions: create them once rebound's
	// migrations are all in, and put back those a River migration needed
	// gone.
	missing, had := false, false
	for _, t := range Triggers() {
		enabled, ok := present[t.Name]
		missing = missing || !ok || !enabled
		had = had || ok
	}
	if (last && missing) || (riverStep && had) {
		if err := createTriggers(ctx, tx); err != nil {
			return nil, false, err
		}
	}
	if last && missing {
		for _, t := range Triggers() {
			if enabled, ok := present[t.Name]; !ok || !enabled {
				applied = append(applied, Applied{Line: "trigger", Name: t.Name, Repaired: upToDate})
			}
		}
	}
	return applied, last, nil
}

func (m *Migrator) riverPending(ctx context.Context, tx pgx.Tx) ([]rivermigrate.Migration, error) {
	existing, err := m.river.ExistingVersionsTx(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("read river migrations: %w", err)
	}
	have := make(map[int]bool, len(existing))
	for _, e := range existing {
		have[e.Version] = true
	}
	var pending []rivermigrate.Migration
	for _, v := range m.river.AllVersions() {
		if !have[v.Version] {
			pending = append(pending, v)
		}
	}
	return pending, nil
}

func dropTriggers(ctx context.Context, tx pgx.Tx) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('river_job') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("look for river_job: %w", err)
	}
	if !exists {
		return nil
	}
	for _, t := range Triggers() {
		if _, err := tx.Exec(ctx, "DROP TRIGGER IF EXISTS "+pgx.Identifier{t.Name}.Sanitize()+" ON river_job"); err != nil {
			return fmt.Errorf("drop trigger %s before River's migrations: %w", t.Name, err)
		}
	}
	return nil
}

func createTriggers(ctx context.Context, tx pgx.Tx) error {
	for _, t := range Triggers() {
		if _, err := tx.Exec(ctx, "DROP TRIGGER IF EXISTS "+pgx.Identifier{t.Name}.Sanitize()+" ON river_job"); err != nil {
			return fmt.Errorf("create trigger %s: %w", t.Name, err)
		}
		if _, err := tx.Exec(ctx, t.SQL); err != nil {
			return fmt.Errorf("create trigger %s: %w", t.Name, err)
		}
	}
	return nil
}

// querier is what the read-only queries need: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func appliedVersions(ctx context.Context, q querier) (map[int]time.Time, error) {
	rows, err := q.Query(ctx, "SELECT version, applied_at FROM "+VersionTable)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", VersionTable, err)
	}
	out := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			return nil, err
		}
		out[v] = at
	}
	return out, rows.Err()
}

// Status is the state of one migration or trigger.
type Status struct {
	// Line is "river", "rebound" or "trigger".
	Line string `json:"line"`
	// Version is the migration's number (absent for a trigger).
	Version int `json:"version,omitempty"`
	// Name is the migration's name, or the trigger's.
	Name string `json:"name"`
	// Applied reports whether the migration is applied (for a trigger:
	// whether it exists on river_job).
	Applied bool `json:"applied"`
	// AppliedAt is when it was applied; nil when pending or unknown.
	AppliedAt *time.Time `json:"applied_at,omitempty"`
	// Disabled reports a trigger that exists but is disabled (Applied is
	// then false).
	Disabled bool `json:"disabled,omitempty"`
}

// Status lists every migration this binary knows, River's then rebound's,
// then rebound's triggers, with whether each is applied. It takes no lock
// and writes nothing.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	existing, err := m.river.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read river migrations: %w", err)
	}
	riverDone := make(map[int]time.Time, len(existing))
	for _, e := range existing {
		riverDone[e.Version] = time.Time{}
	}
	// River's migrator does not report when; its table has it (best effort:
	// very old River schemas lack the line column).
	if rows, err := m.pool.Query(ctx, "SELECT version, created_at FROM river_migration WHERE line = 'main'"); err == nil {
		var (
			v  int
			at time.Time
		)
		_, _ = pgx.ForEachRow(rows, []any{&v, &at}, func() error {
			if _, ok := riverDone[v]; ok {
				riverDone[v] = at
			}
			return nil
		})
	}
	var out []Status
	for _, v := range m.river.AllVersions() {
		s := Status{Line: "river", Version: v.Version, Name: v.Name}
		if at, ok := riverDone[v.Version]; ok {
			s.Applied = true
			if !at.IsZero() {
				s.AppliedAt = &at
			}
		}
		out = append(out, s)
	}

	var tableExists bool
	if err := m.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", VersionTable).Scan(&tableExists); err != nil {
		return nil, fmt.Errorf("look for %s: %w", VersionTable, err)
	}
	done := map[int]time.Time{}
	if tableExists {
		if done, err = appliedVersions(ctx, m.pool); err != nil {
			return nil, err
		}
	}
	for _, mig := range All() {
		s := Status{Line: "rebound", Version: mig.Version, Name: mig.Name}
		if at, ok := done[mig.Version]; ok {
			s.Applied, s.AppliedAt = true, &at
		}
		out = append(out, s)
	}

	present, err := presentTriggers(ctx, m.pool)
	if err != nil {
		return nil, err
	}
	for _, t := range Triggers() {
		enabled, ok := present[t.Name]
		out = append(out, Status{Line: "trigger", Name: t.Name, Applied: ok && enabled, Disabled: ok && !enabled})
	}
	return out, nil
}

// presentTriggers maps the name of every trigger on river_job to whether
// it fires in normal sessions (ALTER TABLE ... DISABLE TRIGGER, or ENABLE
// REPLICA TRIGGER, leave it in place but silent).
func presentTriggers(ctx context.Context, q querier) (map[string]bool, error) {
	// 'O' (the default) and 'A' fire in normal sessions; 'D' never, 'R' only
	// for replication.
	rows, err := q.Query(ctx, `SELECT tgname, tgenabled IN ('O', 'A') FROM pg_trigger
		WHERE tgrelid = to_regclass('river_job') AND NOT tgisinternal`)
	if err != nil {
		return nil, fmt.Errorf("list triggers on river_job: %w", err)
	}
	out := map[string]bool{}
	var (
		name    string
		enabled bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &enabled}, func() error {
		out[name] = enabled
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list triggers on river_job: %w", err)
	}
	return out, nil
}

// Behind counts what a [Migrator.Status] list shows as not applied:
// migrations (River's and rebound's) pending, triggers missing, triggers
// disabled. `rebound migrate status` and [Migrator.Check] both report it,
// so their numbers agree.
type Behind struct {
	// Migrations is the number of migrations not applied.
	Migrations int
	// TriggersMissing is the number of triggers absent from river_job.
	TriggersMissing int
	// TriggersDisabled is the number of triggers present but disabled.
	TriggersDisabled int
}

// CountBehind counts the entries of statuses that are not applied.
func CountBehind(statuses []Status) Behind {
	var b Behind
	for _, s := range statuses {
		switch {
		case s.Applied:
		case s.Line != "trigger":
			b.Migrations++
		case s.Disabled:
			b.TriggersDisabled++
		default:
			b.TriggersMissing++
		}
	}
	return b
}

// String joins the non-zero counts, e.g. "14 migrations pending, 1 trigger
// missing"; "" when nothing is behind.
func (b Behind) String() string {
	var out []string
	for _, p := range []struct {
		n         int
		noun, how string
	}{{b.Migrations, "migration", "pending"}, {b.TriggersMissing, "trigger", "missing"}, {b.TriggersDisabled, "trigger", "disabled"}} {
		if p.n == 0 {
			continue
		}
		noun := p.noun
		if p.n != 1 {
			noun += "s"
		}
		out = append(out, fmt.Sprintf("%d %s %s", p.n, noun, p.how))
	}
	return strings.Join(out, ", ")
}

// Check returns nil when every migration is applied and every trigger
// exists and is enabled, and otherwise an error wrapping [ErrBehind] that
// counts what is behind as `rebound migrate status` does ([Behind]) and
// names the first three, e.g.
//
//	database migrations are behind: 14 migrations pending, 1 trigger missing (river 001_create river migration, river 002_initial schema, river 003_river job tags non null, and 12 more); run `rebound migrate up`
//
// Errors reaching the database are returned as they are. It is what the
// worker's /readyz and start-up check call.
func (m *Migrator) Check(ctx context.Context) error {
	statuses, err := m.Status(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, s := range statuses {
		if s.Applied {
			continue
		}
		if s.Line == "trigger" {
			missing = append(missing, "trigger "+s.Name)
		} else {
			missing = append(missing, fmt.Sprintf("%s %03d_%s", s.Line, s.Version, s.Name))
		}
	}
	if len(missing) > 0 {
		shown := missing
		if len(shown) > 4 {
			shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(missing)-3))
		}
		return fmt.Errorf("%w: %s (%s); run `rebound migrate up`", ErrBehind, CountBehind(statuses), strings.Join(shown, ", "))
	}
	return nil
}
