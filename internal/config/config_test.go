package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/config"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "empty", yaml: ""},
		{name: "comments only", yaml: "# nothing\n"},
		{name: "retry overrides", yaml: "retry:\n  default:\n    max_attempts: 3\n  kinds:\n    http_request:\n      max_delay: 10m\n"},
		{name: "unknown top-level key", yaml: "retyr: {}\n", wantErr: "invalid configuration: retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1)"},
		{name: "two unknown keys on one line", yaml: "a: 1\nb: 2\n", wantErr: "invalid configuration: a: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1); b: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 2)"},
		{name: "bad value names its key", yaml: "retry:\n  default:\n    initial_delay: 5s\n    max_delay: 1s\n", wantErr: "retry.default.max_delay: must be >= initial_delay (5s)"},
		{name: "unknown retry key", yaml: "retry:\n  default:\n    max_atempts: 3\n", wantErr: "retry.default.max_atempts: unknown setting (known: max_attempts, initial_delay, max_delay, min_delay, jitter, retry_after_max, rescue_limit, classes)"},
		{name: "unknown breaker key", yaml: "breaker:\n  defaults:\n    failure_treshold: 3\n", wantErr: "breaker.defaults.failure_treshold: unknown setting (known: failure_threshold, failure_ratio, minimum_calls, window, open_timeout, open_timeout_multiplier, max_open_timeout, half_open_max_probes, success_threshold, probe_timeout, max_park, park_spread, wake_spread, wake_wave)"},
		{name: "max attempts past River's column", yaml: "retry:\n  default:\n    max_attempts: 70000\n", wantErr: "retry.default.max_attempts: must be <= 32767, the most River's max_attempts column holds (got 70000)"},
		{name: "not YAML", yaml: "retry: [\n", wantErr: "invalid YAML: yaml: line 1: did not find expected node content"},
		{name: "weekly_intelligence base URL", yaml: "weekly_intelligence:\n  base_url: https://reports.example.com/api\n"},
		{name: "relative weekly_intelligence base URL", yaml: "weekly_intelligence:\n  base_url: /api\n", wantErr: `weekly_intelligence.base_url "/api": want an absolute http or https URL without query or fragment`},
		{name: "unknown weekly_intelligence key", yaml: "weekly_intelligence:\n  url: https://x\n", wantErr: "invalid configuration: line 2: field url not found in type jobs.WeeklyIntelligenceConfig"},
		{name: "alerts", yaml: "alerts:\n  interval: 15m\n  channels:\n    ops: {type: webhook, url: \"https://hooks.example.com/x\", secret: abc}\n"},
		{name: "alert interval too short", yaml: "alerts:\n  interval: 100ms\n", wantErr: "alerts.interval: 100ms is not between 1s and 1h"},
		{name: "alert interval not a duration", yaml: "alerts:\n  interval: soon\n", wantErr: "invalid configuration: line 2: cannot unmarshal !!str `soon` into time.Duration"},
		{name: "unknown alerts key", yaml: "alerts:\n  channel: {}\n", wantErr: "invalid configuration: line 2: field channel not found in type config.AlertsFile"},
		{name: "alerts link", yaml: "alerts:\n  link: https://ops.example.com/api/admin/job-health\n"},
		{name: "alerts link not a URL", yaml: "alerts:\n  link: not a url\n", wantErr: `alerts.link "not a url": want an absolute http or https URL (it is the link in every notification)`},
		{name: "alerts link relative", yaml: "alerts:\n  link: /api/admin/job-health\n", wantErr: `alerts.link "/api/admin/job-health": want an absolute http or https URL (it is the link in every notification)`},
		{name: "bad channel", yaml: "alerts:\n  channels:\n    ops: {type: slack}\n", wantErr: "alerts.channels.ops.url: an http or https URL is required"},
		{name: "unset secret", yaml: "alerts:\n  channels:\n    ops: {type: slack, url: \"${REBOUND_TEST_UNSET_VARIABLE}\"}\n", wantErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := config.Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, s.Retry)
		})
	}
}

