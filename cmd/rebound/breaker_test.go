package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
)

func TestBreakerCommands(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()

	bad := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"open without --for", []string{"breaker", "open", "api.example.com"}, "rebound: --for is required, e.g. --for 10m\n"},
		{"open with a negative --for", []string{"breaker", "open", "api.example.com", "--for", "-5m"}, "rebound: --for -5m0s: must be in (0s, 720h0m0s]\n"},
		{"open with a bad --for", []string{"breaker", "open", "api.example.com", "--for", "abc"}, "rebound: invalid --for \"abc\": want a duration such as 30s, 5m or 1h30m\n"},
		{"dlq list with a bad --limit", []string{"dlq", "list", "--limit", "ten"}, "rebound: invalid --limit \"ten\": want a whole number\n"},
		{"dlq retry with a bad --all", []string{"dlq", "retry", "--all=maybe"}, "rebound: invalid --all \"maybe\": want true or false\n"},
		{"show an unknown key", []string{"breaker", "show", "nope"}, "rebound: no circuit breaker state for key \"nope\" (see `rebound breaker list`)\n"},
		{"reset without a key", []string{"breaker", "reset"}, "rebound: missing KEY"},
		{"reset an unknown key", []string{"breaker", "reset", "nope"}, `no circuit breaker state for key "nope"`},
		{"two keys", []string{"breaker", "show", "a", "b"}, "rebound: one KEY expected, got 2 arguments\n"},
		{"open a blank key", []string{"breaker", "open", " ", "--for", "1m"}, "rebound: invalid operation key \" \": blank (white space only)\n"},
		{"open a 100,000-character key", []string{"breaker", "open", strings.Repeat("a", 100_000), "--for", "1m"},
			"rebound: invalid operation key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"… (100000 characters): longer than 255 characters\n"},
		{"reset an empty key", []string{"breaker", "reset", ""}, "rebound: invalid operation key \"\": empty\n"},
		{"show a key with a tab", []string{"breaker", "show", "a\tb"}, "rebound: invalid operation key \"a\\tb\": control character U+0009 at byte 1\n"},
		{"a subcommand typo", []string{"breaker", "bogus"}, "rebound: unknown command \"bogus\" for \"rebound breaker\" (run \"rebound breaker --help\")\n"},
		{"open by someone with a newline", []string{"breaker", "open", "k", "--for", "1m", "--by", "a\nb"}, "rebound: --by \"a\\nb\": control character U+000A at byte 1\n"},
		{"open with a reason over the cap", []string{"breaker", "open", "k", "--for", "1m", "--reason", strings.Repeat("r", breaker.MaxTextBytes+1)}, "rebound: --reason: 1025 bytes, longer than 1024\n"},
		{"reset with a reason of 100 KB", []string{"breaker", "reset", "k", "--reason", strings.Repeat("r", 100<<10)}, "rebound: --reason: 102400 bytes, longer than 1024\n"},
		{"reset with a reason in invalid UTF-8", []string{"breaker", "reset", "k", "--reason", "caf\xe9"}, "rebound: --reason: not valid UTF-8 (at byte 3)\n"},
		{"reset by someone in invalid UTF-8", []string{"breaker", "reset", "k", "--by", "\xff"}, "rebound: --by \"\\xff\": not valid UTF-8 (at byte 0)\n"},
	}
	for _, tt := range bad {
		out, errOut, code := runRebound(bin, db.URL, tt.args...)
		require.Equal(t, 1, code, tt.name)
		require.Empty(t, out, tt.name)
		if strings.HasSuffix(tt.wantErr, "\n") {
			require.Equal(t, tt.wantErr, errOut, tt.name)
		} else {
			require.Contains(t, errOut, tt.wantErr, tt.name)
		}
	}
	out, errOut, code := runRebound(bin, db.URL, "breaker")
	require.Equal(t, 1, code)
	require.Contains(t, out, "Usage:\n  rebound breaker [flags]\n  rebound breaker [command]\n", "help on stdout")
	require.Equal(t, "rebound: missing command: rebound breaker needs one of its subcommands\n", errOut)

	out, _, code = runRebound(bin, db.URL, "breaker", "list", "--json")
	require.Equal(t, 0, code)
	require.JSONEq(t, "[]", out, "refused commands changed nothing")

	out, errOut, code = runRebound(bin, db.URL, "breaker", "open", "api.example.com", "--for", "10m", "--by", "alice", "--reason", "maintenance", "--json")
	require.Equal(t, 0, code, errOut)
	var row breaker.Row
	require.NoError(t, json.Unmarshal([]byte(out), &row))
	require.Equal(t, breaker.StateOpen, row.State)
	require.Equal(t, 10*time.Minute, row.NextProbeAt.Sub(*row.OpenedAt))
	require.Equal(t, "alice", row.ChangedBy)
	require.NotNil(t, row.OpenSince)
	require.Equal(t, *row.OpenedAt, *row.OpenSince, "a hold on a closed breaker starts its time out of closed")
	out, _, code = runRebound(bin, db.URL, "breaker", "show", "api.example.com")
	require.Equal(t, 0, code)
	require.Contains(t, out, "open since:      "+row.OpenSince.Local().Format(time.RFC3339))

	out, _, code = runRebound(bin, db.URL, "breaker", "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, "KEY              STATE  FAILURES  OPENED AT")
	require.Contains(t, out, "api.example.com  open   0")

	out, _, code = runRebound(bin, db.URL, "breaker", "reset", "api.example.com", "--by", "bob")
	require.Equal(t, 0, code)
	require.Equal(t, "breaker \"api.example.com\" closed by bob\n", out)
	got, err := breaker.NewStore(db.Pool).Get(ctx, "api.example.com")
	require.NoError(t, err)
	require.Equal(t, breaker.StateClosed, got.State)
	require.Equal(t, "bob", got.ChangedBy)
	require.NotNil(t, got.ChangedAt)

	out, _, code = runRebound(bin, db.URL, "breaker", "show", "api.example.com")
	require.Equal(t, 0, code)
	require.Contains(t, out, "state:           closed\n")
	require.Contains(t, out, "changed by:      bob\n")
	require.Contains(t, out, "open since:      -\n")
}

