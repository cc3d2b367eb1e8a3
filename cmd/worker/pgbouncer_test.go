package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
	"github.com/rebound-queue/rebound/migrations"
)

// pgBouncer is a real PgBouncer in transaction mode in front of the test
// PostgreSQL, for any database of it.
type pgBouncer struct {
	addr string // 127.0.0.1:port
	mu   sync.Mutex
	logs bytes.Buffer
}

// Write collects PgBouncer's log (stderr).
func (b *pgBouncer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs.Write(p)
}

func (b *pgBouncer) Logs() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs.String()
}

// url returns directURL (a database of the test PostgreSQL) through the
// pooler, with default_query_exec_mode set to mode unless mode is "".
func (b *pgBouncer) url(t *testing.T, directURL, mode string) string {
	t.Helper()
	u, err := url.Parse(directURL)
	require.NoError(t, err)
	u.Host = b.addr
	if mode != "" {
		q := u.Query()
		q.Set("default_query_exec_mode", mode)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// startPgBouncer starts PgBouncer (the Debian package's /usr/sbin/pgbouncer)
// with a generated ini in a temporary folder: pool_mode = transaction, a
// free loopback port, a wildcard database entry pointing at the host and
// port of directURL, auth_type = trust with an auth_file naming its user
// (the test PostgreSQL trusts local connections). PgBouncer refuses to run
// as root: as root, the ini tells it to switch to the user nobody (it reads
// its files first). It is stopped when the test ends.
func startPgBouncer(t *testing.T, directURL string) *pgBouncer {
	t.Helper()
	bin := proctest.Tool(t, "pgbouncer", "pgbouncer")
	u, err := url.Parse(directURL)
	require.NoError(t, err)
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	user := u.User.Username()
	if user == "" {
		user = "postgres"
	}
	b := &pgBouncer{addr: proctest.FreeAddr(t)}
	_, listenPort, err := net.SplitHostPort(b.addr)
	require.NoError(t, err)

	dir := t.TempDir()
	authFile := filepath.Join(dir, "users.txt")
	require.NoError(t, os.WriteFile(authFile, []byte(fmt.Sprintf("%q \"\"\n", user)), 0o644))
	var runAs string
	if os.Geteuid() == 0 {
		runAs = "user = nobody\n"
	}
	ini := filepath.Join(dir, "pgbouncer.ini")
	require.NoError(t, os.WriteFile(ini, []byte(`[databases]
* = host=`+host+` port=`+port+`

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = `+listenPort+`
unix_socket_dir =
auth_type = trust
auth_file = `+authFile+`
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
`+runAs), 0o644))

	cmd := exec.Command(bin, ini)
	cmd.Stdout, cmd.Stderr = b, b
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			conn.Close()
			return b
		}
		select {
		case <-done:
			t.Fatalf("pgbouncer exited at start: %s", b.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer does not listen on %s after 10s: %s", b.addr, b.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWorkerEnv starts a worker with env (DATABASE_URL and the rest) and
// args, on a free loopback --http-addr, and waits until /readyz answers
// 200 (at most 30 s).
func startWorkerEnv(t *testing.T, env []string, args ...string) *proctest.Process {
	t.Helper()
	addr := proctest.FreeAddr(t)
	p := proctest.Start(t, env, "worker", proctest.WithDefaults(args, "--http-addr", addr, "--log-format", "json", "--log-level", "debug")...)
	p.HTTPAddr = addr
	waitFor(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// The README's recipe behind PgBouncer in transaction mode, with two
// worker pods: DATABASE_URL through the pooler with
// default_query_exec_mode=cache_describe, DATABASE_DIRECT_URL for the
// breakers' LISTEN, --poll-only. Jobs complete, a permanently failing job
// lands in the dead-letter queue, a breaker opened by failures on one pod
// is seen open by the other, both pods' /metrics show the queue and DLQ
// gauges, and neither logs a failed query or the LISTEN warning.
func TestTwoWorkersBehindPgBouncerInTransactionMode(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bouncer := startPgBouncer(t, db.URL)
	pooled := bouncer.url(t, db.URL, "cache_describe")
	env := []string{"DATABASE_URL=" + pooled, "DATABASE_DIRECT_URL=" + db.URL}

	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("breaker:\n  defaults:\n    failure_threshold: 2\n    open_timeout: 10m\n"), 0o600))
	common := []string{"--config", cfg, "--poll-only", "--fetch-poll-interval", "100ms"}
	// Only pod a works the queue "flaky": the failures that open the
	// breaker happen there.
	a := startWorkerEnv(t, env, append(common, "--queues", "default=5,flaky=2")...)
	b := startWorkerEnv(t, env, append(common, "--queues", "default=5")...)

	enqueue := func(stdin string, args ...string) {
		t.Helper()
		res := proctest.RunStdin(t, []string{"DATABASE_URL=" + pooled}, stdin, "enqueue", args...)
		require.Equal(t, 0, res.ExitCode, "enqueue %s: %s", strings.Join(args, " "), res.Stderr)
	}
	enqueue(strings.Repeat("{}\n", 40)+`{"fail_attempts": 9, "fail_class": "not_found"}`+"\n", "synthetic", "--file", "-")
	enqueue(strings.Repeat(`{"fail_attempts": 9, "fail_class": "server_error", "operation_key": "flaky.example"}`+"\n", 2),
		"synthetic", "--file", "-", "--queue", "flaky", "--max-attempts", "1")

	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND state NOT IN ('completed', 'cancelled', 'discarded')") == 0
	})
	require.Equal(t, 40, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND state = 'completed'"))
	require.Equal(t, 3, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_class = 'not_found'"))
	t.Logf("jobs worked by %d pods", count(t, db.Pool, "SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE kind = 'synthetic' AND queue = 'default'"))

	// Opened on pod a, seen by pod b.
	for _, p := range []*proctest.Process{a, b} {
		waitFor(t, 10*time.Second, func() bool {
			_, metrics := get(t, "http://"+p.HTTPAddr+"/metrics")
			return strings.Contains(metrics, `rebound_breaker_state{key="flaky.example"} 2`)
		})
	}
	_, metricsB := get(t, "http://"+b.HTTPAddr+"/metrics")
	// Pod b knows the key (its transition series exist at 0) but made no
	// transition: it only saw pod a's.
	require.Contains(t, metricsB, `rebound_breaker_transitions_total{from="closed",key="flaky.example",to="open"} 0`+"\n", "pod b only saw it")

	for _, p := range []*proctest.Process{a, b} {
		waitFor(t, 20*time.Second, func() bool {
			_, metrics := get(t, "http://"+p.HTTPAddr+"/metrics")
			return strings.Contains(metrics, `rebound_dead_letter_queue_size{kind="synthetic",status="unresolved"} 3`) &&
				strings.Contains(metrics, `rebound_queue_jobs{kind="synthetic",queue="default",state="available"} 0`)
		})
	}
	for _, p := range []*proctest.Process{a, b} {
		p.Signal(syscall.SIGTERM)
		require.Equal(t, 0, p.Wait(30*time.Second), p.Logs())
		require.NotContains(t, p.Logs(), "SQLSTATE", "a query failed through the pooler")
		require.NotContains(t, p.Logs(), "LISTEN/NOTIFY does not work")
	}
}

// A worker behind PgBouncer in transaction mode without --poll-only: its
// LISTENs are lost, and it says so in one warning line naming the fix
// (--poll-only, DATABASE_DIRECT_URL). It still works jobs, by polling.
func TestWorkerWithoutPollOnlyBehindPgBouncerWarnsOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bouncer := startPgBouncer(t, db.URL)
	pooled := bouncer.url(t, db.URL, "cache_describe")
	w := startWorkerEnv(t, []string{"DATABASE_URL=" + pooled}, "--fetch-poll-interval", "200ms")
	res := proctest.Run(t, []string{"DATABASE_URL=" + pooled}, "enqueue", "synthetic", "--args", "{}")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	waitFor(t, 20*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND state = 'completed'") == 1
	})
	const warning = "LISTEN/NOTIFY does not work on the database connections (PgBouncer in transaction mode?)"
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(w.Logs(), warning) })
	time.Sleep(time.Second) // nothing more comes
	w.Signal(syscall.SIGTERM)
	require.Equal(t, 0, w.Wait(30*time.Second), w.Logs())
	var warned []map[string]any
	for _, raw := range strings.Split(w.Logs(), "\n") {
		if strings.HasPrefix(raw, "{") && strings.Contains(raw, "LISTEN/NOTIFY") {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(raw), &m), raw)
			warned = append(warned, m)
		}
	}
	require.Len(t, warned, 1, w.Logs())
	require.Equal(t, "WARN", warned[0]["level"])
	require.Contains(t, warned[0]["msg"], "--poll-only")
	require.Contains(t, warned[0]["msg"], "DATABASE_DIRECT_URL")

	// On a direct connection the check passes: no warning.
	direct := startWorkerEnv(t, []string{"DATABASE_URL=" + db.URL})
	time.Sleep(2 * time.Second)
	direct.Signal(syscall.SIGTERM)
	require.Equal(t, 0, direct.Wait(30*time.Second), direct.Logs())
	require.NotContains(t, direct.Logs(), "LISTEN/NOTIFY")
}

