package redact_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/rebound-queue/rebound/internal/redact"
)

// An upstream that echoes the request in its error body: the secrets go,
// the rest of the message stays.
func ExampleText() {
	fmt.Println(redact.Text(`HTTP 400 Bad Request: {"api_key": "ESECRET2", "auth": "Bearer ESECRET1"}`))
	fmt.Println(redact.Text("GET https://api.example.com/v1?page=2&token=t0k: 401 (Authorization: Bearer abc)"))
	fmt.Println(redact.Text("body: grant_type=client_credentials&client_secret=s3cr3t"))
	// Output:
	// HTTP 400 Bad Request: {"api_key": "[REDACTED]", "auth": "[REDACTED]"}
	// GET https://api.example.com/v1?page=2&token=[REDACTED]: 401 (Authorization: Bearer [REDACTED])
	// body: grant_type=client_credentials&client_secret=[REDACTED]
}

// Names are judged by their words: the signature, session and *_key
// families are secret; rebound's own operation_key and Idempotency-Key
// are not.
func ExampleIsSensitiveName() {
	for _, name := range []string{"X-Hub-Signature-256", "session_id", "accessKey", "Idempotency-Key", "operation_key", "max_tokens"} {
		fmt.Println(name, redact.IsSensitiveName(name))
	}
	// Output:
	// X-Hub-Signature-256 true
	// session_id true
	// accessKey true
	// Idempotency-Key false
	// operation_key false
	// max_tokens false
}

// A logger whose lines never show the secrets the rules recognise.
func ExampleNewHandler() {
	logger := slog.New(redact.NewHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output for the example
			}
			return a
		},
	})))
	logger.Info("Job errored", "error", "rejected: X-Signature: abc; session_id=xyz", "api_key", "k", "job_id", 42)
	// Output:
	// level=INFO msg="Job errored" error="rejected: X-Signature: [REDACTED]; session_id=[REDACTED]" api_key=[REDACTED] job_id=42
}
