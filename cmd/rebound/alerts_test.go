package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// TestHealthExitCodes: rebound health exits 0 healthy, 2 degraded or
// unhealthy, 3 critical, 1 on a bad flag; --json is the endpoint's document.
func TestHealthExitCodes(t *testing.T) {
	t.Parallel()
	bin := buildRebound(t)
	tests := []struct {
		name      string
		completed int
		dead      int
		openKey   bool
		wantCode  int
		wantState string
	}{
		{"healthy", 10, 0, false, 0, "healthy"},
		{"degraded", 7, 3, false, 2, "degraded"},
		{"unhealthy", 4, 6, false, 2, "unhealthy"},
		{"critical", 10, 0, true, 3, "critical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			ctx := context.Background()
			_, err := db.Pool.Exec(ctx, `INSERT INTO job_retry_metrics (kind, period_start, period_seconds, attempts, completed, dead_lettered, last_attempt_at)
				VALUES ('mail', date_trunc('minute', now()), 60, $1, $2, $3, now())`, tt.completed+tt.dead, tt.completed, tt.dead)
			require.NoError(t, err)
			if tt.openKey {
				_, err = db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, state, opened_at, next_probe_at) VALUES ('api.example.com', 'open', now(), now() + interval '1 minute')`)
				require.NoError(t, err)
			}
			out, errOut, code := runRebound(bin, db.URL, "health", "--json")
			require.Equal(t, tt.wantCode, code, errOut)
			require.Empty(t, errOut)
			var doc map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &doc))
			require.Equal(t, tt.wantState, doc["overall_health"])
			out, _, code = runRebound(bin, db.URL, "health")
			require.Equal(t, tt.wantCode, code)
			require.Contains(t, out, "overall: "+tt.wantState+"\n")
		})
	}
}

func TestAlertsCommands(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()

	var got []byte
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
	}))
	t.Cleanup(slack.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  channels:\n    ops: {type: slack, url: \"${TEST_SLACK_URL}\"}\n"), 0o600))
	slackEnv := "TEST_SLACK_URL=" + slack.URL + "/services/T/B/secret"
	noChannels := filepath.Join(dir, "retry-only.yaml")
	require.NoError(t, os.WriteFile(noChannels, []byte("retry:\n  default: {max_attempts: 3}\n"), 0o600))
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), "DATABASE_URL="+db.URL, slackEnv)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return o.String(), e.String(), code
	}

	snapshot := func() string {
		var s string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT (SELECT jsonb_agg(c ORDER BY name)::text FROM (SELECT name, metric, threshold, window_seconds, min_jobs, severity, cooldown_seconds, channels, enabled FROM job_alert_config) c)
			|| (SELECT count(*)::text FROM job_alert_history)`).Scan(&s))
		return s
	}
	before := snapshot()
	bad := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"set without a name", []string{"alerts", "set"}, "rebound: missing NAME\n"},
		{"create without metric", []string{"alerts", "set", "new-rule", "--threshold", "1", "--severity", "error"}, "rebound: rule \"new-rule\" does not exist: --metric is required to create it\n"},
		{"bad metric", []string{"alerts", "set", "failure-rate-error", "--metric", "cpu"}, "rebound: invalid --metric \"cpu\": one of failure_rate, breaker_open, dlq_unresolved, dlq_growth, dlq_oldest_age\n"},
		{"bad severity", []string{"alerts", "set", "failure-rate-error", "--severity", "page"}, "rebound: invalid --severity \"page\": warning, error or critical\n"},
		{"negative threshold", []string{"alerts", "set", "failure-rate-error", "--threshold", "-1"}, "rebound: invalid --threshold \"-1\": a number from 0 up\n"},
		{"rate of 100", []string{"alerts", "set", "failure-rate-error", "--threshold", "100"}, "rebound: invalid --threshold \"100\": a failure rate is a percent below 100\n"},
		{"bad window", []string{"alerts", "set", "failure-rate-error", "--window", "soon"}, "rebound: invalid --window \"soon\": a duration like 15m or 900 (seconds)\n"},
		{"short window", []string{"alerts", "set", "failure-rate-error", "--window", "10s"}, "rebound: invalid --window \"10s\": whole seconds from 1m to 720h\n"},
		{"bad cooldown", []string{"alerts", "set", "failure-rate-error", "--cooldown", "-5"}, "rebound: invalid --cooldown \"-5\": out of range\n"},
		{"bad channel", []string{"alerts", "set", "failure-rate-error", "--channels", "Ops Team"}, "rebound: rule \"failure-rate-error\": channel \"Ops Team\": channel names use lower-case letters, digits, '-' and '_'\n"},
		{"bad name", []string{"alerts", "set", "Bad Name", "--metric", "dlq_growth", "--threshold", "1", "--severity", "error"}, "rebound: rule \"Bad Name\": name \"Bad Name\": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)\n"},
		{"enable unknown", []string{"alerts", "enable", "nope"}, "rebound: no alert rule \"nope\" (see `rebound alerts list`)\n"},
		{"channel listed twice", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,pager,ops"}, "rebound: rule \"failure-rate-error\": channel \"ops\" is listed twice\n"},
		// With --config, a channel the workers' file does not define is refused.
		{"channel not in --config", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,pager", "--config", cfg},
			"rebound: rule \"failure-rate-error\": channel \"pager\" is not defined under alerts.channels in " + cfg + " (it defines ops); nothing changed\n"},
		{"disabled new rule, channel not in --config", []string{"alerts", "set", "new-rule", "--metric", "dlq_growth", "--threshold", "1", "--severity", "error", "--enabled=false", "--channels", "pagr", "--config", cfg},
			"rebound: rule \"new-rule\": channel \"pagr\" is not defined under alerts.channels in " + cfg + " (it defines ops); nothing changed\n"},
		{"channel, --config without channels", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", noChannels},
			"rebound: rule \"failure-rate-error\": channel \"ops\" is not defined under alerts.channels in " + noChannels + " (it defines none); nothing changed\n"},
		{"--config missing", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", filepath.Join(dir, "missing.yaml")},
			"rebound: config: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory\n"},
		{"set name not UTF-8", []string{"alerts", "set", "x\xff", "--threshold", "3"}, "rebound: rule \"x\\xff\" does not exist: --metric is required to create it\n"},
		{"create name not UTF-8", []string{"alerts", "set", "x\xff", "--metric", "dlq_growth", "--threshold", "1", "--severity", "error"}, "rebound: rule \"x\\xff\": name \"x\\xff\": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)\n"},
		{"enable name not UTF-8", []string{"alerts", "enable", "x\xff"}, "rebound: no alert rule \"x\\xff\" (see `rebound alerts list`)\n"},
		{"history limit", []string{"alerts", "history", "--limit", "0"}, "rebound: --limit 0: must be from 1 to 1000\n"},
		{"test without config", []string{"alerts", "test", "ops"}, "rebound: --config is required: the workers' configuration file that defines the channel\n"},
		{"test unknown channel", []string{"alerts", "test", "pager", "--config", cfg}, "rebound: no channel \"pager\" in " + cfg + " (alerts.channels)\n"},
		{"health bad window", []string{"health", "--window", "1s"}, "rebound: --window 1s: must be between 1m and 720h\n"},
		{"a subcommand typo", []string{"alerts", "lst"}, "rebound: unknown command \"lst\" for \"rebound alerts\" (run \"rebound alerts --help\")\n"},
	}
	for _, tt := range bad {
		cmdOut, errOut, code := run(tt.args...)
		require.Equal(t, 1, code, tt.name)
		require.Empty(t, cmdOut, tt.name)
		require.Equal(t, tt.wantErr, errOut, tt.name)
	}
	require.Equal(t, before, snapshot(), "refused commands changed nothing")
	// A rule name that is not valid UTF-8 has no events (not a database error).
	out, errOut, code := runRebound(bin, db.URL, "alerts", "history", "--rule", "x\xff", "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "[]\n", out)

	out, errOut, code = runRebound(bin, db.URL, "alerts", "set", "failure-rate-error", "--threshold", "40", "--cooldown", "15m", "--channels", "ops,pager")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "rule failure-rate-error changed: failure_rate > 40 over 15m0s, error, cooldown 15m0s, channels [ops,pager], enabled true\n", out)
	// A channel --config defines is accepted, its ${NAME} secret unset here.
	out, errOut, code = runRebound(bin, db.URL, "alerts", "set", "failure-rate-warning", "--channels", "ops", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "rule failure-rate-warning changed: failure_rate > 20 over 15m0s, warning, cooldown 1h0m0s, channels [ops], enabled true\n", out)
	out, _, code = runRebound(bin, db.URL, "alerts", "disable", "dlq-growth")
	require.Equal(t, 0, code)
	require.Equal(t, "rule dlq-growth disabled\n", out)
	out, _, code = runRebound(bin, db.URL, "alerts", "list", "--json")
	require.Equal(t, 0, code)
	var rules []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rules))
	require.Len(t, rules, 7)
	for _, r := range rules {
		switch r["name"] {
		case "failure-rate-error":
			require.Equal(t, 40.0, r["threshold"])
			require.Equal(t, 900.0, r["cooldown_seconds"])
			require.Equal(t, []any{"ops", "pager"}, r["channels"])
		case "failure-rate-warning":
			require.Equal(t, []any{"ops"}, r["channels"])
		case "dlq-growth":
			require.Equal(t, false, r["enabled"])
		}
	}

	// test through the configuration file's Slack channel (URL from the environment).
	out, errOut, code = run("alerts", "test", "ops", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "test notification delivered through ops (history 1)\n", out)
	require.Contains(t, string(got), "a test notification from rebound alerts test")
	out, _, code = runRebound(bin, db.URL, "alerts", "history", "--json")
	require.Equal(t, 0, code)
	var events []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &events))
	require.Len(t, events, 1)
	require.Equal(t, "test", events[0]["event"])
	require.Equal(t, "delivered", events[0]["delivery"].(map[string]any)["ops"].(map[string]any)["outcome"])
	require.False(t, strings.Contains(out, "secret"), "no channel URL in the history")
}
