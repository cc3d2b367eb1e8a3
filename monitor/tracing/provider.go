package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rebound-queue/rebound/internal/redact"
)

// DefaultServiceName is the service.name of the worker's spans when neither
// OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one.
const DefaultServiceName = "rebound-worker"

// NewProvider returns an OpenTelemetry SDK TracerProvider exporting spans
// in batches over OTLP/HTTP (protobuf), configured by the standard
// environment variables as the SDK reads them: OTEL_EXPORTER_OTLP_ENDPOINT
// (default https://localhost:4318; "/v1/traces" is appended) or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the whole URL),
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds),
// OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_CERTIFICATE (and their
// _TRACES_ forms), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (default
// service.name [DefaultServiceName]), OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on), OTEL_BSP_*
// (batching: 5 s delay, 512 spans per export by default).
//
// Before export, secrets in span texts (status descriptions, string
// attributes, event attributes: error messages, URLs) are replaced as in
// the worker's logs (internal/redact).
//
// It refuses, with an error naming the variable, what the SDK would only
// warn about and ignore: an endpoint that is not an http:// or https:// URL
// with a host, an OTEL_EXPORTER_OTLP_PROTOCOL other than http/protobuf
// (grpc is not built in), an unknown sampler or a ratio outside [0, 1], a
// _TIMEOUT that is not a positive number of milliseconds, a _COMPRESSION
// other than gzip or none, a _HEADERS entry that is not key=value (an HTTP
// token as key, a URL-encoded value), a _CERTIFICATE file that cannot be
// read or holds no PEM certificate, a _CLIENT_CERTIFICATE/_CLIENT_KEY pair
// that does not load (each in its plain and _TRACES_ form).
// The returned description ("OTLP/HTTP to <endpoint>") is for the start
// line. Call Shutdown when done: it exports the spans still buffered,
// bounded by its context.
func NewProvider(ctx context.Context) (*sdktrace.TracerProvider, string, error) {
	endpoint, err := checkEnv()
	if err != nil {
		return nil, "", err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, "", fmt.Errorf("tracing: invalid OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(redactingExporter{SpanExporter: exp}),
		sdktrace.WithResource(res),
	)
	return tp, "OTLP/HTTP to " + endpoint, nil
}

// checkEnv checks the variables the SDK would ignore with a warning, and
// returns the traces endpoint in effect.
func checkEnv() (string, error) {
	endpoint := "https://localhost:4318/v1/traces"
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		v, ok := os.LookupEnv(name)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(v))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("invalid %s %q: want an http:// or https:// URL with a host, such as http://otel-collector:4318", name, v)
		}
		if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			endpoint = strings.TrimSuffix(u.String(), "/") + "/v1/traces"
		} else {
			endpoint = u.String()
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" && v != "http/protobuf" {
			return "", fmt.Errorf("invalid %s %q: the worker exports over OTLP/HTTP only (http/protobuf, port 4318)", name, v)
		}
	}
	for _, prefix := range []string{"OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_"} {
		if err := checkExporterEnv(prefix); err != nil {
			return "", err
		}
	}
	sampler := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	switch sampler {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
	case "traceidratio", "parentbased_traceidratio":
		if arg, ok := os.LookupEnv("OTEL_TRACES_SAMPLER_ARG"); ok {
			r, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
			if err != nil || r < 0 || r > 1 {
				return "", fmt.Errorf("invalid OTEL_TRACES_SAMPLER_ARG %q: want a ratio between 0 and 1, such as 0.1", arg)
			}
		}
	default:
		return "", fmt.Errorf("invalid OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", sampler)
	}
	return endpoint, nil
}

// checkExporterEnv checks prefix's TIMEOUT, COMPRESSION, HEADERS,
// CERTIFICATE and CLIENT_CERTIFICATE/CLIENT_KEY as the SDK reads them
// (trimmed; empty means unset), refusing what the SDK would ignore with a
// line on stderr.
func checkExporterEnv(prefix string) error {
	get := func(name string) string { return strings.TrimSpace(os.Getenv(prefix + name)) }
	if v := get("TIMEOUT"); v != "" {
		if ms, err := strconv.Atoi(v); err != nil || ms <= 0 {
			return fmt.Errorf("invalid %sTIMEOUT %q: want a positive number of milliseconds, such as 10000", prefix, v)
		}
	}
	if v := get("COMPRESSION"); v != "" && v != "gzip" && v != "none" {
		return fmt.Errorf("invalid %sCOMPRESSION %q: want gzip or none", prefix, v)
	}
	if v := get("HEADERS"); v != "" {
		for i, entry := range strings.Split(v, ",") {
			name, value, found := strings.Cut(entry, "=")
			_, err := url.PathUnescape(value)
			if !found || !validHeaderName(strings.TrimSpace(name)) || err != nil {
				return fmt.Errorf("invalid %sHEADERS: entry %d is not name=value (an HTTP header name, a URL-encoded value; the value is not shown), such as api-key=secret,team=ops", prefix, i+1)
			}
		}
	}
	if v := get("CERTIFICATE"); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("invalid %sCERTIFICATE: %w", prefix, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return fmt.Errorf("invalid %sCERTIFICATE %q: no PEM certificate in the file", prefix, v)
		}
	}
	if c, k := get("CLIENT_CERTIFICATE"), get("CLIENT_KEY"); c != "" && k != "" {
		if _, err := tls.LoadX509KeyPair(c, k); err != nil {
			return fmt.Errorf("invalid %sCLIENT_CERTIFICATE or %sCLIENT_KEY: %w", prefix, prefix, err)
		}
	}
	return nil
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token), as the SDK requires.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// redactingExporter replaces secrets in the texts of spans before they
// leave the process.
type redactingExporter struct{ sdktrace.SpanExporter }

func (e redactingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redactSpan(s)
	}
	return e.SpanExporter.ExportSpans(ctx, out)
}

// redactSpan returns s with its status description and string attributes
// (its own and its events') through redact.Text.
func redactSpan(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	stub := tracetest.SpanStubFromReadOnlySpan(s)
	stub.Status.Description = redact.Text(stub.Status.Description)
	stub.Attributes = redactAttrs(stub.Attributes)
	for i := range stub.Events {
		stub.Events[i].Attributes = redactAttrs(stub.Events[i].Attributes)
	}
	return stub.Snapshot()
}

func redactAttrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, len(attrs))
	for i, kv := range attrs {
		if kv.Value.Type() == attribute.STRING {
			kv.Value = attribute.StringValue(redact.Text(kv.Value.AsString()))
		}
		out[i] = kv
	}
	return out
}
