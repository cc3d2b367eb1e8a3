package rebound_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/monitor/tracing"
)

// tracedUpstream answers a script per path (as upstream does) and keeps the
// traceparent header of every request, "" when absent.
type tracedUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	calls  map[string]int
	traces map[string][]string
}

func newTracedUpstream(t *testing.T, scripts map[string][]int) *tracedUpstream {
	t.Helper()
	u := &tracedUpstream{calls: map[string]int{}, traces: map[string][]string{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		n := u.calls[r.URL.Path]
		u.calls[r.URL.Path]++
		u.traces[r.URL.Path] = append(u.traces[r.URL.Path], r.Header.Get("traceparent"))
		u.mu.Unlock()
		script := scripts[r.URL.Path]
		w.WriteHeader(script[min(n, len(script)-1)])
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *tracedUpstream) traceparents(path string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.traces[path]...)
}

// workSpans returns the ended attempt spans of job id, in attempt order.
func workSpans(exp *tracetest.InMemoryExporter, id int64) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "river.work/http_request" && attr(s.Attributes, "id").AsInt64() == id {
			out = append(out, s)
		}
	}
	return out
}

func attr(attrs []attribute.KeyValue, key string) attribute.Value {
	for _, kv := range attrs {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func hasAttr(attrs []attribute.KeyValue, key string) bool {
	return attr(attrs, key).Type() != attribute.INVALID
}

// With a TracerProvider every attempt of a job is a span with the job's
// kind, queue and attempt and rebound's class and outcome; the upstream of
// an http_request job receives a traceparent of the attempt's trace; the
// attempt spans link to the span the job was inserted under. Without one
// nothing is traced and nothing is sent upstream.
func TestTracingSpansOfARetriedHTTPJob(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "tracing on", false: "tracing off"}[on]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(ctx) })
			up := newTracedUpstream(t, map[string][]int{"/flaky": {503, 200}, "/gone": {404}})
			b := startPod(t, func(c *rebound.Config) {
				client := jobs.NewHTTPClient()
				if on {
					client.Transport = tracing.Transport(client.Transport, tp)
					c.TracerProvider = tp
				}
				river.AddWorker(c.Workers, &jobs.HTTPRequestWorker{Client: client})
			})

			reqCtx, request := tp.Tracer("test").Start(ctx, "request")
			flaky, err := b.pod.Insert(reqCtx, jobs.HTTPRequestArgs{URL: up.URL + "/flaky"}, nil)
			require.NoError(t, err)
			gone, err := b.pod.Insert(reqCtx, jobs.HTTPRequestArgs{URL: up.URL + "/gone"}, nil)
			require.NoError(t, err)
			request.End()
			job := b.waitForState(t, flaky.Job.ID, rivertype.JobStateCompleted)
			b.waitForState(t, gone.Job.ID, rivertype.JobStateCancelled)

			if !on {
				require.Equal(t, []string{"", ""}, up.traceparents("/flaky"))
				require.Equal(t, []string{""}, up.traceparents("/gone"))
				require.NotContains(t, string(job.Metadata), "traceparent")
				spans := exp.GetSpans()
				require.Len(t, spans, 1)
				require.Equal(t, "request", spans[0].Name)
				return
			}

			waitFor(t, 10*time.Second, "the attempt spans", func() bool {
				return len(workSpans(exp, flaky.Job.ID)) == 2 && len(workSpans(exp, gone.Job.ID)) == 1
			})
			h := history(t, job)
			require.Len(t, h, 1)
			// One insert span per insert, children of "request".
			inserts := map[trace.SpanID]bool{}
			for _, s := range exp.GetSpans() {
				if s.Name == "river.insert_many" {
					inserts[s.SpanContext.SpanID()] = true
					require.Equal(t, trace.SpanKindProducer, s.SpanKind)
					require.Equal(t, request.SpanContext().SpanID(), s.Parent.SpanID())
				}
			}
			require.Len(t, inserts, 2)
			type want struct {
				attempt int64
				class   string // "": no rebound.class attribute
				outcome string
				delayMS int64 // -1: no rebound.retry_delay_ms attribute
				status  codes.Code
			}
			check := func(s tracetest.SpanStub, w want) {
				t.Helper()
				require.Equal(t, trace.SpanKindConsumer, s.SpanKind)
				require.Equal(t, "http_request", attr(s.Attributes, "kind").AsString())
				require.Equal(t, "default", attr(s.Attributes, "queue").AsString())
				require.Equal(t, w.attempt, attr(s.Attributes, "attempt").AsInt64())
				require.Equal(t, w.outcome, attr(s.Attributes, tracing.AttrOutcome).AsString())
				require.Equal(t, w.class != "", hasAttr(s.Attributes, tracing.AttrClass))
				require.Equal(t, w.class, attr(s.Attributes, tracing.AttrClass).AsString())
				require.Equal(t, w.delayMS >= 0, hasAttr(s.Attributes, tracing.AttrRetryDelayMS))
				if w.delayMS >= 0 {
					require.Equal(t, w.delayMS, attr(s.Attributes, tracing.AttrRetryDelayMS).AsInt64())
				}
				require.Equal(t, w.status, s.Status.Code)
				// The job was inserted under "request": its spans link to
				// the insert's span, in request's trace.
				require.Len(t, s.Links, 1)
				require.Equal(t, request.SpanContext().TraceID(), s.Links[0].SpanContext.TraceID())
				require.True(t, inserts[s.Links[0].SpanContext.SpanID()], "link to %s", s.Links[0].SpanContext.SpanID())
			}
			spans := workSpans(exp, flaky.Job.ID)
			// fastPolicy: 100 ms for a first server_error, no jitter.
			require.Equal(t, int64(100), h[0].DelayMS)
			check(spans[0], want{attempt: 1, class: "server_error", outcome: "retry", delayMS: 100, status: codes.Error})
			check(spans[1], want{attempt: 2, outcome: "completed", delayMS: -1, status: codes.Ok})
			check(workSpans(exp, gone.Job.ID)[0], want{attempt: 1, class: "not_found", outcome: "cancelled", delayMS: -1, status: codes.Error})

			// Each upstream call carried a valid traceparent: the attempt's
			// trace, its parent the HTTP client span inside the attempt span.
			seen := up.traceparents("/flaky")
			require.Len(t, seen, 2)
			for i, tp := range seen {
				sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp}))
				require.True(t, sc.IsValid(), tp)
				require.True(t, sc.IsSampled(), tp)
				require.Equal(t, spans[i].SpanContext.TraceID(), sc.TraceID(), tp)
				var client *tracetest.SpanStub
				for _, s := range exp.GetSpans() {
					if s.SpanContext.SpanID() == sc.SpanID() {
						client = &s
					}
				}
				require.NotNil(t, client, "no span %s", sc.SpanID())
				require.Equal(t, trace.SpanKindClient, client.SpanKind)
				require.Equal(t, spans[i].SpanContext.SpanID(), client.Parent.SpanID())
			}

		})
	}
}

// A job parked behind an open circuit breaker is not run: its span says
// parked, with no class.
func TestTracingParkedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(ctx) })
	up := newTracedUpstream(t, map[string][]int{"/x": {200}})
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &jobs.HTTPRequestWorker{})
		c.TracerProvider = tp
	})
	key := strings.TrimPrefix(up.URL, "http://")
	_, err := b.pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: key, For: time.Hour, By: "test"})
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "the pod to see the breaker open", func() bool { return b.pod.Breaker().State(key) == breaker.StateOpen })

	res, err := b.pod.Insert(ctx, jobs.HTTPRequestArgs{URL: up.URL + "/x"}, nil)
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "the parked span", func() bool { return len(workSpans(exp, res.Job.ID)) > 0 })
	s := workSpans(exp, res.Job.ID)[0]
	require.Equal(t, "parked", attr(s.Attributes, tracing.AttrOutcome).AsString())
	require.False(t, hasAttr(s.Attributes, tracing.AttrClass))
	require.True(t, attr(s.Attributes, "snooze").AsBool())
	require.Equal(t, int64(1), attr(s.Attributes, "attempt").AsInt64())
	require.Empty(t, up.traceparents("/x"))
}
