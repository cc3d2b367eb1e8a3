package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// End to end: the real binaries, a fresh database, a local upstream.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	env := []string{"DATABASE_URL=" + db.URL}

	first := proctest.Run(t, env, "rebound", "migrate", "up")
	require.Equal(t, 0, first.ExitCode, first.Stderr)
	require.Contains(t, first.Stdout, "migrations applied")
	second := proctest.Run(t, env, "rebound", "migrate", "up")
	require.Equal(t, 0, second.ExitCode, second.Stderr)
	require.Equal(t, "database is up to date; nothing to apply\n", second.Stdout)

	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upstream.Close()

	worker := proctest.StartWorker(t, db.URL)

	var lines strings.Builder
	for i := range 100 {
		fmt.Fprintf(&lines, `{"url": %q, "body": {"n": %d}}`+"\n", upstream.URL+"/hook", i)
	}
	file := filepath.Join(t.TempDir(), "jobs.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(lines.String()), 0o600))
	res := proctest.Run(t, env, "enqueue", "http_request", "--file", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "inserted 100 http_request job(s) into queue default")

	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed' AND kind NOT LIKE 'rebound!_%' ESCAPE '!'") == 100
	})
	require.Equal(t, int64(100), calls.Load())
	require.Equal(t, 100, count(t, db.Pool, "SELECT count(*) FROM river_job"))

	for _, path := range []string{"/healthz", "/readyz"} {
		code, body := get(t, "http://"+worker.HTTPAddr+path)
		require.Equal(t, http.StatusOK, code, path)
		require.Contains(t, body, `"status": "ok"`, path)
	}
	code, body := get(t, "http://"+worker.HTTPAddr+"/api/admin/nothing")
	require.Equal(t, http.StatusNotFound, code)
	require.JSONEq(t, `{"error": "no admin route /api/admin/nothing (see /api/admin/dlq, /api/admin/breakers, /api/admin/batches, /api/admin/job-health and /api/admin/readyz)"}`, body)
	code, metrics := get(t, "http://"+worker.HTTPAddr+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, `rebound_job_attempts_total{kind="http_request",outcome="completed",queue="default"} 100`)
	require.Contains(t, metrics, "# TYPE rebound_queue_jobs gauge")

	worker.Signal(syscall.SIGTERM)
	require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
}

// Behind PgBouncer in transaction mode nothing can LISTEN: --poll-only
// finds jobs by polling, and the breakers LISTEN only on DATABASE_DIRECT_URL
// (a direct connection) when it is given.
func TestPollOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		direct      bool
		wantListens int
	}{
		{name: "with a direct connection for the breakers", direct: true, wantListens: 1},
		{name: "without one", direct: false, wantListens: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			var calls atomic.Int64
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
			defer upstream.Close()
			env := []string{"DATABASE_URL=" + db.URL}
			if tt.direct {
				env = append(env, "DATABASE_DIRECT_URL="+db.URL)
			}
			worker := proctest.Start(t, env, "worker", "--poll-only", "--fetch-poll-interval", "200ms", "--http-addr", proctest.FreeAddr(t))
			for range 5 {
				res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "http_request", "--args", fmt.Sprintf(`{"url": %q}`, upstream.URL))
				require.Equal(t, 0, res.ExitCode, res.Stderr)
			}
			waitFor(t, 30*time.Second, func() bool {
				return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed' AND kind NOT LIKE 'rebound!_%' ESCAPE '!'") == 5
			})
			require.Equal(t, int64(5), calls.Load())
			require.Equal(t, tt.wantListens, count(t, db.Pool,
				"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen%'"))
			worker.Signal(syscall.SIGTERM)
			require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
		})
	}
}

