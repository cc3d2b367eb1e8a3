package dbtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// RowCounts returns the exact number of rows (count(*)) of every table of
// d, keyed "schema.table". The tables come from the catalog (pg_class:
// ordinary and partitioned tables of every schema but PostgreSQL's own), not
// from a list kept by hand, so a table a new migration adds is counted
// without touching the tests. It fails t when the database cannot be read.
//
// Bad-input tests take it before and after a refused request and compare
// the two maps: a refusal must leave every table as it was.
func (d *Database) RowCounts(t testing.TB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := d.Pool.Query(ctx, `
		SELECT n.nspname, c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatalf("dbtest: list tables: %v", err)
	}
	type table struct{ schema, name string }
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var tb table
		return tb, r.Scan(&tb.schema, &tb.name)
	})
	if err != nil {
		t.Fatalf("dbtest: list tables: %v", err)
	}
	if len(tables) == 0 {
		t.Fatalf("dbtest: database %s has no tables", d.Name)
	}
	// One statement, one snapshot: every count sees the same moment.
	batch := &pgx.Batch{}
	for _, tb := range tables {
		batch.Queue("SELECT count(*) FROM " + pgx.Identifier{tb.schema, tb.name}.Sanitize())
	}
	tx, err := d.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatalf("dbtest: count rows: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	results := tx.SendBatch(ctx, batch)
	counts := make(map[string]int64, len(tables))
	for _, tb := range tables {
		var n int64
		if err := results.QueryRow().Scan(&n); err != nil {
			t.Fatalf("dbtest: count rows of %s.%s: %v", tb.schema, tb.name, err)
		}
		counts[tb.schema+"."+tb.name] = n
	}
	if err := results.Close(); err != nil {
		t.Fatalf("dbtest: count rows: %v", err)
	}
	return counts
}
