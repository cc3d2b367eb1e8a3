package main

import (
	"encoding/json"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
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
		{[]string{"--scenario", "chaos"}, `--scenario must be one of noop, failure, outage, insert, all, got "chaos"`},
		{[]string{"--scenario", "failure", "--retry-delay", "0s"}, "--retry-delay must be between 1ms and 1m, got 0s"},
		{[]string{"--retry-delay", "2s", "--max-retry-delay", "1s"}, "--max-retry-delay must be between --retry-delay (2s) and 1h, got 1s"},
		{[]string{"--scenario", "outage", "--outage", "10ms"}, "--outage must be between 100ms and 1h, got 10ms"},
		{[]string{"--open-timeout", "2h"}, "--open-timeout must be between 1ms and 1h, got 2h0m0s"},
		{[]string{"--park-spread", "0s"}, "--park-spread must be between 1ms and 24h, got 0s"},
		{[]string{"--wake-spread", "0s"}, "--wake-spread must be between 1ms and 1h, got 0s"},
		{[]string{"--wake-wave", "2h"}, "--wake-wave must be between 1ms and 1h, got 2h0m0s"},
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

	// The failure mix through the command: 100 jobs (30 fail once, 5
	// permanently), checked by the harness itself (it exits 1 otherwise).
	svg = t.TempDir() + "/failure.svg"
	res = proctest.Run(t, env, "rebound", "bench", "--scenario", "failure", "--jobs", "100", "--rounds", "1", "--workers", "20",
		"--retry-delay", "20ms", "--max-retry-delay", "100ms", "--svg", svg)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Regexp(t, regexp.MustCompile(`(?m)^river\s+\d+\s+\d+-\d+\s+1\.50\s+5\s+5\s+150\s+0\s`), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^rebound\s+\d+\s+\d+-\d+\s+1\.30\s+5\s+5\s+130\s+0\s`), res.Stdout)
	require.NotContains(t, res.Stdout, "no-op jobs", "only the scenario asked for")
	b, err = os.ReadFile(svg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "<svg "), string(b[:min(len(b), 40)]))
}

// `rebound bench --scenario all --json` prints one JSON document: an object
// keyed by scenario, each value that scenario's report (the settings it ran
// with, then its rounds), not one object per scenario one after the other.
// Without --svg it writes no plot (it wrote files named -noop, -failure,
// -outage and -insert in the working directory).
func TestBenchScenarioAllJSONIsOneDocument(t *testing.T) {
	t.Parallel()
	server := os.Getenv("TEST_DATABASE_URL")
	require.NotEmpty(t, server, "TEST_DATABASE_URL")
	res := proctest.Run(t, []string{"DATABASE_URL=" + server}, "rebound", "bench", "--scenario", "all", "--json",
		"--jobs", "20", "--rounds", "1", "--workers", "20", "--lines", "20", "--outage", "1s", "--retry-delay", "20ms", "--max-retry-delay", "100ms")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	dec := json.NewDecoder(strings.NewReader(res.Stdout))
	var doc map[string]struct {
		Config map[string]any `json:"Config"`
		Rounds []any          `json:"Rounds"`
	}
	require.NoError(t, dec.Decode(&doc), res.Stdout)
	_, err := dec.Token()
	require.ErrorIs(t, err, io.EOF, "one document, nothing after it")
	require.Equal(t, []string{"failure", "insert", "noop", "outage"}, slices.Sorted(maps.Keys(doc)))
	for scenario, rep := range doc {
		require.Equal(t, 1.0, rep.Config["Rounds"], scenario)
		require.NotEmpty(t, rep.Rounds, scenario)
	}
	require.Equal(t, 20.0, doc["noop"].Config["Jobs"])
	require.Equal(t, 20.0, doc["insert"].Config["Lines"])
	for _, scenario := range []string{"noop", "failure", "outage", "insert"} {
		_, err := os.Stat("-" + scenario) // the test's working directory is the process's
		if err == nil {
			t.Cleanup(func() { _ = os.Remove("-" + scenario) })
		}
		require.ErrorIs(t, err, os.ErrNotExist, "no plot file without --svg")
	}
}
