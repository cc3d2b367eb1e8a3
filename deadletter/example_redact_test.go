package deadletter_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rebound-queue/rebound/deadletter"
)

// Displays show a dead job's args and errors with secrets replaced; the
// stored entry stays intact for replay and as evidence.
func ExampleRedact() {
	e := &deadletter.Entry{
		Args: json.RawMessage(`{"url":"https://api.example.com/v1/charge?api_key=k1","method":"POST",` +
			`"headers":{"Authorization":"Bearer live-abc","Content-Type":"application/json"}}`),
		FailureReason: `POST https://api.example.com/v1/charge?api_key=k1: HTTP 400: {"error": "bad card", "auth": "Bearer live-abc"}`,
	}
	shown := deadletter.Redact(e)
	var pretty map[string]any
	_ = json.Unmarshal(shown.Args, &pretty)
	out, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Println(string(out))
	fmt.Println(shown.FailureReason)
	fmt.Println(string(e.Args) == string(shown.Args))
	// Output:
	// {
	//   "headers": {
	//     "Authorization": "[REDACTED]",
	//     "Content-Type": "application/json"
	//   },
	//   "method": "POST",
	//   "url": "https://api.example.com/v1/charge?api_key=[REDACTED]"
	// }
	// POST https://api.example.com/v1/charge?api_key=[REDACTED]: HTTP 400: {"error": "bad card", "auth": "[REDACTED]"}
	// false
}

// Ages for --older-than and time filters: Go durations plus d and w.
func ExampleParseAge() {
	for _, s := range []string{"30d", "12h", "90m", "1w"} {
		d, _ := deadletter.ParseAge(s)
		fmt.Println(s, "=", d)
	}
	_, err := deadletter.ParseAge("30 days")
	fmt.Println(err)
	since, _ := deadletter.ParseSince("24h", time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	fmt.Println(since.Format(time.RFC3339))
	// Output:
	// 30d = 720h0m0s
	// 12h = 12h0m0s
	// 90m = 1h30m0s
	// 1w = 168h0m0s
	// age "30 days": unknown unit " days" (use w, d, h, m, s, ms)
	// 2026-11-29T12:00:00Z
}