func TestLoadAppliesKindOverrides(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(path, []byte("retry:\n  default:\n    max_attempts: 3\n  kinds:\n    http_request:\n      max_delay: 10m\n"), 0o600))
	s, err := config.Load(path)
	require.NoError(t, err)
	p := s.Retry.Lookup("http_request")
	require.Equal(t, 3, p.MaxAttempts)
	require.Equal(t, 10*time.Minute, p.MaxDelay)
	require.Equal(t, 300*time.Second, s.Retry.Lookup("other").MaxDelay)

	_, err = config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "config: open ")
}

// LoadWithoutAlerts (enqueue's) leaves the alerts section out: its unset
// ${NAME} secrets and its bad settings are no error there, while Load (the
// worker's) refuses them; every other section is as strict, and errors keep
// their line numbers.
func TestLoadWithoutAlerts(t *testing.T) {
	t.Parallel()
	const unset = "${REBOUND_TEST_UNSET_VARIABLE}"
	alerts := "alerts:\n  # a comment: " + unset + "\n  interval: 1m\n  channels:\n    ops: {type: slack, url: \"" + unset + "\"}\n    mail:\n      type: email\n      smtp: {host: smtp.example.com, password: \"" + unset + "\"}\n"
	retry := "retry:\n  default:\n    max_attempts: 3\n"
	tests := []struct {
		name            string
		yaml            string
		wantErr         string // LoadWithoutAlerts's, after "PATH: "
		wantLoadErr     string // Load's, after "PATH: "
		wantMaxAttempts int
	}{
		{name: "unset secrets, alerts last", yaml: retry + alerts, wantMaxAttempts: 3,
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
		{name: "unset secrets, alerts first", yaml: alerts + retry, wantMaxAttempts: 3,
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
		{name: "unset secrets, CRLF line ends", yaml: strings.ReplaceAll(alerts+retry, "\n", "\r\n"), wantMaxAttempts: 3,
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
		{name: "bad alerts settings", yaml: "alerts:\n  interval: 100ms\n  link: not a url\n" + retry, wantMaxAttempts: 3,
			wantLoadErr: "alerts.interval: 100ms is not between 1s and 1h"},
		{name: "only alerts", yaml: alerts, wantMaxAttempts: 5,
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
		{name: "unset variable outside alerts", yaml: alerts + "retry:\n  default:\n    max_attempts: ${REBOUND_TEST_UNSET_OTHER}\n",
			wantErr:     "environment variable REBOUND_TEST_UNSET_OTHER is not set",
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE, REBOUND_TEST_UNSET_OTHER is not set"},
		{name: "unknown key after alerts keeps its line", yaml: alerts + "retyr: {}\n",
			wantErr:     "invalid configuration: retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 9)",
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
		{name: "bad retry value", yaml: alerts + "retry:\n  default:\n    max_attempts: 70000\n",
			wantErr:     "retry.default.max_attempts: must be <= 32767, the most River's max_attempts column holds (got 70000)",
			wantLoadErr: "environment variable REBOUND_TEST_UNSET_VARIABLE is not set"},
		{name: "not YAML", yaml: "retry: [\n", wantErr: "invalid YAML: yaml: line 1: did not find expected node content",
			wantLoadErr: "invalid YAML: yaml: line 1: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "worker.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o600))
			_, err := config.Load(path)
			require.EqualError(t, err, path+": "+tt.wantLoadErr)
			s, err := config.LoadWithoutAlerts(path)
			if tt.wantErr != "" {
				require.EqualError(t, err, path+": "+tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantMaxAttempts, s.Retry.Lookup("http_request").MaxAttempts)
			require.Equal(t, config.AlertsFile{}, s.Alerts)
		})
	}
}