// SIGTERM while a job runs: a job that finishes within --shutdown-timeout
// completes; one that does not is cancelled and back in the queue with its
// attempt unused. Nothing is lost, and the worker exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		jobTakes        time.Duration
		shutdownTimeout string
		wantState       string
		wantAttempt     int
	}{
		{name: "job finishes in time", jobTakes: 2 * time.Second, shutdownTimeout: "15s", wantState: "completed", wantAttempt: 1},
		{name: "job cancelled and returned", jobTakes: time.Minute, shutdownTimeout: "3s", wantState: "available", wantAttempt: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			started := make(chan struct{}, 1)
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				select {
				case <-time.After(tt.jobTakes):
					w.WriteHeader(http.StatusOK)
				case <-r.Context().Done():
				}
			}))
			defer upstream.Close()

			worker := proctest.StartWorker(t, db.URL, "--shutdown-timeout", tt.shutdownTimeout)
			res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "http_request",
				"--args", fmt.Sprintf(`{"url": %q, "timeout_seconds": 120}`, upstream.URL))
			require.Equal(t, 0, res.ExitCode, res.Stderr)
			select {
			case <-started:
			case <-time.After(20 * time.Second):
				t.Fatalf("the job never reached the upstream; worker output:\n%s", worker.Logs())
			}
			stopAt := time.Now()
			worker.Signal(syscall.SIGTERM)
			require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
			if tt.wantState == "available" {
				require.Less(t, time.Since(stopAt), 10*time.Second, "the shutdown timeout bounds the stop")
			}

			var (
				state   string
				attempt int
				errs    int
				history string
			)
			require.NoError(t, db.Pool.QueryRow(context.Background(),
				"SELECT state::text, attempt, coalesce(array_length(errors, 1), 0), coalesce(metadata->'output'->>'attempts', '[]') FROM river_job").Scan(&state, &attempt, &errs, &history))
			require.Equal(t, tt.wantState, state)
			require.Equal(t, tt.wantAttempt, attempt)
			require.Equal(t, 0, errs, "an interrupted attempt is not an error")
			require.Equal(t, "[]", history, "an interrupted attempt is not in the history")
		})
	}
}

// The Idempotency-Key is the same on every attempt of one job and differs
// between jobs.
func TestIdempotencyKeyStableAcrossAttempts(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	var (
		mu   sync.Mutex
		keys = map[string]int{} // key -> calls
	)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		keys[key]++
		n := keys[key]
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()

	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("retry:\n  default:\n    initial_delay: 100ms\n    max_delay: 200ms\n    jitter: none\n"+
		// 6 failures on one host would trip the breaker (threshold 5).
		"breaker:\n  defaults:\n    failure_threshold: 100\n"), 0o600))
	proctest.StartWorker(t, db.URL, "--config", cfg)
	for range 3 {
		res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "http_request", "--args", fmt.Sprintf(`{"url": %q}`, upstream.URL))
		require.Equal(t, 0, res.ExitCode, res.Stderr)
	}
	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed' AND kind NOT LIKE 'rebound!_%' ESCAPE '!'") == 3
	})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, keys, 3, "one key per job")
	for key, calls := range keys {
		require.True(t, strings.HasPrefix(key, "rebound-"), key)
		require.Equal(t, 3, calls, "key %s: every attempt of the job sends it", key)
	}
}

