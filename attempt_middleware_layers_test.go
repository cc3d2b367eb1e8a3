package rebound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/tracing"
)

// layeredResult is what one attempt through a chain of worker middleware
// ended with, as River would see it.
type layeredResult struct {
	Err      string             // the returned error's text ("" for nil)
	Snooze   bool               // the returned error is a snooze
	Cancel   bool               // the returned error is a river.JobCancel
	Panicked bool               // the attempt panicked on its way out of the chain
	PanicVal string             // fmt.Sprint of the value it panicked with
	Goexit   bool               // the goroutine ended by runtime.Goexit
	SlotFree bool               // after the attempt, the key's breaker admits a probe
	State    string             // the key's breaker's state after the attempt
	Attempts map[string]float64 // rebound_job_attempts_total by outcome
	Timed    map[string]uint64  // rebound_job_duration_seconds observations by outcome
	Counts   [4]int64           // job_retry_metrics: attempts, completed, dead_lettered, short_circuited
	SpanOut  string             // the span's rebound.outcome
	Storable bool               // the error text is valid UTF-8 without NUL
}

// TestAttemptMiddlewareMatchesSeparateLayers runs each way an attempt can
// end through the pod's one-layer attempt middleware and through the five
// separate middlewares it replaced (monitor.JobMiddleware, the job counts'
// Middleware, the breaker gate, the job counts' and tracing's gate markers,
// the attempt recorder), both behind tracing's outer middleware, on one
// pod's parts (real PostgreSQL), and checks that River would see the same
// result and that the Prometheus counters, job_retry_metrics counts, span
// outcome and the breaker's probe slot end the same.
func TestAttemptMiddlewareMatchesSeparateLayers(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	workers := river.NewWorkers()
	river.AddWorker(workers, chainNoopWorker{})
	reg := prometheus.NewRegistry()
	cfg := Config{Pool: db.Pool, Workers: workers, Registerer: reg, Logger: slog.New(slog.DiscardHandler)}
	cfg.Breaker.Settings.HalfOpenMaxProbes = 1
	cfg.Breaker.Settings.ProbeTimeout = time.Hour
	cfg.Breaker.Settings.SuccessThreshold = 1
	pod, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, pod.breaker.Start(ctx))
	t.Cleanup(func() { _ = pod.breaker.Stop(ctx) })
	var one *attemptMiddleware
	for _, mw := range pod.workerMiddleware {
		if m, ok := mw.(*attemptMiddleware); ok {
			one = m
		}
	}
	require.NotNil(t, one)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(ctx) })
	tr := tracing.NewJobMiddleware(tp)
	var outer []rivertype.WorkerMiddleware
	for _, m := range tr.Outer() {
		if w, ok := m.(rivertype.WorkerMiddleware); ok {
			outer = append(outer, w)
		}
	}
	oneLayer := *one
	oneLayer.admitted = tracing.MarkAdmitted
	chains := map[string][]rivertype.WorkerMiddleware{
		"five": append(append([]rivertype.WorkerMiddleware{}, outer...),
			one.metrics, one.counts.Middleware(), one.gate, one.counts.GateMarker(), tr.GateMarker(), one.recorder),
		"one": append(append([]rivertype.WorkerMiddleware{}, outer...), &oneLayer),
	}
	// A gate whose key function and callbacks panic (the pod's own do not,
	// but a Go user's may), for the panics on the gate's side.
	panicky := breaker.NewGate(pod.breaker, breaker.GateConfig{
		DisableWake: true,
		KeyFunc: func(job *rivertype.JobRow) string {
			if strings.HasPrefix(job.Kind, "layers_key_panic") {
				panic("key function bug")
			}
			return breaker.DefaultKeyFunc(job)
		},
		OnParkExpired: func(context.Context, *rivertype.JobRow, *breaker.OpenError, time.Duration) error {
			panic("OnParkExpired bug")
		},
		OnInvalidKey: func(context.Context, *rivertype.JobRow, error) error { panic("OnInvalidKey bug") },
	})
	oneLayerPanicky := oneLayer
	oneLayerPanicky.gate = panicky
	chains["five_panicky"] = append(append([]rivertype.WorkerMiddleware{}, outer...),
		one.metrics, one.counts.Middleware(), panicky, one.counts.GateMarker(), tr.GateMarker(), one.recorder)
	chains["one_panicky"] = append(append([]rivertype.WorkerMiddleware{}, outer...), &oneLayerPanicky)

	failNUL := func(context.Context) error { return errors.New("bad\x00byte \xff") }
	tests := []struct {
		name    string
		key     string // "closed", "open", "halfopen", "invalid"
		last    bool   // the job's last attempt
		ctxMode string // "", "remote" (client.JobCancel), "stopping"
		panicky bool   // through the gate whose key function and callbacks panic
		do      func(context.Context) error
	}{
		{name: "ok", key: "closed", do: func(context.Context) error { return nil }},
		{name: "error", key: "closed", do: func(context.Context) error { return errors.New("upstream refused") }},
		{name: "error_last", key: "closed", last: true, do: func(context.Context) error { return errors.New("upstream refused") }},
		{name: "error_nul", key: "closed", last: true, do: failNUL},
		{name: "panic", key: "closed", do: func(context.Context) error { panic("boom") }},
		{name: "panic_last", key: "closed", last: true, do: func(context.Context) error { panic("boom\x00") }},
		{name: "goexit", key: "closed", do: func(context.Context) error { runtime.Goexit(); return nil }},
		{name: "snooze", key: "closed", do: func(context.Context) error { return river.JobSnooze(time.Hour) }},
		{name: "cancel", key: "closed", do: func(context.Context) error { return river.JobCancel(errors.New("no point\x00")) }},
		{name: "remote_cancel", key: "closed", ctxMode: "remote", do: func(ctx context.Context) error { return ctx.Err() }},
		{name: "stopping", key: "closed", ctxMode: "stopping", do: func(ctx context.Context) error { return ctx.Err() }},
		{name: "stopping_last", key: "closed", last: true, ctxMode: "stopping", do: func(ctx context.Context) error { return ctx.Err() }},
		{name: "deadline", key: "closed", do: func(context.Context) error { return context.DeadlineExceeded }},
		{name: "parked", key: "open", do: func(context.Context) error { return nil }},
		{name: "parked_last", key: "open", last: true, do: func(context.Context) error { return nil }},
		{name: "park_expired", key: "expired", do: func(context.Context) error { return nil }},
		{name: "park_expired_last", key: "expired", last: true, do: func(context.Context) error { return nil }},
		{name: "invalid_key", key: "invalid", do: func(context.Context) error { return nil }},
		{name: "probe_ok", key: "halfopen", do: func(context.Context) error { return nil }},
		{name: "probe_error", key: "halfopen", do: func(context.Context) error { return fmt.Errorf("still down: %w", context.DeadlineExceeded) }},
		{name: "probe_error_unclassified", key: "halfopen", do: func(context.Context) error { return errors.New("not the downstream\x00") }},
		{name: "probe_panic", key: "halfopen", do: func(context.Context) error { panic("boom") }},
		{name: "probe_goexit", key: "halfopen", do: func(context.Context) error { runtime.Goexit(); return nil }},
		{name: "probe_snooze", key: "halfopen", do: func(context.Context) error { return river.JobSnooze(time.Hour) }},
		{name: "key_panic", key: "closed", panicky: true, do: func(context.Context) error { return nil }},
		{name: "key_panic_last", key: "closed", last: true, panicky: true, do: func(context.Context) error { return nil }},
		{name: "park_expired_panic", key: "expired", panicky: true, do: func(context.Context) error { return nil }},
		{name: "park_expired_panic_last", key: "expired", last: true, panicky: true, do: func(context.Context) error { return nil }},
		{name: "invalid_key_panic", key: "invalid", panicky: true, do: func(context.Context) error { return nil }},
		{name: "panicky_gate_job_panic", key: "halfopen", panicky: true, do: func(context.Context) error { panic("boom") }},
		{name: "probe_stopping", key: "halfopen", ctxMode: "stopping", do: func(ctx context.Context) error { return ctx.Err() }},
	}
	results := map[string]map[string]layeredResult{}
	for i, tt := range tests {
		results[tt.name] = map[string]layeredResult{}
		for c, chainName := range []string{"five", "one"} {
			kind := fmt.Sprintf("layers_%s_%s", tt.name, chainName)
			key := "layers:" + kind
			switch tt.key {
			case "open", "expired":
				_, err := pod.breaker.Store().Open(ctx, breaker.OpenParams{Key: key, For: time.Hour, By: "test"})
				require.NoError(t, err)
				require.Eventually(t, func() bool { return pod.breaker.State(key) == breaker.StateOpen }, 10*time.Second, 10*time.Millisecond)
			case "halfopen":
				_, err := pod.breaker.Store().Open(ctx, breaker.OpenParams{Key: key, For: 100 * time.Millisecond, By: "test"})
				require.NoError(t, err)
				require.Eventually(t, func() bool { return pod.breaker.State(key) == breaker.StateOpen }, 10*time.Second, 10*time.Millisecond)
				time.Sleep(300 * time.Millisecond)
			case "invalid":
				key = "bad\x01key"
			}
			md := fmt.Sprintf(`{"operation_key": %q}`, key)
			switch tt.key {
			case "invalid":
				md = `{"operation_key": "bad\u0001key"}`
			case "expired": // parked for two days, past MaxPark
				md = fmt.Sprintf(`{"operation_key": %q, "breaker_parked_key": %q, "breaker_parked_at": %q}`,
					key, key, time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339Nano))
			}
			now := time.Now()
			job := &rivertype.JobRow{ID: int64(1000 + 2*i + c), Kind: kind, Queue: river.QueueDefault, Attempt: 1, MaxAttempts: 3, AttemptedAt: &now,
				EncodedArgs: []byte(`{}`), Metadata: []byte(md), State: rivertype.JobStateRunning}
			if tt.last {
				job.Attempt = 3
			}
			jctx, cancel := context.WithCancelCause(ctx)
			switch tt.ctxMode {
			case "remote":
				cancel(rivertype.ErrJobCancelledRemotely)
			case "stopping":
				cancel(nil)
			}
			chain := chains[chainName]
			if tt.panicky {
				chain = chains[chainName+"_panicky"]
			}
			res := runLayered(jctx, chain, job, tt.do)
			cancel(nil)
			// The texts name the kind, and the time until the breaker may probe.
			res.Err = strings.ReplaceAll(res.Err, kind, "KIND")
			res.Err = nextProbe.ReplaceAllString(res.Err, "next probe in D")

			res.State = pod.breaker.State(key).String()
			if tt.key == "halfopen" || tt.key == "closed" {
				p, err := pod.breaker.Allow(ctx, key)
				res.SlotFree = err == nil
				if err == nil {
					p.Done(ctx, context.Canceled)
				}
			}
			res.Attempts, res.Timed = attemptCounts(t, reg, kind)
			require.NoError(t, one.counts.Flush(ctx))
			require.NoError(t, db.Pool.QueryRow(ctx, `SELECT coalesce(sum(attempts), 0), coalesce(sum(completed), 0),
				coalesce(sum(dead_lettered), 0), coalesce(sum(short_circuited), 0) FROM job_retry_metrics WHERE kind = $1`, kind).
				Scan(&res.Counts[0], &res.Counts[1], &res.Counts[2], &res.Counts[3]))
			for _, s := range exp.GetSpans() {
				if s.Name == "river.work/"+kind {
					for _, a := range s.Attributes {
						if string(a.Key) == tracing.AttrOutcome {
							res.SpanOut = a.Value.AsString()
						}
					}
				}
			}
			results[tt.name][chainName] = res
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			five, one := results[tt.name]["five"], results[tt.name]["one"]
			require.True(t, one.Storable, "the one layer's error text and panic value are storable: %q, %q", one.Err, one.PanicVal)
			require.Equal(t, five, one)
			t.Logf("%+v", one)
		})
	}
}

