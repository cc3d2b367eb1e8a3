package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// The README's weekly run: a CSV of users enqueued as a batch of
// weekly_intelligence jobs for one ISO week, worked by the real worker
// against a real reports API; each report is recorded as its job's result,
// the API's host is the operation key, a user the API does not know is a
// not_found dead letter, and the same week cannot be enqueued twice.
func TestWeeklyIntelligenceBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	var requests []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.RequestURI())
		mu.Unlock()
		var user int
		if _, err := fmt.Sscanf(r.URL.Path, "/api/users/%d/weekly-report", &user); err != nil || user == 5 {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, `{"user": %d, "week": %q, "signals": [%d, 7]}`, user, r.URL.Query().Get("week"), user*10)
	}))
	t.Cleanup(api.Close)
	host := strings.TrimPrefix(api.URL, "http://")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("weekly_intelligence:\n  base_url: "+api.URL+"/api\nretry:\n  kinds:\n    weekly_intelligence:\n      max_attempts: 2\n"), 0o600))
	users := filepath.Join(dir, "users.csv")
	require.NoError(t, os.WriteFile(users, []byte("user_id,week\n1,2026-W49\n2,2026-W49\n3,2026-W49\n4,2026-W49\n5,2026-W49\n"), 0o600))

	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	proctest.StartWorker(t, db.URL, "--config", cfg, "--fetch-poll-interval", "100ms")

	res := proctest.Run(t, env, "enqueue", "batch", "--kind", "weekly_intelligence", "--name", "weekly_intelligence 2026-W49",
		"--file", users, "--config", cfg, "--batch-size", "2", "--delay-between-batches", "1s", "--wait", "--wait-interval", "200ms", "--json")
	require.Equal(t, 3, res.ExitCode, res.Stderr)
	var s batch.Summary
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &s))
	require.Equal(t, int64(5), s.Total)
	require.Equal(t, int64(4), s.Succeeded)
	require.Equal(t, int64(1), s.Failed)
	require.Equal(t, map[string]int64{"not_found": 1}, s.FailuresByClass)
	require.Equal(t, 80.0, *s.SuccessRate)

	var result, key string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT metadata->'output'->>'result', metadata->>'operation_key' FROM river_job
		WHERE kind = 'weekly_intelligence' AND (args->>'user_id')::int = 3`).Scan(&result, &key))
	require.JSONEq(t, `{"user_id": 3, "week": "2026-W49", "report": {"user": 3, "week": "2026-W49", "signals": [30, 7]}}`, result)
	require.Equal(t, host, key)
	var dlqKey string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT operation_key FROM job_dead_letter_queue WHERE id = $1", s.DeadLetterIDs[0]).Scan(&dlqKey))
	require.Equal(t, host, dlqKey)
	mu.Lock()
	require.Contains(t, requests, "/api/users/3/weekly-report?week="+url.QueryEscape("2026-W49"))
	mu.Unlock()

	again := proctest.Run(t, env, "enqueue", "batch", "--kind", "weekly_intelligence", "--name", "weekly_intelligence 2026-W49", "--file", users, "--config", cfg)
	require.Equal(t, 1, again.ExitCode)
	require.Equal(t, `enqueue: batch "weekly_intelligence 2026-W49": a batch with this name already exists (names are unique; pick another, or see rebound batch list) (nothing inserted)`+"\n", again.Stderr)
	var jobs int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'weekly_intelligence'").Scan(&jobs))
	require.Equal(t, 5, jobs)
}
