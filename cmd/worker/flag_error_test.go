package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// A setting the pod (package rebound names it as a Go field) or the worker
// refuses is reported in the command line's terms: exactly the flag that set
// it, or its REBOUND_ variable when the environment did.
func TestPodRefusalsNameTheFlag(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
		env     []string
	}{
		{"fetch cooldown under River's minimum", []string{"--fetch-cooldown", "500us"},
			"worker: invalid --fetch-cooldown: 500µs is below River's minimum of 1ms\n", nil},
		{"poll faster than the cooldown", []string{"--fetch-cooldown", "50ms", "--fetch-poll-interval", "10ms"},
			"worker: invalid --fetch-poll-interval: 10ms is shorter than FetchCooldown (50ms)\n", nil},
		{"an ID River refuses", []string{"--id", strings.Repeat("p", 101)},
			"worker: invalid --id: 101 characters; River allows at most 100\n", nil},
		{"negative job timeout", []string{"--job-timeout", "-1s"}, "worker: invalid --job-timeout -1s: must not be negative\n", nil},
		{"negative job timeout from the environment", nil, "worker: invalid REBOUND_JOB_TIMEOUT -1s: must not be negative\n", []string{"REBOUND_JOB_TIMEOUT=-1s"}},
		{"negative rescue grace from the environment", nil, "worker: invalid REBOUND_RESCUE_GRACE -1s: must not be negative\n", []string{"REBOUND_RESCUE_GRACE=-1s"}},
		{"negative rescue-stuck-jobs-after", []string{"--rescue-stuck-jobs-after", "-2s"}, "worker: invalid --rescue-stuck-jobs-after -2s: must not be negative\n", nil},
		{"rescue-stuck-jobs-after below the job timeout, from the environment", []string{"--job-timeout", "1m"},
			"worker: REBOUND_RESCUE_STUCK_JOBS_AFTER (10s) must be at least --job-timeout plus --rescue-grace (1m0s + 15s = 1m15s): a job still within its timeout would count as lost; lower the job timeout too\n",
			[]string{"REBOUND_RESCUE_STUCK_JOBS_AFTER=10s"}},
		{"--queues twice", []string{"--queues", "default=2", "--queues", "bulk=1"}, "worker: --queues given twice: give it once\n", nil},
		{"--config twice", []string{"--config", "a.yaml", "--config", "b.yaml"}, "worker: --config given twice: give it once\n", nil},
		{"fetch cooldown from the environment", nil, "worker: invalid REBOUND_FETCH_COOLDOWN: 500µs is below River's minimum of 1ms\n", []string{"REBOUND_FETCH_COOLDOWN=500us"}},
		{"negative fetch cooldown from the environment", nil, "worker: invalid REBOUND_FETCH_COOLDOWN: -1s is below River's minimum of 1ms\n", []string{"REBOUND_FETCH_COOLDOWN=-1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.Run(t, append([]string{"DATABASE_URL=" + db.URL}, tt.env...), "worker", proctest.WithDefaults(tt.args, "--http-addr", proctest.FreeAddr(t))...)
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			require.Equal(t, tt.wantErr, res.Stderr)
		})
	}
}
