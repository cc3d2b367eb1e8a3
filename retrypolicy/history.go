package retrypolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/storable"
)

// Size limits of one history entry, so a job with many attempts cannot
// approach River's 32 MB output limit.
const (
	// MaxErrorBytes is the longest error message kept in an entry, and in
	// what the recorder hands to River: 4 KiB, storable.MaxErrorBytes.
	// Messages are made storable by storable.Text: NUL and invalid UTF-8
	// become U+FFFD, longer ones are cut at a character boundary and end in
	// "…".
	MaxErrorBytes = storable.MaxErrorBytes

	// MaxStackBytes is the longest panic stack kept in an entry (its top,
	// where the panic happened), made storable the same way.
	MaxStackBytes = 16 << 10

	// MaxResultBytes is the largest JSON result [RecordResult] accepts.
	MaxResultBytes = 16 << 20
)

// Output is a job's metadata.output when it runs under the [AttemptRecorder]:
//
//	{"result": <the JSON the job recorded with RecordResult, or null>,
//	 "attempts": [<Attempt>, ...]}
//
// Both keys are always written. The recorder is the only writer of "output"
// (river.RecordOutput replaces the whole key on each call, so job code must
// use RecordResult, not river.RecordOutput).
type Output struct {
	// Result is what the job recorded with RecordResult; null when nothing.
	Result json.RawMessage `json:"result"`

	// Attempts is the history of failed attempts, oldest first.
	Attempts []Attempt `json:"attempts"`
}

// Attempt is one entry of a job's history: one failed attempt. The JSON
// names are a stable contract — the dead-letter queue's trigger reads
// metadata->'output'->'attempts' and the CLI prints them:
//
//	{"attempt": 2,                         // int, River's attempt number (1-based)
//	 "at": "2026-11-30T08:49:37.123456789Z", // RFC 3339 (UTC, nanoseconds): when the failure was recorded
//	 "class": "rate_limited",              // a Class
//	 "strategy": "aggressive",             // the class's strategy; absent when the class is not retried
//	 "delay_ms": 6000,                     // int, wait before the next attempt, ms; 0 when none follows
//	 "retry_after_ms": 3000,               // int, the server's (or marker's) Retry-After as asked, ms; 0 when none
//	 "error": "upstream: 429 Too Many Requests", // the error message (panic value for panics), ≤ 4 KiB
//	 "stack": "goroutine 7 [running]: ...", // panics only: runtime/debug.Stack(), ≤ 16 KiB
//	 "final": true}                        // present when the recorder knew no attempt follows
type Attempt struct {
	// Attempt is River's attempt number, 1-based. unknown_kind attempts
	// are given back (see [AttemptRecorder.UnknownKind]), so their entries
	// share the number of the attempt that follows them.
	Attempt int `json:"attempt"`
	// At is when the failure was recorded (UTC); for a back-filled lost
	// attempt, when River's rescuer recorded it.
	At time.Time `json:"at"`
	// Class is the failure's class.
	Class Class `json:"class"`
	// Strategy is the class's strategy; "" (absent) when the class is not
	// retried.
	Strategy Strategy `json:"strategy,omitempty"`
	// DelayMS is the wait before the next attempt, in milliseconds; 0 when
	// none follows (or, for an older lost attempt, when it is unknown).
	DelayMS int64 `json:"delay_ms"`
	// RetryAfterMS is the wait the server (or a WithRetryAfter marker)
	// asked for, in milliseconds, before the retry_after_max cap; 0 when
	// none.
	RetryAfterMS int64 `json:"retry_after_ms"`
	// Error is the error message (the panic value for panics) as
	// storable.Text keeps it: NUL and invalid UTF-8 as U+FFFD, at most
	// MaxErrorBytes.
	Error string `json:"error"`
	// Stack is the panic's stack (runtime/debug.Stack), at most
	// MaxStackBytes; "" (absent) for other classes.
	Stack string `json:"stack,omitempty"`
	// Final is true (present) when the recorder knew no attempt follows:
	// a class not retried, the job's or the policy's last attempt, the
	// rescue limit, CancelWithClass. Absent otherwise.
	Final bool `json:"final,omitempty"`
}

