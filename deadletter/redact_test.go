package deadletter_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

func TestRedactJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"headers", `{"headers":{"Authorization":"Bearer x","Cookie":"a=b","X-Api-Key":"k","Accept":"*/*"}}`,
			`{"headers":{"Authorization":"[REDACTED]","Cookie":"[REDACTED]","X-Api-Key":"[REDACTED]","Accept":"*/*"}}`},
		{"fields", `{"password":"p","access_token":"t","clientSecret":"s","api_key":"k","user":"ann","n":1}`,
			`{"password":"[REDACTED]","access_token":"[REDACTED]","clientSecret":"[REDACTED]","api_key":"[REDACTED]","user":"ann","n":1}`},
		{"header list", `[{"name":"Proxy-Authorization","value":"x"},{"name":"Accept","value":"y"}]`,
			`[{"name":"Proxy-Authorization","value":"[REDACTED]"},{"name":"Accept","value":"y"}]`},
		{"multi-valued header", `{"Set-Cookie":["a","b"]}`, `{"Set-Cookie":"[REDACTED]"}`},
		{"url", `{"url":"https://me:pw@h.example/p?token=t&q=1"}`, `{"url":"https://me:[REDACTED]@h.example/p?q=1&token=[REDACTED]"}`},
		{"json body in a string", `{"body":"{\"secret\":\"s\",\"a\":1}"}`, `{"body":"{\"a\":1,\"secret\":\"[REDACTED]\"}"}`},
		{"null secret stays null", `{"token":null}`, `{"token":null}`},
		{"big numbers kept", `{"id":12345678901234567890}`, `{"id":12345678901234567890}`},
		{"not json", `{oops`, `"[unreadable JSON hidden]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.JSONEq(t, tt.want, string(deadletter.RedactJSON(json.RawMessage(tt.in))))
		})
	}
}

func TestRedactLeavesEntryIntact(t *testing.T) {
	t.Parallel()
	e := &deadletter.Entry{
		Args:          json.RawMessage(`{"token":"t"}`),
		Metadata:      json.RawMessage(`{"operation_key":"k"}`),
		FailureReason: "GET https://h.example/?api_key=abc: 401",
		History:       []deadletter.Attempt{{Attempt: 1, Error: "GET https://h.example/?api_key=abc: 401"}},
	}
	r := deadletter.Redact(e)
	require.JSONEq(t, `{"token":"[REDACTED]"}`, string(r.Args))
	require.Equal(t, "GET https://h.example/?api_key=[REDACTED]: 401", r.FailureReason)
	require.Equal(t, "GET https://h.example/?api_key=[REDACTED]: 401", r.History[0].Error)
	require.JSONEq(t, `{"token":"t"}`, string(e.Args))
	require.Equal(t, "GET https://h.example/?api_key=abc: 401", e.History[0].Error)
}
