package retrypolicy

import (
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// staleHandOver is the age past which a hand-over is certainly leaked: River
// calls NextRetry right after the middleware returns (only ErrorHandler runs
// in between), so a hand-over still held a minute later belongs to a path
// that never calls NextRetry.
const staleHandOver = time.Minute

// ClientRetryPolicy is the river.ClientRetryPolicy fed by an
// [AttemptRecorder]: River's ClientRetryPolicy.NextRetry cannot see the error
// of the attempt that just failed, so the recorder computes the retry time
// in its middleware and hands it over in memory, keyed by (job ID, attempt).
// Get it from [AttemptRecorder.ClientRetryPolicy]; the zero value is not
// usable.
//
// Every hand-over is removed on every path: NextRetry takes it; the recorder
// never makes one when NextRetry will not be called (success, snooze,
// shutdown, river.JobCancel, the job's last attempt); a hand-over River did
// not ask for (an ErrorHandler that cancelled the job, a worker with its own
// NextRetry) is dropped when the job's next attempt starts, or once older
// than a minute when the store is full. The store holds at most
// MaxPendingRetries (default 10,000) hand-overs; when it is full of fresh
// ones the oldest is dropped (and logged), and NextRetry for it falls back as
// below.
//
// NextRetry without a hand-over — River's rescuer returning a job whose
// worker died or hung, which runs no middleware — computes the delay of class
// lost with the kind's policy.
type ClientRetryPolicy struct {
	policies   *Policies
	now        func() time.Time
	rand       Rand
	logger     *slog.Logger
	maxPending int

	mu      sync.Mutex
	pending map[pendingKey]pendingRetry
}

var _ river.ClientRetryPolicy = (*ClientRetryPolicy)(nil)

type pendingKey struct {
	jobID   int64
	attempt int
}

type pendingRetry struct {
	at     time.Time // when to retry
	stored time.Time // when handed over
}

// NextRetry implements river.ClientRetryPolicy. It returns the retry time the
// recorder computed for (job.ID, job.Attempt) and forgets it. When that time
// has already passed (a slow ErrorHandler), it returns now plus the policy's
// min_delay instead, because River replaces a time in the past with its own
// default policy. Without a hand-over it returns now plus the delay of class
// lost for attempt job.Attempt (see [ClientRetryPolicy]).
func (c *ClientRetryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	now := c.now()
	c.mu.Lock()
	p, ok := c.pending[pendingKey{job.ID, job.Attempt}]
	if ok {
		delete(c.pending, pendingKey{job.ID, job.Attempt})
	}
	c.mu.Unlock()

	policy := c.policies.Lookup(job.Kind)
	if ok {
		if p.at.After(now) {
			return p.at
		}
		return now.Add(policy.MinDelay)
	}

	params := DelayParams{Attempt: job.Attempt, Strategy: policy.Rule(ClassLost).Strategy}
	if policy.Jitter == JitterDecorrelated {
		if out, err := ParseOutput(job.Metadata); err == nil {
			params.Previous = out.previousDelay()
		}
	}
	return now.Add(policy.Delay(params, c.rand))
}

// Pending returns the number of hand-overs held (for tests and metrics).
func (c *ClientRetryPolicy) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// put hands over a retry time.
func (c *ClientRetryPolicy) put(jobID int64, attempt int, at, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) >= c.maxPending {
		c.evictLocked(now)
	}
	c.pending[pendingKey{jobID, attempt}] = pendingRetry{at: at, stored: now}
}

// forget drops a hand-over River did not take.
func (c *ClientRetryPolicy) forget(jobID int64, attempt int) {
	c.mu.Lock()
	delete(c.pending, pendingKey{jobID, attempt})
	c.mu.Unlock()
}

// evictLocked makes room: first every stale hand-over, else the oldest one.
func (c *ClientRetryPolicy) evictLocked(now time.Time) {
	var (
		oldestKey pendingKey
		oldest    time.Time
		found     bool
	)
	for k, p := range c.pending {
		if now.Sub(p.stored) > staleHandOver {
			delete(c.pending, k)
			continue
		}
		if !found || p.stored.Before(oldest) {
			oldestKey, oldest, found = k, p.stored, true
		}
	}
	if len(c.pending) < c.maxPending || !found {
		return
	}
	delete(c.pending, oldestKey)
	c.logger.Warn("retrypolicy: too many retry hand-overs pending; dropped the oldest (its retry falls back to class lost)",
		slog.Int64("job_id", oldestKey.jobID), slog.Int("attempt", oldestKey.attempt), slog.Int("max_pending_retries", c.maxPending))
}