// Bad input at start-up is one line on stderr and exit code 1.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	behind := dbtest.New(t)
	_, err := behind.Pool.Exec(context.Background(), "DROP TABLE rebound_metric_snapshot; DELETE FROM rebound_migration WHERE version = 4")
	require.NoError(t, err)
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(badConfig, []byte("retry:\n  default:\n    max_delay: 1s\n    initial_delay: 5s\n"), 0o600))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests, not when this function returns
	busy := taken.Addr().String()
	unknownKind := filepath.Join(t.TempDir(), "kind.yaml")
	require.NoError(t, os.WriteFile(unknownKind, []byte("retry:\n  kinds:\n    http_requset: {max_attempts: 3}\n"), 0o600))
	unknownKey := filepath.Join(t.TempDir(), "unknown.yaml")
	require.NoError(t, os.WriteFile(unknownKey, []byte("retyr:\n  default: {}\n"), 0o600))

	tests := []struct {
		name    string
		url     string
		args    []string
		env     []string
		wantErr string
	}{
		{name: "malformed DATABASE_URL", url: "postgres://%zz", wantErr: "worker: invalid DATABASE_URL"},
		{name: "unreachable database", url: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", wantErr: "worker: database unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{name: "migrations behind", url: behind.URL, wantErr: "worker: database migrations are behind: 1 migration pending (rebound 004_metric_snapshot); run `rebound migrate up`"},
		{name: "unknown flag", url: db.URL, args: []string{"--nope"}, wantErr: "worker: unknown flag: --nope"},
		{name: "bad queues", url: db.URL, args: []string{"--queues", "default=0"}, wantErr: `queue "default": workers must be a number from 1 to 10000, got "0"`},
		{name: "bad queues from env", url: db.URL, env: []string{"REBOUND_QUEUES=Bad Name=3"}, wantErr: `worker: invalid REBOUND_QUEUES "Bad Name=3": queue name "Bad Name"`},
		{name: "bad duration", url: db.URL, args: []string{"--shutdown-timeout", "soon"}, wantErr: `worker: invalid --shutdown-timeout "soon": want a duration such as 30s, 5m or 1h30m`},
		{name: "bad bool", url: db.URL, args: []string{"--poll-only=maybe"}, wantErr: `worker: invalid --poll-only "maybe": want true or false`},
		{name: "bad bool from env", url: db.URL, env: []string{"REBOUND_POLL_ONLY=maybe"}, wantErr: `worker: invalid REBOUND_POLL_ONLY "maybe": want true or false`},
		{name: "negative shutdown timeout", url: db.URL, args: []string{"--shutdown-timeout", "-1s"}, wantErr: "worker: invalid --shutdown-timeout -1s: must be positive"},
		{name: "bad log level", url: db.URL, args: []string{"--log-level", "loud"}, wantErr: `worker: invalid --log-level "loud": want debug, info, warn or error`},
		{name: "invalid config value", url: db.URL, args: []string{"--config", badConfig}, wantErr: "retry.default.max_delay"},
		{name: "unknown kind in config", url: db.URL, args: []string{"--config", unknownKind}, wantErr: "worker: " + unknownKind + `: retry.kinds.http_requset: unknown job kind "http_requset" (known kinds: http_request, rebound_notify, synthetic, weekly_intelligence)`},
		{name: "unknown config key", url: db.URL, args: []string{"--config", unknownKey}, wantErr: "retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1)"},
		{name: "missing config file", url: db.URL, args: []string{"--config", "/nonexistent.yaml"}, wantErr: "worker: --config /nonexistent.yaml: no such file or directory"},
		{name: "admin routes on a public address without a token", url: db.URL, args: []string{"--http-addr", "0.0.0.0:0"}, wantErr: "worker: admin routes need REBOUND_ADMIN_TOKEN"},
		{name: "malformed DATABASE_DIRECT_URL", url: db.URL, env: []string{"DATABASE_DIRECT_URL=postgres://%zz"}, wantErr: "worker: invalid DATABASE_DIRECT_URL"},
		{name: "unreachable DATABASE_DIRECT_URL", url: db.URL, args: []string{"--poll-only"}, env: []string{"DATABASE_DIRECT_URL=postgres://postgres@127.0.0.1:1/x?connect_timeout=2"}, wantErr: "worker: DATABASE_DIRECT_URL unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{name: "rescue before the job timeout", url: db.URL, args: []string{"--rescue-stuck-jobs-after", "15s"}, wantErr: "worker: --rescue-stuck-jobs-after (15s) must be at least --job-timeout plus --rescue-grace (1m0s + 15s = 1m15s)"},
		{name: "rescue inside the grace", url: db.URL, args: []string{"--job-timeout", "10s", "--rescue-stuck-jobs-after", "20s"}, wantErr: "worker: --rescue-stuck-jobs-after (20s) must be at least --job-timeout plus --rescue-grace (10s + 15s = 25s)"},
		{name: "negative rescue grace", url: db.URL, args: []string{"--rescue-grace", "-1s"}, wantErr: "worker: invalid --rescue-grace -1s: must not be negative"},
		{name: "bad HTTP address", url: db.URL, args: []string{"--http-addr", "nonsense"}, wantErr: `worker: invalid --http-addr "nonsense": address nonsense: missing port in address (want host:port, e.g. :8080 or 127.0.0.1:8080)`},
		{name: "short admin token", url: db.URL, env: []string{"REBOUND_ADMIN_TOKEN=a"}, wantErr: "worker: REBOUND_ADMIN_TOKEN is too short (1 characters): use at least 16 random characters"},
		{name: "blank admin token", url: db.URL, env: []string{"REBOUND_ADMIN_TOKEN=  "}, wantErr: "worker: REBOUND_ADMIN_TOKEN has leading or trailing white space"},
		{name: "address in use", url: db.URL, args: []string{"--http-addr", busy}, wantErr: "worker: listen on " + busy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := proctest.WithDefaults(tt.args, "--http-addr", proctest.FreeAddr(t))
			res := proctest.Run(t, append([]string{"DATABASE_URL=" + tt.url}, tt.env...), "worker", args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Contains(t, res.Stderr, tt.wantErr)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %q", res.Stderr)
			require.NotContains(t, res.Stderr, "goroutine ")
		})
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// A job inserted by another producer with an operation key no breaker can
// hold ends at once, dead-lettered as bad_request, and its upstream is not
// called.
func TestInvalidOperationKeyIsDeadLettered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer upstream.Close()
	_, err := db.Pool.Exec(ctx, `INSERT INTO river_job (kind, args, metadata, state, max_attempts, queue, priority)
		VALUES ('http_request', $1, '{}', 'available', 5, 'default', 1)`, fmt.Sprintf(`{"url": %q, "operation_key": "a\nb"}`, upstream.URL))
	require.NoError(t, err)
	proctest.StartWorker(t, db.URL)
	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_class = 'bad_request'") == 1
	})
	require.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'cancelled' AND attempt = 1"))
	require.Equal(t, int64(0), calls.Load())
}

