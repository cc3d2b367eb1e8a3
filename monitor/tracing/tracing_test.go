package tracing

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// With no recording span (a provider that samples nothing, or none) the
// annotator adds nothing to an attempt: no allocation. Not parallel:
// testing.AllocsPerRun refuses parallel tests.
func TestAnnotatorWithoutRecordingSpanAllocatesNothing(t *testing.T) {
	m := NewJobMiddleware(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())))
	annotate := m.Outer()[1].(rivertype.WorkerMiddleware)
	marker := m.GateMarker()
	job := &rivertype.JobRow{ID: 1, Kind: "k", Queue: "default", Attempt: 1, MaxAttempts: 5}
	unsampled, span := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("t").Start(context.Background(), "x")
	defer span.End()
	_, noopSpan := noop.NewTracerProvider().Tracer("t").Start(context.Background(), "x")
	failure := errors.New("boom")
	for name, ctx := range map[string]context.Context{
		"no span":        context.Background(),
		"unsampled span": unsampled,
		"noop span":      trace.ContextWithSpan(context.Background(), noopSpan),
	} {
		for _, result := range []error{nil, failure} {
			leaf := func(context.Context) error { return result }
			inner := func(ctx context.Context) error { return marker.Work(ctx, job, leaf) }
			allocs := testing.AllocsPerRun(1000, func() { _ = annotate.Work(ctx, job, inner) })
			require.Zero(t, allocs, "%s, result %v", name, result)
		}
	}
}

func TestTransportWithoutProviderIsUnchanged(t *testing.T) {
	t.Parallel()
	base := &http.Transport{}
	require.Same(t, base, Transport(base, nil))
	require.Nil(t, Transport(nil, nil))
	require.NotSame(t, base, Transport(base, noop.NewTracerProvider()))
}

// Outcome follows the attempt metrics' rules, with retry and parked.
func TestOutcome(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	remote, cancelRemote := context.WithCancelCause(context.Background())
	cancelRemote(rivertype.ErrJobCancelledRemotely)
	fail := errors.New("boom")
	tests := []struct {
		name     string
		ctx      context.Context
		attempt  int
		err      error
		admitted bool
		want     string
	}{
		{name: "success", attempt: 1, admitted: true, want: OutcomeCompleted},
		{name: "failure, attempts left", attempt: 1, err: fail, admitted: true, want: OutcomeRetry},
		{name: "failure on the last attempt", attempt: 3, err: fail, admitted: true, want: OutcomeDiscarded},
		{name: "cancel", attempt: 1, err: river.JobCancel(fail), admitted: true, want: OutcomeCancelled},
		{name: "operator's cancel", ctx: remote, attempt: 1, err: context.Canceled, admitted: true, want: OutcomeCancelled},
		{name: "snooze by the gate", attempt: 1, err: river.JobSnooze(time.Second), want: OutcomeParked},
		{name: "snooze by the job", attempt: 1, err: river.JobSnooze(time.Second), admitted: true, want: OutcomeSnoozed},
		{name: "shutdown", ctx: cancelled, attempt: 1, err: context.Canceled, admitted: true, want: OutcomeInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			job := &rivertype.JobRow{Attempt: tt.attempt, MaxAttempts: 3}
			require.Equal(t, tt.want, Outcome(ctx, job, tt.err, tt.admitted))
		})
	}
}

// The annotator puts the class the recorder observed, the outcome and the
// delay on the attempt's span.
func TestAnnotatorSetsClassAndOutcome(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	m := NewJobMiddleware(tp)
	annotate := m.Outer()[1].(rivertype.WorkerMiddleware)
	job := &rivertype.JobRow{ID: 7, Kind: "k", Queue: "default", Attempt: 2, MaxAttempts: 5}
	ctx, span := tp.Tracer("t").Start(context.Background(), "attempt")
	err := annotate.Work(ctx, job, func(ctx context.Context) error {
		return m.GateMarker().Work(ctx, job, func(ctx context.Context) error {
			obs := ctx.Value(attemptKey{}).(retrypolicy.AttemptObserver)
			obs.ObserveAttempt(retrypolicy.Attempt{Attempt: 2, Class: retrypolicy.ClassTimeout, DelayMS: 4000})
			return errors.New("slow")
		})
	})
	require.EqualError(t, err, "slow")
	span.End()
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, []attribute.KeyValue{
		attribute.String(AttrOutcome, OutcomeRetry),
		attribute.String(AttrClass, "timeout"),
		attribute.Int64(AttrRetryDelayMS, 4000),
	}, spans[0].Attributes)
}

// Secrets in exported span texts are replaced as in the logs.
func TestRedactingExporter(t *testing.T) {
	t.Parallel()
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(redactingExporter{SpanExporter: mem}))
	_, span := tp.Tracer("t").Start(context.Background(), "attempt")
	span.SetAttributes(attribute.String("url.full", "https://api.example/x?api_key=hunter2&page=2"), attribute.Int("attempt", 1))
	span.SetStatus(codes.Error, "upstream said: Authorization: Bearer abcdefghijklmnop")
	span.AddEvent("exception", trace.WithAttributes(attribute.String("exception.message", "password=hunter2")))
	span.End()
	spans := mem.GetSpans()
	require.Len(t, spans, 1)
	s := spans[0]
	require.Equal(t, "upstream said: Authorization: Bearer [REDACTED]", s.Status.Description)
	require.Equal(t, []attribute.KeyValue{
		attribute.String("url.full", "https://api.example/x?api_key=[REDACTED]&page=2"),
		attribute.Int("attempt", 1),
	}, s.Attributes)
	require.Equal(t, []attribute.KeyValue{attribute.String("exception.message", "password=[REDACTED]")}, s.Events[0].Attributes)
}

// BenchmarkAttempt is the cost per attempt of the whole tracing chain
// (otelriver's span and the annotator) around a job that succeeds, with
// every span sampled and exported in batches to a no-op exporter, against
// the same job without it (tracing off: nothing is installed).
func BenchmarkAttempt(b *testing.B) {
	job := &rivertype.JobRow{ID: 1, Kind: "k", Queue: "default", Attempt: 1, MaxAttempts: 5, Metadata: []byte(`{}`)}
	work := func(context.Context) error { return nil }
	ctx := context.Background()
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = work(ctx)
		}
	})
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(ctx) }()
		outer := NewJobMiddleware(tp).Outer()
		span, annotate := outer[0].(rivertype.WorkerMiddleware), outer[1].(rivertype.WorkerMiddleware)
		inner := func(ctx context.Context) error { return annotate.Work(ctx, job, work) }
		b.ReportAllocs()
		for b.Loop() {
			_ = span.Work(ctx, job, inner)
		}
	})
}
