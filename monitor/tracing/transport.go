package tracing

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transport returns base (nil: http.DefaultTransport) wrapped so that each
// request made under a recording span gets a client span of its own
// ("HTTP POST", with method, status and server attributes) and carries the
// W3C trace context in its traceparent (and tracestate) header, so the
// upstream's spans join the job's trace. With tp nil it returns base
// unchanged: nothing is added. Give the wrapped transport to the
// http_request kind's client (jobs.WorkerDeps.HTTPClient).
func Transport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	if tp == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
	)
}
