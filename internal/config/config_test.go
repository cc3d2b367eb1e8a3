package config_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/config"
	"github.com/rebound-queue/rebound/monitor/notify"
	"github.com/rebound-queue/rebound/retrypolicy"
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
		{name: "unknown top-level key", yaml: "retyr: {}\n", wantErr: "retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1)"},
		{name: "two unknown keys on one line", yaml: "a: 1\nb: 2\n", wantErr: "a: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1); b: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 2)"},
		{name: "bad value names its key", yaml: "retry:\n  default:\n    initial_delay: 5s\n    max_delay: 1s\n", wantErr: "retry.default.max_delay: must be >= initial_delay (5s)"},
		{name: "unknown retry key", yaml: "retry:\n  default:\n    max_atempts: 3\n", wantErr: "retry.default.max_atempts: unknown setting (known: max_attempts, initial_delay, max_delay, min_delay, jitter, retry_after_max, rescue_limit, classes; line 3)"},
		{name: "unknown breaker key", yaml: "breaker:\n  defaults:\n    failure_treshold: 3\n", wantErr: "breaker.defaults.failure_treshold: unknown setting (known: failure_threshold, failure_ratio, minimum_calls, window, open_timeout, open_timeout_multiplier, max_open_timeout, half_open_max_probes, success_threshold, probe_timeout, max_park, park_spread, wake_spread, wake_wave; line 3)"},
		{name: "max attempts past River's column", yaml: "retry:\n  default:\n    max_attempts: 70000\n", wantErr: "retry.default.max_attempts: must be <= 32767, the most River's max_attempts column holds (got 70000)"},
		{name: "not YAML", yaml: "retry: [\n", wantErr: "invalid YAML: line 1: did not find expected node content"},
		{name: "weekly_intelligence base URL", yaml: "weekly_intelligence:\n  base_url: https://reports.example.com/api\n"},
		{name: "relative weekly_intelligence base URL", yaml: "weekly_intelligence:\n  base_url: /api\n", wantErr: `weekly_intelligence.base_url: "/api" is not an absolute http or https URL without query or fragment`},
		{name: "unknown weekly_intelligence key", yaml: "weekly_intelligence:\n  url: https://x\n", wantErr: "weekly_intelligence.url: unknown setting (known: base_url; line 2)"},
		{name: "alerts", yaml: "alerts:\n  interval: 15m\n  channels:\n    ops: {type: webhook, url: \"https://hooks.example.com/x\", secret: abc}\n"},
		{name: "alert interval too short", yaml: "alerts:\n  interval: 100ms\n", wantErr: "alerts.interval: 100ms is not between 1s and 1h"},
		{name: "alert interval not a duration", yaml: "alerts:\n  interval: soon\n", wantErr: `alerts.interval: "soon" is not a duration, e.g. 30s, 15m or 1h (line 2)`},
		{name: "unknown alerts key", yaml: "alerts:\n  channel: {}\n", wantErr: "alerts.channel: unknown setting (known: interval, link, channels; line 2)"},
		// Every key of the file is named by its path, whatever its section,
		// and every problem is said, on one line.
		{name: "unknown channel key", yaml: "alerts:\n  channels:\n    ops:\n      type: slack\n      colour: red\n", wantErr: "alerts.channels.ops.colour: unknown setting (known: type, url, secret, smtp; line 5)"},
		{name: "unknown smtp key, flow style", yaml: "alerts:\n  channels:\n    mail: {type: email, smtp: {host: h, prot: 25}}\n", wantErr: "alerts.channels.mail.smtp.prot: unknown setting (known: host, port, username, password, tls, from, to; line 3)"},
		{name: "smtp port not a number", yaml: "alerts:\n  channels:\n    mail:\n      type: email\n      smtp: {host: h, port: smtp}\n", wantErr: `alerts.channels.mail.smtp.port: "smtp" is not a whole number (line 5)`},
		{name: "smtp port a fraction", yaml: "alerts:\n  channels:\n    mail:\n      type: email\n      smtp: {host: h, port: 25.5}\n", wantErr: `alerts.channels.mail.smtp.port: "25.5" is not a whole number (line 5)`},
		{name: "smtp to not a list", yaml: "alerts:\n  channels:\n    mail:\n      type: email\n      smtp:\n        to: {a: b}\n", wantErr: "alerts.channels.mail.smtp.to: must be a list, not a mapping (line 6)"},
		{name: "smtp to item a list", yaml: "alerts:\n  channels:\n    mail:\n      type: email\n      smtp:\n        to: [a@example.com, [b@example.com]]\n", wantErr: "alerts.channels.mail.smtp.to[1]: must be a single value, not a list (line 6)"},
		{name: "channels a list", yaml: "alerts:\n  channels:\n    - ops\n", wantErr: "alerts.channels: must be a mapping, not a list (line 3)"},
		{name: "alerts a value", yaml: "alerts: on\n", wantErr: `alerts: must be a mapping of settings, not "on" (line 1)`},
		{name: "file a list", yaml: "- retry\n", wantErr: "the file must be a mapping of settings, not a list (line 1)"},
		{name: "channel key twice", yaml: "alerts:\n  channels:\n    ops: {type: slack, url: \"https://x\", url: \"https://y\"}\n", wantErr: "alerts.channels.ops.url: set twice (lines 3 and 3)"},
		{name: "several problems", yaml: "alerts:\n  interval: soon\n  channels:\n    ops: {type: slack, colour: red}\nweekly_intelligence:\n  url: https://x\n",
			wantErr: `alerts.interval: "soon" is not a duration, e.g. 30s, 15m or 1h (line 2); alerts.channels.ops.colour: unknown setting (known: type, url, secret, smtp; line 4); weekly_intelligence.url: unknown setting (known: base_url; line 6)`},
		{name: "an anchor outside the settings", yaml: "base: &base {type: webhook}\n", wantErr: "base: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1)"},
		{name: "merge key brings known keys", yaml: "alerts:\n  channels:\n    a: &a {type: webhook, url: \"https://hooks.example.com/a\"}\n    b: {<<: *a, url: \"https://hooks.example.com/b\"}\n"},
		{name: "merge key brings an unknown key", yaml: "alerts:\n  channels:\n    a: &a {type: webhook, url: \"https://hooks.example.com/a\"}\n    b: {<<: {colour: red}, type: slack, url: \"https://hooks.example.com/b\"}\n", wantErr: "alerts.channels.b.colour: unknown setting (known: type, url, secret, smtp; line 4)"},
		{name: "alerts link", yaml: "alerts:\n  link: https://ops.example.com/api/admin/job-health\n"},
		{name: "alerts link not a URL", yaml: "alerts:\n  link: not a url\n", wantErr: `alerts.link: "not a url" is not an absolute http or https URL (it is the link in every notification)`},
		{name: "alerts link relative", yaml: "alerts:\n  link: /api/admin/job-health\n", wantErr: `alerts.link: "/api/admin/job-health" is not an absolute http or https URL (it is the link in every notification)`},
		{name: "bad channel", yaml: "alerts:\n  channels:\n    ops: {type: slack}\n", wantErr: "alerts.channels.ops.url: an http or https URL is required"},
		{name: "unset secret", yaml: "alerts:\n  channels:\n    ops: {type: slack, url: \"${REBOUND_TEST_UNSET_VARIABLE}\"}\n", wantErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "Latin-1", yaml: "retry:\n  default: {max_attempts: 5}\n# caf\xe9\n", wantErr: "not UTF-8 (byte 0xE9 on line 3): the configuration file must be UTF-8"},
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

	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err = config.Load(missing)
	require.EqualError(t, err, missing+": no such file or directory")
	require.EqualError(t, config.NameSource(err, "--config"), "--config "+missing+": no such file or directory")
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
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "unset secrets, alerts first", yaml: alerts + retry, wantMaxAttempts: 3,
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "unset secrets, CRLF line ends", yaml: strings.ReplaceAll(alerts+retry, "\n", "\r\n"), wantMaxAttempts: 3,
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "bad alerts settings", yaml: "alerts:\n  interval: 100ms\n  link: not a url\n" + retry, wantMaxAttempts: 3,
			wantLoadErr: "alerts.interval: 100ms is not between 1s and 1h"},
		{name: "only alerts", yaml: alerts, wantMaxAttempts: 5,
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "unset variable outside alerts", yaml: alerts + "retry:\n  default:\n    max_attempts: ${REBOUND_TEST_UNSET_OTHER}\n",
			wantErr:     "retry.default.max_attempts: environment variable REBOUND_TEST_UNSET_OTHER is unset or empty",
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty; retry.default.max_attempts: environment variable REBOUND_TEST_UNSET_OTHER is unset or empty"},
		{name: "unknown key after alerts keeps its line", yaml: alerts + "retyr: {}\n",
			wantErr:     "retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 9)",
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "bad retry value", yaml: alerts + "retry:\n  default:\n    max_attempts: 70000\n",
			wantErr:     "retry.default.max_attempts: must be <= 32767, the most River's max_attempts column holds (got 70000)",
			wantLoadErr: "alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_VARIABLE is unset or empty"},
		{name: "not YAML", yaml: "retry: [\n", wantErr: "invalid YAML: line 1: did not find expected node content",
			wantLoadErr: "invalid YAML: line 1: did not find expected node content"},
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

// A file that is not UTF-8 is refused by every reader with one line naming
// the file: UTF-16 with or without a byte order mark (which the YAML
// library would otherwise decode, or refuse as "control characters"), or
// the first byte that is not UTF-8 and its line. UTF-8 with a byte order
// mark is UTF-8.
func TestNotUTF8Refused(t *testing.T) {
	t.Parallel()
	const text = "retry:\n  default: {max_attempts: 3}\nalerts:\n  channels:\n    ops: {type: webhook, url: \"https://hooks.example.com/x\"}\n"
	utf16 := func(bigEndian, bom bool) []byte {
		var b []byte
		if bom {
			b = []byte{0xFF, 0xFE}
			if bigEndian {
				b = []byte{0xFE, 0xFF}
			}
		}
		for _, c := range []byte(text) {
			if bigEndian {
				b = append(b, 0, c)
			} else {
				b = append(b, c, 0)
			}
		}
		return b
	}
	const looksUTF16 = "not UTF-8 (it looks like UTF-16): the configuration file must be UTF-8"
	tests := []struct {
		name    string
		content []byte
		wantErr string // after "PATH: "; "" means accepted
	}{
		{"UTF-16LE with a byte order mark", utf16(false, true), looksUTF16},
		{"UTF-16BE with a byte order mark", utf16(true, true), looksUTF16},
		{"UTF-16LE without one", utf16(false, false), looksUTF16},
		{"UTF-16BE without one", utf16(true, false), looksUTF16},
		{"Latin-1 in a comment", []byte("# caf\xe9\n" + text), "not UTF-8 (byte 0xE9 on line 1): the configuration file must be UTF-8"},
		{"Latin-1 in a value", []byte(strings.Replace(text, "hooks.example", "h\xf4te.example", 1)), "not UTF-8 (byte 0xF4 on line 5): the configuration file must be UTF-8"},
		{"cut UTF-8 sequence at the end", []byte(text + "# \xe2\x82"), "not UTF-8 (byte 0xE2 on line 6): the configuration file must be UTF-8"},
		{"UTF-8 with a byte order mark", append([]byte{0xEF, 0xBB, 0xBF}, text...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "worker.yaml")
			require.NoError(t, os.WriteFile(path, tt.content, 0o600))
			s, err := config.Load(path)
			_, errWithout := config.LoadWithoutAlerts(path)
			checked, errChecked := config.LoadWithoutSecrets(path)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, errWithout)
				require.NoError(t, errChecked)
				require.Equal(t, 3, s.Retry.Lookup("http_request").MaxAttempts)
				require.Equal(t, []string{"ops"}, slices.Collect(maps.Keys(checked.Alerts.Channels)))
				return
			}
			require.EqualError(t, err, path+": "+tt.wantErr)
			require.EqualError(t, errWithout, path+": "+tt.wantErr)
			require.EqualError(t, errChecked, path+": "+tt.wantErr)
		})
	}
}

