package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// The worker given a bad flag, environment variable or YAML setting (the
// cases TestStartupErrors and TestPodRefusalsNameTheFlag do not cover):
// exit code 1, one line on stderr naming the flag, variable or key, it
// never starts serving (no "worker started" line), and every table is as it
// was.
func TestBadInputWorkerStartup(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	before := db.RowCounts(t)
	dir := t.TempDir()
	yaml := func(name, content string) string {
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"config truncated", []string{"--config", yaml("truncated", "retry:\n  default: {max_attempts: 5")}, nil, "invalid YAML: line 1: did not find expected ',' or '}'"},
		{"config with a tab", []string{"--config", yaml("tab", "retry:\n\tdefault: {}\n")}, nil, "invalid YAML: line 2: found character that cannot start any token"},
		{"config a list", []string{"--config", yaml("list", "[1, 2]\n")}, nil, "the file must be a mapping of settings, not a list (line 1)\n"},
		{"config channel key unknown", []string{"--config", yaml("colour", "alerts:\n  channels:\n    ops:\n      type: slack\n      colour: red\n")}, nil, "alerts.channels.ops.colour: unknown setting (known: type, url, secret, smtp; line 5)\n"},
		{"config alert deliveries checked against their own policy", []string{"--config", yaml("notify", "retry:\n  default: {initial_delay: 100ms}\n  kinds:\n    rebound_notify: {max_delay: 1s}\n")}, nil, "retry.kinds.rebound_notify.max_delay: must be >= initial_delay (5s)\n"},
		{"config with a NUL", []string{"--config", yaml("nul", "retry:\n  default: {max_attempts: 5}\n\x00\n")}, nil, "invalid YAML"},
		{"config in invalid UTF-8", []string{"--config", yaml("utf8", "alerts:\n  link: \"http://x/\xff\"\n")}, nil, "not UTF-8 (byte 0xFF on line 2): the configuration file must be UTF-8"},
		{"config SQL-looking kind", []string{"--config", yaml("sql", "retry:\n  kinds:\n    \"'); DROP TABLE river_job; --\": {max_attempts: 3}\n")}, nil, `retry.kinds.'); DROP TABLE river_job; --: unknown job kind "'); DROP TABLE river_job; --"`},
		{"config max attempts past int64", []string{"--config", yaml("huge", "retry:\n  default: {max_attempts: 99999999999999999999}\n")}, nil, `retry.default.max_attempts: "99999999999999999999" is not an integer (line 2)`},
		{"config max attempts negative", []string{"--config", yaml("neg", "retry:\n  default: {max_attempts: -3}\n")}, nil, "retry.default.max_attempts: must be >= 1 (got -3)"},
		{"config max attempts a fraction", []string{"--config", yaml("frac", "retry:\n  default: {max_attempts: 2.5}\n")}, nil, `retry.default.max_attempts: "2.5" is not an integer (line 2)`},
		{"config rescue limit a fraction", []string{"--config", yaml("rfrac", "retry:\n  kinds:\n    http_request: {rescue_limit: 1.5}\n")}, nil, `retry.kinds.http_request.rescue_limit: "1.5" is not an integer (line 3)`},
		{"config delay negative", []string{"--config", yaml("delay", "retry:\n  default: {initial_delay: -1s}\n")}, nil, "retry.default.initial_delay: must be > 0 (got -1s)"},
		{"config delay absurd", []string{"--config", yaml("absurd", "retry:\n  default: {max_delay: 9999999h}\n")}, nil, `retry.default.max_delay: "9999999h" is not a duration (line 2)`},
		{"config a key twice", []string{"--config", yaml("twice", "retry:\n  default: {max_attempts: 3, max_attempts: 4}\n")}, nil, "retry.default.max_attempts: set twice (line 2)"},
		{"config breaker ratio NaN", []string{"--config", yaml("nan", "breaker:\n  defaults: {failure_ratio: .nan}\n")}, nil, "breaker.defaults.failure_ratio: must be in (0, 1], or negative to disable the ratio rule (got NaN)"},
		{"config breaker threshold a fraction", []string{"--config", yaml("bfrac", "breaker:\n  defaults: {failure_threshold: 2.5}\n")}, nil, `breaker.defaults.failure_threshold: "2.5" is not an integer (line 2)`},
		{"config breaker window negative", []string{"--config", yaml("bwin", "breaker:\n  defaults: {window: -5s}\n")}, nil, "breaker.defaults.window: must be >= 1s (got -5s)"},
		{"config breaker key blank", []string{"--config", yaml("bkey", "breaker:\n  keys:\n    \" \": {failure_threshold: 3}\n")}, nil, `breaker.keys: invalid operation key " ": blank (white space only)`},
		{"config alerts interval negative", []string{"--config", yaml("aint", "alerts:\n  interval: -1m\n")}, nil, "alerts.interval: -1m0s is not between 1s and 1h"},
		{"config alert channel type", []string{"--config", yaml("atype", "alerts:\n  channels:\n    ops: {type: carrier-pigeon}\n")}, nil, `alerts.channels.ops.type: "carrier-pigeon" is not slack, webhook or email`},
		{"config alert channel URL", []string{"--config", yaml("aurl", "alerts:\n  channels:\n    ops: {type: webhook, url: \"not a url\"}\n")}, nil, "alerts.channels.ops.url: an http or https URL is required"},
		{"config weekly intelligence URL", []string{"--config", yaml("weekly", "weekly_intelligence:\n  base_url: \"ftp://x\"\n")}, nil, `weekly_intelligence.base_url: "ftp://x" is not an absolute http or https URL`},
		{"config from the environment", nil, []string{"REBOUND_CONFIG=" + yaml("env", "retry:\n  default: {max_attempts: 0}\n")}, "retry.default.max_attempts: must be >= 1 (got 0)"},
		{"queues workers absurd", []string{"--queues", "default=99999999999999999999"}, nil, `queue "default": workers must be a number from 1 to 10000`},
		{"queues workers negative", []string{"--queues", "default=-1"}, nil, `queue "default": workers must be a number from 1 to 10000, got "-1"`},
		{"queues SQL-looking name", []string{"--queues", "'); DROP TABLE river_job; --=3"}, nil, `queue name "'); DROP TABLE river_job; --"`},
		{"job timeout past int64", []string{"--job-timeout", "9999999999h"}, nil, `worker: invalid --job-timeout "9999999999h"`},
		{"shutdown timeout zero from the environment", nil, []string{"REBOUND_SHUTDOWN_TIMEOUT=0s"}, "worker: invalid REBOUND_SHUTDOWN_TIMEOUT 0s: must be positive"},
		{"poll interval negative from the environment", nil, []string{"REBOUND_FETCH_POLL_INTERVAL=-1s"}, "REBOUND_FETCH_POLL_INTERVAL"},
		{"log format unknown from the environment", nil, []string{"REBOUND_LOG_FORMAT=xml"}, `worker: invalid REBOUND_LOG_FORMAT "xml": want auto, json or text`},
		{"log format unknown", []string{"--log-format", "yaml"}, nil, `worker: invalid --log-format "yaml": want auto, json or text`},
		{"log level unknown from the environment", nil, []string{"REBOUND_LOG_LEVEL=loud"}, `worker: invalid REBOUND_LOG_LEVEL "loud": want debug, info, warn or error`},
		{"ID in invalid UTF-8 from the environment", nil, []string{"REBOUND_ID=pod\xff"}, `worker: invalid REBOUND_ID: "pod\xff" is not valid UTF-8 or holds a control character`},
		{"ID with a control character", []string{"--id", "pod\x01"}, nil, `worker: invalid --id: "pod\x01" is not valid UTF-8 or holds a control character`},
		{"HTTP address not an address from the environment", nil, []string{"REBOUND_HTTP_ADDR=nonsense"}, `worker: invalid REBOUND_HTTP_ADDR "nonsense": address nonsense: missing port in address (want host:port, e.g. :8080 or 127.0.0.1:8080)`},
		{"admin token with a control character", nil, []string{"REBOUND_ADMIN_TOKEN=0123456789abcdef\x01"}, "REBOUND_ADMIN_TOKEN contains a control character"},
		{"an argument", []string{"serve"}, nil, `worker: unknown command "serve" for "worker"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := proctest.WithDefaults(tt.args, "--http-addr", proctest.FreeAddr(t))
			if slices := tt.env; len(slices) > 0 && strings.HasPrefix(slices[0], "REBOUND_HTTP_ADDR=") {
				args = tt.args // the variable, not the flag
			}
			res := proctest.Run(t, append([]string{"DATABASE_URL=" + db.URL}, tt.env...), "worker", args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.True(t, strings.HasPrefix(res.Stderr, "worker: "), res.Stderr)
			require.Equal(t, 1, strings.Count(res.Stderr, "\n"), "one line: %q", res.Stderr)
			require.Contains(t, res.Stderr, tt.wantErr)
			require.NotContains(t, res.Stdout, "worker started")
		})
	}
	t.Cleanup(func() { require.Equal(t, before, db.RowCounts(t), "every table as it was") })
}
