// Package dbtest gives each test its own PostgreSQL database, migrated to the
// schema of this build (River's tables and rebound's), and drops it when the
// test ends. Tests in many packages run in parallel without seeing each
// other's rows, triggers, advisory locks or notifications.
//
// # Where PostgreSQL comes from
//
// In order: TEST_DATABASE_URL, else DATABASE_URL, else a PostgreSQL container
// started through testcontainers-go when a Docker engine answers. With none of
// these the test fails with one message saying how to provide PostgreSQL; it
// never skips.
//
// # How it stays fast
//
// The first test of a process migrates a template database named after a hash
// of the schema (rebound_tpl_<hash>) under an advisory lock, so concurrent
// test processes build it once; every test then clones it with CREATE
// DATABASE ... TEMPLATE, which takes tens of milliseconds. Test databases are
// named rebound_t_<unix seconds>_<random>.
//
// # How it cleans up
//
// Each test's database is dropped when the test ends. The template is shared
// by every test process (package) running at the same time, so it is
// reference-counted: a process that uses it holds a shared session advisory
// lock on it for its whole life, and [Main], when the package's tests end,
// gives its share back and drops the template if it can then take that lock
// exclusively, i.e. when no other test process still uses it. Both steps run
// under the lock that serialises template builds, so a process starting at
// the same moment either finds the template and takes its share first, or
// finds it gone and builds it again. A package whose tests use dbtest must
// therefore run them through [Main]:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// After a run, no rebound_t_* or rebound_tpl_* database remains. What a killed
// process leaves behind is dropped by a later run: templates that no process
// uses at once, test databases once they are a day old.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/migrations"
)

// HowToProvide is the message a test fails with when no PostgreSQL can be
// found.
const HowToProvide = `no PostgreSQL for tests: set TEST_DATABASE_URL (or DATABASE_URL), e.g.
  TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
or start a Docker engine so testcontainers-go can run one; ` + "`scripts/ensure-postgres.sh`" + ` finds or starts a local server
(apt-get install postgresql / brew install postgresql)`

// staleAfter is the age at which leftover test databases and old templates
// are dropped.
const staleAfter = 24 * time.Hour

// templateLockKey serialises template creation, and the check whether a
// template is still used, across test processes.
const templateLockKey int64 = 0x7265626f756e6474 // "reboundt"

// templateProtocol is part of the template's name: processes of an older
// dbtest, which hold no share of the template, never use (or drop) the
// template of this one.
const templateProtocol = "refcount/1"

// templateComment marks a template built by this protocol; its users hold a
// shared lock on [usersKey]. The creation time (Unix seconds) follows.
const templateComment = "rebound test template (shared lock while used) "

// TemplateEnv, when set, names the template to use instead of the schema's
// (rebound_tpl_ then up to 40 lower-case letters, digits or underscores).
// dbtest's own tests set it so their child processes share a template no
// other test process uses.
const TemplateEnv = "REBOUND_DBTEST_TEMPLATE"

var (
	setupOnce sync.Once
	setupErr  error
	baseURL   string
	template  string

	// holder is the connection that holds this process's share of the
	// template (a session advisory lock) until Main releases it.
	holder *pgx.Conn

	// mainRunning is set by Main; New refuses to run without it, since
	// nothing would release the template.
	mainRunning atomic.Bool

	// live holds the names of the test databases created and not yet
	// dropped, so Main can retry a drop a test's cleanup could not do.
	liveMu sync.Mutex
	live   = map[string]bool{}
)

// Main runs the package's tests (m.Run), then calls each of atExit (for
// instance proctest.RemoveBinaries), drops any test database a test's
// cleanup could not drop, gives back this process's share of the template
// (dropping it when no other test process uses it), and exits with the
// tests' exit code, or 1 when that clean-up fails. Call it from the TestMain
// of every package whose tests use [New] or [Pool]:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
func Main(m *testing.M, atExit ...func()) {
	mainRunning.Store(true)
	code := m.Run()
	for _, f := range atExit {
		f()
	}
	if err := release(); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Database is one test's database.
type Database struct {
	// Name is the database's name.
	Name string
	// URL connects to it, in the same form as the base URL; give it to
	// subprocesses as DATABASE_URL.
	URL string
	// Pool is a pool on it (at most 10 connections), closed when the test
	// ends.
	Pool *pgxpool.Pool
}

// New creates a fresh, fully migrated database for t and drops it (closing
// every connection to it) when t ends. It fails t when the package's
// TestMain does not run the tests through [Main].
func New(t testing.TB) *Database {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("dbtest: this package's TestMain must run the tests through dbtest.Main(m), which releases the template database when they end")
	}
	setup(t)
	ctx := context.Background()

	name := fmt.Sprintf("rebound_t_%d_%s", time.Now().Unix(), randomHex(5))
	admin, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		t.Fatalf("dbtest: connect to %s: %v", redactURL(baseURL), err)
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize())
	admin.Close(ctx)
	if err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	liveMu.Lock()
	live[name] = true
	liveMu.Unlock()
	var pool *pgxpool.Pool
	t.Cleanup(func() {
		if pool != nil {
			pool.Close()
		}
		if err := dropDatabase(name); err != nil {
			t.Logf("dbtest: drop %s: %v (retried when the tests end)", name, err)
		}
	})

	dbURL, err := cli.WithDatabase(baseURL, name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	cfg.MaxConns = 10
	pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("dbtest: connect to %s: %v", name, err)
	}
	return &Database{Name: name, URL: dbURL, Pool: pool}
}

