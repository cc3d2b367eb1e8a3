package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// A REBOUND_ variable the worker does not read is refused at start, before
// it connects: named with the closest variable it reads, or with all of
// them. The variables of enqueue's flags, the ${NAME} references of its
// --config and those Kubernetes sets for a Service named rebound are let be
// (the start then fails on the bad --http-addr given to stop it there).
func TestUnknownReboundVariableRefused(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	before := db.RowCounts(t)
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("alerts:\n  channels:\n    ops: {type: slack, url: \"${REBOUND_SLACK_URL}\"}\n"), 0o600))
	const list = ": worker reads REBOUND_ADMIN_TOKEN, REBOUND_CONFIG, REBOUND_CONSOLE_SECURE_COOKIE, REBOUND_FETCH_COOLDOWN, " +
		"REBOUND_FETCH_POLL_INTERVAL, REBOUND_HTTP_ADDR, REBOUND_ID, REBOUND_JOB_TIMEOUT, REBOUND_LOG_FORMAT, REBOUND_LOG_LEVEL, " +
		"REBOUND_POLL_ONLY, REBOUND_QUEUES, REBOUND_RESCUE_GRACE, REBOUND_RESCUE_STUCK_JOBS_AFTER, REBOUND_SHUTDOWN_TIMEOUT, " +
		"REBOUND_TRACING, REBOUND_TRUST_FORWARDED_PROTO"
	// The pod got past the environment check: the bad address is what stops it.
	started := func(ref string) string {
		return `worker: invalid ` + ref + ` "nonsense": address nonsense: missing port in address (want host:port, e.g. :8080 or 127.0.0.1:8080)` + "\n"
	}

	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"a misspelt name", nil, []string{"REBOUND_WROKERS=4"}, "worker: unknown environment variable REBOUND_WROKERS" + list + "\n"},
		{"a breaker setting of the YAML file", nil, []string{"REBOUND_WAKE_SPREAD=1s"}, "worker: unknown environment variable REBOUND_WAKE_SPREAD" + list + "\n"},
		{"a typo away from a flag's", nil, []string{"REBOUND_QUEUS=mail=5"}, "worker: unknown environment variable REBOUND_QUEUS (did you mean REBOUND_QUEUES?)\n"},
		{"two", nil, []string{"REBOUND_SHUTDOWN_TIMOUT=1m", "REBOUND_WROKERS=4"},
			"worker: unknown environment variables REBOUND_SHUTDOWN_TIMOUT (did you mean REBOUND_SHUTDOWN_TIMEOUT?), REBOUND_WROKERS" + list + "\n"},
		{"a secret no --config names", nil, []string{"REBOUND_SLACK_URL=https://hooks.example.com/x"},
			"worker: unknown environment variable REBOUND_SLACK_URL" + list + "\n"},
		{"with --http-addr nonsense: its own", []string{}, []string{"REBOUND_HTTP_ADDR=nonsense", "REBOUND_QUEUES=default=2"}, started("REBOUND_HTTP_ADDR")},
		{"with --http-addr nonsense: enqueue's", []string{"--http-addr", "nonsense"}, []string{"REBOUND_MAX_ATTEMPTS=3", "REBOUND_ARGS={}", "REBOUND_QUEUE=mail"}, started("--http-addr")},
		{"with --http-addr nonsense: a secret --config names", []string{"--http-addr", "nonsense", "--config", cfg}, []string{"REBOUND_SLACK_URL=https://hooks.example.com/x"}, started("--http-addr")},
		{"with --http-addr nonsense: Kubernetes' for a Service named rebound", []string{"--http-addr", "nonsense"},
			[]string{"REBOUND_SERVICE_HOST=10.0.0.1", "REBOUND_SERVICE_PORT=8080", "REBOUND_PORT=tcp://10.0.0.1:8080", "REBOUND_PORT_8080_TCP_ADDR=10.0.0.1"}, started("--http-addr")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if args == nil {
				args = []string{"--http-addr", proctest.FreeAddr(t)}
			}
			res := proctest.Run(t, append([]string{"DATABASE_URL=" + db.URL}, tt.env...), "worker", args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Equal(t, tt.wantErr, res.Stderr)
			require.Empty(t, res.Stdout)
		})
	}
	t.Cleanup(func() { require.Equal(t, before, db.RowCounts(t), "every table as it was") })
}
