package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// `rebound bench` refuses bad settings with one line naming the flag
// (exit 1) before it creates anything, and on a small size runs both sides
// and prints the table and ratios.
func TestBenchCommand(t *testing.T) {
	t.Parallel()
	server := os.Getenv("TEST_DATABASE_URL")
	require.NotEmpty(t, server, "TEST_DATABASE_URL")
	env := []string{"DATABASE_URL=" + server}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--jobs", "0"}, "--jobs must be between 1 and 10000000, got 0"},
		{[]string{"--rounds", "-1"}, "--rounds must be between 1 and 1000, got -1"},
		{[]string{"--workers", "20000"}, "--workers must be between 1 and 10000, got 20000"},
		{[]string{"--fetch-cooldown", "500us"}, "--fetch-cooldown must be at least 1ms (River's minimum), got 500µs"},
		{[]string{"--fetch-poll-interval", "1ms", "--fetch-cooldown", "2ms"}, "--fetch-poll-interval (1ms) must be at least --fetch-cooldown (2ms)"},
		{[]string{"--pool-size", "1"}, "--pool-size must be between 2 and 1000, got 1"},
		{[]string{"--jobs", "ten"}, `rebound: invalid --jobs "ten": want a whole number`},
		{[]string{"extra"}, `unknown command "extra" for "rebound bench"`},
	}
	for _, tt := range tests {
		res := proctest.Run(t, env, "rebound", append([]string{"bench"}, tt.args...)...)
		require.Equal(t, 1, res.ExitCode, "%v: %s", tt.args, res.Stderr)
		require.Contains(t, res.Stderr, tt.wantErr, tt.args)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %q", res.Stderr)
	}

	svg := t.TempDir() + "/noop.svg"
	res := proctest.Run(t, env, "rebound", "bench", "--jobs", "200", "--rounds", "1", "--workers", "20", "--svg", svg)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Regexp(t, regexp.MustCompile(`(?m)^river\s+\d+`), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^rebound\s+\d+`), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`ratio rebound/river: jobs/s \d+\.\d{3}, CPU per job \d+\.\d{3}`), res.Stdout)
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "<svg "), string(b[:min(len(b), 40)]))
}
