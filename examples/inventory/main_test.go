package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// The example runs end to end against a fresh database and the demo
// warehouse (a real HTTP server): the failures are classified, what cannot
// succeed is dead-lettered once each, the breaker opens during the outage
// and closes after it, and every other job stores its stock.
func TestRun(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(context.Background(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err, "start from an empty database: the example migrates it")
	var out, logs bytes.Buffer
	err = run(context.Background(), options{
		databaseURL: db.URL,
		httpAddr:    "127.0.0.1:0",
		logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	}, &out)
	require.NoError(t, err, "output:\n%s\nlogs:\n%s", out.String(), logs.String())
	report := out.String()
	t.Log(report)

	ctx := context.Background()
	type dead struct {
		SKU, Class string
		Attempts   int
	}
	rows, err := db.Pool.Query(ctx, `SELECT args->>'sku', failure_class, jsonb_array_length(metadata->'output'->'attempts')
		FROM job_dead_letter_queue ORDER BY args->>'sku'`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dead])
	require.NoError(t, err)
	require.Equal(t, []dead{{"BAD", "decode", 3}, {"GONE", "not_found", 1}}, got)

	rows, err = db.Pool.Query(ctx, "SELECT sku FROM inventory_stock ORDER BY sku")
	require.NoError(t, err)
	skus, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"A-1", "A-2", "B-1", "B-2", "B-3", "B-4", "B-5", "B-6", "LIMIT"}, skus)

	var state string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT state FROM circuit_breaker_state WHERE breaker_key LIKE 'warehouse:%'").Scan(&state))
	require.Equal(t, "closed", state, "closed again after the outage")

	for _, want := range []string{
		"sync run: 5 jobs inserted with the run's row",
		"breaker warehouse:127.0.0.1:",
		": open; its jobs wait",
		"  LIMIT  completed after 2 attempt(s) [rate_limited (warehouse: HTTP 429, then 1000ms)]",
		"  GONE   cancelled after 1 attempt(s) [not_found (warehouse: HTTP 404, then 0ms)]",
		"  BAD    discarded after 3 attempt(s)",
		`rebound_breaker_transitions_total{from="closed",key="warehouse:127.0.0.1:`,
		`rebound_job_errors_total{class="decode",kind="sync_stock"} 3`,
		`rebound_job_errors_total{class="not_found",kind="sync_stock"} 1`,
	} {
		require.Contains(t, report, want)
	}
}

// TestMain drops the test's database, and the shared template when no other
// test process uses it, once the test ends.
func TestMain(m *testing.M) { dbtest.Main(m) }
