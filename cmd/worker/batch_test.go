package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

var batchesCompleted = regexp.MustCompile(`(?m)^rebound_batches_completed_total\{kind="http_request"\} (\d+)$`)

// Two worker processes work one batch: it completes once — one
// "batch completed" log line and one count of
// rebound_batches_completed_total across both pods.
func TestBatchCompletesOnceWithTwoWorkers(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
	}))
	t.Cleanup(up.Close)
	db := dbtest.New(t)
	workers := []*proctest.Process{
		proctest.StartWorker(t, db.URL, "--fetch-poll-interval", "100ms", "--queues", "default=5"),
		proctest.StartWorker(t, db.URL, "--fetch-poll-interval", "100ms", "--queues", "default=5"),
	}
	var items strings.Builder
	for i := range 60 {
		fmt.Fprintf(&items, `{"url": "%s/item/%d"}`+"\n", up.URL, i)
	}
	file := filepath.Join(t.TempDir(), "items.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(items.String()), 0o600))
	res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "batch", "--kind", "http_request", "--name", "two pods",
		"--file", file, "--batch-size", "20", "--delay-between-batches", "500ms", "--wait", "--wait-interval", "200ms", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var s batch.Summary
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &s))
	require.Equal(t, int64(60), s.Succeeded)
	time.Sleep(3 * time.Second) // several more folds by each pod

	completedLines, counted := 0, 0
	for _, w := range workers {
		completedLines += strings.Count(w.Logs(), `"msg":"batch completed"`)
		resp, err := http.Get("http://" + w.HTTPAddr + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		if m := batchesCompleted.FindStringSubmatch(string(body)); m != nil {
			n, _ := strconv.Atoi(m[1])
			counted += n
		}
	}
	require.Equal(t, 1, completedLines, "one pod completed the batch")
	require.Equal(t, 1, counted, "counted by one pod")
}