// ParseOutput reads the history out of a job's metadata (the whole metadata
// JSON object, rivertype.JobRow.Metadata). Metadata without "output" gives an
// empty Output. An "output" not written by the recorder (not an object with
// "result" or "attempts") is kept whole as Result, so it is carried forward
// rather than lost. It returns an error only for malformed JSON.
func ParseOutput(metadata []byte) (Output, error) {
	var out Output
	if len(bytes.TrimSpace(metadata)) == 0 {
		return out, nil
	}
	var meta struct {
		Output json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(metadata, &meta); err != nil {
		return out, fmt.Errorf("retrypolicy: parsing job metadata: %w", err)
	}
	raw := bytes.TrimSpace(meta.Output)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return out, nil
	}
	if raw[0] == '{' {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return out, fmt.Errorf("retrypolicy: parsing job metadata.output: %w", err)
		}
		_, hasResult := keys["result"]
		_, hasAttempts := keys["attempts"]
		if hasResult || hasAttempts {
			if err := json.Unmarshal(raw, &out); err != nil {
				return Output{}, fmt.Errorf("retrypolicy: parsing job metadata.output: %w", err)
			}
			if bytes.Equal(bytes.TrimSpace(out.Result), []byte("null")) {
				out.Result = nil
			}
			return out, nil
		}
	}
	out.Result = slices.Clone(raw)
	return out, nil
}

// LostAttempts returns, sorted, the numbers of the job's attempts that were
// lost: attempts River recorded an error for (job.Errors) with no entry in
// the history, plus history entries of class lost (lost attempts the
// recorder back-filled earlier). Errors and entries are matched one to one
// per attempt number, because an attempt given back after an unknown_kind
// failure (see [AttemptRecorder.UnknownKind]) is numbered again.
//
// Why absence and not the rescuer's message: River's rescuer appends an
// error ("Stuck job rescued by JobRescuer") with no middleware, hook or
// handler running, so the recorder never sees that attempt; its wording is
// not an API and could change in any River release. Absence catches every
// attempt that ended without the recorder finishing it — a worker killed by
// the OOM killer, a pod deleted mid-job, a hung worker — whatever River
// writes. Consequence: an attempt that fails before the middleware runs (a
// job row River cannot decode; a job of a kind the client has no worker
// for, unless a rebound pod records it as unknown_kind, see
// [AttemptRecorder.UnknownKind]) or in a middleware outside the recorder
// that does not record (see [CancelWithClass]) also counts as
// lost.
func LostAttempts(job *rivertype.JobRow, out Output) []int {
	entries := make(map[int]int, len(out.Attempts))
	var lost []int
	for _, a := range out.Attempts {
		entries[a.Attempt]++
		if a.Class == ClassLost {
			lost = append(lost, a.Attempt)
		}
	}
	for _, e := range job.Errors {
		if entries[e.Attempt] > 0 {
			entries[e.Attempt]--
			continue
		}
		lost = append(lost, e.Attempt)
	}
	slices.Sort(lost)
	return slices.Compact(lost)
}

// lostEntries back-fills history entries for lost attempts that have none.
// The wait River gave the most recent one (job.ScheduledAt minus the time it
// was rescued) is known; older ones' are not and stay 0.
func lostEntries(job *rivertype.JobRow, out Output, rule Rule) []Attempt {
	recorded := make(map[int]int, len(out.Attempts))
	for _, a := range out.Attempts {
		recorded[a.Attempt]++
	}
	var entries []Attempt
	for i, e := range job.Errors {
		if recorded[e.Attempt] > 0 {
			recorded[e.Attempt]--
			continue
		}
		entry := Attempt{
			Attempt: e.Attempt,
			At:      e.At.UTC(),
			Class:   ClassLost,
			Error:   storable.Text(e.Error, MaxErrorBytes),
		}
		if rule.Retry {
			entry.Strategy = rule.Strategy
		}
		if i == len(job.Errors)-1 && job.ScheduledAt.After(e.At) {
			entry.DelayMS = job.ScheduledAt.Sub(e.At).Milliseconds()
		}
		entries = append(entries, entry)
	}
	return entries
}

// previousDelay is the wait before the current attempt as the history
// records it: the last entry's delay_ms; 0 when none.
func (o Output) previousDelay() time.Duration {
	if len(o.Attempts) == 0 {
		return 0
	}
	return time.Duration(o.Attempts[len(o.Attempts)-1].DelayMS) * time.Millisecond
}

// appendSorted adds entries keeping the history ordered by attempt.
func (o *Output) appendSorted(entries ...Attempt) {
	o.Attempts = append(o.Attempts, entries...)
	slices.SortStableFunc(o.Attempts, func(a, b Attempt) int { return a.Attempt - b.Attempt })
}