var nextProbe = regexp.MustCompile(`next probe in [0-9hms.µ]+`)

// runLayered runs do as the job through chain, built as River builds it,
// on a goroutine of its own (as River runs each job).
func runLayered(ctx context.Context, chain []rivertype.WorkerMiddleware, job *rivertype.JobRow, do func(context.Context) error) layeredResult {
	var res layeredResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		goexit := true
		defer func() {
			if v := recover(); v != nil {
				res.Panicked, res.PanicVal = true, fmt.Sprint(v)
				goexit = false
			}
			res.Goexit = goexit
		}()
		inner := do
		for i := len(chain) - 1; i >= 0; i-- {
			mw, next := chain[i], inner
			inner = func(ctx context.Context) error { return mw.Work(ctx, job, next) }
		}
		err := inner(ctx)
		goexit = false
		if err != nil {
			res.Err = err.Error()
			if _, res.Snooze = errors.AsType[*rivertype.JobSnoozeError](err); res.Snooze {
				res.Err = "snooze" // its duration has a random spread
			}
			_, res.Cancel = errors.AsType[*rivertype.JobCancelError](err)
		}
	}()
	<-done
	res.Storable = storableText(res.Err) && storableText(res.PanicVal)
	return res
}

func storableText(s string) bool {
	return !strings.ContainsRune(s, 0) && utf8.ValidString(s)
}

// attemptCounts is rebound_job_attempts_total of kind, and the number of
// rebound_job_duration_seconds observations, by outcome.
func attemptCounts(t *testing.T, g prometheus.Gatherer, kind string) (map[string]float64, map[string]uint64) {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	labels := func(m *dto.Metric) (k, outcome string) {
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "kind":
				k = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		return k, outcome
	}
	out, timed := map[string]float64{}, map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k, outcome := labels(m)
			if k != kind {
				continue
			}
			switch mf.GetName() {
			case "rebound_job_duration_seconds":
				if n := m.GetHistogram().GetSampleCount(); n != 0 {
					timed[outcome] = n
				}
			case "rebound_job_attempts_total":
				if v := m.GetCounter().GetValue(); v != 0 {
					out[outcome] = v
				}
			}
		}
	}
	return out, timed
}
