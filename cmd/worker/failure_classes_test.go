package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// Jobs whose URL redirects to itself, or whose server presents a
// certificate the worker does not trust, are misconfigured: each is
// cancelled at its first attempt into the dead-letter queue, and none counts
// toward its host's circuit breaker (5 failures would open it), so a healthy
// job to the same host is delivered at once.
func TestMisconfiguredJobsDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	var loopCalls, okCalls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			loopCalls.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/ok":
			okCalls.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer upstream.Close()
	selfSigned := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0) // the worker's refused handshakes
	defer selfSigned.Close()

	const each = 6
	var lines strings.Builder
	for range each {
		fmt.Fprintf(&lines, `{"url": %q}`+"\n", upstream.URL+"/loop")
		fmt.Fprintf(&lines, `{"url": %q}`+"\n", selfSigned.URL+"/hook")
	}
	file := filepath.Join(t.TempDir(), "jobs.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(lines.String()), 0o600))
	env := []string{"DATABASE_URL=" + db.URL}
	res := proctest.Run(t, env, "enqueue", "http_request", "--file", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	worker := proctest.StartWorker(t, db.URL)
	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue") == 2*each
	})
	require.Equal(t, 2*each, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'cancelled' AND attempt = 1"),
		"cancelled at the first attempt, not retried")
	require.Equal(t, 2*each, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_class = 'misconfigured'"))
	require.Equal(t, each, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_reason LIKE '%stopped after 10 redirects%'"))
	require.Equal(t, each, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_reason LIKE '%x509: certificate signed by unknown authority%'"))
	require.Equal(t, int64(each*10), loopCalls.Load(), "10 requests per attempt, one attempt per job")
	require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM circuit_breaker_state WHERE state <> 'closed' OR failure_count > 0"),
		"no failure counted against either host")

	start := time.Now()
	res = proctest.Run(t, env, "enqueue", "http_request", "--args", fmt.Sprintf(`{"url": %q}`, upstream.URL+"/ok"))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	waitFor(t, 10*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed' AND kind NOT LIKE 'rebound!_%' ESCAPE '!'") == 1
	})
	require.Equal(t, int64(1), okCalls.Load())
	t.Logf("healthy job to the same host delivered in %s", time.Since(start).Round(time.Millisecond))

	code, metrics := get(t, "http://"+worker.HTTPAddr+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, fmt.Sprintf(`rebound_job_errors_total{class="misconfigured",kind="http_request"} %d`, 2*each))
	var snoozed int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE metadata ? 'snoozes'").Scan(&snoozed))
	require.Equal(t, 0, snoozed, "no job was parked behind a breaker")
}
