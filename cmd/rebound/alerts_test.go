package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// TestHealthExitCodes: rebound health exits 0 healthy, 2 degraded or
// unhealthy, 3 critical, 1 on a bad flag; --json is the endpoint's document.
// A breaker held open by hand is critical while the hold lasts, not once it
// has expired with no job to take the probe (`rebound breaker open maint1
// --for 40s`, 80 s later).
func TestHealthExitCodes(t *testing.T) {
	t.Parallel()
	bin := buildRebound(t)
	tests := []struct {
		name      string
		completed int
		dead      int
		breaker   string // a circuit_breaker_state row's values, or ""
		wantCode  int
		wantState string
	}{
		{"healthy", 10, 0, "", 0, "healthy"},
		{"degraded", 7, 3, "", 2, "degraded"},
		{"unhealthy", 4, 6, "", 2, "unhealthy"},
		{"critical", 10, 0, `('api.example.com', 'open', now(), now() + interval '1 minute', NULL, NULL)`, 3, "critical"},
		{"maintenance hold", 10, 0, `('maint1', 'open', now() - interval '10 seconds', now() + interval '30 seconds', 'ops', now() - interval '10 seconds')`, 3, "critical"},
		{"maintenance hold expired", 10, 0, `('maint1', 'open', now() - interval '80 seconds', now() - interval '40 seconds', 'ops', now() - interval '80 seconds')`, 0, "healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			ctx := context.Background()
			_, err := db.Pool.Exec(ctx, `INSERT INTO job_retry_metrics (kind, period_start, period_seconds, attempts, completed, dead_lettered, last_attempt_at)
				VALUES ('mail', date_trunc('minute', now()), 60, $1, $2, $3, now())`, tt.completed+tt.dead, tt.completed, tt.dead)
			require.NoError(t, err)
			if tt.breaker != "" {
				_, err = db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, state, opened_at, next_probe_at, changed_by, changed_at) VALUES `+tt.breaker)
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
	badName := filepath.Join(dir, "bad-name.yaml")
	require.NoError(t, os.WriteFile(badName, []byte("alerts:\n  channels:\n    ops: {type: slack, url: \"${TEST_SLACK_URL}\"}\n    Ops: {type: slack, url: \"https://hooks.example.com/x\"}\n"), 0o600))
	badKey := filepath.Join(dir, "bad-key.yaml")
	require.NoError(t, os.WriteFile(badKey, []byte("retyr: {}\nalerts:\n  channels:\n    ops: {type: slack, url: \"https://hooks.example.com/x\"}\n"), 0o600))
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
		// The values given are checked before the missing ones are asked for.
		{"create with a bad metric, without severity", []string{"alerts", "set", "newrule", "--metric", "bogus", "--threshold", "1"}, "rebound: invalid --metric \"bogus\": one of failure_rate, breaker_open, dlq_unresolved, dlq_growth, dlq_oldest_age\n"},
		{"create with a bad threshold, without metric", []string{"alerts", "set", "newrule", "--threshold", "-3"}, "rebound: invalid --threshold \"-3\": a number from 0 up\n"},
		{"create with a bad window, without the rest", []string{"alerts", "set", "newrule", "--window", "5s"}, "rebound: invalid --window \"5s\": whole seconds from 1m to 720h\n"},
		{"create without threshold and severity", []string{"alerts", "set", "newrule", "--metric", "dlq_growth"}, "rebound: rule \"newrule\" does not exist: --threshold and --severity are required to create it\n"},
		{"create with nothing", []string{"alerts", "set", "newrule", "--channels", ""}, "rebound: rule \"newrule\" does not exist: --metric, --threshold and --severity are required to create it\n"},
		{"bad metric", []string{"alerts", "set", "failure-rate-error", "--metric", "cpu"}, "rebound: invalid --metric \"cpu\": one of failure_rate, breaker_open, dlq_unresolved, dlq_growth, dlq_oldest_age\n"},
		{"bad severity", []string{"alerts", "set", "failure-rate-error", "--severity", "page"}, "rebound: invalid --severity \"page\": warning, error or critical\n"},
		{"negative threshold", []string{"alerts", "set", "failure-rate-error", "--threshold", "-1"}, "rebound: invalid --threshold \"-1\": a number from 0 up\n"},
		{"rate of 100", []string{"alerts", "set", "failure-rate-error", "--threshold", "100"}, "rebound: invalid --threshold \"100\": a failure rate is a percent below 100\n"},
		{"bad window", []string{"alerts", "set", "failure-rate-error", "--window", "soon"}, "rebound: invalid --window \"soon\": a duration like 15m or 900 (seconds)\n"},
		{"short window", []string{"alerts", "set", "failure-rate-error", "--window", "10s"}, "rebound: invalid --window \"10s\": whole seconds from 1m to 720h\n"},
		{"bad cooldown", []string{"alerts", "set", "failure-rate-error", "--cooldown", "-5"}, "rebound: invalid --cooldown \"-5\": out of range\n"},
		{"bad channel", []string{"alerts", "set", "failure-rate-error", "--channels", "Ops Team"}, "rebound: rule \"failure-rate-error\": channel \"Ops Team\": " + nameRule + "\n"},
		{"channel of 64 characters", []string{"alerts", "set", "failure-rate-error", "--channels", strings.Repeat("c", 64)}, "rebound: rule \"failure-rate-error\": channel \"" + strings.Repeat("c", 64) + "\": " + nameRule + "\n"},
		{"channel starting with '-'", []string{"alerts", "set", "failure-rate-error", "--channels", "-x"}, "rebound: rule \"failure-rate-error\": channel \"-x\": " + nameRule + "\n"},
		{"bad name", []string{"alerts", "set", "Bad Name", "--metric", "dlq_growth", "--threshold", "1", "--severity", "error"}, "rebound: rule \"Bad Name\": name \"Bad Name\": " + nameRule + "\n"},
		{"name of 64 characters", []string{"alerts", "set", strings.Repeat("r", 64), "--metric", "dlq_growth", "--threshold", "1", "--severity", "error"}, "rebound: rule \"" + strings.Repeat("r", 64) + "\": name \"" + strings.Repeat("r", 64) + "\": " + nameRule + "\n"},
		{"enable unknown", []string{"alerts", "enable", "nope"}, "rebound: no alert rule \"nope\" (see `rebound alerts list`)\n"},
		{"channel listed twice", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,pager,ops"}, "rebound: rule \"failure-rate-error\": channel \"ops\" is listed twice\n"},
		// An empty name among others is a typo, not a name left out ("" alone clears the channels).
		{"empty channel between two", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,,pager"}, "rebound: invalid --channels \"ops,,pager\": " + emptyChannel + "\n"},
		{"empty channel at the end", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,"}, "rebound: invalid --channels \"ops,\": " + emptyChannel + "\n"},
		{"blank channel at the start", []string{"alerts", "set", "failure-rate-error", "--channels", " ,ops"}, "rebound: invalid --channels \" ,ops\": " + emptyChannel + "\n"},
		{"empty channels only", []string{"alerts", "set", "failure-rate-error", "--channels", ","}, "rebound: invalid --channels \",\": " + emptyChannel + "\n"},
		{"empty channel, --config", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,,", "--config", cfg}, "rebound: invalid --channels \"ops,,\": " + emptyChannel + "\n"},
		// A window on a metric that has none would be ignored.
		{"window of dlq_unresolved", []string{"alerts", "set", "dlq-unresolved-error", "--window", "30m"}, "rebound: invalid --window \"30m\": metric dlq_unresolved has no window (only failure_rate and dlq_growth use one)\n"},
		{"window of breaker_open", []string{"alerts", "set", "breaker-open", "--window", "900"}, "rebound: invalid --window \"900\": metric breaker_open has no window (only failure_rate and dlq_growth use one)\n"},
		{"window of a new dlq_oldest_age rule", []string{"alerts", "set", "new-rule", "--metric", "dlq_oldest_age", "--threshold", "60", "--severity", "error", "--window", "1h"},
			"rebound: invalid --window \"1h\": metric dlq_oldest_age has no window (only failure_rate and dlq_growth use one)\n"},
		{"window with a switch to dlq_unresolved", []string{"alerts", "set", "failure-rate-error", "--metric", "dlq_unresolved", "--window", "1h"},
			"rebound: invalid --window \"1h\": metric dlq_unresolved has no window (only failure_rate and dlq_growth use one)\n"},
		// Said first, whatever the value: not "whole seconds from 1m to 720h".
		{"window 0s of dlq_oldest_age", []string{"alerts", "set", "dlq-oldest-age", "--window", "0s"},
			"rebound: invalid --window \"0s\": metric dlq_oldest_age has no window (only failure_rate and dlq_growth use one)\n"},
		{"window garbage of a new breaker_open rule", []string{"alerts", "set", "new-rule", "--metric", "breaker_open", "--threshold", "0", "--severity", "error", "--window", "soon"},
			"rebound: invalid --window \"soon\": metric breaker_open has no window (only failure_rate and dlq_growth use one)\n"},
		{"window 0s of a new rule without --metric", []string{"alerts", "set", "new-rule", "--window", "0s"},
			"rebound: invalid --window \"0s\": whole seconds from 1m to 720h\n"},
		// With --config, a channel the workers' file does not define is refused.
		{"channel not in --config", []string{"alerts", "set", "failure-rate-error", "--channels", "ops,pager", "--config", cfg},
			"rebound: rule \"failure-rate-error\": channel \"pager\" is not defined under alerts.channels in " + cfg + " (it defines ops); nothing changed\n"},
		{"disabled new rule, channel not in --config", []string{"alerts", "set", "new-rule", "--metric", "dlq_growth", "--threshold", "1", "--severity", "error", "--enabled=false", "--channels", "pagr", "--config", cfg},
			"rebound: rule \"new-rule\": channel \"pagr\" is not defined under alerts.channels in " + cfg + " (it defines ops); nothing changed\n"},
		{"channel, --config without channels", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", noChannels},
			"rebound: rule \"failure-rate-error\": channel \"ops\" is not defined under alerts.channels in " + noChannels + " (it defines none); nothing changed\n"},
		// --config is read as the worker reads it: a file the worker refuses is refused, with its message.
		{"--config with an invalid channel name", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", badName},
			"rebound: " + badName + ": alerts.channels: name \"Ops\": " + nameRule + "\n"},
		{"--config with an unknown setting", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", badKey},
			"rebound: " + badKey + ": retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1)\n"},
		{"--config with an invalid channel, no --channels", []string{"alerts", "set", "failure-rate-error", "--threshold", "30", "--config", badName},
			"rebound: " + badName + ": alerts.channels: name \"Ops\": " + nameRule + "\n"},
		{"--config empty", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", ""},
			"rebound: --config is empty: give the workers' configuration file, or leave --config out\n"},
		{"--config missing", []string{"alerts", "set", "failure-rate-error", "--channels", "ops", "--config", filepath.Join(dir, "missing.yaml")},
			"rebound: --config " + filepath.Join(dir, "missing.yaml") + ": no such file or directory\n"},
		{"set name not UTF-8", []string{"alerts", "set", "x\xff", "--threshold", "3"}, "rebound: rule \"x\\xff\": name \"x\\xff\": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)\n"},
		{"create name not UTF-8", []string{"alerts", "set", "x\xff", "--metric", "dlq_growth", "--threshold", "1", "--severity", "error"}, "rebound: rule \"x\\xff\": name \"x\\xff\": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)\n"},
		{"enable name not UTF-8", []string{"alerts", "enable", "x\xff"}, "rebound: no alert rule \"x\\xff\" (see `rebound alerts list`)\n"},
		{"history --rule empty", []string{"alerts", "history", "--rule", ""}, "rebound: --rule is empty: give a rule name, or leave --rule out for every rule's events\n"},
		{"history --rule empty, --json", []string{"alerts", "history", "--rule=", "--json"}, "rebound: --rule is empty: give a rule name, or leave --rule out for every rule's events\n"},
		{"history limit", []string{"alerts", "history", "--limit", "0"}, "rebound: --limit 0: must be from 1 to 1000\n"},
		// A rule name that is not valid UTF-8 is no rule (not a database error).
		{"history of a name not UTF-8", []string{"alerts", "history", "--rule", "x\xff", "--json"}, "rebound: no alert rule named \"x\\xff\" and no history under that name (" + defaultRuleNames + ")\n"},
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

	// Without --config the channels are accepted, with a note that they were not checked.
	out, errOut, code := runRebound(bin, db.URL, "alerts", "set", "failure-rate-error", "--threshold", "40", "--cooldown", "15m", "--channels", "ops,pager")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "rule failure-rate-error changed: failure_rate > 40 over 15m0s, error, cooldown 15m0s, channels [ops,pager], enabled true\n", out)
	require.Equal(t, noteUnchecked("channels ops,pager were"), errOut)
	// A channel --config defines is accepted, its ${NAME} secret unset here.
	out, errOut, code = runRebound(bin, db.URL, "alerts", "set", "failure-rate-warning", "--channels", "ops", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "rule failure-rate-warning changed: failure_rate > 20 over 15m0s, warning, cooldown 1h0m0s, channels [ops], enabled true\n", out)
	// So is a file where a number is a ${NAME} unset here (the worker, where
	// it is set, reads and checks it).
	withPort := filepath.Join(dir, "smtp-port.yaml")
	require.NoError(t, os.WriteFile(withPort, []byte("alerts:\n  channels:\n    ops: {type: slack, url: \"${TEST_SLACK_URL}\"}\n    mail:\n      type: email\n      smtp: {host: smtp.example.com, port: ${TEST_SMTP_PORT}, from: rebound@example.com, to: [ops@example.com]}\n"), 0o600))
	out, errOut, code = runRebound(bin, db.URL, "alerts", "set", "failure-rate-warning", "--channels", "ops", "--config", withPort)
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

// defaultRuleNames are the rules migration 013 creates, as an unknown-rule
// error lists them.
const defaultRuleNames = "rules: breaker-open, dlq-growth, dlq-oldest-age, dlq-unresolved-critical, dlq-unresolved-error, failure-rate-error, failure-rate-warning"

// emptyChannel is the problem of a --channels value with an empty name.
const emptyChannel = `an empty channel name: separate names with single commas ("" for no channel)`

// nameRule is how errors state the rule for rule and channel names.
const nameRule = "use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)"

// noteUnchecked is the note of `alerts set --channels` without --config,
// for one channel ("channel pagr was") or more ("channels a,b were").
func noteUnchecked(what string) string {
	each := "each"
	if strings.HasPrefix(what, "channel ") {
		each = "it"
	}
	return "rebound: note: " + what + " not checked (no --config): " + each + " must be defined under alerts.channels in the workers' YAML, or its notifications fail; check with --config FILE\n"
}

// TestAlertsSetChannelsWithoutConfig: without --config, `alerts set
// --channels` saves any valid channel names (the CLI cannot know the
// workers' channels) and exits 0, with one note on stderr that they were
// not checked and how to check them; no note when no channel is named or
// --config checked them. No row is added or removed.
func TestAlertsSetChannelsWithoutConfig(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"https://hooks.example.com/x\"}\n"), 0o600))
	before := db.RowCounts(t)
	const changed = "rule breaker-open changed: breaker_open > 0, critical, cooldown 1h0m0s, channels [%s], enabled %t\n"
	tests := []struct {
		name         string
		args         []string
		wantCode     int
		wantOut      string
		wantErr      string
		wantChannels []string
	}{
		{"two channels", []string{"--channels", "ops,nope"}, 0, fmt.Sprintf(changed, "ops,nope", true), noteUnchecked("channels ops,nope were"), []string{"ops", "nope"}},
		{"one channel", []string{"--channels", " pagr "}, 0, fmt.Sprintf(changed, "pagr", true), noteUnchecked("channel pagr was"), []string{"pagr"}},
		{"one channel, rule disabled", []string{"--channels", "pagr", "--enabled=false"}, 0, fmt.Sprintf(changed, "pagr", false), noteUnchecked("channel pagr was"), []string{"pagr"}},
		{"--json", []string{"--channels", "nope", "--enabled", "--json"}, 0, "", noteUnchecked("channel nope was"), []string{"nope"}},
		{"channel of 63 characters", []string{"--channels", strings.Repeat("c", 63)}, 0, fmt.Sprintf(changed, strings.Repeat("c", 63), true), noteUnchecked("channel " + strings.Repeat("c", 63) + " was"), []string{strings.Repeat("c", 63)}},
		{"no channel", []string{"--channels", ""}, 0, fmt.Sprintf(changed, "", true), "", []string{}},
		{"no channel, blank", []string{"--channels", " "}, 0, fmt.Sprintf(changed, "", true), "", []string{}},
		{"checked with --config", []string{"--channels", "ops", "--config", cfg}, 0, fmt.Sprintf(changed, "ops", true), "", []string{"ops"}},
		{"channels not given", []string{"--threshold", "0"}, 0, fmt.Sprintf(changed, "ops", true), "", []string{"ops"}},
		{"--config checks", []string{"--channels", "nope", "--config", cfg}, 1, "",
			"rebound: rule \"breaker-open\": channel \"nope\" is not defined under alerts.channels in " + cfg + " (it defines ops); nothing changed\n", []string{"ops"}},
	}
	for _, tt := range tests {
		out, errOut, code := runRebound(bin, db.URL, append([]string{"alerts", "set", "breaker-open"}, tt.args...)...)
		require.Equal(t, tt.wantCode, code, tt.name)
		require.Equal(t, tt.wantErr, errOut, tt.name)
		if tt.wantOut != "" || tt.wantCode != 0 {
			require.Equal(t, tt.wantOut, out, tt.name)
		} else {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &v), tt.name)
			require.Equal(t, "breaker-open", v["name"], tt.name)
		}
		var channels []string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT channels FROM job_alert_config WHERE name = 'breaker-open'`).Scan(&channels))
		require.Equal(t, tt.wantChannels, channels, tt.name)
	}
	require.Equal(t, before, db.RowCounts(t), "no row added or removed")
}

// TestAlertsHistoryUnknownRule: `alerts history --rule NAME` for a NAME
// that is no rule and has no history exits 1 with one message naming it
// and the rules there are (their count past ten), with --json too and
// nothing on stdout; a deleted rule's history and a rule that never fired
// are not errors. Nothing is written.
func TestAlertsHistoryUnknownRule(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	// History of breaker-open, and of old-rule, which no longer exists.
	_, err := db.Pool.Exec(ctx, `INSERT INTO job_alert_history (rule, subject, event, severity, value, threshold, message, channels, firing_since, created_at)
		VALUES ('breaker-open', 'api.example.com', 'firing', 'critical', 1, 0, 'open', '{}', now(), now()),
		       ('old-rule', 'dlq', 'firing', 'warning', 30, 20, 'grew', '{}', now(), now()),
		       ('old-rule', 'dlq', 'resolved', 'warning', 10, 20, 'no longer', '{}', now(), now())`)
	require.NoError(t, err)
	const header = "ID  AT  EVENT  RULE  SUBJECT  SEVERITY  MESSAGE  DELIVERY"
	tests := []struct {
		name     string
		setup    string // SQL run first
		args     []string
		wantCode int
		wantErr  string
		wantRows int    // events printed (with --json), -1 for the table
		wantOut  string // the table's one row, fields joined by two spaces
	}{
		{name: "typo", args: []string{"--rule", "breaker-opne"}, wantCode: 1,
			wantErr: "rebound: no alert rule named \"breaker-opne\" and no history under that name (" + defaultRuleNames + ")\n"},
		{name: "typo, --json", args: []string{"--rule", "nope", "--json"}, wantCode: 1,
			wantErr: "rebound: no alert rule named \"nope\" and no history under that name (" + defaultRuleNames + ")\n"},
		{name: "not a rule name", args: []string{"--rule", "Bad Name", "--json"}, wantCode: 1,
			wantErr: "rebound: no alert rule named \"Bad Name\" and no history under that name (" + defaultRuleNames + ")\n"},
		{name: "deleted rule with history", args: []string{"--rule", "old-rule", "--json"}, wantRows: 2},
		{name: "rule with history", args: []string{"--rule", "breaker-open", "--json"}, wantRows: 1},
		{name: "rule that never fired", args: []string{"--rule", "dlq-growth", "--json"}, wantRows: 0},
		{name: "rule that never fired, table", args: []string{"--rule", "dlq-growth"}, wantRows: -1},
		{name: "every rule", args: []string{"--json"}, wantRows: 3},
		{name: "eleven rules", setup: `INSERT INTO job_alert_config (name, metric, threshold, window_seconds, min_jobs, severity)
			SELECT 'extra-' || g, 'dlq_growth', 1, 60, 0, 'warning' FROM generate_series(1, 4) g`,
			args: []string{"--rule", "nope"}, wantCode: 1,
			wantErr: "rebound: no alert rule named \"nope\" and no history under that name (11 rules: see `rebound alerts list`)\n"},
		{name: "no rules", setup: `DELETE FROM job_alert_config`, args: []string{"--rule", "nope", "--json"}, wantCode: 1,
			wantErr: "rebound: no alert rule named \"nope\" and no history under that name (there are no rules)\n"},
		{name: "no rules, deleted rule with history", args: []string{"--rule", "old-rule", "--json"}, wantRows: 2},
		// The table's delivery column: attempts in the singular for one, and
		// the error of a delivery that failed without an attempt.
		{name: "delivery column", setup: `INSERT INTO job_alert_history (id, rule, subject, event, severity, value, threshold, message, channels, delivery, firing_since, created_at)
			VALUES (100, 'gone-rule', 'dlq', 'firing', 'error', 60, 50, '60 unresolved', '{ops,pagr,mail,slack}',
			        '{"ops": {"outcome": "delivered", "attempts": 1}, "pagr": {"outcome": "failed", "attempts": 0, "error": "channel pagr is not configured in this pod"},
			          "mail": {"outcome": "failed", "attempts": 3, "error": "smtp: 554"}}', '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z')`,
			args:    []string{"--rule", "gone-rule"},
			wantOut: "100  2026-01-02T03:04:05Z  firing  gone-rule  dlq  error  60 unresolved  ops: delivered (1 attempt); pagr: failed (channel pagr is not configured in this pod); mail: failed (3 attempts); slack: pending"},
		// Skipped and superseded deliveries say why they were not sent.
		{name: "delivery column, not sent", setup: `INSERT INTO job_alert_history (id, rule, subject, event, severity, value, threshold, message, channels, delivery, firing_since, created_at)
			VALUES (102, 'gone-breaker-rule', 'notify:hooks.example.com', 'firing', 'critical', 1, 0, 'open', '{hook,ops}',
			        '{"hook": {"outcome": "skipped", "attempts": 0, "error": "not sent through hook: the event is about its own host''s circuit breaker (notify:hooks.example.com)"},
			          "ops": {"outcome": "superseded", "attempts": 2, "error": "not sent: a newer event of this rule and subject was already settled through the channel"}}',
			        '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z')`,
			args:    []string{"--rule", "gone-breaker-rule"},
			wantOut: "102  2026-01-02T03:04:05Z  firing  gone-breaker-rule  notify:hooks.example.com  critical  open  hook: skipped (not sent through hook: the event is about its own host's circuit breaker (notify:hooks.example.com)); ops: superseded (not sent: a newer event of this rule and subject was already settled through the channel)"},
		// Control characters (rows written in SQL) are quoted as Go does:
		// the terminal gets none.
		{name: "control characters", setup: `INSERT INTO job_alert_history (id, rule, subject, event, severity, value, threshold, message, channels, delivery, firing_since, created_at)
			VALUES (101, 'ctl-rule', E'api\x1b]0;pwned\x07', 'firing', 'error', 1, 0, E'open\r\x1b[2K', ARRAY[E'p\x1bx', 'ops'],
			        jsonb_build_object(E'p\x1bx', jsonb_build_object('outcome', 'failed', 'attempts', 0, 'error', E'bad\x1b[31m')), '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z')`,
			args:    []string{"--rule", "ctl-rule"},
			wantOut: `101  2026-01-02T03:04:05Z  firing  ctl-rule  "api\x1b]0;pwned\a"  error  "open\r\x1b[2K"  "p\x1bx": failed ("bad\x1b[31m"); ops: pending`},
	}
	for _, tt := range tests {
		if tt.setup != "" {
			_, err := db.Pool.Exec(ctx, tt.setup)
			require.NoError(t, err, tt.name)
		}
		before := db.RowCounts(t)
		out, errOut, code := runRebound(bin, db.URL, append([]string{"alerts", "history"}, tt.args...)...)
		require.Equal(t, tt.wantCode, code, tt.name)
		require.Equal(t, tt.wantErr, errOut, tt.name)
		require.Equal(t, before, db.RowCounts(t), tt.name)
		switch {
		case tt.wantCode != 0:
			require.Empty(t, out, tt.name)
		case tt.wantRows == -1:
			require.Equal(t, header, strings.Join(strings.Fields(out), "  "), tt.name)
		case tt.wantOut != "":
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			require.Len(t, lines, 2, tt.name)
			require.Equal(t, header, strings.Join(strings.Fields(lines[0]), "  "), tt.name)
			require.Equal(t, tt.wantOut, strings.Join(regexp.MustCompile(`\s{2,}`).Split(lines[1], -1), "  "), tt.name)
		default:
			var events []map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &events), tt.name)
			require.Len(t, events, tt.wantRows, tt.name)
		}
	}
}

