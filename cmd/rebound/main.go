// Command rebound is the operator's tool: database migrations (rebound
// migrate), the dead-letter queue (rebound dlq) and circuit breakers (rebound
// breaker).
//
// It reads DATABASE_URL (libpq's defaults when unset). Every command prints a
// table for humans, or JSON with --json.
package main

import (
	"context"
	"io"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/migrations"
)

func main() {
	cli.Execute(newRootCmd(os.Stdout))
}

// app is what every command shares: output, --json, the database.
type app struct {
	out  io.Writer
	json bool
}

// connect opens a pool on DATABASE_URL; the caller closes it.
func (a *app) connect(ctx context.Context) (*pgxpool.Pool, error) {
	return cli.Connect(ctx, func(c *pgxpool.Config) { c.MaxConns = 4 })
}

// connectMigrated is connect, then a check that the database is migrated,
// so a command on a database that is not says "run `rebound migrate up`"
// instead of a missing-table error.
func (a *app) connectMigrated(ctx context.Context) (*pgxpool.Pool, error) {
	pool, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	m, err := migrations.New(pool, nil)
	if err == nil {
		err = m.Check(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// print writes v as JSON with --json, else calls human.
func (a *app) print(v any, human func(io.Writer) error) error {
	if a.json {
		return cli.PrintJSON(a.out, v)
	}
	return human(a.out)
}

func newRootCmd(out io.Writer) *cobra.Command {
	a := &app{out: out}
	root := &cobra.Command{
		Use:   "rebound",
		Short: "Operate rebound: migrations, dead-letter queue, circuit breakers, batches, job health, alerts",
		Long: `rebound is the operator's tool for a rebound job queue in PostgreSQL (DATABASE_URL).
Every command prints a table for humans, or JSON with --json.`,
	}
	cli.RequireSubcommand(root)
	root.SetOut(out)
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON instead of a table")
	root.AddCommand(newMigrateCmd(a))
	root.AddCommand(newDLQCmd(a))
	root.AddCommand(newBreakerCmd(a))
	root.AddCommand(newHealthCmd(a))
	root.AddCommand(newAlertsCmd(a))
	root.AddCommand(newBatchCmd(a))
	root.AddCommand(newBenchCmd(a))
	return root
}