// A job inserted by another producer, without rebound's insert middleware,
// is dead-lettered under the operation key its breaker used (the URL's
// host), not under its kind.
func TestForeignJobDeadLetteredUnderItsBreakerKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer upstream.Close()
	_, err := db.Pool.Exec(ctx, `INSERT INTO river_job (kind, args, metadata, state, max_attempts, queue, priority)
		VALUES ('http_request', $1, '{}', 'available', 5, 'default', 1)`, fmt.Sprintf(`{"url": %q}`, upstream.URL+"/gone"))
	require.NoError(t, err)
	proctest.StartWorker(t, db.URL)
	host := strings.TrimPrefix(upstream.URL, "http://")
	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue") == 1
	})
	var key, class string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT operation_key, failure_class FROM job_dead_letter_queue").Scan(&key, &class))
	require.Equal(t, host, key)
	require.Equal(t, "not_found", class)
}

// During a database outage /readyz, open to anyone, says "unreachable" and
// nothing about the database (user, name, host, port); the worker logs the
// detail once, and /api/admin/readyz (behind the admin token) shows it.
// The outage is real: the worker reaches PostgreSQL through a local TCP
// proxy that the test then closes, so the port refuses connections.
func TestReadyzDuringDatabaseOutage(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	u, err := url.Parse(db.URL)
	require.NoError(t, err)
	proxy := startTCPProxy(t, u.Host)
	u.Host = proxy.addr
	const token = "0123456789abcdef0123"
	worker := startWorkerWithToken(t, u.String(), token)
	base := "http://" + worker.HTTPAddr

	// The dead-letter trigger disabled: migrations are behind, and /readyz
	// says so without the detail.
	ctx := context.Background()
	_, err = db.Pool.Exec(ctx, "ALTER TABLE river_job DISABLE TRIGGER rebound_dead_letter_capture")
	require.NoError(t, err)
	var code int
	var body string
	waitFor(t, 30*time.Second, func() bool {
		code, body = get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	require.JSONEq(t, `{"status": "not ready", "checks": {"database": "ok", "migrations": "behind: run rebound migrate up"}}`, body)
	_, err = db.Pool.Exec(ctx, "ALTER TABLE river_job ENABLE TRIGGER rebound_dead_letter_capture")
	require.NoError(t, err)
	waitFor(t, 30*time.Second, func() bool {
		code, _ = get(t, base+"/readyz")
		return code == http.StatusOK
	})

	proxy.close()
	waitFor(t, 30*time.Second, func() bool {
		code, body = get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	// Past the 5 s cache, the checks run again: still one log line.
	time.Sleep(6 * time.Second)
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status": "not ready", "checks": {"database": "unreachable", "migrations": "failing"}}`, body)
	for _, secret := range []string{u.User.Username(), strings.TrimPrefix(u.Path, "/"), proxy.addr, "127.0.0.1"} {
		require.NotContains(t, body, secret)
	}

	code, _ = get(t, base+"/api/admin/readyz")
	require.Equal(t, http.StatusUnauthorized, code, "the detail needs the token")
	req, err := http.NewRequest(http.MethodGet, base+"/api/admin/readyz", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	detail, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, string(detail), `"database": "unreachable: failed to connect to`)
	require.Contains(t, string(detail), proxy.addr)

	logs := worker.Logs()
	require.Equal(t, 1, strings.Count(logs, `"msg":"readiness check failing","check":"database","reason":"unreachable"`), logs)
	require.Contains(t, logs, proxy.addr, "the log has the detail")
	require.Equal(t, 1, strings.Count(logs, `"msg":"readiness check failing","check":"migrations","reason":"behind: run rebound migrate up"`), logs)
	require.Equal(t, 1, strings.Count(logs, `"msg":"readiness check passes again","check":"migrations"`), logs)
}

// Admin and health routes asked with a method they do not take answer 405
// with Allow through the real worker, with and without the admin token in
// front (ServeMux used to redirect DELETE /api/admin/dlq with a 307).
func TestWorkerWrongMethod(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	worker := proctest.StartWorker(t, db.URL)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path, allow string
	}{
		{"DELETE", "/api/admin/dlq", "GET, HEAD"},
		{"POST", "/api/admin/dlq/stats", "GET, HEAD"},
		{"GET", "/api/admin/dlq/retry", "POST"},
		{"PUT", "/api/admin/dlq/7/resolve", "POST"},
		{"DELETE", "/api/admin/breakers", "GET, HEAD"},
		{"DELETE", "/api/admin/breakers/api.example.com", "GET, HEAD"},
		{"GET", "/api/admin/breakers/api.example.com/open", "POST"},
		{"POST", "/api/admin/readyz", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
		{"DELETE", "/healthz", "GET, HEAD"},
		{"PUT", "/metrics", "GET, HEAD"},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, "http://"+worker.HTTPAddr+tt.path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s: %s", tt.method, tt.path, b)
		require.Equal(t, tt.allow, resp.Header.Get("Allow"), tt.path)
		require.JSONEq(t, `{"error": "method `+tt.method+` not allowed on `+tt.path+` (allowed: `+tt.allow+`)"}`, string(b))
	}
}

// Every worker flag can be set through the environment with the rules of
// the command line; an error names the variable.
func TestWorkerFlagsFromEnvironment(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL, "REBOUND_SHUTDOWN_TIMEOUT=0s", "REBOUND_HTTP_ADDR=" + proctest.FreeAddr(t)}, "worker")
	require.Equal(t, 1, res.ExitCode)
	require.Equal(t, "worker: invalid REBOUND_SHUTDOWN_TIMEOUT 0s: must be positive\n", res.Stderr)

	addr := proctest.FreeAddr(t)
	p := proctest.Start(t, []string{"DATABASE_URL=" + db.URL, "REBOUND_HTTP_ADDR=" + addr, "REBOUND_LOG_FORMAT=json", "REBOUND_ID=pod-from-env"}, "worker")
	// This process's own line (another test's worker may have been given
	// the same free port).
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(p.Logs(), `"msg":"worker started","http_addr":"`+addr+`"`) })
	// River logs its own start line from its client's goroutine: it may
	// come after the worker's.
	waitFor(t, 30*time.Second, func() bool {
		return strings.Contains(p.Logs(), `"msg":"River client started","client_id":"pod-from-env"`)
	})
	p.Signal(syscall.SIGTERM)
	require.Equal(t, 0, p.Wait(30*time.Second), p.Logs())
}

