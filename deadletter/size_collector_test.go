package deadletter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

func TestSizeCollector(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 3, "kind_m", "timeout", 100)
	insertEntries(t, b.pool, 2, "kind_n", "network", 200)
	_, err := b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET status = 'retried' WHERE river_job_id = 101")
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET status = 'resolved', resolution_note = 'n', resolved_at = now() WHERE river_job_id = 201")
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET resolution_note = 'changes nothing counted' WHERE river_job_id = 102")
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "DELETE FROM job_dead_letter_queue WHERE river_job_id = 202")
	require.NoError(t, err)

	c := deadletter.NewSizeCollector(b.pool, &deadletter.SizeCollectorConfig{CacheTTL: time.Nanosecond})
	want := `
# HELP rebound_dead_letter_queue_size Dead-letter queue entries by job kind and status (unresolved, retried, resolved).
# TYPE rebound_dead_letter_queue_size gauge
rebound_dead_letter_queue_size{kind="kind_m",status="retried"} 1
rebound_dead_letter_queue_size{kind="kind_m",status="unresolved"} 2
rebound_dead_letter_queue_size{kind="kind_n",status="resolved"} 1
rebound_dead_letter_queue_size{kind="kind_n",status="unresolved"} 0
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want), "rebound_dead_letter_queue_size"))

	// The counts agree with the table, before and after the reconciliation
	// folds them into one row per kind and status.
	const exact = `SELECT count(*) FROM (
		SELECT kind, status, sum(n) AS n FROM job_dead_letter_queue_counts GROUP BY 1, 2 HAVING sum(n) <> 0
		EXCEPT SELECT kind, status, count(*) FROM job_dead_letter_queue GROUP BY 1, 2) d`
	require.Equal(t, 0, count(t, b.pool, exact))
	require.Greater(t, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue_counts"), 4)
	_, err = deadletter.NewReconciler(b.pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue_counts"))
	require.Equal(t, 0, count(t, b.pool, exact))
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want), "rebound_dead_letter_queue_size"))

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
	require.Equal(t, 5, testutil.CollectAndCount(c))

	// Cached: a change is not seen until the TTL passes.
	cached := deadletter.NewSizeCollector(b.pool, &deadletter.SizeCollectorConfig{CacheTTL: time.Hour})
	require.Equal(t, 5, testutil.CollectAndCount(cached))
	insertEntries(t, b.pool, 1, "kind_o", "panic", 300)
	require.Equal(t, 5, testutil.CollectAndCount(cached))
	require.Equal(t, 6, testutil.CollectAndCount(c))
}

func TestReconcilerMetric(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// A dead job without its row (inserted dead: no UPDATE fired the trigger).
	_, err := b.pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, attempt, state, finalized_at, errors)
		VALUES ('{}', 'kind_r', 1, 1, 'discarded', now(), ARRAY['{"attempt":1,"at":"2026-01-01T00:00:00Z","error":"x"}'::jsonb]),
		       ('{}', 'kind_r', 1, 1, 'cancelled', now(), '{}'),
		       ('{}', 'kind_r', 1, 0, 'cancelled', now(), '{}')`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE river_job SET metadata = '{"cancel_attempted_at":"2026-01-01T00:00:00Z"}' WHERE attempt = 0`)
	require.NoError(t, err)

	rec := deadletter.NewReconciler(b.pool, &deadletter.ReconcilerConfig{BatchSize: 1})
	res, err := rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Len(t, res.Added, 2) // the manual cancel is left out
	want := `
# HELP rebound_dead_letter_reconcile_failures_total Dead River jobs a reconciliation pass could not add to the dead-letter queue, once per job per pass (should stay 0; the worker logs each job ID and error).
# TYPE rebound_dead_letter_reconcile_failures_total counter
rebound_dead_letter_reconcile_failures_total 0
# HELP rebound_dead_letter_reconciled_total Dead-letter rows the reconciliation had to add because the capture trigger did not (should stay 0; see PostgreSQL's log for the trigger's warning).
# TYPE rebound_dead_letter_reconciled_total counter
rebound_dead_letter_reconciled_total 2
`
	require.NoError(t, testutil.CollectAndCompare(rec, strings.NewReader(want)))
	problems, err := testutil.CollectAndLint(rec)
	require.NoError(t, err)
	require.Empty(t, problems)

	// Another pod holding the lock: this pass skips.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", deadletter.ReconcileLockKey)
	require.NoError(t, err)
	res, err = rec.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, res.Skipped)
}
