package deadletter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/redact"
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

// Each group's fingerprint and example reason are redacted; groups whose
// fingerprints look alike once redacted stay apart, each with its ID.
func TestRedactStatsRedactsFingerprintsAndExamples(t *testing.T) {
	t.Parallel()
	at := func(h int) time.Time { return time.Date(2026, 11, 30, h, 0, 0, 0, time.UTC) }
	st := &deadletter.Stats{
		Groups: []deadletter.StatsGroup{
			{FingerprintID: "0123456789ab", Fingerprint: "GET /: Authorization: Basic dXNlcjpwYXNz", Kind: "k", Class: "unauthorized",
				Count: 3, ExampleEntryID: 7, ExampleReason: "GET /: Authorization: Basic dXNlcjpwYXNz", First: at(2), Last: at(5)},
			{FingerprintID: "ba9876543210", Fingerprint: "GET /: Authorization: Basic b3RoZXI6cHc", Kind: "k", Class: "unauthorized",
				Count: 2, ExampleEntryID: 9, ExampleReason: "GET /: Authorization: Basic b3RoZXI6cHc", First: at(1), Last: at(7)},
		},
		TotalGroups: 2, Entries: 5,
		ByStatus: map[deadletter.Status]int64{deadletter.StatusUnresolved: 5},
	}
	got := deadletter.RedactStats(st)
	require.Len(t, got.Groups, 2)
	for i, g := range got.Groups {
		in := st.Groups[i]
		require.Equal(t, redact.Text(in.Fingerprint), g.Fingerprint)
		require.Equal(t, redact.Text(in.ExampleReason), g.ExampleReason)
		require.Contains(t, g.Fingerprint, redact.Marker)
		require.NotContains(t, g.Fingerprint+g.ExampleReason, "dXNlcjpwYXNz")
		require.NotContains(t, g.Fingerprint+g.ExampleReason, "b3RoZXI6cHc")
		g.Fingerprint, g.ExampleReason = in.Fingerprint, in.ExampleReason
		require.Equal(t, in, g, "everything else as counted")
	}
	require.Equal(t, got.Groups[0].Fingerprint, got.Groups[1].Fingerprint, "alike once redacted, still two groups")
	require.Equal(t, st.ByStatus, got.ByStatus)
	require.Equal(t, int64(2), got.TotalGroups)
	require.Equal(t, "GET /: Authorization: Basic dXNlcjpwYXNz", st.Groups[0].Fingerprint, "the input is not changed")
	require.Nil(t, deadletter.RedactStats(nil))
}
