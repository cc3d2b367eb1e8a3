package rebound

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// attemptMiddleware is the pod's worker middleware around each attempt: in
// one River middleware layer it runs, in this order, the Prometheus
// metrics (monitor.JobMiddleware), the job counts of job_retry_metrics
// (metricstore.Recorder.Middleware), the circuit breaker gate
// (breaker.Gate) with tracing's mark that the gate admitted the attempt,
// and the attempt recorder (retrypolicy.AttemptRecorder), which calls the
// rest of the chain. Each does exactly what its own middleware does; the
// tests of the pod check that (pod_test.go, counters_test.go).
//
// They were five layers. Every River middleware layer costs each job an
// allocated closure and a few stack frames on the job's goroutine, which
// River starts afresh for each job; the goroutine's stack grows (is
// copied, frame by frame) twice per job on the way to 8 KiB, and the
// deeper the chain the more frames each copy adjusts (see growStack). One
// layer has 1 closure and 3 frames on the job's way where five had 5 and
// 12 (BenchmarkWorkerMiddleware runs the chain).
type attemptMiddleware struct {
	river.MiddlewareDefaults
	metrics  *monitor.JobMiddleware
	counts   *metricstore.Recorder
	gate     *breaker.Gate
	admitted func(context.Context) // tracing.MarkAdmitted when tracing, else nil
	recorder *retrypolicy.AttemptRecorder
}

// Work implements rivertype.WorkerMiddleware.
func (m *attemptMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	growStack()
	start := time.Now()
	var permit breaker.Permit
	ran, held, finished := false, false, false
	defer func() {
		if !finished { // a panic (or runtime.Goexit) on its way up
			m.unwound(ctx, job, start, permit, ran, held)
		}
	}()
	permit, ran, err := m.gate.Admit(ctx, job)
	if ran {
		held = true
		if m.admitted != nil {
			m.admitted(ctx)
		}
		err = m.recorder.Work(ctx, job, doInner)
		held = false
		m.gate.Finish(ctx, permit, err)
	}
	finished = true
	m.counts.ObserveAttempt(ctx, job, start, ran, err)
	m.metrics.Observe(ctx, job, start, err)
	return err
}

// unwound records an attempt that panicked, as the separate middlewares
// did on the panic's way up: the permit (if still held) is released
// without a decision, and both counters count a panicked attempt. Kept
// out of Work's frame.
//
//go:noinline
func (m *attemptMiddleware) unwound(ctx context.Context, job *rivertype.JobRow, start time.Time, permit breaker.Permit, ran, held bool) {
	if held {
		m.gate.Finish(ctx, permit, context.Canceled)
	}
	m.counts.ObservePanic(ctx, job, start, ran)
	m.metrics.ObservePanic(job, start)
}

// stackReserve is the frame of growStack: 4 KiB. River's job goroutine
// reaches the attempt middleware with a 4 KiB stack (River's own frames
// grew it from Go's 2 KiB start) of which about 1.8 KiB is in use, so this
// frame makes it grow once, to 8 KiB, the size a no-op job reaches anyway,
// and not to 16 KiB. (Measured in a pod on Go 1.26, amd64, by reading the
// goroutine's stack bounds: 4 KiB at the attempt middleware, 8 KiB after
// growStack, at the job's Work and until the goroutine exits, for every
// one of 300 no-op jobs, with and without tracing. A caller's
// Config.Middleware runs inside, after growStack, and does not change
// this.)
const stackReserve = 4 << 10

// growStack makes the job's goroutine's stack big enough for the whole
// attempt now, while it holds few frames. River runs each job on a new
// goroutine whose stack starts at 2 KiB; River grows it to 4 KiB before
// its middleware, and it grows, by copying, once more on the way to the
// 8 KiB a job reaches (decoding its args, completing it). Each copy walks
// every frame on the stack; without growStack rebound's middleware frames
// sit under that second growth. Here it happens above them: the number of
// growths per job is the same (two), the second copies fewer frames. On a
// goroutine that already has the room it costs clearing 4 KiB.
//
//go:noinline
func growStack() {
	var frame [stackReserve]byte
	touch(frame[:])
}

// touch keeps growStack's frame from being optimised away.
//
//go:noinline
func touch(b []byte) { b[0] = 1 }