// TestAlertsEnableChannels: `alerts enable` of a rule with channels notes
// on stderr, as `alerts set --channels` does, that they were not checked
// without --config; with --config each must be defined there, or it exits
// 1 and the rule stays disabled. No note for a rule without channels, nor
// for disable.
func TestAlertsEnableChannels(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"https://hooks.example.com/x\"}\n"), 0o600))
	_, err := db.Pool.Exec(ctx, `UPDATE job_alert_config SET enabled = false, channels = CASE name
		WHEN 'breaker-open' THEN '{ops,nope}'::text[] WHEN 'dlq-growth' THEN '{ops}'::text[] ELSE '{}' END`)
	require.NoError(t, err)
	before := db.RowCounts(t)
	tests := []struct {
		name, rule  string
		args        []string
		wantCode    int
		wantOut     string
		wantErr     string
		wantEnabled bool
	}{
		{"a channel not in --config", "breaker-open", []string{"--config", cfg}, 1, "",
			"rebound: rule \"breaker-open\": channel \"nope\" is not defined under alerts.channels in " + cfg + " (it defines ops); nothing changed\n", false},
		{"--config empty", "breaker-open", []string{"--config", ""}, 1, "", "rebound: --config is empty: give the workers' configuration file, or leave --config out\n", false},
		{"unknown rule, --config", "nope", []string{"--config", cfg}, 1, "", "rebound: no alert rule \"nope\" (see `rebound alerts list`)\n", false},
		{"two channels, no --config", "breaker-open", nil, 0, "rule breaker-open enabled\n", noteUnchecked("channels ops,nope were"), true},
		{"checked with --config", "dlq-growth", []string{"--config", cfg}, 0, "rule dlq-growth enabled\n", "", true},
		{"no channel", "dlq-oldest-age", nil, 0, "rule dlq-oldest-age enabled\n", "", true},
		{"one channel, --json", "dlq-growth", []string{"--json"}, 0, "{\n  \"enabled\": true,\n  \"name\": \"dlq-growth\"\n}\n", noteUnchecked("channel ops was"), true},
	}
	for _, tt := range tests {
		out, errOut, code := runRebound(bin, db.URL, append([]string{"alerts", "enable", tt.rule}, tt.args...)...)
		require.Equal(t, tt.wantCode, code, tt.name)
		require.Equal(t, tt.wantErr, errOut, tt.name)
		require.Equal(t, tt.wantOut, out, tt.name)
		if tt.rule != "nope" {
			var enabled bool
			require.NoError(t, db.Pool.QueryRow(ctx, `SELECT enabled FROM job_alert_config WHERE name = $1`, tt.rule).Scan(&enabled))
			require.Equal(t, tt.wantEnabled, enabled, tt.name)
		}
	}
	out, errOut, code := runRebound(bin, db.URL, "alerts", "disable", "breaker-open")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "rule breaker-open disabled\n", out)
	require.Empty(t, errOut, "no note for disable")
	require.Equal(t, before, db.RowCounts(t), "no row added or removed")
}

