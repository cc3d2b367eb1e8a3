package dbtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// RowCounts counts every table of the schema, found in the catalog: River's
// and rebound's, a table created after the migrations (as a new migration
// would), and rows as they come and go.
func TestRowCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	before := db.RowCounts(t)
	for _, table := range []string{"public.river_job", "public.river_queue", "public.job_dead_letter_queue", "public.circuit_breaker_state", "public.job_batch", "public.job_alert_config", "public.rebound_migration"} {
		require.Contains(t, before, table)
	}
	require.Zero(t, before["public.river_job"])
	require.NotContains(t, before, "public.added_later")

	_, err := db.Pool.Exec(ctx, `CREATE TABLE "added_later" (x int); INSERT INTO added_later VALUES (1), (2);
		CREATE SCHEMA other; CREATE TABLE other."Mixed Case" (x int); INSERT INTO other."Mixed Case" VALUES (3)`)
	require.NoError(t, err)
	after := db.RowCounts(t)
	require.Equal(t, int64(2), after["public.added_later"])
	require.Equal(t, int64(1), after["other.Mixed Case"])
	delete(after, "public.added_later")
	delete(after, "other.Mixed Case")
	require.Equal(t, before, after)
}