// The list table shortens long keys and errors; --json and show give them
// whole.
func TestBreakerListShortensLongValues(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	key := strings.Repeat("k", breaker.MaxKeyLength)
	lastError := "upstream:\n" + strings.Repeat("é", 300) + "\x1b[31m"
	_, err := db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, failure_count, last_error) VALUES ($1, 2, $2)`, key, lastError)
	require.NoError(t, err)

	out, errOut, code := runRebound(bin, db.URL, "breaker", "list")
	require.Equal(t, 0, code, errOut)
	shortKey := strings.Repeat("k", 47) + "…"
	shortError := "upstream: " + strings.Repeat("é", 49) + "…"
	want := fmt.Sprintf("%-50s%-8s%-10s%-11s%-15s%s\n", "KEY", "STATE", "FAILURES", "OPENED AT", "NEXT PROBE AT", "LAST ERROR") +
		fmt.Sprintf("%-50s%-8s%-10s%-11s%-15s%s\n", shortKey, "closed", "2", "-", "-", shortError)
	require.Equal(t, want, out)

	out, _, code = runRebound(bin, db.URL, "breaker", "list", "--json")
	require.Equal(t, 0, code)
	var rows []breaker.Row
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	require.Equal(t, key, rows[0].Key)
	require.Equal(t, lastError, rows[0].LastError)

	out, _, code = runRebound(bin, db.URL, "breaker", "show", key)
	require.Equal(t, 0, code)
	require.Contains(t, out, "key:             "+key+"\n")
}

// An expired hold shows as "open (probe due)" until a job takes the probe.
func TestBreakerListShowsProbeDue(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	_, errOut, code := runRebound(bin, db.URL, "breaker", "open", "api.example.com", "--for", "1m")
	require.Equal(t, 0, code, errOut)
	_, _, code = runRebound(bin, db.URL, "breaker", "open", "held.example.com", "--for", "1h")
	require.Equal(t, 0, code)
	_, err := db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET next_probe_at = now() - interval '1 second' WHERE breaker_key = 'api.example.com'`)
	require.NoError(t, err)

	out, _, code := runRebound(bin, db.URL, "breaker", "list")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[0], "KEY               STATE             FAILURES  OPENED AT"), lines[0])
	require.True(t, strings.HasPrefix(lines[1], "api.example.com   open (probe due)  0         "), lines[1])
	require.True(t, strings.HasPrefix(lines[2], "held.example.com  open              0         "), lines[2])

	out, _, code = runRebound(bin, db.URL, "breaker", "list", "--json")
	require.Equal(t, 0, code)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 2)
	require.Equal(t, []any{"open", true}, []any{rows[0]["state"], rows[0]["probe_due"]})
	require.Equal(t, []any{"open", false}, []any{rows[1]["state"], rows[1]["probe_due"]})

	out, _, code = runRebound(bin, db.URL, "breaker", "show", "api.example.com")
	require.Equal(t, 0, code)
	require.Contains(t, out, "state:           open (probe due)\n")
	out, _, code = runRebound(bin, db.URL, "breaker", "show", "api.example.com", "--json")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"probe_due": true`)
}

// Every breaker command shows the last error redacted, in tables and
// --json alike; the stored row keeps the original.
func TestBreakerCommandsRedactLastError(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	const stored = "rejected X-Signature: SIGSECRET; session_id=SESSSECRET"
	const shown = "rejected X-Signature: [REDACTED]; session_id=[REDACTED]"
	_, err := db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, failure_count, last_error) VALUES ('api.example.com', 1, $1)`, stored)
	require.NoError(t, err)

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"breaker", "list"}, "  " + shown + "\n"},
		{[]string{"breaker", "list", "--json"}, `"last_error": "` + shown + `"`},
		{[]string{"breaker", "show", "api.example.com"}, "last error:      " + shown + "\n"},
		{[]string{"breaker", "show", "api.example.com", "--json"}, `"last_error": "` + shown + `"`},
		{[]string{"breaker", "open", "api.example.com", "--for", "1m", "--json"}, `"last_error": "` + shown + `"`},
		{[]string{"breaker", "reset", "api.example.com", "--json"}, `"last_error": "` + shown + `"`},
	}
	for _, tt := range tests {
		out, errOut, code := runRebound(bin, db.URL, tt.args...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, tt.want, tt.args)
		require.NotContains(t, out, "SECRET", tt.args)
	}
	row, err := breaker.NewStore(db.Pool).Get(ctx, "api.example.com")
	require.NoError(t, err)
	require.Equal(t, stored, row.LastError, "the stored row keeps the original")
}

