package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// A setting the pod refuses (package rebound names it as a Go field) is
// reported in the command line's terms: the flag that set it.
func TestPodRefusalsNameTheFlag(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"fetch cooldown under River's minimum", []string{"--fetch-cooldown", "500us"},
			"worker: invalid --fetch-cooldown: 500µs is below River's minimum of 1ms\n"},
		{"poll faster than the cooldown", []string{"--fetch-cooldown", "50ms", "--fetch-poll-interval", "10ms"},
			"worker: invalid --fetch-poll-interval: 10ms is shorter than FetchCooldown (50ms)\n"},
		{"an ID River refuses", []string{"--id", strings.Repeat("p", 101)},
			"worker: invalid --id: 101 characters; River allows at most 100\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "worker", append([]string{"--http-addr", proctest.FreeAddr(t)}, tt.args...)...)
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			require.Equal(t, tt.wantErr, res.Stderr)
		})
	}
}