// Settings.EnvRefs lists the variables the file's ${NAME} references read
// (the worker accepts REBOUND_* ones among its variables).
func TestEnvRefs(t *testing.T) {
	t.Setenv("REBOUND_TEST_ENVREFS_URL", "https://hooks.example.com/x")
	t.Setenv("REBOUND_TEST_ENVREFS_SECRET", "s3cret")
	s, err := config.Parse([]byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"${REBOUND_TEST_ENVREFS_URL}\", secret: \"${REBOUND_TEST_ENVREFS_SECRET}\"}\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"REBOUND_TEST_ENVREFS_SECRET", "REBOUND_TEST_ENVREFS_URL"}, s.EnvRefs)
	require.Equal(t, "s3cret", s.Alerts.Channels["ops"].Secret)
}

// LoadWithoutSecrets (rebound alerts set --config) refuses what Load
// refuses, with Load's message, but not a ${NAME} unset here: it reads
// config.UnsetSecret for it, and the variable's value when set.
func TestLoadWithoutSecrets(t *testing.T) {
	t.Setenv("REBOUND_TEST_LWS_URL", "https://hooks.example.com/set")
	t.Setenv("REBOUND_TEST_LWS_PORT", "2525")
	t.Setenv("REBOUND_TEST_LWS_BAD_PORT", "smtp")
	mail := func(port string) string {
		return "alerts:\n  channels:\n    ops:\n      type: email\n      smtp: {host: smtp.example.com, port: " + port + ", password: \"${REBOUND_TEST_LWS_PW}\", from: a@example.com, to: [b@example.com]}\n"
	}
	tests := []struct {
		name     string
		yaml     string
		wantErr  string // after "PATH: "; "" means accepted
		wantURL  string // channel ops's url when accepted
		wantPort int    // channel ops's smtp.port when accepted
	}{
		// A number unset here is checked where it is set (the worker, which
		// refuses it unset); its text is not a number, and reads as 0.
		{name: "port unset here", yaml: mail("${REBOUND_TEST_LWS_UNSET_PORT}"), wantPort: 0},
		{name: "port set here", yaml: mail("${REBOUND_TEST_LWS_PORT}"), wantPort: 2525},
		{name: "interval unset here", yaml: strings.Replace(mail("25"), "alerts:\n", "alerts:\n  interval: ${REBOUND_TEST_LWS_UNSET_INTERVAL}\n", 1), wantPort: 25},
		{name: "quoted port not a number", yaml: mail(`"smtp"`), wantErr: `alerts.channels.ops.smtp.port: "smtp" is not a whole number (line 5)`},
		{name: "port set here, not a number", yaml: mail("${REBOUND_TEST_LWS_BAD_PORT}"), wantErr: `alerts.channels.ops.smtp.port: "smtp" is not a whole number (line 5)`},
		{name: "literal port not a number", yaml: mail("smtp"), wantErr: `alerts.channels.ops.smtp.port: "smtp" is not a whole number (line 5)`},
		{name: "literal port out of range", yaml: mail("70000"), wantErr: "alerts.channels.ops.smtp.port: 70000 is not a port"},
		{name: "quoted port", yaml: mail(`"25"`), wantErr: `alerts.channels.ops.smtp.port: "25" is not a whole number: write it without quotes (line 5)`},
		{name: "secret unset here", yaml: "alerts:\n  channels:\n    ops: {type: slack, url: \"${REBOUND_TEST_LWS_UNSET}\"}\n", wantURL: config.UnsetSecret},
		{name: "secret set here", yaml: "alerts:\n  channels:\n    ops: {type: slack, url: \"${REBOUND_TEST_LWS_URL}\"}\n", wantURL: "https://hooks.example.com/set"},
		{name: "unset secrets of an email channel", yaml: "alerts:\n  channels:\n    ops: {type: email, smtp: {host: \"${REBOUND_TEST_LWS_HOST}\", password: \"${REBOUND_TEST_LWS_PW}\", from: \"${REBOUND_TEST_LWS_FROM}\", to: [\"${REBOUND_TEST_LWS_TO}\"]}}\n"},
		{name: "channel name not valid", yaml: "alerts:\n  channels:\n    Ops: {type: slack, url: \"${REBOUND_TEST_LWS_UNSET}\"}\n",
			wantErr: `alerts.channels: name "Ops": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)`},
		{name: "channel type not valid", yaml: "alerts:\n  channels:\n    ops: {type: sms, url: \"https://x\"}\n", wantErr: `alerts.channels.ops.type: "sms" is not slack, webhook or email`},
		{name: "unknown top-level key", yaml: "retyr: {}\n", wantErr: "retyr: unknown setting (known: retry, breaker, alerts, weekly_intelligence; line 1)"},
		{name: "not YAML", yaml: "alerts: [\n", wantErr: "invalid YAML: line 1: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "worker.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o600))
			s, err := config.LoadWithoutSecrets(path)
			if tt.wantErr != "" {
				require.EqualError(t, err, path+": "+tt.wantErr)
				// The worker's loader says the same (with its secrets set).
				if !strings.Contains(tt.yaml, "${") {
					_, err = config.Load(path)
					require.EqualError(t, err, path+": "+tt.wantErr)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{"ops"}, slices.Collect(maps.Keys(s.Alerts.Channels)))
			if tt.wantURL != "" {
				require.Equal(t, tt.wantURL, s.Alerts.Channels["ops"].URL)
			}
			require.Equal(t, tt.wantPort, s.Alerts.Channels["ops"].SMTP.Port)
		})
	}
}