// startWorkerWithToken is proctest.StartWorker with REBOUND_ADMIN_TOKEN set.
func startWorkerWithToken(t *testing.T, databaseURL, token string) *proctest.Process {
	t.Helper()
	addr := proctest.FreeAddr(t)
	p := proctest.Start(t, []string{"DATABASE_URL=" + databaseURL, "REBOUND_ADMIN_TOKEN=" + token}, "worker",
		"--http-addr", addr, "--log-format", "json")
	p.HTTPAddr = addr
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(p.Logs(), `"msg":"worker started","http_addr":"`+addr+`"`) })
	return p
}

// tcpProxy forwards a local port to target until close, after which the
// port refuses connections.
type tcpProxy struct {
	addr     string
	listener net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	closed   bool
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{addr: l.Addr().String(), listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, up) {
				return
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, conns...)
	return true
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.listener.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// worker --help names every environment variable the worker reads: one per
// flag, and the database, direct-connection and admin token variables.
func TestHelpListsEnvironment(t *testing.T) {
	t.Parallel()
	res := proctest.Run(t, nil, "worker", "--help")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	for _, want := range []string{
		"DATABASE_URL ", "DATABASE_DIRECT_URL ", "REBOUND_ADMIN_TOKEN ",
		"REBOUND_CONFIG                   --config\n",
		"REBOUND_CONSOLE_SECURE_COOKIE    --console-secure-cookie\n",
		"REBOUND_TRUST_FORWARDED_PROTO    --trust-forwarded-proto\n",
		"REBOUND_FETCH_COOLDOWN           --fetch-cooldown\n",
		"REBOUND_FETCH_POLL_INTERVAL      --fetch-poll-interval\n",
		"REBOUND_HTTP_ADDR                --http-addr\n",
		"REBOUND_ID                       --id\n",
		"REBOUND_JOB_TIMEOUT              --job-timeout\n",
		"REBOUND_LOG_FORMAT               --log-format\n",
		"REBOUND_LOG_LEVEL                --log-level\n",
		"REBOUND_POLL_ONLY                --poll-only\n",
		"REBOUND_QUEUES                   --queues\n",
		"REBOUND_RESCUE_GRACE             --rescue-grace\n",
		"REBOUND_RESCUE_STUCK_JOBS_AFTER  --rescue-stuck-jobs-after\n",
		"REBOUND_SHUTDOWN_TIMEOUT         --shutdown-timeout\n",
		"available again within 2 minutes",
	} {
		require.Contains(t, res.Stdout, want)
	}
	require.NotContains(t, res.Stdout, "REBOUND_HELP")
}
