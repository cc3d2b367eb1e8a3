package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func failed(n int, class retrypolicy.Class, strategy retrypolicy.Strategy, delayMS int64, status string) retrypolicy.Attempt {
	return retrypolicy.Attempt{Attempt: n, Class: class, Strategy: strategy, DelayMS: delayMS, Final: strategy == "" || delayMS == 0,
		Error: "POST http://127.0.0.1:1/x: " + status}
}

// The summary tells each attempt: who succeeded, who failed with which class
// and status, and the backoff chosen (its range over the jobs) or the end.
func TestAttemptLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		jobs []jobRow
		want []string
	}{
		{
			name: "all succeed at once",
			jobs: []jobRow{{state: "completed", attempt: 1}, {state: "completed", attempt: 1}},
			want: []string{"attempt 1   2 succeeded"},
		},
		{
			name: "not retried",
			jobs: []jobRow{{state: "cancelled", attempt: 1, attempts: []retrypolicy.Attempt{failed(1, "not_found", "", 0, "HTTP 404 Not Found")}}},
			want: []string{"attempt 1   1 failed: not_found (HTTP 404) → not retried"},
		},
		{
			name: "backoff ranges, success after a retry, attempts used up",
			jobs: []jobRow{
				{state: "completed", attempt: 2, attempts: []retrypolicy.Attempt{failed(1, "server_error", "exponential", 206, "HTTP 500 Internal Server Error")}},
				{state: "discarded", attempt: 3, attempts: []retrypolicy.Attempt{
					failed(1, "server_error", "exponential", 299, "HTTP 500 Internal Server Error"),
					failed(2, "server_error", "exponential", 1170, "HTTP 500 Internal Server Error"),
					failed(3, "server_error", "exponential", 0, "HTTP 500 Internal Server Error"),
				}},
				{state: "completed", attempt: 1},
			},
			want: []string{
				"attempt 1   1 succeeded; 2 failed: server_error (HTTP 500) → backoff 206–299 ms (exponential)",
				"attempt 2   1 succeeded; 1 failed: server_error (HTTP 500) → backoff 1.17 s (exponential)",
				"attempt 3   1 failed: server_error (HTTP 500) → no attempt left",
			},
		},
		{
			name: "classes apart, a server's Retry-After, an error without a status",
			jobs: []jobRow{
				{state: "discarded", attempt: 2, attempts: []retrypolicy.Attempt{
					{Attempt: 1, Class: "rate_limited", Strategy: "aggressive", DelayMS: 3000, RetryAfterMS: 3000, Error: "HTTP 429 Too Many Requests"},
					failed(2, "timeout", "linear", 0, "context deadline exceeded"),
				}},
				{state: "completed", attempt: 2, attempts: []retrypolicy.Attempt{failed(1, "timeout", "linear", 850, "context deadline exceeded")}},
			},
			want: []string{
				"attempt 1   1 failed: rate_limited (HTTP 429) → backoff 3.00 s (aggressive), the server asked for up to 3.00 s; 1 failed: timeout → backoff 850 ms (linear)",
				"attempt 2   1 succeeded; 1 failed: timeout → no attempt left",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, attemptLines(tt.jobs))
		})
	}
}

// Every endpoint gets a breaker line, with or without a row, and calls
// avoided are counted in their own unit.
func TestBreakerLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		row     breakerRow
		classes []retrypolicy.Class
		avoided int
		want    string
	}{
		{"no row, no failures", breakerRow{}, nil, 0, "closed (no failures)"},
		{"no row, failures it does not count", breakerRow{}, []retrypolicy.Class{"rate_limited"}, 0,
			"closed (no failure counted: rate_limited says nothing about the upstream's health)"},
		{"no row, two classes", breakerRow{}, []retrypolicy.Class{"not_found", "bad_request"}, 0,
			"closed (no failure counted: not_found, bad_request say nothing about the upstream's health)"},
		{"open, probe due", breakerRow{present: true, state: "open", failures: 20, trips: 16, probeDue: true}, []retrypolicy.Class{"server_error"}, 31,
			"open now (probe due): 20 consecutive failures counted, opened 16 time(s) since it last closed (each failed probe opens it again); 31 upstream calls avoided while it was open (jobs snoozed instead of calling, no attempt used)"},
		{"closed again", breakerRow{present: true, state: "closed", failures: 2}, []retrypolicy.Class{"server_error"}, 3,
			"closed now: 2 consecutive failures counted; 3 upstream calls avoided while it was open (jobs snoozed instead of calling, no attempt used)"},
		{"never open", breakerRow{present: true, state: "closed", failures: 1}, []retrypolicy.Class{"timeout"}, 0,
			"closed now: 1 consecutive failures counted; no upstream call avoided"},
		{"recovered", breakerRow{present: true, state: "closed"}, []retrypolicy.Class{"server_error"}, 0,
			"closed now: no failure since its last success; no upstream call avoided"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, breakerLine(tt.row, tt.classes, tt.avoided))
		})
	}
}
