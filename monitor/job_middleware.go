package monitor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobMiddleware is a River worker middleware that counts every attempt in
// rebound_job_attempts_total and times it in rebound_job_duration_seconds.
// Install it outermost (first in river.Config.Middleware) so it also sees
// the snoozes of the circuit breaker gate. Build it with
// [Metrics.JobMiddleware].
type JobMiddleware struct {
	river.MiddlewareDefaults
	metrics *Metrics
	// series caches the counter and histogram of each kind, queue and
	// outcome (attemptLabels -> *attemptSeries): looking a series up by
	// its label values hashes and checks them on every attempt.
	series sync.Map
}

type attemptLabels struct{ kind, queue, outcome string }

type attemptSeries struct {
	attempts prometheus.Counter
	duration prometheus.Observer
}

// JobMiddleware returns the worker middleware that feeds m.
func (m *Metrics) JobMiddleware() *JobMiddleware {
	return &JobMiddleware{metrics: m}
}

// Work implements rivertype.WorkerMiddleware. It returns what the rest of
// the chain returns, and re-panics a panic after counting it.
func (mw *JobMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	panicked := true
	defer func() {
		if panicked {
			mw.observe(job, OutcomePanicked, start)
		}
	}()
	err := doInner(ctx)
	panicked = false
	mw.observe(job, AttemptOutcome(ctx, job, err), start)
	return err
}

// Observe counts an attempt that began at start and returned err, as Work
// does, for a caller that runs this middleware's part inline in a worker
// middleware of its own (rebound's pod does, around its circuit breaker
// gate and attempt recorder): the outcome is [AttemptOutcome]'s.
func (mw *JobMiddleware) Observe(ctx context.Context, job *rivertype.JobRow, start time.Time, err error) {
	mw.observe(job, AttemptOutcome(ctx, job, err), start)
}

// ObservePanic counts an attempt that began at start and panicked
// (outcome panicked), as Work does.
func (mw *JobMiddleware) ObservePanic(job *rivertype.JobRow, start time.Time) {
	mw.observe(job, OutcomePanicked, start)
}

func (mw *JobMiddleware) observe(job *rivertype.JobRow, outcome string, start time.Time) {
	l := attemptLabels{job.Kind, job.Queue, outcome}
	v, ok := mw.series.Load(l)
	if !ok {
		v, _ = mw.series.LoadOrStore(l, &attemptSeries{
			attempts: mw.metrics.JobAttempts.WithLabelValues(job.Kind, job.Queue, outcome),
			duration: mw.metrics.JobDuration.WithLabelValues(job.Kind, outcome),
		})
	}
	s := v.(*attemptSeries)
	s.attempts.Inc()
	s.duration.Observe(time.Since(start).Seconds())
}

// AttemptOutcome names what River will do with an attempt that returned err
// (one of the Outcome* constants, never OutcomePanicked): a snooze or a
// cancel error as such; a job cancelled remotely (client.JobCancel: the
// context's cause is rivertype.ErrJobCancelledRemotely) is cancelled; a
// context.Canceled (or the context's cancel cause, as net/http returns)
// while the work context is otherwise cancelled (the client is stopping) is
// interrupted; any other error on the
// last attempt is discarded, before it errored.
func AttemptOutcome(ctx context.Context, job *rivertype.JobRow, err error) string {
	switch {
	case err == nil:
		return OutcomeCompleted
	}
	if _, ok := errors.AsType[*rivertype.JobSnoozeError](err); ok {
		return OutcomeSnoozed
	}
	if _, ok := errors.AsType[*rivertype.JobCancelError](err); ok {
		return OutcomeCancelled
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, rivertype.ErrJobCancelledRemotely) {
			return OutcomeCancelled // an operator's client.JobCancel
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, cause) {
			return OutcomeInterrupted
		}
	}
	if job.Attempt >= job.MaxAttempts {
		return OutcomeDiscarded
	}
	return OutcomeErrored
}
