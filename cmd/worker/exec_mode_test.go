package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// execModes are pgx's query exec modes, as a DATABASE_URL's
// default_query_exec_mode names them. cache_statement is pgx's default;
// behind PgBouncer in transaction mode (1.18 has no prepared statements)
// only the others work, and exec and simple_protocol send every argument
// as text of no declared type, so a query's parameters must say their
// types and a jsonb must not come as []byte.
var execModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// withQuery returns rawURL with its query parameter key set to value.
func withQuery(t *testing.T, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// The whole workload, through each of pgx's exec modes: a worker and every
// CLI on a DATABASE_URL with default_query_exec_mode set. Jobs complete,
// retried jobs complete on their second attempt, permanent failures are
// captured in the dead-letter queue and operated on (list, show, stats,
// retry, resolve, purge), failures open a breaker and it is operated on,
// an alert fires and its delivery is recorded, a batch completes, the
// metrics snapshots (queue depth, DLQ size) and job health are served,
// migrate status/up answer; no log line carries an SQLSTATE.
func TestEveryQueryWorksInEveryExecMode(t *testing.T) {
	t.Parallel()
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			runWorkload(t, mode)
		})
	}
}

func runWorkload(t *testing.T, mode string) {
	start := time.Now()
	db := dbtest.New(t)
	dbURL := withQuery(t, db.URL, "default_query_exec_mode", mode)
	env := []string{"DATABASE_URL=" + dbURL}
	var delivered atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { delivered.Add(1) }))
	t.Cleanup(hook.Close)

	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`retry:
  default:
    initial_delay: 100ms
    max_delay: 200ms
    jitter: none
breaker:
  defaults:
    failure_threshold: 2
    open_timeout: 10m
alerts:
  interval: 1s
  channels:
    hook: {type: webhook, url: "`+hook.URL+`/alerts"}
`), 0o600))
	cli := func(args ...string) string {
		t.Helper()
		res := proctest.Run(t, env, "rebound", args...)
		require.Equal(t, 0, res.ExitCode, "rebound %s: %s%s", strings.Join(args, " "), res.Stdout, res.Stderr)
		return res.Stdout
	}
	cli("alerts", "set", "breaker-open", "--channels", "hook", "--cooldown", "0")
	worker := proctest.StartWorker(t, dbURL, "--config", cfg, "--fetch-poll-interval", "100ms")

	enqueue := func(stdin string, args ...string) {
		t.Helper()
		res := proctest.RunStdin(t, env, stdin, "enqueue", args...)
		require.Equal(t, 0, res.ExitCode, "enqueue %s: %s", strings.Join(args, " "), res.Stderr)
	}
	// 4 succeed, 2 succeed on their second attempt, 1 fails for good
	// (not_found: no retry), 2 fail on down.example and open its breaker.
	enqueue(strings.Repeat("{}\n", 4)+strings.Repeat(`{"fail_attempts": 1}`+"\n", 2)+`{"fail_attempts": 9, "fail_class": "not_found"}`+"\n",
		"synthetic", "--file", "-")
	enqueue(strings.Repeat(`{"fail_attempts": 9, "fail_class": "server_error", "operation_key": "down.example"}`+"\n", 2),
		"synthetic", "--file", "-", "--max-attempts", "1")
	enqueue(strings.Repeat("{}\n", 3), "batch", "--kind", "synthetic", "--name", "nightly", "--file", "-", "--batch-size", "2", "--delay-between-batches", "0s")

	t.Logf("%s: worker started, jobs enqueued after %s", mode, time.Since(start).Round(time.Millisecond))
	// waitLogged is waitFor that shows the worker's log when it gives up.
	waitLogged := func(timeout time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s not within %s; worker output:\n%s", mode, what, timeout, worker.Logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pending := `SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded') AND kind = 'synthetic'`
	waitLogged(40*time.Second, "jobs settled", func() bool { return count(t, db.Pool, pending) == 0 })
	require.Equal(t, 9, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND state = 'completed'"))
	require.Equal(t, 2, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND state = 'completed' AND attempt = 2"))
	require.Equal(t, 3, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM circuit_breaker_state WHERE breaker_key = 'down.example' AND state = 'open'"))
	waitLogged(60*time.Second, "breaker-open alert delivered", func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM job_alert_history WHERE rule = 'breaker-open' AND delivery -> 'hook' ->> 'outcome' = 'delivered'") == 1
	})
	require.Equal(t, int64(1), delivered.Load())
	waitLogged(30*time.Second, "batch completed", func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM job_batch WHERE completed_at IS NOT NULL") == 1
	})

	t.Logf("%s: jobs settled, alert delivered, batch completed after %s", mode, time.Since(start).Round(time.Millisecond))

	// The dead-letter queue.
	var entries struct {
		Entries []struct {
			ID           int64  `json:"id"`
			FailureClass string `json:"failure_class"`
		} `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(cli("dlq", "list", "--json")), &entries), mode)
	require.Len(t, entries.Entries, 3)
	var notFound int64
	for _, e := range entries.Entries {
		if e.FailureClass == "not_found" {
			notFound = e.ID
		}
	}
	require.NotZero(t, notFound)
	id := fmt.Sprint(notFound)
	require.Contains(t, cli("dlq", "show", id), "not_found")
	require.Contains(t, cli("dlq", "stats"), "server_error")
	require.Contains(t, cli("dlq", "list", "--class", "server_error", "--operation-key", "down.example", "--status", "unresolved", "--since", "1h"), "down.example")
	require.Contains(t, cli("dlq", "retry", id), "retried 1")
	require.Contains(t, cli("dlq", "resolve", "--all", "--class", "server_error", "--note", "down for maintenance"), "resolved 2")
	require.Contains(t, cli("dlq", "purge", "--older-than", "1h", "--dry-run"), "0")
	waitLogged(30*time.Second, "retried entry dead-lettered again", func() bool { return count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue") == 4 })

	// Breakers, alerts, batches, health, migrations.
	require.Contains(t, cli("breaker", "show", "down.example"), "open")
	require.Contains(t, cli("breaker", "list"), "down.example")
	cli("breaker", "reset", "down.example")
	cli("breaker", "open", "maintenance.example", "--for", "10m", "--reason", "planned")
	require.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM circuit_breaker_state WHERE state = 'open'"))
	require.Contains(t, cli("alerts", "list"), "breaker-open")
	require.Contains(t, cli("alerts", "history"), "breaker-open")
	cli("alerts", "disable", "dlq-growth")
	cli("alerts", "enable", "dlq-growth")
	require.Contains(t, cli("batch", "list"), "nightly")
	require.Contains(t, cli("batch", "show", "1"), "nightly")
	health := proctest.Run(t, env, "rebound", "health")
	require.Equal(t, 3, health.ExitCode, "critical: a breaker is open\n%s%s", health.Stdout, health.Stderr)
	require.Contains(t, health.Stdout, `circuit breaker "maintenance.example" is open`)
	require.Contains(t, cli("migrate", "status"), "up to date")
	require.Equal(t, "database is up to date; nothing to apply\n", cli("migrate", "up"))

	// What the worker serves: the shared snapshots (queue depth), the DLQ
	// gauges, job health, the admin API.
	waitLogged(30*time.Second, "queue and DLQ gauges", func() bool {
		_, metrics := get(t, "http://"+worker.HTTPAddr+"/metrics")
		return strings.Contains(metrics, `rebound_dead_letter_queue_size{kind="synthetic",status="unresolved"} 1`) &&
			strings.Contains(metrics, `rebound_dead_letter_queue_size{kind="synthetic",status="resolved"} 2`) &&
			strings.Contains(metrics, `rebound_queue_jobs{kind="synthetic",queue="default",state="available"} 0`)
	})
	for _, path := range []string{"/healthz", "/readyz", "/api/admin/dlq", "/api/admin/dlq/stats", "/api/admin/breakers", "/api/admin/batches", "/api/admin/job-health"} {
		code, body := get(t, "http://"+worker.HTTPAddr+path)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	}
	t.Logf("%s: CLIs and HTTP checked after %s", mode, time.Since(start).Round(time.Millisecond))
	worker.Signal(syscall.SIGTERM)
	require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
	require.NotContains(t, worker.Logs(), "SQLSTATE", "a query failed")
	require.NotContains(t, worker.Logs(), `"level":"ERROR"`)
}
