package main

import (
	"context"
	"encoding/json"
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
		{"open with a bad --for", []string{"breaker", "open", "api.example.com", "--for", "abc"}, `invalid argument "abc" for "--for" flag`},
		{"show an unknown key", []string{"breaker", "show", "nope"}, "rebound: no circuit breaker state for key \"nope\" (see `rebound breaker list`)\n"},
		{"reset without a key", []string{"breaker", "reset"}, "rebound: missing KEY"},
		{"reset an unknown key", []string{"breaker", "reset", "nope"}, `no circuit breaker state for key "nope"`},
		{"two keys", []string{"breaker", "show", "a", "b"}, "rebound: one KEY expected, got 2 arguments\n"},
	}
	for _, tt := range bad {
		out, errOut, code := runRebound(bin, db.URL, tt.args...)
		require.Equal(t, 1, code, tt.name)
		require.Empty(t, out, tt.name)
		require.Contains(t, errOut, tt.wantErr, tt.name)
	}
	out, _, code := runRebound(bin, db.URL, "breaker", "list", "--json")
	require.Equal(t, 0, code)
	require.JSONEq(t, "[]", out, "refused commands changed nothing")

	out, errOut, code := runRebound(bin, db.URL, "breaker", "open", "api.example.com", "--for", "10m", "--by", "alice", "--reason", "maintenance", "--json")
	require.Equal(t, 0, code, errOut)
	var row breaker.Row
	require.NoError(t, json.Unmarshal([]byte(out), &row))
	require.Equal(t, breaker.StateOpen, row.State)
	require.Equal(t, 10*time.Minute, row.NextProbeAt.Sub(*row.OpenedAt))
	require.Equal(t, "alice", row.ChangedBy)

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
}
