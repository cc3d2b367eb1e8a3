package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/migrations"
)

// Example_execute guards calls to a downstream with a breaker shared
// through PostgreSQL: two failures trip it, and the next call is refused
// without running.
func Example_execute() {
	ctx := context.Background()
	pool, cleanup, err := exampleDatabase(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	b, err := breaker.New(pool, breaker.Config{
		Settings: breaker.Settings{FailureThreshold: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer b.Stop(ctx)

	down := errors.New("upstream: HTTP 503")
	for i := 1; i <= 3; i++ {
		err := b.Execute(ctx, "api.example.com", func(context.Context) error { return down })
		var open *breaker.OpenError
		if errors.As(err, &open) {
			fmt.Printf("call %d: refused (%s), state %s\n", i, open.FailureClass(), b.State("api.example.com"))
			continue
		}
		fmt.Printf("call %d: %v\n", i, err)
	}
	// Output:
	// call 1: upstream: HTTP 503
	// call 2: upstream: HTTP 503
	// call 3: refused (breaker_open), state open
}

// exampleDatabase creates a migrated database on TEST_DATABASE_URL (or
// DATABASE_URL) for the example.
func exampleDatabase(ctx context.Context) (*pgxpool.Pool, func(), error) {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = os.Getenv("DATABASE_URL")
	}
	if base == "" {
		return nil, nil, errors.New(dbtest.HowToProvide)
	}
	admin, err := pgxpool.New(ctx, base)
	if err != nil {
		return nil, nil, err
	}
	name := fmt.Sprintf("rebound_example_breaker_%d", os.Getpid())
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, nil, err
	}
	cfg, err := pgxpool.ParseConfig(base)
	if err != nil {
		admin.Close()
		return nil, nil, err
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		admin.Close()
		return nil, nil, err
	}
	m, err := migrations.New(pool, nil)
	if err == nil {
		_, err = m.Up(ctx)
	}
	cleanup := func() {
		pool.Close()
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return pool, cleanup, nil
}
