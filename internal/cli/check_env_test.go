package cli_test

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/cli"
)

// CheckEnv refuses a REBOUND_ variable the command does not read, naming it
// with the closest one it reads or, when none is a typo away, all of them;
// it lets be the variables of the command's flags and those it is told it
// reads, enqueue's (cli.OtherEnv), and those Kubernetes sets for a Service
// whose name starts with rebound. Not parallel: it sets the environment.
func TestCheckEnv(t *testing.T) {
	const list = ": worker reads REBOUND_ADMIN_TOKEN, REBOUND_HTTP_ADDR, REBOUND_QUEUES, REBOUND_SLACK_URL"
	tests := []struct {
		name    string
		env     []string // NAME=VALUE
		wantErr string
	}{
		{"none", nil, ""},
		{"its own", []string{"REBOUND_QUEUES=a=1", "REBOUND_HTTP_ADDR=:8080", "REBOUND_ADMIN_TOKEN=x", "REBOUND_SLACK_URL=https://x"}, ""},
		{"enqueue's and the demo's", []string{"REBOUND_MAX_ATTEMPTS=3", "REBOUND_QUEUE=mail", "REBOUND_ARGS={}", "REBOUND_DEMO_DATABASE=d"}, ""},
		{"other prefixes", []string{"REBOUNDX=1", "MY_REBOUND_QUEUES=1", "rebound_queus=1"}, ""},
		{"Kubernetes, a Service named rebound", []string{"REBOUND_SERVICE_HOST=10.0.0.1", "REBOUND_SERVICE_PORT=8080", "REBOUND_SERVICE_PORT_HTTP=8080",
			"REBOUND_PORT=tcp://10.0.0.1:8080", "REBOUND_PORT_8080_TCP=tcp://10.0.0.1:8080", "REBOUND_PORT_8080_TCP_PROTO=tcp",
			"REBOUND_PORT_8080_TCP_PORT=8080", "REBOUND_PORT_8080_TCP_ADDR=10.0.0.1"}, ""},
		{"Kubernetes, a Service named rebound-worker", []string{"REBOUND_WORKER_SERVICE_HOST=10.0.0.2", "REBOUND_WORKER_PORT=tcp://10.0.0.2:80"}, ""},
		{"a typo", []string{"REBOUND_QUEUS=a=1"}, "unknown environment variable REBOUND_QUEUS (did you mean REBOUND_QUEUES?)"},
		{"a typo, two letters swapped", []string{"REBOUND_HTTP_ADRD=:1"}, "unknown environment variable REBOUND_HTTP_ADRD (did you mean REBOUND_HTTP_ADDR?)"},
		{"nothing near", []string{"REBOUND_WROKERS=4"}, "unknown environment variable REBOUND_WROKERS" + list},
		{"a YAML setting", []string{"REBOUND_WAKE_SPREAD=1s"}, "unknown environment variable REBOUND_WAKE_SPREAD" + list},
		{"help is no variable", []string{"REBOUND_HELP=true"}, "unknown environment variable REBOUND_HELP" + list},
		{"a port that is no Service's", []string{"REBOUND_HTTP_PORT=9090"}, "unknown environment variable REBOUND_HTTP_PORT" + list},
		{"several", []string{"REBOUND_WROKERS=4", "REBOUND_QUEUS=a=1"},
			"unknown environment variables REBOUND_QUEUS (did you mean REBOUND_QUEUES?), REBOUND_WROKERS" + list},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				name, value, _ := strings.Cut(kv, "=")
				t.Setenv(name, value)
			}
			cmd := &cobra.Command{Use: "worker"}
			cmd.Flags().String("http-addr", "", "")
			cmd.Flags().String("queues", "", "")
			cmd.InitDefaultHelpFlag() // --help is not read from the environment
			err := cli.CheckEnv(cmd, "REBOUND", "REBOUND_ADMIN_TOKEN", "REBOUND_SLACK_URL")
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}
