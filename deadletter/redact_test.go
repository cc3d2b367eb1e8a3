package deadletter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

func TestRedactLeavesEntryIntact(t *testing.T) {
	t.Parallel()
	e := &deadletter.Entry{
		Args:          json.RawMessage(`{"token":"t"}`),
		Metadata:      json.RawMessage(`{"operation_key":"k","output":{"attempts":[{"error":"Bearer m1"}]}}`),
		FailureReason: "GET https://h.example/?api_key=abc: 401",
		History: []deadletter.Attempt{{Attempt: 1, Error: `HTTP 400: {"password": "p1"}`,
			Trace: "panic: Authorization: Bearer t1", Stack: "x-api-key: s1"}},
	}
	r := deadletter.Redact(e)
	require.JSONEq(t, `{"token":"[REDACTED]"}`, string(r.Args))
	require.JSONEq(t, `{"operation_key":"k","output":{"attempts":[{"error":"Bearer [REDACTED]"}]}}`, string(r.Metadata))
	require.Equal(t, "GET https://h.example/?api_key=[REDACTED]: 401", r.FailureReason)
	require.Equal(t, `HTTP 400: {"password": "[REDACTED]"}`, r.History[0].Error)
	require.Equal(t, "panic: Authorization: Bearer [REDACTED]", r.History[0].Trace)
	require.Equal(t, "x-api-key: [REDACTED]", r.History[0].Stack)
	require.JSONEq(t, `{"token":"t"}`, string(e.Args))
	require.Equal(t, "GET https://h.example/?api_key=abc: 401", e.FailureReason)
	require.Equal(t, `HTTP 400: {"password": "p1"}`, e.History[0].Error)
	require.Nil(t, deadletter.Redact(nil))
}

// Groups whose reasons differ only in a secret are shown as one.
func TestRedactStatsMergesGroups(t *testing.T) {
	t.Parallel()
	at := func(h int) time.Time { return time.Date(2026, 11, 30, h, 0, 0, 0, time.UTC) }
	st := &deadletter.Stats{
		Groups: []deadletter.StatsGroup{
			{Kind: "k", Class: "unauthorized", Reason: "GET /?key=a: 401", Count: 3, First: at(2), Last: at(5)},
			{Kind: "k", Class: "server_error", Reason: "HTTP 503", Count: 4, First: at(1), Last: at(9)},
			{Kind: "k", Class: "unauthorized", Reason: "GET /?key=b: 401", Count: 2, First: at(1), Last: at(7)},
		},
		ByStatus: map[deadletter.Status]int64{deadletter.StatusUnresolved: 9},
	}
	got := deadletter.RedactStats(st)
	require.Equal(t, []deadletter.StatsGroup{
		{Kind: "k", Class: "unauthorized", Reason: "GET /?key=[REDACTED]: 401", Count: 5, First: at(1), Last: at(7)},
		{Kind: "k", Class: "server_error", Reason: "HTTP 503", Count: 4, First: at(1), Last: at(9)},
	}, got.Groups)
	require.Equal(t, st.ByStatus, got.ByStatus)
	require.Equal(t, "GET /?key=a: 401", st.Groups[0].Reason, "the input is not changed")
	require.Nil(t, deadletter.RedactStats(nil))
}
