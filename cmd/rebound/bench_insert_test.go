package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// `rebound bench --scenario insert` refuses bad settings with one line
// naming the flag (exit 1), and on a small size times the enqueue binary
// found next to it against InsertManyFast and prints the table and ratios.
func TestBenchInsertCommand(t *testing.T) {
	t.Parallel()
	server := os.Getenv("TEST_DATABASE_URL")
	require.NotEmpty(t, server, "TEST_DATABASE_URL")
	env := []string{"DATABASE_URL=" + server}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--scenario", "insrt"}, `--scenario must be one of noop, failure, outage, insert, all, got "insrt"`},
		{[]string{"--scenario", "insert", "--lines", "0"}, "--lines must be between 1 and 10000000, got 0"},
		{[]string{"--scenario", "insert", "--enqueue-bin", "/nonexistent/enqueue"}, "--enqueue-bin: no enqueue binary at /nonexistent/enqueue (make build puts it next to rebound in bin/)"},
	}
	for _, tt := range tests {
		res := proctest.Run(t, env, "rebound", append([]string{"bench"}, tt.args...)...)
		require.Equal(t, 1, res.ExitCode, "%v: %s", tt.args, res.Stderr)
		require.Contains(t, res.Stderr, tt.wantErr, tt.args)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %q", res.Stderr)
	}

	svg := t.TempDir() + "/insert.svg"
	res := proctest.Run(t, env, "rebound", "bench", "--scenario", "insert", "--lines", "300", "--rounds", "1", "--insert-svg", svg)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "insert: 300 http_request jobs per round")
	require.Regexp(t, regexp.MustCompile(`(?m)^InsertManyFast\s+[\d.]+`), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^enqueue --file\s+[\d.]+`), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^enqueue --file --json\s+[\d.]+`), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`enqueue --file \d+\.\d{3}, enqueue --file --json \d+\.\d{3}`), res.Stdout)
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "<svg "), string(b[:min(len(b), 40)]))
}
