package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestTwoWorkersSendOneNotification runs two real worker processes that
// both evaluate the rules every second; a breaker opened with the
// operator's command gives exactly one firing notification at the
// webhook (and, once reset, one resolved notice), not one per pod.
func TestTwoWorkersSendOneNotification(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		mu.Lock()
		got = append(got, doc)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	received := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), got...)
	}

	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  interval: 1s\n  channels:\n    hook: {type: webhook, url: \""+hook.URL+"/alerts\", secret: s3cret}\n"), 0o600))
	_, err := db.Pool.Exec(ctx, `UPDATE job_alert_config SET channels = '{hook}' WHERE name = 'breaker-open'`)
	require.NoError(t, err)
	proctest.StartWorker(t, db.URL, "--config", cfg)
	proctest.StartWorker(t, db.URL, "--config", cfg)

	_, err = breaker.NewStore(db.Pool).Open(ctx, breaker.OpenParams{Key: "api.example.com", For: 10 * time.Minute, By: "test"})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, func() bool { return len(received()) >= 1 })
	// Both pods keep evaluating every second: nothing more arrives.
	time.Sleep(5 * time.Second)
	require.Len(t, received(), 1)
	require.Equal(t, "firing", received()[0]["status"])
	require.Positive(t, count(t, db.Pool, "SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE kind = 'rebound_alert_evaluate' AND state = 'completed'"),
		"evaluations ran")

	_, err = breaker.NewStore(db.Pool).Reset(ctx, breaker.ResetParams{Key: "api.example.com", By: "test"})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, func() bool { return len(received()) >= 2 })
	time.Sleep(3 * time.Second)
	require.Len(t, received(), 2)
	require.Equal(t, "resolved", received()[1]["status"])
	require.Equal(t, 2, count(t, db.Pool, "SELECT count(*) FROM job_alert_history WHERE rule = 'breaker-open' AND delivery -> 'hook' ->> 'outcome' = 'delivered'"))
}

// The worker refuses to start while an enabled alert rule names a channel
// its --config does not define (alerts.channels), with one line naming
// the rule, the channel, the file and the ways out; the rules are left as
// they were.
func TestWorkerRefusesAlertRuleWithUnknownChannel(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `UPDATE job_alert_config SET channels = '{ops,pager}' WHERE name = 'failure-rate-error'`)
	require.NoError(t, err)
	before := db.RowCounts(t)
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"http://127.0.0.1:9/alerts\"}\n"), 0o600))
	const ways = ", or change the rule (rebound alerts set failure-rate-error --channels ...) or disable it (rebound alerts disable failure-rate-error)\n"
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"with --config", []string{"--config", cfg},
			`worker: alert rule "failure-rate-error" names channel "pager", which is not configured (configured channels: ops): define it under alerts.channels in ` + cfg + ways},
		{"without --config", nil,
			`worker: alert rule "failure-rate-error" names channel "ops", which is not configured (no channel is configured): give the worker a --config whose alerts.channels defines it` + ways},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "worker", append([]string{"--http-addr", "127.0.0.1:0", "--log-format", "json"}, tt.args...)...)
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			lines := strings.SplitAfter(res.Stderr, "\n")
			require.Equal(t, tt.want, lines[len(lines)-2], res.Stderr) // the last line; "" after its newline
		})
	}
	t.Cleanup(func() { require.Equal(t, before, db.RowCounts(t), "every table as it was") })
}
