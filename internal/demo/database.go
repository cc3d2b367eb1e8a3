package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/rebound-queue/rebound/internal/cli"
)

// databaseEnv names the demo's database when --database is not given.
const databaseEnv = "REBOUND_DEMO_DATABASE"

// demoMark starts the comment (COMMENT ON DATABASE) of every database the
// demo creates. The demo drops a database only when its comment starts with
// it: one it created on an earlier run.
const demoMark = "rebound demo database, created by make demo"

// defaultDatabase is a name of its own for each run:
// rebound_demo_<yyyymmdd>_<hhmmss> (local time).
func defaultDatabase(now time.Time) string {
	return "rebound_demo_" + now.Format("20060102_150405")
}

// validateDatabase checks a --database name: 1 to 63 characters (PostgreSQL's
// limit), lower-case letters, digits and underscores, starting with a letter.
func validateDatabase(name string) error {
	ok := name != "" && len(name) <= 63 && name[0] >= 'a' && name[0] <= 'z' &&
		strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
	if !ok {
		return fmt.Errorf("database name %q: must be 1 to 63 characters: lower-case letters, digits and underscores, starting with a letter", name)
	}
	return nil
}

// server is the PostgreSQL server the demo runs on.
type server struct {
	// url is DATABASE_URL, or the URL of the container the demo started.
	url string
	// container is the PostgreSQL container the demo started, nil when
	// DATABASE_URL named a server.
	container *tcpostgres.PostgresContainer
}

// findServer returns DATABASE_URL's server or, when DATABASE_URL is empty
// (scripts/ensure-postgres.sh found nothing) and a Docker engine answers, a
// PostgreSQL container started through testcontainers-go, as the tests do.
// The caller stops the container with stop.
func findServer(ctx context.Context) (*server, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return &server{url: u}, nil
	}
	c, err := startContainer(ctx)
	if err != nil {
		return nil, fmt.Errorf(`no PostgreSQL: DATABASE_URL is empty and no Docker engine answers (%v). Any one of these works:
  - set DATABASE_URL to a server you have (postgres://user@host:5432/postgres)
  - install PostgreSQL (apt-get install postgresql / brew install postgresql@16); make demo finds it
  - start a Docker engine: make demo then runs PostgreSQL in a container`, err)
	}
	u, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(c)
		return nil, err
	}
	return &server{url: u, container: c}, nil
}

// stop removes the container, if the demo started one.
func (s *server) stop() {
	if s.container != nil {
		_ = testcontainers.TerminateContainer(s.container)
	}
}

// startContainer runs postgres:16-alpine in Docker through
// testcontainers-go.
func startContainer(ctx context.Context) (c *tcpostgres.PostgresContainer, err error) {
	defer func() {
		// testcontainers panics in some set-ups without a Docker engine.
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return nil, fmt.Errorf("no Docker engine: %w", err)
	}
	if err := provider.Health(ctx); err != nil {
		return nil, fmt.Errorf("no Docker engine: %w", err)
	}
	step("no PostgreSQL found, but a Docker engine answers: starting postgres:16-alpine (testcontainers)")
	return tcpostgres.Run(ctx, "postgres:16-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
}

// createDatabase creates the database name on the server at base, marked as
// the demo's, and returns its URL. A database of that name that the demo
// created earlier (its comment starts with demoMark) is dropped first;
// any other is left alone and an error says so.
func createDatabase(ctx context.Context, base, name string) (url string, replaced bool, err error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", false, fmt.Errorf("connect to DATABASE_URL: %w (scripts/ensure-postgres.sh finds or starts a server)", err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()

	var comment string
	err = conn.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`, name).Scan(&comment)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return "", false, fmt.Errorf("look for database %s: %w", name, err)
	case strings.HasPrefix(comment, demoMark):
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			return "", false, fmt.Errorf("drop the earlier demo database %s: %w", name, err)
		}
		replaced = true
	default:
		return "", false, fmt.Errorf("database %s exists and the demo did not create it, so the demo leaves it alone: choose another name with --database or %s", name, databaseEnv)
	}

	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P04" { // duplicate_database
			return "", false, fmt.Errorf("database %s was created by someone else a moment ago: run the demo again", name)
		}
		return "", false, fmt.Errorf("create database %s (the demo needs CREATE DATABASE rights): %w", name, err)
	}
	mark := fmt.Sprintf("%s on %s; drop it with: DROP DATABASE %s", demoMark, time.Now().Format(time.RFC3339), name)
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quote(mark)); err != nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE "+ident)
		return "", false, fmt.Errorf("mark database %s as the demo's: %w", name, err)
	}
	url, err = cli.WithDatabase(base, name)
	return url, replaced, err
}

// demoDatabases lists the databases on the server at base that the demo
// created (on this run or earlier ones), by name.
func demoDatabases(ctx context.Context, base string) ([]string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database
		WHERE starts_with(coalesce(shobj_description(oid, 'pg_database'), ''), $1) ORDER BY datname`, demoMark)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