// ForExample creates a fresh, fully migrated database like New, for an
// Example function, which has no testing.TB, and returns its URL: the
// example connects to it where a service would read DATABASE_URL. The
// database lives until the package's tests end, when [Main] drops it, so
// the package must run its tests through Main. It panics (an example's way
// to fail) when Main is not running or no database can be made.
func ForExample() string {
	if !mainRunning.Load() {
		panic("dbtest: this package's TestMain must run the tests through dbtest.Main(m), which drops the examples' databases when they end")
	}
	setupOnce.Do(func() { setupErr = doSetup() })
	if setupErr != nil {
		panic(fmt.Sprintf("dbtest: %v", setupErr))
	}
	ctx := context.Background()
	name := fmt.Sprintf("rebound_t_%d_%s", time.Now().Unix(), randomHex(5))
	admin, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		panic(fmt.Sprintf("dbtest: connect to %s: %v", redactURL(baseURL), err))
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize())
	admin.Close(ctx)
	if err != nil {
		panic(fmt.Sprintf("dbtest: create database %s: %v", name, err))
	}
	liveMu.Lock()
	live[name] = true // Main drops it
	liveMu.Unlock()
	dbURL, err := cli.WithDatabase(baseURL, name)
	if err != nil {
		panic(fmt.Sprintf("dbtest: %v", err))
	}
	return dbURL
}

// Pool is shorthand for New(t).Pool.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return New(t).Pool
}

func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() { setupErr = doSetup() })
	if setupErr != nil {
		t.Fatalf("dbtest: %v", setupErr)
	}
}

// templateName is the template this process uses: TemplateEnv's value, else
// rebound_tpl_ and a hash of the schema and templateProtocol.
func templateName() (string, error) {
	if name := os.Getenv(TemplateEnv); name != "" {
		rest, ok := strings.CutPrefix(name, "rebound_tpl_")
		if !ok || rest == "" || len(rest) > 40 || strings.Trim(rest, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return "", fmt.Errorf("%s=%q: must be rebound_tpl_ then 1 to 40 lower-case letters, digits or underscores", TemplateEnv, name)
		}
		return name, nil
	}
	sum := sha256.Sum256([]byte(templateProtocol + "\n" + migrations.Fingerprint()))
	return "rebound_tpl_" + hex.EncodeToString(sum[:6]), nil
}

// usersKey is the advisory lock key whose shared holders are the processes
// using the template name.
func usersKey(name string) int64 {
	sum := sha256.Sum256([]byte("rebound dbtest template users\n" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

func doSetup() (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if template, err = templateName(); err != nil {
		return err
	}
	baseURL = os.Getenv("TEST_DATABASE_URL")
	if baseURL == "" {
		baseURL = os.Getenv("DATABASE_URL")
	}
	if baseURL == "" {
		if baseURL, err = startContainer(ctx); err != nil {
			return fmt.Errorf("%s\n(testcontainers-go: %v)", HowToProvide, err)
		}
	}

	// conn becomes the holder of this process's share of the template.
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w\n%s", redactURL(baseURL), err, HowToProvide)
	}
	defer func() {
		if err != nil {
			conn.Close(context.Background())
		}
	}()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("template lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck

	dropStale(ctx, conn)
	if err := ensureTemplate(ctx, conn); err != nil {
		return err
	}
	// Take the share before the build lock is given back: no process can
	// find the template unused in between.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", usersKey(template)); err != nil {
		return fmt.Errorf("template share lock: %w", err)
	}
	holder = conn
	return nil
}

// ensureTemplate builds the template unless it is there, complete. The
// caller holds templateLockKey.
func ensureTemplate(ctx context.Context, conn *pgx.Conn) error {
	var ready bool
	err := conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", template).Scan(&ready)
	if err == nil && ready {
		return nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look for template: %w", err)
	}
	// Absent, or left half-built by a killed process: build it afresh.
	ident := pgx.Identifier{template}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop half-built template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	tplURL, err := cli.WithDatabase(baseURL, template)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, tplURL)
	if err != nil {
		return fmt.Errorf("connect to template: %w", err)
	}
	m, err := migrations.New(pool, nil)
	if err == nil {
		_, err = m.Up(ctx)
	}
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quote(fmt.Sprintf("%s%d", templateComment, time.Now().Unix()))); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	return nil
}