// TestLoadNotifyRetry: alert deliveries (rebound_notify) have a retry
// policy of their own; retry.default does not reach it, and
// retry.kinds.rebound_notify is layered over it, with errors named by its
// key.
func TestLoadNotifyRetry(t *testing.T) {
	t.Parallel()
	own := notify.RetryPolicy()
	tests := []struct {
		name    string
		yaml    string
		want    func(p *retrypolicy.Policy)
		wantErr string
	}{
		{name: "no retry section", yaml: "", want: func(*retrypolicy.Policy) {}},
		{name: "retry.default does not apply", yaml: "retry:\n  default:\n    max_attempts: 3\n    initial_delay: 1s\n    max_delay: 10s\n    classes:\n      server_error: {retry: false}\n",
			want: func(*retrypolicy.Policy) {}},
		{name: "its own section, over its own policy", yaml: "retry:\n  default:\n    max_attempts: 3\n  kinds:\n    rebound_notify:\n      max_attempts: 300\n      classes:\n        timeout: {strategy: exponential}\n",
			want: func(p *retrypolicy.Policy) {
				p.MaxAttempts = 300
				p.Rules[retrypolicy.ClassTimeout] = retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyExponential}
			}},
		{name: "checked against its own policy", yaml: "retry:\n  kinds:\n    rebound_notify:\n      max_delay: 1s\n",
			wantErr: "retry.kinds.rebound_notify.max_delay: must be >= initial_delay (5s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "worker.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o600))
			s, err := config.Load(path)
			if tt.wantErr != "" {
				require.EqualError(t, err, path+": "+tt.wantErr)
				return
			}
			require.NoError(t, err)
			want := own
			want.Rules = maps.Clone(own.Rules)
			tt.want(&want)
			require.Equal(t, want, s.NotifyRetry)
			require.NotContains(t, s.Retry.Kinds(), notify.Kind, "not among the kinds retry.default reaches")
		})
	}
}
