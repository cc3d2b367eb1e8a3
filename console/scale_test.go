package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/console"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/health"
)

// recorder remembers the SQL the console sends, with its arguments.
type recorder struct {
	mu      sync.Mutex
	queries []recorded
}

type recorded struct {
	sql  string
	args []any
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.queries = append(r.queries, recorded{d.SQL, d.Args})
	r.mu.Unlock()
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queries
	r.queries = nil
	return q
}

// TestScale seeds 100,000 dead letters (over 30 days) and 10,000 breaker
// keys, measures each page (the median of 5 requests, logged: the README's
// figures come from here), and EXPLAINs every statement the list pages send
// to check that none reads job_dead_letter_queue or circuit_breaker_state
// with a sequential scan. Set REBOUND_SCALE_ROWS to change the number of
// dead letters: 20,000 by default, to keep the suite quick; the README's
// figures come from REBOUND_SCALE_ROWS=100000.
func TestScale(t *testing.T) {
	t.Parallel()
	rows := 20_000 // in the suite; the README's figures are for 100,000
	if s := os.Getenv("REBOUND_SCALE_ROWS"); s != "" {
		_, err := fmt.Sscan(s, &rows)
		require.NoError(t, err)
	}
	db := dbtest.New(t)
	ctx := context.Background()
	start := time.Now()
	// The fingerprint trigger (regular expressions, row by row) would take
	// most of the seeding time; the rows get the fingerprint their reason
	// has instead.
	_, err := db.Pool.Exec(ctx, `ALTER TABLE job_dead_letter_queue DISABLE TRIGGER rebound_dead_letter_fingerprint;
		ALTER TABLE job_dead_letter_queue ALTER COLUMN failure_fingerprint SET DEFAULT 'upstream failed: entry <n>'`)
	require.NoError(t, err)
	seedDeadLetters(t, db.Pool, rows, 30*24*time.Hour/time.Duration(rows), []string{"server_error", "rate_limited", "timeout", "network", "not_found", "bad_request"},
		[]string{"payments", "mail", "search", "crm", "billing", "shipping", "stock"})
	_, err = db.Pool.Exec(ctx, `ALTER TABLE job_dead_letter_queue ENABLE TRIGGER rebound_dead_letter_fingerprint;
		ALTER TABLE job_dead_letter_queue ALTER COLUMN failure_fingerprint DROP DEFAULT`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, state, failure_count, trip_count, opened_at, next_probe_at, last_error, last_failure_at)
		SELECT 'key-' || lpad(g::text, 5, '0'),
			CASE WHEN g % 100 = 0 THEN 'open' WHEN g % 1000 = 1 THEN 'half_open' ELSE 'closed' END,
			g % 5, CASE WHEN g % 100 = 0 THEN 1 ELSE 0 END,
			CASE WHEN g % 100 = 0 THEN now() END, CASE WHEN g % 100 = 0 THEN now() + interval '1 minute' END,
			'HTTP 503 from key-' || g, now()
		FROM generate_series(1, 10000) g`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `ANALYZE job_dead_letter_queue; ANALYZE circuit_breaker_state`)
	require.NoError(t, err)
	t.Logf("seeded %d dead letters and 10,000 breaker keys in %s", rows, time.Since(start).Round(time.Millisecond))

	rec := &recorder{}
	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	dlq, err := deadletter.New(pool, nil)
	require.NoError(t, err)
	sessions := adminauth.NewSessions(testToken, 0)
	con, err := console.New(console.Config{Pool: pool, DLQ: dlq, Breakers: breaker.NewStore(pool), Health: &health.Checker{DB: pool},
		Snapshots: monitor.NewSnapshots(pool), Token: testToken, Sessions: sessions})
	require.NoError(t, err)
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	cookie, _ := sessions.Issue(time.Now())

	var deep string // a cursor half-way down the queue
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT 'id:' || (max(id) / 2) FROM job_dead_letter_queue`).Scan(&deep))
	pages := []struct {
		name, path string
		explain    bool // the list pages: no sequential scan allowed
	}{
		{"overview", "/console/", false},
		{"DLQ list", "/console/dlq", true},
		{"DLQ list, page half-way down", "/console/dlq?after=" + deep, true},
		{"DLQ filtered by class", "/console/dlq?class=timeout", true},
		{"DLQ filtered by key, status and 24 h", "/console/dlq?key=crm&status=unresolved&since=24h", true},
		{"DLQ entry", "/console/dlq/1", true},
		{"breakers", "/console/breakers", true},
		{"breakers, open only", "/console/breakers?state=open", true},
		{"breakers, page half-way", "/console/breakers?after=key-05000", true},
		{"alerts", "/console/alerts", false},
	}
	var report strings.Builder
	for _, p := range pages {
		get := func() time.Duration {
			req, err := http.NewRequest(http.MethodGet, srv.URL+p.path, nil)
			require.NoError(t, err)
			req.AddCookie(&http.Cookie{Name: adminauth.SessionCookie, Value: cookie})
			t0 := time.Now()
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode, p.path)
			return time.Since(t0)
		}
		get() // warm: prepared statements, caches
		rec.take()
		times := []time.Duration{}
		for range 5 {
			times = append(times, get())
		}
		slices.Sort(times)
		if os.Getenv("REBOUND_SCALE_PLANS") != "" {
			for _, q := range rec.take() {
				if strings.Contains(q.sql, "LIMIT") {
					r, _ := db.Pool.Query(ctx, "EXPLAIN ANALYZE "+q.sql, q.args...)
					l, _ := pgx.CollectRows(r, pgx.RowTo[string])
					t.Logf("%s:\n%s\n%s", p.name, q.sql, strings.Join(l, "\n"))
				}
			}
		}
		fmt.Fprintf(&report, "| %s | `%s` | %.1f ms |\n", p.name, p.path, float64(times[2].Microseconds())/1000)
		if !p.explain {
			continue
		}
		seen := map[string]bool{}
		for _, q := range rec.take() {
			// The list statements (a page: LIMIT); the counts by state
			// read all 10,000 breaker rows by design (README).
			if seen[q.sql] || !strings.Contains(q.sql, "SELECT") || !strings.Contains(q.sql, "LIMIT") {
				continue
			}
			seen[q.sql] = true
			planRows, err := db.Pool.Query(ctx, "EXPLAIN "+q.sql, q.args...)
			require.NoError(t, err)
			lines, err := pgx.CollectRows(planRows, pgx.RowTo[string])
			require.NoError(t, err)
			whole := strings.Join(lines, "\n")
			for _, table := range []string{"job_dead_letter_queue", "circuit_breaker_state"} {
				require.NotContains(t, whole, "Seq Scan on "+table, "%s: %s\n%s", p.name, q.sql, whole)
			}
		}
	}
	t.Logf("page times (median of 5, %d dead letters, 10,000 breaker keys):\n%s", rows, report.String())
}