// release drops the test databases still alive (their tests' cleanups
// failed), gives back this process's share of the template and, when no
// other process holds one, drops the template. A process that never set up
// has nothing to release.
func release() error {
	if holder == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer holder.Close(context.Background()) // also frees every lock it holds

	var errs []error
	liveMu.Lock()
	left := slices.Sorted(maps.Keys(live))
	liveMu.Unlock()
	for _, name := range left {
		if err := dropDatabase(name); err != nil {
			errs = append(errs, fmt.Errorf("drop test database %s: %w", name, err))
		}
	}

	// Under the build lock, so a process setting up now either took its
	// share before us or finds the template gone and builds it again.
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return errors.Join(append(errs, fmt.Errorf("template lock: %w", err))...)
	}
	key := usersKey(template)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock_shared($1)", key); err != nil {
		return errors.Join(append(errs, fmt.Errorf("give back the template share: %w", err))...)
	}
	var last bool
	if err := holder.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&last); err != nil {
		return errors.Join(append(errs, fmt.Errorf("template share lock: %w", err))...)
	}
	if last {
		if err := dropTemplate(ctx, holder, template); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dropTemplate drops the template name; nothing connects to a template, so
// no FORCE is needed.
func dropTemplate(ctx context.Context, conn *pgx.Conn, name string) error {
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE false"); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "3D000" { // invalid_catalog_name: already gone
			return nil
		}
		return fmt.Errorf("drop template %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident); err != nil {
		return fmt.Errorf("drop template %s: %w", name, err)
	}
	return nil
}

// dropStale drops what killed processes left behind: templates of this
// protocol that no process uses, templates of an older dbtest and test
// databases once they are a day old. The caller holds templateLockKey. Best
// effort: a failure here fails no test.
func dropStale(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), ''), datistemplate
		FROM pg_database WHERE datname LIKE 'rebound\_t\_%' OR datname LIKE 'rebound\_tpl\_%'`)
	if err != nil {
		return
	}
	type db struct {
		name, comment string
		isTemplate    bool
	}
	var dbs []db
	for rows.Next() {
		var d db
		if rows.Scan(&d.name, &d.comment, &d.isTemplate) == nil {
			dbs = append(dbs, d)
		}
	}
	rows.Close()
	cutoff := time.Now().Add(-staleAfter).Unix()
	for _, d := range dbs {
		if d.name == template {
			continue // ensureTemplate looks after it
		}
		if strings.HasPrefix(d.comment, templateComment) {
			var unused bool
			if conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", usersKey(d.name)).Scan(&unused) == nil && unused {
				_ = dropTemplate(ctx, conn, d.name)
				_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", usersKey(d.name))
			}
			continue
		}
		var created int64
		switch {
		case strings.HasPrefix(d.name, "rebound_t_"):
			created, _ = strconv.ParseInt(strings.Split(strings.TrimPrefix(d.name, "rebound_t_"), "_")[0], 10, 64)
		case !d.isTemplate:
			// Builders hold templateLockKey, as we do now: this one is a
			// build that died half-way.
			created = 1
		default: // a template of an older dbtest
			created, _ = strconv.ParseInt(strings.TrimPrefix(d.comment, "rebound test template "), 10, 64)
		}
		if created > 0 && created < cutoff {
			ident := pgx.Identifier{d.name}.Sanitize()
			_, _ = conn.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE false")
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		}
	}
}

// dropDatabase drops the test database name, closing every connection to
// it, and forgets it once it is gone.
func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return err
	}
	liveMu.Lock()
	delete(live, name)
	liveMu.Unlock()
	return nil
}

// startContainer runs PostgreSQL in Docker through testcontainers-go. The
// container lives as long as the test process (testcontainers' reaper
// removes it afterwards).
func startContainer(ctx context.Context) (url string, err error) {
	defer func() {
		// testcontainers panics in some set-ups without a Docker engine.
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return "", fmt.Errorf("no Docker engine: %w", err)
	}
	if err := provider.Health(ctx); err != nil {
		return "", fmt.Errorf("no Docker engine: %w", err)
	}
	c, err := tcpostgres.Run(ctx, "postgres:16-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", err
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}