// A last error with River's "JobCancelError: " prefix (a row written before
// the breaker removed it) reads as a dead letter's failure_reason does,
// without it, in every view: list, show, and the row open and reset return.
func TestBreakerLastErrorWithoutCancelPrefix(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	_, err := db.Pool.Exec(context.Background(), `INSERT INTO circuit_breaker_state (breaker_key, failure_count, last_error) VALUES ('k1', 1, 'JobCancelError: warehouse: down')`)
	require.NoError(t, err)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"breaker", "list"}, "  warehouse: down\n"},
		{[]string{"breaker", "show", "k1"}, "last error:      warehouse: down\n"},
		{[]string{"breaker", "show", "k1", "--json"}, `"last_error": "warehouse: down"`},
		{[]string{"breaker", "open", "k1", "--for", "1m", "--json"}, `"last_error": "warehouse: down"`},
		{[]string{"breaker", "reset", "k1", "--json"}, `"last_error": "warehouse: down"`},
	}
	for _, tt := range tests {
		out, errOut, code := runRebound(bin, db.URL, tt.args...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, tt.want, tt.args)
		require.NotContains(t, out, "JobCancelError", tt.args)
	}
}

// rebound reads no flag from the environment (only DATABASE_URL and, for
// --by's default, USER): a REBOUND_ variable set for the worker or enqueue,
// or left in a shell, never changes what an operator's command does.
func TestReboundReadsNoFlagsFromEnvironment(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	cmd := exec.Command(bin, "breaker", "open", "api.example.com", "--for", "1m")
	cmd.Env = []string{"DATABASE_URL=" + db.URL, "USER=dana", "REBOUND_JSON=true", "REBOUND_BY=mallory", "REBOUND_FOR=720h", "REBOUND_REASON=x"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Regexp(t, `^breaker "api.example.com" open until \S+ \(by dana\)\n$`, string(out), "a table line, not JSON")
	row, err := breaker.NewStore(db.Pool).Get(context.Background(), "api.example.com")
	require.NoError(t, err)
	require.Equal(t, "dana", row.ChangedBy)
	require.Empty(t, row.ChangeReason)
	require.Equal(t, time.Minute, row.NextProbeAt.Sub(*row.OpenedAt))
}
