package deadletter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// insertRealistic adds entries from-1+1 .. to (River job IDs too) with
// reasons shaped like real ones, each carrying IDs (hex IDs always hold a
// digit and a letter, so each shape is one group): eight shapes in turn
// (g % 8), and every 1000th entry a reason of its own (a long tail of small
// groups). Entry g is dead-lettered to-g seconds ago. Each row is
// fingerprinted by the trigger as it is written.
func insertRealistic(tb testing.TB, pool *pgxpool.Pool, from, to int) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason,
		 operation_key, dead_lettered_at)
		SELECT g, 3, 3, CASE WHEN g % 8 = 3 THEN 'db_write' ELSE 'http_request' END, 'default', 1, 'discarded',
		       jsonb_build_object('url', 'https://api.example.com/v1/orders/' || g, 'method', 'POST'),
		       CASE WHEN g % 1000 = 999 THEN 'unknown' ELSE (ARRAY['server_error', 'network', 'server_error', 'unknown',
		            'server_error', 'not_found', 'timeout', 'panic'])[g % 8 + 1] END,
		       CASE WHEN g % 1000 = 999 THEN 'worker ' || translate(g::text, '0123456789', 'abcdefghij') || ' rejected the job'
		       ELSE CASE g % 8
		       WHEN 0 THEN format('POST https://api.example.com/v1/orders/%s: HTTP 503 Service Unavailable (Retry-After: %s): {"error":"overloaded","request_id":"req_%s"}', g, g % 60, left(md5(g::text), 16))
		       WHEN 1 THEN format('GET https://api.example.com/users/%s/profile: dial tcp 10.0.%s.%s:443: connect: connection refused', md5(g::text)::uuid, g % 255, g % 7)
		       WHEN 2 THEN format('HTTP 503 from upstream %s', g)
		       WHEN 3 THEN format('ERROR: duplicate key value violates unique constraint "orders_pkey" (SQLSTATE 23505): Key (id)=(%s) already exists.', g)
		       WHEN 4 THEN format('operation error S3: GetObject, https response error StatusCode: 503, RequestID: %sA1, HostID: %s, api error SlowDown: Please reduce your request rate.', upper(left(md5(g::text), 14)), encode(sha256(g::text::bytea), 'base64'))
		       WHEN 5 THEN format('POST https://api.stripe.example/v1/charges: HTTP 404 Not Found: No such customer: ''cus_%s''; request-id: req_%sb2', left(md5(g::text), 14), left(md5((g + 1)::text), 12))
		       WHEN 6 THEN format('PUT https://files.example.com/b/%s?part=%s: context deadline exceeded (Client.Timeout exceeded while awaiting headers) at %s', g, g % 10, timestamptz '2026-11-30 00:00:00Z' + g * interval '1 second')
		       ELSE format(E'panic: runtime error: index out of range [%s] with length %s\n\ngoroutine %s [running]:\nmain.work()\n\t/app/work.go:42 +0x1d', g % 10, g % 5, g)
		       END END,
		       'api.example.com', now() - ($2 - g) * interval '1 second'
		FROM generate_series($1::bigint, $2::bigint) g`, from, to)
	require.NoError(tb, err)
}

func seedRealistic(tb testing.TB, pool *pgxpool.Pool, n int) {
	tb.Helper()
	const chunk = 100_000
	start := time.Now()
	for from := 1; from <= n; from += chunk {
		insertRealistic(tb, pool, from, min(from+chunk-1, n))
	}
	_, err := pool.Exec(context.Background(), "VACUUM ANALYZE job_dead_letter_queue")
	require.NoError(tb, err)
	tb.Logf("inserted %d entries (fingerprinted by the trigger) and vacuumed in %s", n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkStats is Store.Stats (default: unresolved, top 20) over 100,000
// entries in 8 large groups and 100 small ones: from the group counts, and
// with a time range (a pass over the fingerprint index or the table).
func BenchmarkStats(b *testing.B) {
	db := dbtest.New(b)
	store, err := deadletter.New(db.Pool, nil)
	require.NoError(b, err)
	seedRealistic(b, db.Pool, 100_000)
	ctx := context.Background()
	for _, bb := range []struct {
		name   string
		filter deadletter.Filter
	}{
		{"group_counts", deadletter.Filter{}},
		{"time_range", deadletter.Filter{Since: time.Now().Add(-30 * 24 * time.Hour)}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				st, err := store.Stats(ctx, deadletter.StatsParams{Filter: bb.filter})
				if err != nil {
					b.Fatal(err)
				}
				if st.Entries != 100_000 {
					b.Fatalf("%d entries", st.Entries)
				}
			}
		})
	}
}

// TestStatsAtScale measures `rebound dlq stats` through the real binary
// over REBOUND_SCALE_ROWS entries (e.g. 1000000; unset: skipped, it is
// not part of make test), without and with a time range (group counts,
// then a pass over the index), and logs the plans of both queries. It
// fails when the median run without a range takes REBOUND_SCALE_MAX_MS
// milliseconds or more (default 1000).
func TestStatsAtScale(t *testing.T) {
	rowsEnv := os.Getenv("REBOUND_SCALE_ROWS")
	if rowsEnv == "" {
		t.Skip("set REBOUND_SCALE_ROWS (e.g. 1000000) to measure dlq stats at scale")
	}
	n, err := strconv.Atoi(rowsEnv)
	require.NoError(t, err, "REBOUND_SCALE_ROWS")
	require.GreaterOrEqual(t, n, 8000, "REBOUND_SCALE_ROWS")
	maxRun := time.Second
	if v := os.Getenv("REBOUND_SCALE_MAX_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		require.NoError(t, err, "REBOUND_SCALE_MAX_MS")
		maxRun = time.Duration(ms) * time.Millisecond
	}
	db := dbtest.New(t)
	seedRealistic(t, db.Pool, n)
	bin := proctest.Bin(t, "rebound")
	env := []string{"DATABASE_URL=" + db.URL}

	var runs []time.Duration
	for range 5 {
		start := time.Now()
		res := proctest.Run(t, env, "rebound", "dlq", "stats")
		runs = append(runs, time.Since(start))
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
		require.Equal(t, fmt.Sprintf("entries: %d unresolved, 0 retried, 0 resolved", n), lines[0])
		require.Len(t, lines, 5+2*20+2, res.Stdout)
		require.Equal(t, fmt.Sprintf("and %d more groups (%d entries): --top N shows up to 1000", 8+n/1000-20, n/1000-12), lines[len(lines)-2])
		if len(runs) == 1 {
			t.Logf("%s dlq stats:\n%s", bin, res.Stdout)
		}
	}
	start := time.Now()
	res := proctest.Run(t, env, "rebound", "dlq", "stats", "--json", "--top", "8")
	jsonRun := time.Since(start)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	// A time range: counted from the index, a pass over the entries.
	var sinceRuns []time.Duration
	for range 3 {
		start := time.Now()
		res := proctest.Run(t, env, "rebound", "dlq", "stats", "--since", "30d")
		sinceRuns = append(sinceRuns, time.Since(start))
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		require.Contains(t, res.Stdout, fmt.Sprintf("and %d more groups", 8+n/1000-20))
	}
	var st deadletter.Stats
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &st))
	require.Len(t, st.Groups, 8)
	require.Equal(t, int64(n), st.Entries)
	require.Equal(t, int64(8+n/1000), st.TotalGroups)

	ctx := context.Background()
	explain := func(f deadletter.Filter) string {
		sql, args := deadletter.StatsGroupsQuery(f, deadletter.DefaultStatsTop)
		rows, err := db.Pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
		require.NoError(t, err)
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return strings.Join(plan, "\n")
	}
	var size string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_relation_size('job_dead_letter_queue_fingerprint_idx'))
		|| ' index, ' || pg_size_pretty(pg_relation_size('job_dead_letter_queue')) || ' table'`).Scan(&size))

	sorted := slices.Clone(runs)
	slices.Sort(sorted)
	t.Logf("%d entries, %d groups (%s): rebound dlq stats took %v (median %v); --json --top 8 took %v; --since 30d took %v"+
		"\nEXPLAIN (ANALYZE, BUFFERS) of the groups query:\n%s\nand with a time range:\n%s",
		n, st.TotalGroups, size, runs, sorted[len(sorted)/2], jsonRun, sinceRuns,
		explain(deadletter.Filter{}), explain(deadletter.Filter{Since: time.Now().Add(-30 * 24 * time.Hour)}))
	require.Less(t, sorted[len(sorted)/2], maxRun, "median run of rebound dlq stats")
}
