package retrypolicy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestAttemptJSONSchema(t *testing.T) {
	t.Parallel()

	// The field names the dead-letter queue's trigger and the CLI read.
	out := retrypolicy.Output{
		Result: json.RawMessage(`{"id":7}`),
		Attempts: []retrypolicy.Attempt{
			{Attempt: 1, At: time.Date(2026, 11, 30, 8, 0, 0, 123456789, time.UTC), Class: retrypolicy.ClassRateLimited, Strategy: retrypolicy.StrategyAggressive, DelayMS: 3000, RetryAfterMS: 3000, Error: "upstream answered 429 Too Many Requests"},
			{Attempt: 2, At: time.Date(2026, 11, 30, 8, 0, 3, 0, time.UTC), Class: retrypolicy.ClassPanic, Strategy: retrypolicy.StrategyExponential, DelayMS: 4000, Error: "boom", Stack: "goroutine 1 [running]:"},
			{Attempt: 3, At: time.Date(2026, 11, 30, 8, 0, 7, 0, time.UTC), Class: retrypolicy.ClassNotFound, Error: "upstream answered 404 Not Found", Final: true},
		},
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"result": {"id": 7},
		"attempts": [
			{"attempt": 1, "at": "2026-11-30T08:00:00.123456789Z", "class": "rate_limited", "strategy": "aggressive", "delay_ms": 3000, "retry_after_ms": 3000, "error": "upstream answered 429 Too Many Requests"},
			{"attempt": 2, "at": "2026-11-30T08:00:03Z", "class": "panic", "strategy": "exponential", "delay_ms": 4000, "retry_after_ms": 0, "error": "boom", "stack": "goroutine 1 [running]:"},
			{"attempt": 3, "at": "2026-11-30T08:00:07Z", "class": "not_found", "delay_ms": 0, "retry_after_ms": 0, "error": "upstream answered 404 Not Found", "final": true}
		]}`, string(b))

	// Round trip through a job's metadata.
	meta, err := json.Marshal(map[string]any{"output": out, "snoozes": 1})
	require.NoError(t, err)
	back, err := retrypolicy.ParseOutput(meta)
	require.NoError(t, err)
	require.Equal(t, out, back)
}

func TestParseOutput(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name     string
		metadata string
		want     retrypolicy.Output
		err      string
	}{
		{"empty", ``, retrypolicy.Output{}, ""},
		{"no output", `{"snoozes": 2}`, retrypolicy.Output{}, ""},
		{"null output", `{"output": null}`, retrypolicy.Output{}, ""},
		{"ours, no result", `{"output": {"result": null, "attempts": [{"attempt": 1, "at": "2026-11-30T08:00:00Z", "class": "timeout", "strategy": "linear", "delay_ms": 2000, "retry_after_ms": 0, "error": "x"}]}}`,
			retrypolicy.Output{Attempts: []retrypolicy.Attempt{{Attempt: 1, At: testNow, Class: retrypolicy.ClassTimeout, Strategy: retrypolicy.StrategyLinear, DelayMS: 2000, Error: "x"}}}, ""},
		{"ours, result only", `{"output": {"result": [1, 2]}}`, retrypolicy.Output{Result: json.RawMessage(`[1, 2]`)}, ""},
		{"foreign string", `{"output": "done"}`, retrypolicy.Output{Result: json.RawMessage(`"done"`)}, ""},
		{"foreign object", `{"output": {"id": 3}}`, retrypolicy.Output{Result: json.RawMessage(`{"id": 3}`)}, ""},
		{"malformed metadata", `{"output": `, retrypolicy.Output{}, "retrypolicy: parsing job metadata: unexpected end of JSON input"},
		{"malformed attempts", `{"output": {"attempts": "many"}}`, retrypolicy.Output{}, "retrypolicy: parsing job metadata.output: json: cannot unmarshal string into Go struct field Output.attempts of type []retrypolicy.Attempt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := retrypolicy.ParseOutput([]byte(tc.metadata))
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestLostAttempts(t *testing.T) {
	t.Parallel()

	rescued := func(attempt int) rivertype.AttemptError {
		return rivertype.AttemptError{Attempt: attempt, At: testNow, Error: "Stuck job rescued by JobRescuer"}
	}
	failed := func(attempt int) rivertype.AttemptError {
		return rivertype.AttemptError{Attempt: attempt, At: testNow, Error: "upstream answered 503 Service Unavailable"}
	}
	entry := func(attempt int, class retrypolicy.Class) retrypolicy.Attempt {
		return retrypolicy.Attempt{Attempt: attempt, Class: class}
	}
	cases := []struct {
		name    string
		errors  []rivertype.AttemptError
		history []retrypolicy.Attempt
		lost    []int
	}{
		{"first attempt", nil, nil, nil},
		{"every error recorded", []rivertype.AttemptError{failed(1), failed(2)}, []retrypolicy.Attempt{entry(1, retrypolicy.ClassServerError), entry(2, retrypolicy.ClassTimeout)}, nil},
		{"one rescued", []rivertype.AttemptError{failed(1), rescued(2)}, []retrypolicy.Attempt{entry(1, retrypolicy.ClassServerError)}, []int{2}},
		{"two rescued, none recorded", []rivertype.AttemptError{rescued(1), rescued(2)}, nil, []int{1, 2}},
		{"back-filled lost entries count", []rivertype.AttemptError{rescued(1), failed(2), rescued(3)}, []retrypolicy.Attempt{entry(1, retrypolicy.ClassLost), entry(2, retrypolicy.ClassServerError)}, []int{1, 3}},
		// The message is not what counts: a failure the recorder never saw is lost.
		{"unrecorded failure", []rivertype.AttemptError{failed(1)}, nil, []int{1}},
		{"same attempt twice (UI retry)", []rivertype.AttemptError{rescued(1), rescued(1)}, nil, []int{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := &rivertype.JobRow{ID: 1, Attempt: len(tc.errors) + 1, Errors: tc.errors}
			require.Equal(t, tc.lost, retrypolicy.LostAttempts(job, retrypolicy.Output{Attempts: tc.history}))
		})
	}
}

func TestErrorAndStackAreTruncated(t *testing.T) {
	t.Parallel()

	// Exercised through CancelWithClass's entry: a 10 KiB message of
	// multi-byte runes is cut to at most MaxErrorBytes, on a rune boundary.
	long := strings.Repeat("é", 5000) // 10,000 bytes
	require.Greater(t, len(long), retrypolicy.MaxErrorBytes)
	out := truncatedEntry(t, long)
	require.LessOrEqual(t, len(out), retrypolicy.MaxErrorBytes)
	require.True(t, strings.HasSuffix(out, "…"))
	require.True(t, strings.HasPrefix(long, strings.TrimSuffix(out, "…")))
	require.Equal(t, retrypolicy.MaxErrorBytes-1, len(out)) // 2046 "é" (4092 bytes) + "…" (3 bytes)
}

// truncatedEntry returns the error text the history keeps for a failure with
// message msg (recorded by Do, which builds entries as the recorder does).
func truncatedEntry(t *testing.T, msg string) string {
	t.Helper()
	var got string
	err := retrypolicy.Do(t.Context(), retrypolicy.Policy{}, func(context.Context) error {
		return retrypolicy.Permanent(errors.New(msg))
	}, &retrypolicy.DoOpts{OnAttempt: func(a retrypolicy.Attempt) { got = a.Error }})
	require.EqualError(t, err, msg)
	return got
}
