package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// logLines decodes a pod's JSON log lines whose msg is msg.
func logLines(t *testing.T, logs, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, raw := range strings.Split(logs, "\n") {
		if !strings.HasPrefix(raw, "{") {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &m), raw)
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// At info the worker logs each significant event once: the breaker
// transition, the key's first parked job (not one line per parked job),
// and one line per dead-lettered job with its kind, ID, class, operation
// key and redacted reason.
func TestEventsLoggedAtInfo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error": "down for maintenance", "api_key": "sekrit-123"}`))
	}))
	defer down.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer gone.Close()
	downKey := strings.TrimPrefix(down.URL, "http://")
	goneKey := strings.TrimPrefix(gone.URL, "http://")

	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("breaker:\n  defaults:\n    failure_threshold: 1\n    open_timeout: 5m\n    max_park: 2s\n"), 0o600))
	pod := proctest.StartWorker(t, db.URL, "--config", cfg, "--log-level", "info")
	env := []string{"DATABASE_URL=" + db.URL}
	dlq := func() int { return count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue") }

	// Its last attempt fails: dead-lettered as server_error; the failure
	// opens the breaker of its host.
	res := proctest.Run(t, env, "enqueue", "http_request", "--max-attempts", "1", "--args", fmt.Sprintf(`{"url": %q}`, down.URL+"/first"))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	waitFor(t, 30*time.Second, func() bool { return dlq() == 1 })

	// 20 jobs for the open host are parked, then dead-lettered as
	// breaker_open once parked longer than max_park.
	var lines strings.Builder
	for i := range 20 {
		fmt.Fprintf(&lines, `{"url": %q}`+"\n", fmt.Sprintf("%s/n/%d", down.URL, i))
	}
	file := filepath.Join(t.TempDir(), "jobs.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(lines.String()), 0o600))
	res = proctest.Run(t, env, "enqueue", "http_request", "--file", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	// A class that is not retried ends the job at once.
	res = proctest.Run(t, env, "enqueue", "http_request", "--args", fmt.Sprintf(`{"url": %q}`, gone.URL+"/gone"))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	waitFor(t, 60*time.Second, func() bool { return dlq() == 22 })
	waitFor(t, 10*time.Second, func() bool { return len(logLines(t, pod.Logs(), "job dead-lettered")) == 22 })
	logs := pod.Logs()

	opened := logLines(t, logs, "circuit breaker opened")
	require.Len(t, opened, 1, logs)
	require.Equal(t, downKey, opened[0]["key"])
	require.Equal(t, "INFO", opened[0]["level"])
	require.Equal(t, "5m0s", opened[0]["open_for"])

	parked := logLines(t, logs, "jobs parked behind circuit breaker")
	require.Len(t, parked, 1, "one line for the key, not one per parked job")
	require.Equal(t, downKey, parked[0]["key"])
	require.Equal(t, "open", parked[0]["state"])

	// One line per dead letter, agreeing with the queue.
	rows, err := db.Pool.Query(ctx, "SELECT river_job_id, kind, failure_class, operation_key FROM job_dead_letter_queue")
	require.NoError(t, err)
	want := map[float64][3]string{}
	for rows.Next() {
		var (
			id               int64
			kind, class, key string
		)
		require.NoError(t, rows.Scan(&id, &kind, &class, &key))
		want[float64(id)] = [3]string{kind, class, key}
	}
	require.NoError(t, rows.Err())
	got := map[float64][3]string{}
	classes := map[string]int{}
	for _, l := range logLines(t, logs, "job dead-lettered") {
		require.Equal(t, "INFO", l["level"])
		got[l["job_id"].(float64)] = [3]string{l["kind"].(string), l["class"].(string), l["operation_key"].(string)}
		classes[l["class"].(string)]++
		switch l["class"] {
		case "server_error":
			require.Equal(t, fmt.Sprintf(`POST %s/first: HTTP 503 Service Unavailable: {"error": "down for maintenance", "api_key": "[REDACTED]"}`, down.URL), l["reason"])
			require.Equal(t, 1.0, l["attempt"])
			require.Equal(t, 1.0, l["max_attempts"])
		case "breaker_open":
			require.Contains(t, l["reason"], fmt.Sprintf("parked behind circuit breaker %q for ", downKey))
		case "not_found":
			require.Equal(t, goneKey, l["operation_key"])
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, map[string]int{"server_error": 1, "breaker_open": 20, "not_found": 1}, classes)
	require.NotContains(t, logs, "sekrit")
}
