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
// named rebound_t_<unix seconds>_<random>; ones left behind by a killed
// process are dropped by a later run once they are a day old, as are
// templates of older schemas.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
(apt-get install postgresql / brew install postgresql / docker compose up postgres)`

// staleAfter is the age at which leftover test databases and old templates
// are dropped.
const staleAfter = 24 * time.Hour

// templateLockKey serialises template creation across test processes.
const templateLockKey int64 = 0x7265626f756e6474 // "reboundt"

var (
	setupOnce sync.Once
	setupErr  error
	baseURL   string
	template  string
)

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
// every connection to it) when t ends.
func New(t testing.TB) *Database {
	t.Helper()
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

	dbURL, err := cli.WithDatabase(baseURL, name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("dbtest: connect to %s: %v", name, err)
	}
	t.Cleanup(func() {
		pool.Close()
		dropDatabase(name)
	})
	return &Database{Name: name, URL: dbURL, Pool: pool}
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

func doSetup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	baseURL = os.Getenv("TEST_DATABASE_URL")
	if baseURL == "" {
		baseURL = os.Getenv("DATABASE_URL")
	}
	if baseURL == "" {
		var err error
		if baseURL, err = startContainer(ctx); err != nil {
			return fmt.Errorf("%s\n(testcontainers-go: %v)", HowToProvide, err)
		}
	}

	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w\n%s", redactURL(baseURL), err, HowToProvide)
	}
	defer conn.Close(ctx)

	sum := sha256.Sum256([]byte(migrations.Fingerprint()))
	template = "rebound_tpl_" + hex.EncodeToString(sum[:6])

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("template lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck

	dropStale(ctx, conn)

	var ready bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", template).Scan(&ready)
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
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quote(fmt.Sprintf("rebound test template %d", time.Now().Unix()))); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	return nil
}

// dropStale drops test databases and templates a killed process left behind
// more than a day ago. Best effort: a failure here fails no test.
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
		var created int64
		switch {
		case strings.HasPrefix(d.name, "rebound_t_"):
			created, _ = strconv.ParseInt(strings.Split(strings.TrimPrefix(d.name, "rebound_t_"), "_")[0], 10, 64)
		case d.name != template && !d.isTemplate:
			// Builders hold templateLockKey, as we do now: this one is a
			// build that died half-way.
			created = 1
		case d.name != template:
			created, _ = strconv.ParseInt(strings.TrimPrefix(d.comment, "rebound test template "), 10, 64)
		}
		if created > 0 && created < cutoff {
			ident := pgx.Identifier{d.name}.Sanitize()
			_, _ = conn.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE false")
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		}
	}
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return // a later run drops it once stale
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
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