// Four `rebound migrate up` at once through PgBouncer in transaction mode
// on an empty database: each migration is applied once (every transaction
// takes the migration lock itself, nothing relies on a session), no
// advisory lock is left behind, and a later `migrate up` on the direct URL
// finds nothing to do at once.
func TestConcurrentMigrateUpThroughPgBouncerMigratesOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(t.Context(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	bouncer := startPgBouncer(t, db.URL)
	pooled := []string{"DATABASE_URL=" + bouncer.url(t, db.URL, "cache_describe")}

	const runs = 4
	results := make([]proctest.Result, runs)
	proctest.Bin(t, "rebound") // built before the clock starts
	start := time.Now()
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { results[i] = proctest.Run(t, pooled, "rebound", "migrate", "up", "--json") })
	}
	wg.Wait()
	elapsed := time.Since(start)
	applied := 0
	for i, r := range results {
		require.Equal(t, 0, r.ExitCode, "run %d: %s%s", i, r.Stdout, r.Stderr)
		var out struct {
			Applied []migrations.Applied `json:"applied"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Stdout), &out), r.Stdout)
		applied += len(out.Applied)
	}
	riverCount := count(t, db.Pool, "SELECT count(*) FROM river_migration")
	require.Equal(t, riverCount+len(migrations.All())+len(migrations.Triggers()), applied, "every migration and trigger applied exactly once")
	require.Equal(t, len(migrations.All()), count(t, db.Pool, "SELECT count(*) FROM "+migrations.VersionTable))
	require.Equal(t, len(migrations.Triggers()), count(t, db.Pool, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'river_job'::regclass AND tgname LIKE 'rebound!_%' ESCAPE '!'"))
	require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"), "no advisory lock left on any session")
	t.Logf("4 concurrent `rebound migrate up` through PgBouncer on an empty database: %s", elapsed.Round(time.Millisecond))

	start = time.Now()
	direct := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "rebound", "migrate", "up")
	require.Equal(t, 0, direct.ExitCode, direct.Stderr)
	require.Equal(t, "database is up to date; nothing to apply\n", direct.Stdout)
	require.Less(t, time.Since(start), 10*time.Second, "no lock to wait for")
}

// pgx's default exec mode (cache_statement) through PgBouncer in
// transaction mode: the second program meets the first one's prepared
// statements on the server connections, and the error says what to add to
// DATABASE_URL.
func TestPlainURLThroughPgBouncerErrorNamesTheFix(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bouncer := startPgBouncer(t, db.URL)
	env := []string{"DATABASE_URL=" + bouncer.url(t, db.URL, "")}
	var failed *proctest.Result
	for range 3 {
		r := proctest.Run(t, env, "rebound", "migrate", "status")
		if r.ExitCode != 0 {
			failed = &r
			break
		}
	}
	require.NotNil(t, failed, "a second program through the pooler met the first one's prepared statements")
	require.Contains(t, failed.Stderr, "(SQLSTATE 42P05)")
	require.Contains(t, failed.Stderr, "add default_query_exec_mode=cache_describe to it")
}
