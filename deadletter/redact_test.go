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

// Nested keys at any depth, camelCase names and the signature, session
// and *_key families are hidden; the operation key and the
// Idempotency-Key stay shown.
func TestRedactFamilies(t *testing.T) {
	t.Parallel()
	e := &deadletter.Entry{
		Args: json.RawMessage(`{"body":{"nested":{"access_key":"AKIAEXAMPLE","items":[{"secretKey":"s"}]}},` +
			`"headers":{"X-Signature":"abc","X-Hub-Signature-256":"sha256=h","Idempotency-Key":"k-1"},"operation_key":"api"}`),
		FailureReason: "rejected: X-Signature: abc; session_id=xyz",
		History:       []deadletter.Attempt{{Attempt: 1, Error: `HTTP 403: {"sessionId": "xyz", "idempotency_key": "k-1"}`}},
	}
	r := deadletter.Redact(e)
	require.JSONEq(t, `{"body":{"nested":{"access_key":"[REDACTED]","items":[{"secretKey":"[REDACTED]"}]}},`+
		`"headers":{"X-Signature":"[REDACTED]","X-Hub-Signature-256":"[REDACTED]","Idempotency-Key":"k-1"},"operation_key":"api"}`, string(r.Args))
	require.Equal(t, "rejected: X-Signature: [REDACTED]; session_id=[REDACTED]", r.FailureReason)
	require.Equal(t, `HTTP 403: {"sessionId": "[REDACTED]", "idempotency_key": "k-1"}`, r.History[0].Error)
	require.Contains(t, string(e.Args), "AKIAEXAMPLE", "the entry keeps the original")
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
