// Package tracing puts rebound's job attempts on OpenTelemetry traces: one
// span per attempt (River's own middleware, otelriver) carrying the job's
// kind, queue and attempt, plus rebound's failure class and what follows
// the attempt (see [AttrClass], [AttrOutcome]); the trace context passed
// to the http_request kind's upstream (traceparent header, [Transport]);
// and, for the worker binary, an OTLP/HTTP provider configured by the
// standard OTEL_* environment variables ([NewProvider]).
//
// Tracing is off unless a trace.TracerProvider is given (rebound.Config's
// TracerProvider, the worker's --tracing): then none of this package's
// middleware is installed and nothing is added to a job's path.
package tracing
