package retrypolicy

import (
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/storable"
)

// The schedule of [ClassUnknownKind]: a job fetched by a client that has no
// worker for its kind (River v0.51.2 fails the attempt with a
// *rivertype.UnknownJobKindError before any middleware runs) waits
// UnknownKindInitialDelay, then twice as long each time, at most
// UnknownKindMaxDelay (1, 2, 4, 8, 15, 15, ... minutes, ±20% jitter), so a
// pod of a build that registers the kind (the rest of a rolling deploy, the
// service that owns the kind) picks it up. These attempts do not use up the
// job's attempts (see [AttemptRecorder.UnknownKind]). Once UnknownKindFor has
// passed since the first of them and still no pod ran it, the job is
// cancelled into the dead-letter queue with class unknown_kind. The kind's
// policy's max_delay, strategy and jitter mode do not apply: the schedule is
// exponential with its own base and cap, so its history entries (and
// rebound_retries_scheduled_total) say StrategyExponential whatever the
// rule's strategy. A rule for unknown_kind with retry: false dead-letters at
// the first such attempt.
const (
	UnknownKindInitialDelay = time.Minute
	UnknownKindMaxDelay     = 15 * time.Minute
	UnknownKindFor          = 24 * time.Hour
)

// UnknownKindDelay returns the wait after the n-th (1-based) consecutive
// unknown-kind attempt of a job, before jitter: UnknownKindInitialDelay
// doubled n-1 times, at most UnknownKindMaxDelay. n < 1 counts as 1.
func UnknownKindDelay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := UnknownKindInitialDelay
	for i := 1; i < n && d < UnknownKindMaxDelay; i++ {
		d *= 2
	}
	return min(d, UnknownKindMaxDelay)
}

// IsUnknownKind reports whether err is River's failure of a job whose kind
// the client has no worker for: err is (not wraps) a
// *rivertype.UnknownJobKindError naming job's kind, which is how River's
// executor reports it (the worker never ran, so nothing can have wrapped
// it). An error a worker returns is never taken for one.
func IsUnknownKind(job *rivertype.JobRow, err error) bool {
	uk, ok := err.(*rivertype.UnknownJobKindError) //nolint:errorlint // see above: exactly River's, never wrapped
	return ok && job != nil && uk.Kind == job.Kind
}

// UnknownKindResult is what [AttemptRecorder.UnknownKind] decided.
type UnknownKindResult struct {
	// Output is the job's history with the new entry, to store as
	// metadata.output (River runs no middleware for this attempt, so the
	// caller writes it).
	Output Output
	// Entry is the new history entry, class unknown_kind.
	Entry Attempt
	// Final is true when the job ends now: cancel it (River's
	// ErrorHandlerResult.SetCancelled). When false, the retry time is
	// handed to the recorder's ClientRetryPolicy and the caller must give
	// the attempt back (attempt - 1) so it does not count.
	Final bool
}

// UnknownKind records an attempt that failed because this client has no
// worker for the job's kind (see [IsUnknownKind]); the pod calls it from
// River's ErrorHandler. The entry has class unknown_kind, River's error
// message and, when retried, the delay of [UnknownKindDelay] (n = the
// unknown_kind entries since the last entry of another class, plus one)
// with ±20% jitter. It is final — the job is dead-lettered — when the
// kind's rule for unknown_kind does not retry, when UnknownKindFor has
// passed since the first of those entries, or when this is the job's last
// attempt (River discards it whatever the policy says). The entry is
// reported to RecorderOpts.OnAttempt (metrics, the "job dead-lettered" log
// line when final). A history that cannot be parsed is started afresh.
func (r *AttemptRecorder) UnknownKind(job *rivertype.JobRow, err error) UnknownKindResult {
	now := r.now().UTC()
	out, perr := ParseOutput(job.Metadata)
	if perr != nil {
		out = Output{}
	}
	policy := r.policies.Lookup(job.Kind)
	rule := policy.Rule(ClassUnknownKind)

	n, first := 1, now
	for i := len(out.Attempts) - 1; i >= 0 && out.Attempts[i].Class == ClassUnknownKind; i-- {
		n++
		first = out.Attempts[i].At
	}
	entry := Attempt{
		Attempt: job.Attempt,
		At:      now,
		Class:   ClassUnknownKind,
		Error:   storable.Text(err.Error(), MaxErrorBytes),
	}
	waited := now.Sub(first)
	switch {
	case !rule.Retry:
		entry.Final = true
		entry.Error = storable.Text(err.Error()+"; the kind's rule for unknown_kind does not retry, so it is dead-lettered", MaxErrorBytes)
	case waited >= UnknownKindFor:
		entry.Final = true
		entry.Error = storable.Text(fmt.Sprintf("%s; no pod registered the kind in %s (since %s), so it is dead-lettered",
			err.Error(), UnknownKindFor, first.Format(time.RFC3339)), MaxErrorBytes)
	case job.Attempt >= job.MaxAttempts:
		entry.Final = true
		entry.Error = storable.Text(fmt.Sprintf("%s; it was the job's last attempt (max attempts %d), so it is dead-lettered",
			err.Error(), job.MaxAttempts), MaxErrorBytes)
	}
	if !entry.Final {
		d := UnknownKindDelay(n)
		d = between(r.rand, d-d/5, d+d/5)
		entry.Strategy = StrategyExponential
		entry.DelayMS = d.Milliseconds()
		r.retry.put(job.ID, job.Attempt, now.Add(d), now)
	}
	out.appendSorted(entry)
	r.report(job, entry)
	return UnknownKindResult{Output: out, Entry: entry, Final: entry.Final}
}
