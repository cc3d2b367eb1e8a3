package redact_test

import (
	"fmt"

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
