package deadletter_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/migrations"
)

// hash16 is the first 16 hex digits of sha256(k).
func hash16(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])[:16]
}

// incompressibleKey is n characters PostgreSQL cannot compress (a repeated
// character compresses into a small index entry and hides the problem).
func incompressibleKey(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		b.WriteString(hex.EncodeToString(sum[:]))
	}
	return b.String()[:n]
}

// The capture's SQL rule is jobs.NormalizeOperationKey's, multi-byte text
// included: a dead-letter row carries the key the job's breaker used, and a
// filter by the whole key finds it.
func TestOperationKeyRuleMatchesJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a200 := strings.Repeat("a", 200)
	a201 := strings.Repeat("a", 201)
	e200 := strings.Repeat("é", 200)  // 400 bytes, kept: the rule counts characters
	e201 := strings.Repeat("é", 201)  // 402 bytes
	emoji := strings.Repeat("😀", 250) // 1000 bytes
	mixed := "a€" + strings.Repeat("😀", 199)
	long := incompressibleKey(6000)

	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "api.example.com", "api.example.com"},
		{"200 characters kept", a200, a200},
		{"200 two-byte characters kept", e200, e200},
		{"201 characters", a201, strings.Repeat("a", 183) + "…" + hash16(a201)},
		{"two-byte characters", e201, strings.Repeat("é", 183) + "…" + hash16(e201)},
		{"four-byte characters", emoji, strings.Repeat("😀", 183) + "…" + hash16(emoji)},
		{"mixed widths", mixed, "a€" + strings.Repeat("😀", 181) + "…" + hash16(mixed)},
		{"6000 characters", long, long[:183] + "…" + hash16(long)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, jobs.NormalizeOperationKey(tt.in))
			var sql string
			require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT rebound_operation_key($1)", tt.in).Scan(&sql))
			require.Equal(t, tt.want, sql)
			require.LessOrEqual(t, utf8.RuneCountInString(sql), 200)
		})
	}
}

// A 6000-character operation key (more than a btree index row holds) used to
// make the capture fail, so the job had no entry.
func TestCaptureLongOperationKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	key := incompressibleKey(6000)
	client := startClient(t, b.pool, clientOpts{})
	res, err := client.Insert(ctx, failArgs{Mode: "cancel", Message: "HTTP 400"},
		&river.InsertOpts{Metadata: []byte(`{"operation_key":"` + key + `"}`)})
	require.NoError(t, err)
	waitFinal(t, b.pool, res.Job.ID, "cancelled")

	entries := entriesOf(t, b.pool, res.Job.ID)
	require.Len(t, entries, 1)
	want := key[:183] + "…" + hash16(key)
	require.Equal(t, want, entries[0].OperationKey)
	require.Contains(t, string(entries[0].Metadata), key, "metadata keeps the whole key")

	// A filter by the whole key or by the stored one finds it.
	for _, k := range []string{key, want} {
		list, err := b.store.List(ctx, deadletter.ListParams{Filter: deadletter.Filter{OperationKeys: []string{k}}})
		require.NoError(t, err)
		require.Len(t, list.Entries, 1)
		require.Equal(t, entries[0].ID, list.Entries[0].ID)
	}
}

// insertDeadJob inserts a River job that is already discarded, as if the
// capture trigger had failed for it (the trigger fires on updates only).
func insertDeadJob(t *testing.T, b *testBundle, reason, args string) int64 {
	t.Helper()
	var id int64
	err := b.pool.QueryRow(context.Background(), `INSERT INTO river_job
		(state, attempt, max_attempts, attempted_at, finalized_at, args, errors, kind, metadata)
		VALUES ('discarded', 1, 1, now(), now(), $2::jsonb,
		        ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', $1::text, 'trace', '')],
		        'dlq_test', '{}')
		RETURNING id`, reason, args).Scan(&id)
	require.NoError(t, err)
	return id
}

// One row the capture cannot write (a constraint rejects it) neither fails
// the pass nor stops it adding the rows after it, even when a whole batch is
// made of such rows; it is reported and counted once per pass.
func TestReconcileSkipsRowsItCannotCapture(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `ALTER TABLE job_dead_letter_queue ADD CONSTRAINT test_reject
		CHECK (failure_reason <> 'reject me')`)
	require.NoError(t, err)

	longKey := incompressibleKey(6000)
	poison1 := insertDeadJob(t, b, "reject me", `{}`)
	poison2 := insertDeadJob(t, b, "reject me", `{}`)
	good1 := insertDeadJob(t, b, "keep me", `{}`)
	good2 := insertDeadJob(t, b, "keep me", `{"operation_key":"`+longKey+`"}`)
	good3 := insertDeadJob(t, b, "keep me", `{}`)

	rec := deadletter.NewReconciler(b.pool, &deadletter.ReconcilerConfig{BatchSize: 2})
	res, err := rec.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, res.Skipped)
	added := make([]int64, 0, len(res.Added))
	for _, a := range res.Added {
		added = append(added, a.RiverJobID)
	}
	require.Equal(t, []int64{good1, good2, good3}, added)
	require.Len(t, res.Failed, 2)
	for i, id := range []int64{poison1, poison2} {
		require.Equal(t, id, res.Failed[i].RiverJobID)
		require.Equal(t, 1, res.Failed[i].Attempt)
		require.Equal(t, "dlq_test", res.Failed[i].Kind)
		require.Contains(t, res.Failed[i].Error, `violates check constraint "test_reject"`)
	}
	require.Equal(t, longKey[:183]+"…"+hash16(longKey), entriesOf(t, b.pool, good2)[0].OperationKey)
	require.Equal(t, 3, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, 2.0, counterValue(t, rec, "rebound_dead_letter_reconcile_failures_total"))

	// The next pass tries them again (and counts them again).
	res, err = rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Added)
	require.Len(t, res.Failed, 2)
	require.Equal(t, 4.0, counterValue(t, rec, "rebound_dead_letter_reconcile_failures_total"))

	// Once the cause is gone they are added.
	_, err = b.pool.Exec(ctx, "ALTER TABLE job_dead_letter_queue DROP CONSTRAINT test_reject")
	require.NoError(t, err)
	res, err = rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Len(t, res.Added, 2)
	require.Empty(t, res.Failed)
	require.Equal(t, 5, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, 5.0, counterValue(t, rec, "rebound_dead_letter_reconciled_total"))
}

// counterValue reads one counter of a collector through a registry.
func counterValue(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Migration 005 stores the keys of rows written before it (up to what the
// index took) the way the capture now does.
func TestMigration005ShortensStoredKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Back to just before 005, with rows 004's capture could have written.
	_, err := b.pool.Exec(ctx, `DELETE FROM rebound_migration WHERE version = 5;
		DROP FUNCTION rebound_dead_letter_try_capture(jsonb);
		DROP FUNCTION rebound_operation_key(text)`)
	require.NoError(t, err)
	key201 := strings.Repeat("€", 201)
	insertEntries(t, b.pool, 2, "kind_m", "timeout", 100)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET operation_key = $1 WHERE river_job_id = 101", key201)
	require.NoError(t, err)

	m, err := migrations.New(b.pool, nil)
	require.NoError(t, err)
	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, 1)
	require.Equal(t, "dead_letter_fixes", applied[0].Name)

	rows, err := b.pool.Query(ctx, "SELECT operation_key FROM job_dead_letter_queue ORDER BY river_job_id")
	require.NoError(t, err)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{strings.Repeat("€", 183) + "…" + hash16(key201), "op-0"}, keys)
	require.NoError(t, m.Check(ctx))
}