// TestAlertsListTable: `alerts list` shows the window of failure_rate and
// dlq_growth rules and "-" for the metrics that have none, and quotes a
// channel name with control characters (written in SQL, past alerts set's
// checks) as Go does, so the terminal gets no control byte.
func TestAlertsListTable(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	_, err := db.Pool.Exec(context.Background(), `UPDATE job_alert_config SET channels = ARRAY['ops', E'a\x1b[2Jb', E'tab\there', E'csi\u009b31m', E'cr\rnl\n'] WHERE name = 'breaker-open'`)
	require.NoError(t, err)
	out, errOut, code := runRebound(bin, db.URL, "alerts", "list")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, errOut)
	require.False(t, strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && (r < 0x20 || r >= 0x7f && r < 0xa0) }), "no control character but newlines: %q", out)
	var rows []string
	for line := range strings.Lines(out) {
		// Split at runs of spaces: a rule without channels shows nothing
		// between its cooldown and "yes".
		rows = append(rows, strings.Join(regexp.MustCompile(`\s{2,}`).Split(strings.TrimSuffix(line, "\n"), -1), "  "))
	}
	require.Equal(t, []string{
		"NAME  METRIC  THRESHOLD  WINDOW  MIN JOBS  SEVERITY  COOLDOWN  CHANNELS  ENABLED",
		`breaker-open  breaker_open  > 0  -  0  critical  1h0m0s  ops,"a\x1b[2Jb","tab\there","csi\u009b31m","cr\rnl\n"  yes`,
		"dlq-growth  dlq_growth  > 20  1h0m0s  0  warning  1h0m0s  yes",
		"dlq-oldest-age  dlq_oldest_age  > 86400  -  0  warning  1h0m0s  yes",
		"dlq-unresolved-critical  dlq_unresolved  > 100  -  0  critical  1h0m0s  yes",
		"dlq-unresolved-error  dlq_unresolved  > 50  -  0  error  1h0m0s  yes",
		"failure-rate-error  failure_rate  > 50  15m0s  10  error  1h0m0s  yes",
		"failure-rate-warning  failure_rate  > 20  15m0s  10  warning  1h0m0s  yes",
	}, rows)
}
