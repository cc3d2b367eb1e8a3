package tracing

import (
	"context"
	"errors"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Attributes rebound adds to each attempt span, next to otelriver's
// (kind, queue, attempt, priority, tag, id, status, created_at,
// scheduled_at, and cancel, snooze and snooze.duration when they apply).
const (
	// AttrClass is the failure class the attempt recorder gave a failed
	// attempt (retrypolicy.Class: server_error, timeout, ...; breaker_open
	// for a job parked too long). Absent when the attempt did not fail.
	AttrClass = "rebound.class"
	// AttrOutcome is what follows the attempt: one of the Outcome*
	// constants.
	AttrOutcome = "rebound.outcome"
	// AttrRetryDelayMS is the delay before the next attempt that the
	// class's strategy gave, in milliseconds; only with outcome retry.
	AttrRetryDelayMS = "rebound.retry_delay_ms"
)

// Values of [AttrOutcome].
const (
	// OutcomeCompleted: the job succeeded.
	OutcomeCompleted = "completed"
	// OutcomeRetry: the attempt failed and a retry is scheduled.
	OutcomeRetry = "retry"
	// OutcomeDiscarded: the job's last attempt failed; it is dead-lettered.
	OutcomeDiscarded = "discarded"
	// OutcomeCancelled: the job ended now (a class that is not retried, the
	// policy's max attempts, the rescue limit, a job parked longer than
	// max_park, an operator's cancel); all but the operator's are
	// dead-lettered.
	OutcomeCancelled = "cancelled"
	// OutcomeParked: the circuit breaker gate snoozed the job (its
	// operation key is open); the job was not run and no attempt was used.
	OutcomeParked = "parked"
	// OutcomeSnoozed: the job snoozed itself (river.JobSnooze).
	OutcomeSnoozed = "snoozed"
	// OutcomeInterrupted: the pod stopped while the job ran; it returns to
	// the queue with its attempt unused.
	OutcomeInterrupted = "interrupted"
)

// instrumentationName names rebound's tracer.
const instrumentationName = "github.com/rebound-queue/rebound/monitor/tracing"

// JobMiddleware is the River middleware that traces job attempts with a
// TracerProvider. Install [JobMiddleware.Outer] first in
// river.Config.Middleware (outside everything else, so the span covers the
// whole attempt and sees the breaker gate's snoozes) and
// [JobMiddleware.GateMarker] right inside the circuit breaker gate; run
// the attempt recorder inside the gate as usual. rebound.New does this when
// Config.TracerProvider is set.
type JobMiddleware struct {
	otel     *otelriver.Middleware
	annotate *annotator
}

// NewJobMiddleware returns the middleware over tp (not nil). Spans are named
// river.work/<kind> (and river.insert_many for inserts through the pod's
// client); an insert made under a span stores its trace context in the
// job's metadata (traceparent), and the job's attempt spans link to it.
// otelriver's metrics are not recorded (rebound's Prometheus metrics cover
// them).
func NewJobMiddleware(tp trace.TracerProvider) *JobMiddleware {
	return &JobMiddleware{
		otel: otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
			EnableTracePropagation:      true,
			EnableWorkSpanJobKindSuffix: true,
			MeterProvider:               noop.NewMeterProvider(),
			TracerProvider:              tp,
		}),
		annotate: &annotator{},
	}
}

// Outer returns the middleware to install first, in this order: otelriver's
// (the span; insert and worker middleware) and rebound's annotator (class
// and outcome on the span).
func (m *JobMiddleware) Outer() []rivertype.Middleware {
	return []rivertype.Middleware{m.otel, m.annotate}
}

// GateMarker returns the worker middleware that tells the annotator the
// circuit breaker gate admitted the attempt, so a snooze after it is the
// job's own (outcome snoozed) and one before it the gate's (parked).
func (m *JobMiddleware) GateMarker() rivertype.WorkerMiddleware { return &gateMarker{} }

// attempt is what the annotator learns about one attempt: it is the
// attempt's context (one allocation) and the recorder's observer.
type attempt struct {
	context.Context
	admitted bool
	observed bool
	entry    retrypolicy.Attempt
}

type attemptKey struct{}

func (a *attempt) Value(key any) any {
	if key == (attemptKey{}) {
		return a
	}
	return a.Context.Value(key)
}

// ObserveAttempt implements retrypolicy.AttemptObserver.
func (a *attempt) ObserveAttempt(e retrypolicy.Attempt) {
	a.entry, a.observed = e, true
}

type annotator struct{ river.MiddlewareDefaults }

// errPanicked stands for a panic on its way up, for the outcome.
var errPanicked = errors.New("panicked")

// Work implements rivertype.WorkerMiddleware: when the attempt's span is
// recording, it watches the attempt and sets AttrOutcome (and AttrClass,
// AttrRetryDelayMS) on the span; otherwise it only calls doInner.
func (m *annotator) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return doInner(ctx)
	}
	a := &attempt{Context: ctx}
	finished := false
	defer func() {
		if !finished { // a panic on its way up: River retries or discards
			a.annotate(ctx, span, job, errPanicked)
		}
	}()
	err := doInner(retrypolicy.WithAttemptObserver(a, a))
	finished = true
	a.annotate(ctx, span, job, err)
	return err
}

// annotate sets rebound's attributes on span.
func (a *attempt) annotate(ctx context.Context, span trace.Span, job *rivertype.JobRow, err error) {
	outcome := Outcome(ctx, job, err, a.admitted)
	attrs := make([]attribute.KeyValue, 1, 3)
	attrs[0] = attribute.String(AttrOutcome, outcome)
	if a.observed {
		attrs = append(attrs, attribute.String(AttrClass, string(a.entry.Class)))
		if outcome == OutcomeRetry {
			attrs = append(attrs, attribute.Int64(AttrRetryDelayMS, a.entry.DelayMS))
		}
	}
	span.SetAttributes(attrs...)
}

// Outcome names what follows an attempt that returned err (one of the
// Outcome* constants), by the rules of the job attempt metrics
// (monitor.AttemptOutcome): a snooze is parked unless admitted (the
// circuit breaker gate let the attempt through), and an error River will
// retry is retry.
func Outcome(ctx context.Context, job *rivertype.JobRow, err error, admitted bool) string {
	switch monitor.AttemptOutcome(ctx, job, err) {
	case monitor.OutcomeCompleted:
		return OutcomeCompleted
	case monitor.OutcomeSnoozed:
		if admitted {
			return OutcomeSnoozed
		}
		return OutcomeParked
	case monitor.OutcomeCancelled:
		return OutcomeCancelled
	case monitor.OutcomeInterrupted:
		return OutcomeInterrupted
	case monitor.OutcomeDiscarded:
		return OutcomeDiscarded
	default:
		return OutcomeRetry
	}
}

type gateMarker struct{ river.MiddlewareDefaults }

func (*gateMarker) Work(ctx context.Context, _ *rivertype.JobRow, doInner func(context.Context) error) error {
	MarkAdmitted(ctx)
	return doInner(ctx)
}

// MarkAdmitted tells the annotator of the attempt ctx belongs to that the
// circuit breaker gate admitted it, as GateMarker does, for a caller that
// runs the gate inline in a worker middleware of its own (rebound's pod
// does). Without an annotator in ctx (tracing off, or the span not
// recording) it does nothing.
func MarkAdmitted(ctx context.Context) {
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok {
		a.admitted = true
	}
}
