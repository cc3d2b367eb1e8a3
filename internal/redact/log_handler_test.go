package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/redact"
)

// logValuer resolves to a secret-bearing string.
type logValuer struct{}

func (logValuer) LogValue() slog.Value { return slog.StringValue("token=LVSECRET") }

// Every record goes through the text rules: message, string, error,
// Stringer, bytes and JSON-encodable values, groups and WithAttrs; names
// judged by IsSensitiveName; the rest printed as usual.
func TestNewHandler(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://app:URLSECRET@h.example/p?sig=QSECRET&page=2")
	require.NoError(t, err)
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want string // the JSON handler's line without time and level
	}{
		{"message", func(l *slog.Logger) { l.Info("call failed: X-Signature: MSECRET") },
			`{"msg":"call failed: X-Signature: [REDACTED]"}`},
		{"string attribute", func(l *slog.Logger) {
			l.Info("Job errored", "error", "upstream said X-Signature: ESECRET, session_id=SSECRET", "job_id", 7)
		}, `{"msg":"Job errored","error":"upstream said X-Signature: [REDACTED], session_id=[REDACTED]","job_id":7}`},
		{"error attribute", func(l *slog.Logger) {
			l.Warn("breaker: write outcome", "key", "api.example.com", "error", fmt.Errorf("wrap: %w", errors.New("?access_token=ESECRET")))
		}, `{"msg":"breaker: write outcome","key":"api.example.com","error":"wrap: ?access_token=[REDACTED]"}`},
		{"secret names", func(l *slog.Logger) {
			l.Info("x", "password", "PSECRET", "accessKey", 12345, "session_id", true, "api_key", "", "operation_key", "api", "Idempotency-Key", "k-1")
		}, `{"msg":"x","password":"[REDACTED]","accessKey":"[REDACTED]","session_id":"[REDACTED]","api_key":"","operation_key":"api","Idempotency-Key":"k-1"}`},
		{"groups", func(l *slog.Logger) {
			l.Info("x", slog.Group("auth", "user", "ann", "token", "TSECRET"), slog.Group("req", slog.Group("headers", "X-Signature", "HSECRET", "Accept", "*/*")))
		}, `{"msg":"x","auth":{"user":"ann","token":"[REDACTED]"},"req":{"headers":{"X-Signature":"[REDACTED]","Accept":"*/*"}}}`},
		{"with attrs and group", func(l *slog.Logger) {
			l.With("client_secret", "CSECRET", "note", "Bearer BSECRET").WithGroup("job").Info("x", "id", 1, "err", "session_id=SSECRET")
		}, `{"msg":"x","client_secret":"[REDACTED]","note":"Bearer [REDACTED]","job":{"id":1,"err":"session_id=[REDACTED]"}}`},
		{"log valuer", func(l *slog.Logger) { l.Info("x", "v", logValuer{}) }, `{"msg":"x","v":"token=[REDACTED]"}`},
		{"map with secrets", func(l *slog.Logger) {
			l.Info("x", "headers", map[string]string{"X-Signature": "HSECRET", "Accept": "*/*"})
		}, `{"msg":"x","headers":{"Accept":"*/*","X-Signature":"[REDACTED]"}}`},
		{"map without secrets printed as usual", func(l *slog.Logger) {
			l.Info("worker started", "queues", map[string]int{"default": 50, "mail": 5})
		}, `{"msg":"worker started","queues":{"default":50,"mail":5}}`},
		{"stringer", func(l *slog.Logger) { l.Info("x", "url", u) },
			`{"msg":"x","url":"https://app:[REDACTED]@h.example/p?sig=[REDACTED]&page=2"}`},
		{"json bytes", func(l *slog.Logger) {
			l.Info("x", "args", json.RawMessage(`{"body":{"nested":{"access_key":"ASECRET"}},"n":1}`))
		}, `{"msg":"x","args":{"body":{"nested":{"access_key":"[REDACTED]"}},"n":1}}`},
		{"struct", func(l *slog.Logger) {
			l.Info("x", "req", struct{ URL, Auth string }{"https://h.example/?page=2", "Basic dXNlcjpwYXNz"})
		}, `{"msg":"x","req":{"Auth":"[REDACTED]","URL":"https://h.example/?page=2"}}`},
		{"text bytes", func(l *slog.Logger) { l.Info("x", "body", []byte("sig=BSECRET")) }, `{"msg":"x","body":"sig=[REDACTED]"}`},
		{"plain values", func(l *slog.Logger) {
			l.Info("x", "n", 3, "ok", true, "d", 1500*time.Millisecond, "f", 0.5, "nil", nil)
		}, `{"msg":"x","n":3,"ok":true,"d":1500000000,"f":0.5,"nil":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := slog.New(redact.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
						return slog.Attr{}
					}
					return a
				},
			})))
			tt.log(l)
			require.Equal(t, tt.want+"\n", buf.String())
		})
	}
}

// The text handler too, and levels stay the wrapped handler's.
func TestNewHandlerText(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := redact.NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	require.Same(t, h, redact.NewHandler(h), "wrapping twice is wrapping once")
	l := slog.New(h)
	l.Debug("not shown", "token", "DSECRET")
	l.Info("Job errored", "error", "rejected: X-Signature: ESECRET; session_id=SSECRET", "kind", "leaky")
	out := buf.String()
	require.NotContains(t, out, "SECRET")
	require.Contains(t, out, ` level=INFO msg="Job errored" error="rejected: X-Signature: [REDACTED]; session_id=[REDACTED]" kind=leaky`+"\n")
}
