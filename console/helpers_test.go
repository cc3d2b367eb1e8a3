package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/console"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/health"
)

const testToken = "console-test-token-0123456789"

// heldArgs is the kind of the seeded dead letters. Its queue, "held", is
// one no pod works, so a retried entry's new job stays available for the
// test to see.
type heldArgs struct {
	N int `json:"n"`
}

func (heldArgs) Kind() string { return "console_test_job" }

type heldWorker struct{ river.WorkerDefaults[heldArgs] }

func (heldWorker) Work(context.Context, *river.Job[heldArgs]) error { return nil }

type pod struct {
	url  string
	pool *pgxpool.Pool
}

// startPod starts a pod with the admin token on a loopback port.
func startPod(t *testing.T) *pod {
	t.Helper()
	db := dbtest.New(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &heldWorker{})
	p, err := rebound.New(rebound.Config{
		Pool:       db.Pool,
		Workers:    workers,
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		HTTPAddr:   "127.0.0.1:0",
		AdminToken: testToken,
		Registerer: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, p.Start(ctx))
	t.Cleanup(func() { require.NoError(t, p.Stop(ctx)) })
	return &pod{url: "http://" + p.HTTPAddr(), pool: db.Pool}
}

// serveConsole serves a console over db on a test server: the admin token
// testToken, its own sessions, the dead-letter queue, breakers and health
// of db; edit, if not nil, changes the config first.
func serveConsole(t *testing.T, db *dbtest.Database, edit func(*console.Config)) *httptest.Server {
	t.Helper()
	dlq, err := deadletter.New(db.Pool, nil)
	require.NoError(t, err)
	cfg := console.Config{Pool: db.Pool, DLQ: dlq, Breakers: breaker.NewStore(db.Pool), Health: &health.Checker{DB: db.Pool},
		Token: testToken, Sessions: adminauth.NewSessions(testToken, 0)}
	if edit != nil {
		edit(&cfg)
	}
	con, err := console.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	return srv
}

// seedDeadLetters writes n dead letters of console_test_job, cycling over
// classes and keys, dead-lettered every spacing up to now (the highest ID
// the newest, as in a real queue), with
// a three-attempt history and a secret in the args (which displays redact).
func seedDeadLetters(t testing.TB, pool *pgxpool.Pool, n int, spacing time.Duration, classes, keys []string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state,
			args, metadata, history, failure_class, failure_reason, operation_key,
			first_attempted_at, last_attempted_at, dead_lettered_at)
		SELECT 1000000 + g, 3, 3, 'console_test_job', 'held', 1, 'discarded',
			jsonb_build_object('n', g, 'api_token', 'sk-live-SECRET-' || g),
			jsonb_build_object('operation_key', ($2::text[])[1 + g % cardinality($2::text[])]),
			jsonb_build_array(
				jsonb_build_object('attempt', 1, 'at', now() - make_interval(secs => ($3::int - g) * $4::float8) - interval '10 seconds', 'error', 'HTTP 503 from upstream', 'class', ($1::text[])[1 + g % cardinality($1::text[])], 'strategy', 'exponential', 'delay_ms', 1000),
				jsonb_build_object('attempt', 2, 'at', now() - make_interval(secs => ($3::int - g) * $4::float8) - interval '8 seconds', 'error', 'HTTP 503 from upstream', 'class', ($1::text[])[1 + g % cardinality($1::text[])], 'strategy', 'exponential', 'delay_ms', 2000),
				jsonb_build_object('attempt', 3, 'at', now() - make_interval(secs => ($3::int - g) * $4::float8), 'error', 'HTTP 503 from upstream', 'class', ($1::text[])[1 + g % cardinality($1::text[])])),
			($1::text[])[1 + g % cardinality($1::text[])], 'upstream failed: entry ' || g,
			($2::text[])[1 + g % cardinality($2::text[])],
			now() - make_interval(secs => ($3::int - g) * $4::float8) - interval '10 seconds', now() - make_interval(secs => ($3::int - g) * $4::float8), now() - make_interval(secs => ($3::int - g) * $4::float8)
		FROM generate_series(1, $3::int) g`, classes, keys, n, spacing.Seconds())
	require.NoError(t, err)
}

// openBreaker holds key open for an hour, with a last error.
func openBreaker(t testing.TB, pool *pgxpool.Pool, key string) {
	t.Helper()
	_, err := breaker.NewStore(pool).Open(context.Background(), breaker.OpenParams{Key: key, For: time.Hour, By: "test", Reason: "seeded"})
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), `UPDATE circuit_breaker_state SET last_error = 'HTTP 503: Authorization: Bearer abc.def.ghi', last_failure_at = now(), failure_count = 5 WHERE breaker_key = $1`, key)
	require.NoError(t, err)
}

// client is a browser-like HTTP client: a cookie jar, no automatic
// redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type resp struct {
	code   int
	body   string
	header http.Header
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, hdr map[string]string) resp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{code: res.StatusCode, body: string(b), header: res.Header}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token a page's forms carry.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	require.NotNil(t, m, "no CSRF field in the page")
	return m[1]
}

func login(t *testing.T, c *http.Client, base string) {
	t.Helper()
	r := do(t, c, http.MethodPost, base+"/console/login", url.Values{"token": {testToken}, "next": {"/console/"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }
