package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// otlpReceiver is a real OTLP/HTTP endpoint: it accepts POST /v1/traces,
// decodes each protobuf request and keeps its resource spans.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	spans    []*tracepb.ResourceSpans
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.Error(w, "want POST /v1/traces", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		rcv.requests++
		rcv.spans = append(rcv.spans, req.GetResourceSpans()...)
		rcv.mu.Unlock()
		resp, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

// received returns the number of export requests and the exported spans
// with their resource's service.name.
func (rcv *otlpReceiver) received() (int, map[*tracepb.Span]string) {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	spans := map[*tracepb.Span]string{}
	for _, rs := range rcv.spans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				spans[s] = service
			}
		}
	}
	return rcv.requests, spans
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			if iv, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
				return fmt.Sprint(iv.IntValue)
			}
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// With --tracing (or REBOUND_TRACING) the worker exports its job spans to
// the OTLP/HTTP endpoint of OTEL_EXPORTER_OTLP_ENDPOINT, at the latest when
// it stops (OTEL_BSP_SCHEDULE_DELAY holds them until then), and the
// upstream sees the attempt's trace in its traceparent header. Without it
// nothing is exported and no header is sent, whatever OTEL_* says.
func TestTracingExportsOnShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     []string
		tracing bool
	}{
		{name: "--tracing", args: []string{"--tracing"}, env: []string{"OTEL_SERVICE_NAME=rebound-test"}, tracing: true},
		{name: "REBOUND_TRACING", env: []string{"REBOUND_TRACING=true"}, tracing: true},
		{name: "off", env: []string{"OTEL_SERVICE_NAME=rebound-test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			rcv := newOTLPReceiver(t)
			var mu sync.Mutex
			var traceparents []string
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				traceparents = append(traceparents, r.Header.Get("traceparent"))
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer upstream.Close()

			addr := proctest.FreeAddr(t)
			env := append([]string{
				"DATABASE_URL=" + db.URL,
				"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL,
				"OTEL_BSP_SCHEDULE_DELAY=600000", // export only when full or on shutdown
			}, tt.env...)
			worker := proctest.Start(t, env, "worker", proctest.WithDefaults(tt.args, "--http-addr", addr, "--log-format", "json")...)
			waitFor(t, 30*time.Second, func() bool {
				resp, err := http.Get("http://" + addr + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "http_request", "--args", fmt.Sprintf(`{"url": %q}`, upstream.URL+"/hook"))
			require.Equal(t, 0, res.ExitCode, res.Stderr)
			waitFor(t, 30*time.Second, func() bool {
				return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE kind = 'http_request' AND state = 'completed'") == 1
			})
			requests, _ := rcv.received()
			require.Equal(t, 0, requests, "exported before shutdown")

			worker.Signal(syscall.SIGTERM)
			require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
			requests, spans := rcv.received()
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, traceparents, 1)
			if !tt.tracing {
				require.Equal(t, 0, requests)
				require.Equal(t, "", traceparents[0])
				require.NotContains(t, worker.Logs(), "tracing")
				return
			}
			require.GreaterOrEqual(t, requests, 1)
			require.Contains(t, worker.Logs(), `"msg":"tracing on: exporting job spans","export":"OTLP/HTTP to `+rcv.URL+`/v1/traces"`)
			require.Contains(t, worker.Logs(), `"msg":"tracing: spans flushed"`)
			var work []*tracepb.Span
			for s, service := range spans {
				if s.GetName() == "river.work/http_request" {
					work = append(work, s)
					want := "rebound-worker"
					if tt.name == "--tracing" {
						want = "rebound-test"
					}
					require.Equal(t, want, service)
				}
			}
			require.Len(t, work, 1)
			s := work[0]
			require.Equal(t, tracepb.Span_SPAN_KIND_CONSUMER, s.GetKind())
			require.Equal(t, "completed", spanAttr(s, "rebound.outcome"))
			require.Equal(t, "http_request", spanAttr(s, "kind"))
			require.Equal(t, "default", spanAttr(s, "queue"))
			require.Equal(t, "1", spanAttr(s, "attempt"))
			// traceparent: version-traceid-spanid-flags.
			parts := strings.Split(traceparents[0], "-")
			require.Len(t, parts, 4, traceparents[0])
			require.Equal(t, "00", parts[0])
			require.Equal(t, hex.EncodeToString(s.GetTraceId()), parts[1])
			require.Equal(t, "01", parts[3])
		})
	}
}

// A tracing setting the SDK would only warn about and ignore stops the
// worker with one line naming the variable.
func TestTracingStartupErrors(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	tests := []struct {
		name    string
		env     []string
		noFlag  bool // REBOUND_TRACING instead of --tracing
		wantErr string
	}{
		{name: "endpoint without scheme", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"},
			wantErr: `worker: invalid OTEL_EXPORTER_OTLP_ENDPOINT "collector:4318": want an http:// or https:// URL with a host, such as http://otel-collector:4318`},
		{name: "grpc protocol", env: []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
			wantErr: `worker: invalid OTEL_EXPORTER_OTLP_PROTOCOL "grpc": the worker exports over OTLP/HTTP only (http/protobuf, port 4318)`},
		{name: "unknown sampler", env: []string{"OTEL_TRACES_SAMPLER=sometimes"},
			wantErr: `worker: invalid OTEL_TRACES_SAMPLER "sometimes": want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio`},
		{name: "ratio above 1", env: []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=2"},
			wantErr: `worker: invalid OTEL_TRACES_SAMPLER_ARG "2": want a ratio between 0 and 1, such as 0.1`},
		{name: "timeout not milliseconds", env: []string{"OTEL_EXPORTER_OTLP_TIMEOUT=10s"},
			wantErr: `worker: invalid OTEL_EXPORTER_OTLP_TIMEOUT "10s": want a positive number of milliseconds, such as 10000`},
		{name: "traces compression", env: []string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=zstd"},
			wantErr: `worker: invalid OTEL_EXPORTER_OTLP_TRACES_COMPRESSION "zstd": want gzip or none`},
		{name: "header without =", env: []string{"OTEL_EXPORTER_OTLP_HEADERS=team=ops,Authorization Bearer s3cret"},
			wantErr: `worker: invalid OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not name=value (an HTTP header name, a URL-encoded value; the value is not shown), such as api-key=secret,team=ops`},
		{name: "missing CA file", env: []string{"OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent/ca.pem"},
			wantErr: `worker: invalid OTEL_EXPORTER_OTLP_CERTIFICATE: open /nonexistent/ca.pem: no such file or directory`},
		{name: "bad REBOUND_TRACING", env: []string{"REBOUND_TRACING=yes please"}, noFlag: true,
			wantErr: `worker: invalid REBOUND_TRACING "yes please": want true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--http-addr", proctest.FreeAddr(t)}
			if !tt.noFlag {
				args = append(args, "--tracing")
			}
			res := proctest.Run(t, append([]string{"DATABASE_URL=" + db.URL}, tt.env...), "worker", args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Equal(t, tt.wantErr+"\n", res.Stderr)
		})
	}
}
