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
	"syscall"
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

// A worker whose configuration does not define a channel that an enabled
// alert rule names still starts and serves (and stops cleanly), with one
// warning per (rule, channel) naming the rule, the channel, the configured
// channels and the ways out; a disabled rule is not warned of.
func TestWorkerWarnsOfAlertRuleWithUnknownChannel(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE job_alert_config SET channels = '{ops,pager}' WHERE name = 'failure-rate-error'`,
		`UPDATE job_alert_config SET channels = '{pager}', enabled = false WHERE name = 'dlq-growth'`,
	} {
		_, err := db.Pool.Exec(ctx, sql)
		require.NoError(t, err)
	}
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"http://127.0.0.1:9/alerts\"}\n"), 0o600))
	const fix = `: its notifications through it will fail; define it (the worker's alerts.channels, Config.Monitoring.Channels), ` +
		"or change the rule (rebound alerts set failure-rate-error --channels ...) or disable it (rebound alerts disable failure-rate-error)"
	type warning struct{ Msg, Rule, Channel, Configured string }
	for _, tt := range []struct {
		name string
		args []string
		want []warning
	}{
		{"with --config", []string{"--config", cfg}, []warning{
			{`alert rule "failure-rate-error" names channel "pager", which is not configured (configured channels: ops)` + fix, "failure-rate-error", "pager", "ops"},
		}},
		{"without --config", nil, []warning{
			{`alert rule "failure-rate-error" names channel "ops", which is not configured (no channel is configured)` + fix, "failure-rate-error", "ops", ""},
			{`alert rule "failure-rate-error" names channel "pager", which is not configured (no channel is configured)` + fix, "failure-rate-error", "pager", ""},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			worker := proctest.StartWorker(t, db.URL, tt.args...) // ready: /readyz answers 200
			resp, err := http.Get("http://" + worker.HTTPAddr + "/readyz")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			worker.Signal(syscall.SIGTERM)
			require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
			var warnings []warning
			for line := range strings.Lines(worker.Logs()) {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil || rec["level"] != "WARN" {
					continue
				}
				str := func(k string) string { s, _ := rec[k].(string); return s }
				warnings = append(warnings, warning{str("msg"), str("rule"), str("channel"), str("configured_channels")})
			}
			require.Equal(t, tt.want, warnings, worker.Logs())
		})
	}
}
